"""Servers that are not what they seem: the probes record evidence, never a false finding."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Callable, Iterator

import pytest

from kiloscribe_lab import diagnosis
from kiloscribe_lab.probes.base import ProbeOptions
from kiloscribe_lab.probes.runner import investigate
from kiloscribe_lab.results import Outcome

pytestmark = pytest.mark.timeout(60)


def serve(answer: bytes) -> Callable[[], Iterator[str]]:
    def fixture() -> Iterator[str]:
        server = socket.create_server(("127.0.0.1", 0))
        stop = threading.Event()

        def loop() -> None:
            server.settimeout(0.1)
            while not stop.is_set():
                try:
                    conn, _ = server.accept()
                except TimeoutError:
                    continue
                with conn:
                    conn.settimeout(1)
                    try:
                        conn.recv(65536)
                        conn.sendall(answer)
                    except OSError:
                        pass

        thread = threading.Thread(target=loop, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.getsockname()[1]}"
        finally:
            stop.set()
            thread.join(2)
            server.close()

    return fixture


GATEWAY_BODY = b'{"message":"Forbidden"}'
gateway = pytest.fixture(
    serve(
        b"HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\nContent-Length: "
        + str(len(GATEWAY_BODY)).encode()
        + b"\r\nConnection: close\r\n\r\n"
        + GATEWAY_BODY
    )
)
ftp_redirect = pytest.fixture(
    serve(
        b"HTTP/1.1 301 Moved\r\nLocation: ftp://files.example.invalid/\r\nContent-Length: 0\r\n"
        b"Connection: close\r\n\r\n"
    )
)


def test_a_gateways_json_403_is_not_a_socketio_refusal(gateway: str) -> None:
    options = ProbeOptions(timeout_s=2, api_key_env="K")
    results = asyncio.run(investigate([gateway], options, environ={"K": "some-key-value"}))
    connects = [r for r in results if r.probe == "socketio_connect"]
    assert connects and all(r.outcome is not Outcome.AUTH_REJECTED for r in connects), [
        (r.variant, r.outcome) for r in connects
    ]
    found = {f.id for f in diagnosis.diagnose(results, "K")}
    assert "auth-rejected" not in found and "auth-path-healthy" not in found
    assert "plain-websocket-protocol-mismatch" not in found
    # no handshake happened, so none has a duration
    assert all(r.timings.handshake is None for r in connects)


def test_a_redirect_to_a_non_http_location_is_recorded(ftp_redirect: str) -> None:
    results = asyncio.run(investigate([ftp_redirect], ProbeOptions(timeout_s=2)))
    [upgrade] = [r for r in results if r.probe == "http_upgrade"]
    assert upgrade.outcome is Outcome.REDIRECT and "ftp://" in (upgrade.error or "")
