"""Servers that are not what they seem: the probes record evidence, never a false finding."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from kiloscribe_lab import diagnosis
from kiloscribe_lab.names import FindingId, Outcome, ProbeName
from kiloscribe_lab.probes.runner import investigate
from kiloscribe_lab.results import ProbeResult
from kiloscribe_lab.settings import ProbeOptions
from tests.integration.servers import canned_server, http_answer

pytestmark = pytest.mark.timeout(60)


GATEWAY_BODY = b'{"message":"Forbidden"}'


@pytest.fixture
def gateway() -> Iterator[str]:
    with canned_server(http_answer("403 Forbidden", GATEWAY_BODY, "Content-Type: application/json")) as url:
        yield url


@pytest.fixture
def ftp_redirect() -> Iterator[str]:
    with canned_server(http_answer("301 Moved", b"", "Location: ftp://files.example.invalid/")) as url:
        yield url


def test_a_gateways_json_403_is_not_a_socketio_refusal(gateway: str) -> None:
    options = ProbeOptions(timeout_s=2, api_key_env="K", strict=True)
    results = asyncio.run(investigate([gateway], options, environ={"K": "some-key-value"}))
    connects = [r for r in results if r.probe == ProbeName.SOCKETIO_CONNECT]
    assert connects and all(r.outcome is not Outcome.AUTH_REJECTED for r in connects), [
        (r.variant, r.outcome) for r in connects
    ]
    found = {f.id for f in diagnosis.diagnose(results, "K")}
    assert FindingId.AUTH_REJECTED not in found and FindingId.AUTH_PATH_HEALTHY not in found
    assert FindingId.PLAIN_WEBSOCKET_PROTOCOL_MISMATCH not in found
    # no handshake happened, so none has a duration
    assert all(r.timings.handshake is None for r in connects)


def test_a_redirect_to_a_non_http_location_is_recorded(ftp_redirect: str) -> None:
    results = asyncio.run(investigate([ftp_redirect], ProbeOptions(timeout_s=2, strict=True)))
    [upgrade] = [r for r in results if r.probe == ProbeName.HTTP_UPGRADE]
    assert upgrade.outcome is Outcome.REDIRECT and "ftp://" in (upgrade.error or "")


OPEN_THEN = (
    '0{"sid":"s","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}\x1e'
)


@pytest.fixture
def closes_in_its_handshake() -> Iterator[str]:
    # An OPEN, and in the same payload the CLOSE that ends it.
    body = (OPEN_THEN + "1").encode()
    with canned_server(http_answer("200 OK", body, "Content-Type: text/plain; charset=UTF-8")) as url:
        yield url


@pytest.fixture
def pongs_in_its_handshake() -> Iterator[str]:
    # An OPEN, then a PONG nobody pinged for: Engine.IO out of order.
    body = (OPEN_THEN + "3").encode()
    with canned_server(http_answer("200 OK", body, "Content-Type: text/plain; charset=UTF-8")) as url:
        yield url


def _by_probe(results: list[ProbeResult]) -> dict[str, ProbeResult]:
    return {r.probe: r for r in results if r.probe in {ProbeName.ENGINEIO_UPGRADE, ProbeName.STICKY_SESSION}}


def test_a_session_closed_in_its_handshake_is_malformed_not_a_crash(closes_in_its_handshake: str) -> None:
    results = asyncio.run(investigate([closes_in_its_handshake], ProbeOptions(timeout_s=2, strict=True)))
    for probe, r in _by_probe(results).items():
        assert r.outcome is Outcome.MALFORMED, (probe, r.outcome, r.error)
        assert r.error == "the server closed the session in its handshake answer"


def test_an_out_of_order_packet_in_the_handshake_is_malformed(pongs_in_its_handshake: str) -> None:
    results = asyncio.run(investigate([pongs_in_its_handshake], ProbeOptions(timeout_s=2, strict=True)))
    [handshake] = [r for r in results if r.probe == ProbeName.ENGINEIO_HANDSHAKE]
    assert handshake.outcome is Outcome.MALFORMED
    assert handshake.error is not None and "we sent no PING" in handshake.error
    assert all(r.outcome is Outcome.MALFORMED for r in _by_probe(results).values())
