"""The foreign servers are what they claim: a smoke test each, on the wire FACTS.md recorded."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus
from websockets.typing import Origin

from kiloscribe_lab.lab.backend_config import BACKEND_HEADER
from kiloscribe_lab.lab.ports import free_ports
from kiloscribe_lab.names import ClientKind, Transport
from tests.integration.eio import eio_websocket
from tests.integration.foreign import APP_ORIGIN, plain_ws
from tests.integration.loopback import Running
from tests.integration.realclients import run_client

pytestmark = pytest.mark.timeout(60)

POLLING = {"EIO": "4", "transport": "polling"}
EVIL = "https://evil.example"


def ws_url(server: Running, path: str = "/socket.io/?EIO=4&transport=websocket") -> str:
    return f"ws://127.0.0.1:{server.port}{path}"


def get(server: Running, path: str, **headers: str) -> httpx.Response:
    params = POLLING if path.startswith("/socket.io/") else None
    return httpx.get(server.url + path, params=params, headers=headers, timeout=5, trust_env=False)


# --- plain ws ---------------------------------------------------------------------------------


async def test_plain_ws_upgrades_anything_and_never_speaks_engineio(
    plain_ws_server: Running, tmp_path: Path
) -> None:
    polling = get(plain_ws_server, "/socket.io/")
    assert (polling.status_code, polling.text) == (426, "Upgrade Required")
    async with connect(ws_url(plain_ws_server), proxy=None, open_timeout=5) as ws:
        assert ws.response is not None and ws.response.status_code == 101
        with pytest.raises(TimeoutError):  # silent: no open packet, nothing at all
            await asyncio.wait_for(ws.recv(), 0.5)
        await ws.send("2probe")
        assert await asyncio.wait_for(ws.recv(), 2) == "2probe"  # an echo, not a pong
    with plain_ws(tmp_path, greeting="hello") as greeter:
        async with connect(ws_url(greeter, "/"), proxy=None, open_timeout=5) as ws:
            assert await asyncio.wait_for(ws.recv(), 2) == "hello"
    assert free_ports(1)  # the greeter's port is given back: nothing of it runs


# --- the reference socket.io server -------------------------------------------------------------


async def test_reference_socketio_has_engineios_defaults_and_nothing_of_the_mock(
    reference_socketio_server: Running,
) -> None:
    handshake = get(reference_socketio_server, "/socket.io/")
    assert handshake.status_code == 200 and handshake.text.startswith("0{")
    assert BACKEND_HEADER not in handshake.headers and "access-control-allow-origin" not in handshake.headers
    other = get(reference_socketio_server, "/api/health")
    assert (other.status_code, other.content) == (404, b"")
    async with eio_websocket(reference_socketio_server.url) as sock:
        assert (sock.handshake["pingInterval"], sock.handshake["pingTimeout"]) == (25_000, 20_000)
        assert sock.handshake["maxPayload"] == 1_000_000
        assert (await sock.connect_namespace(None)).startswith('40{"sid":')  # no auth asked
        await sock.emit("echo", {"n": 1}, ack_id=7)
        assert await sock.recv(3) == '437[{"n":1}]'
        assert await sock.alive()  # its own answer for an unknown namespace
    outcome = await run_client(
        ClientKind.SOCKETIO_CLIENT, reference_socketio_server.url, environ=dict(os.environ)
    )
    assert outcome.connected and outcome.transport == str(Transport.WEBSOCKET), outcome


# --- python-socketio with cors_allowed_origins ----------------------------------------------------


async def test_python_socketio_refuses_origins_it_does_not_allow(
    python_socketio_cors_server: Running,
) -> None:
    server = python_socketio_cors_server
    allowed = get(server, "/socket.io/", Origin=APP_ORIGIN)
    assert allowed.status_code == 200 and allowed.headers["access-control-allow-origin"] == APP_ORIGIN
    foreign = get(server, "/socket.io/", Origin=EVIL)
    assert foreign.status_code == 400 and foreign.json() == f"{EVIL} is not an accepted origin."
    with pytest.raises(InvalidStatus) as refused:
        async with connect(ws_url(server), proxy=None, open_timeout=5, origin=Origin(EVIL)):
            pass
    assert refused.value.response.status_code == 403 and refused.value.response.body == b""
    assert get(server, "/socket.io/").status_code == 200  # no Origin: not a browser, served
