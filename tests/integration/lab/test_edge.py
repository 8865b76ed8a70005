"""The edge's CDN behaviours on the wire: a managed challenge for Socket.IO requests, and a
rate limit on a share of polling requests (live labs of ad-hoc scenarios)."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterator

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from kiloscribe_lab.lab.caddyfile import CHALLENGE_PAGE, RETRY_AFTER_S
from kiloscribe_lab.lab.scenarios import Edge, Scenario
from kiloscribe_lab.lab.state import LabInfo
from tests.integration.clients import http, sio_session
from tests.integration.lab.adhoc import NO_TRUTH, adhoc_labs

pytestmark = pytest.mark.timeout(60)

SHARE = 0.5
CHALLENGE = Scenario("edge-wire-challenge", "wire facts: challenge", NO_TRUTH, edge=Edge(challenge=True))
RATE_LIMITED = Scenario("edge-wire-rate-limited", "wire facts: 429s", NO_TRUTH, edge=Edge(rate_limited=SHARE))
POLLING = {"EIO": "4", "transport": "polling"}


@pytest.fixture(scope="module")
def edge_labs(tmp_path_factory: pytest.TempPathFactory, lab_key: str) -> Iterator[dict[str, LabInfo]]:
    with adhoc_labs(tmp_path_factory.mktemp("edge"), [CHALLENGE, RATE_LIMITED], lab_key) as labs:
        yield labs


async def websocket_refusal(lab: LabInfo, path: str) -> InvalidStatus:
    context = ssl.create_default_context(cafile=str(lab.ca_bundle))
    with pytest.raises(InvalidStatus) as refused:
        async with connect(lab.edge.replace("https://", "wss://") + path, ssl=context, proxy=None):
            pass
    return refused.value


# --- the challenge -----------------------------------------------------------------------------


async def test_the_challenge_answers_polling_and_websocket_as_cloudflare_does(
    edge_labs: dict[str, LabInfo],
) -> None:
    """FACTS.md 3.9: 403, ``cf-mitigated: challenge``, the "Just a moment..." page; the CDN's
    own headers (``server: cloudflare``, ``cf-ray``) as on every answer."""
    lab = edge_labs[CHALLENGE.name]
    with http(lab) as client:
        polling = client.get(lab.edge + "/socket.io/", params=POLLING)
    ws = (await websocket_refusal(lab, "/socket.io/?EIO=4&transport=websocket")).response
    plain_ws = (await websocket_refusal(lab, "/ws")).response  # any WebSocket, Engine.IO or not
    for status, headers, body in (
        (polling.status_code, polling.headers, polling.content),
        (ws.status_code, ws.headers, ws.body),
        (plain_ws.status_code, plain_ws.headers, plain_ws.body),
    ):
        assert status == 403
        assert headers["cf-mitigated"] == "challenge"
        assert headers["server"] == "cloudflare" and headers["cf-ray"]
        assert headers["content-type"].startswith("text/html")
        assert "no-store" in headers["cache-control"]
        assert body == CHALLENGE_PAGE.encode()
        assert "x-lab-backend" not in headers  # answered by the edge, never proxied


def test_the_challenge_lets_other_requests_and_the_balancer_pass(edge_labs: dict[str, LabInfo]) -> None:
    lab = edge_labs[CHALLENGE.name]
    with http(lab) as client:
        health = client.get(lab.edge + "/api/health")
        behind = client.get(lab.lb + "/socket.io/", params=POLLING)
    assert health.status_code == 200 and "cf-mitigated" not in health.headers
    assert behind.status_code == 200 and behind.text.startswith("0{")


async def test_real_clients_cannot_pass_the_challenge(edge_labs: dict[str, LabInfo], lab_key: str) -> None:
    lab = edge_labs[CHALLENGE.name]
    ws, polling = await asyncio.gather(
        sio_session(lab.edge, str(lab.ca_bundle), lab_key, "websocket"),
        sio_session(lab.edge, str(lab.ca_bundle), lab_key, "polling"),
    )
    assert not ws.connected and not polling.connected


# --- the rate limit ------------------------------------------------------------------------------


def test_a_share_of_polling_requests_gets_429_with_retry_after(edge_labs: dict[str, LabInfo]) -> None:
    """Drawn per request at random: of 64 handshakes at share 1/2, between 12 and 52 are
    refused (outside that, p < 1e-6); every refusal carries Retry-After and the CDN's headers,
    every other one is an Engine.IO open packet from a backend."""
    lab = edge_labs[RATE_LIMITED.name]
    with http(lab) as client:
        answers = [client.get(lab.edge + "/socket.io/", params=POLLING) for _ in range(64)]
    limited = [r for r in answers if r.status_code == 429]
    passed = [r for r in answers if r.status_code != 429]
    assert 12 <= len(limited) <= 52, len(limited)
    for r in limited:
        assert r.headers["retry-after"] == str(RETRY_AFTER_S)
        assert r.headers["server"] == "cloudflare" and r.headers["cf-ray"]
        assert "rate limited" in r.text and "x-lab-backend" not in r.headers
    assert all(
        r.status_code == 200 and r.text.startswith("0{") and "retry-after" not in r.headers for r in passed
    )


async def test_the_rate_limit_leaves_websocket_and_other_requests_alone(
    edge_labs: dict[str, LabInfo], lab_key: str
) -> None:
    lab = edge_labs[RATE_LIMITED.name]
    with http(lab) as client:
        assert {client.get(lab.edge + "/api/health").status_code for _ in range(16)} == {200}
    sessions = await asyncio.gather(
        *(sio_session(lab.edge, str(lab.ca_bundle), lab_key, "websocket") for _ in range(8))
    )
    assert all(s.connected for s in sessions), sessions
