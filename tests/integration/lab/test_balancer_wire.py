"""What each balancer setting shows on the wire, on live labs of ad-hoc scenarios, as FACTS.md
recorded it (and where the lab's three-backend topology makes it differ, what it shows instead).

The slow facts (idle cuts at 4 s) are measured once, concurrently on every balancer, by one
module fixture; each test then reads its part.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from kiloscribe_lab.lab.backend_config import BACKEND_HEADER
from kiloscribe_lab.lab.scenarios import (
    PING_INTERVAL_MS,
    BackendBehaviour,
    BackendSpec,
    Balancer,
    BalancerKind,
    LbPolicy,
    Scenario,
)
from kiloscribe_lab.lab.state import LabInfo
from tests.integration.clients import http, polling_follow_up, polling_open, sio_session
from tests.integration.lab.adhoc import NO_TRUTH, adhoc_labs

pytestmark = pytest.mark.timeout(90)

IDLE_S = 4.0
LIMIT = 65536
NGINX_SERVER = "nginx/1.22.1"
WS_PATH = "/socket.io/?EIO=4&transport=websocket"


def scenario(name: str, balancer: Balancer) -> Scenario:
    # The backends beat at engine.io's default 25 s (not the lab's 2 s): an idle session stays
    # silent past the balancers' 4 s timeouts.
    return Scenario(
        name=name,
        description=f"wire facts: {balancer}",
        truth=NO_TRUTH,
        balancer=balancer,
        backends=BackendSpec(BackendBehaviour(ping_interval_ms=PING_INTERVAL_MS)),
    )


SCENARIOS = {
    "no-upgrade": scenario("wire-nginx-no-upgrade", Balancer(BalancerKind.NGINX, forwards_upgrade=False)),
    BalancerKind.NGINX: scenario(
        "wire-nginx-limits", Balancer(BalancerKind.NGINX, idle_timeout_s=IDLE_S, max_body_bytes=LIMIT)
    ),
    BalancerKind.HAPROXY: scenario(
        "wire-haproxy-limits",
        Balancer(BalancerKind.HAPROXY, LbPolicy.COOKIE, idle_timeout_s=IDLE_S, max_body_bytes=LIMIT),
    ),
    BalancerKind.CADDY: scenario(
        "wire-caddy-limits", Balancer(BalancerKind.CADDY, idle_timeout_s=IDLE_S, max_body_bytes=LIMIT)
    ),
}
LIMITED = (BalancerKind.NGINX, BalancerKind.HAPROXY, BalancerKind.CADDY)


@dataclass(frozen=True)
class IdleCut:
    ws_after_s: float  # when the idle WebSocket ended, from its open packet
    ws_close_frame: bool  # whether a close frame came (a proxy's idle cut sends none: 1006)
    poll_after_s: float  # when the waiting long-poll was answered
    poll_status: int
    poll_headers: httpx.Headers
    poll_body: str


async def measure_idle_cut(lab: LabInfo) -> IdleCut:
    context = ssl.create_default_context(cafile=str(lab.ca_bundle))

    async def websocket() -> tuple[float, bool]:
        async with connect(lab.lb.replace("https://", "wss://") + WS_PATH, ssl=context, proxy=None) as ws:
            assert str(await ws.recv()).startswith("0{")  # no CONNECT: the session stays silent
            opened = time.monotonic()
            with pytest.raises(ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 20)  # the backend's first ping is due at 25 s
            return time.monotonic() - opened, ws.protocol.close_rcvd is not None

    async def long_poll() -> tuple[float, httpx.Response]:
        async with httpx.AsyncClient(verify=context, timeout=20, trust_env=False) as client:
            opened = await client.get(lab.lb + "/socket.io/", params={"EIO": "4", "transport": "polling"})
            sid = json.loads(opened.text[1:])["sid"]
            started = time.monotonic()
            waiting = await client.get(
                lab.lb + "/socket.io/", params={"EIO": "4", "transport": "polling", "sid": sid}
            )
            return time.monotonic() - started, waiting

    (ws_s, close_frame), (poll_s, poll) = await asyncio.gather(websocket(), long_poll())
    return IdleCut(ws_s, close_frame, poll_s, poll.status_code, poll.headers, poll.text)


@pytest.fixture(scope="module")
def wire_labs(tmp_path_factory: pytest.TempPathFactory, lab_key: str) -> Iterator[dict[object, LabInfo]]:
    root = tmp_path_factory.mktemp("wire")
    with adhoc_labs(root, list(SCENARIOS.values()), lab_key) as labs:
        yield {key: labs[s.name] for key, s in SCENARIOS.items()}


@pytest.fixture(scope="module")
def idle_cuts(wire_labs: dict[object, LabInfo]) -> dict[BalancerKind, IdleCut]:
    """Every balancer's idle cut, measured at once: one wait of ~2 x 4 s for all three."""

    async def all_of_them() -> list[IdleCut]:
        return list(await asyncio.gather(*(measure_idle_cut(wire_labs[k]) for k in LIMITED)))

    return dict(zip(LIMITED, asyncio.run(all_of_them()), strict=True))


# --- nginx without the upgrade headers ----------------------------------------------------------


async def test_nginx_without_upgrade_headers_delivers_the_websocket_request_as_a_plain_get(
    wire_labs: dict[object, LabInfo],
) -> None:
    """FACTS.md 3.1: the request reaches the python backend without its upgrade, and
    python-engineio answers it as one: 400 text/plain "Invalid websocket upgrade" (quoted),
    through nginx (its Server header), no 101, the connection kept."""
    lab = wire_labs["no-upgrade"]
    context = ssl.create_default_context(cafile=str(lab.ca_bundle))
    with pytest.raises(InvalidStatus) as refused:
        async with connect(lab.lb.replace("https://", "wss://") + WS_PATH, ssl=context, proxy=None):
            pass
    response = refused.value.response
    assert response.status_code == 400
    assert response.body == b'"Invalid websocket upgrade"'
    assert response.headers["content-type"].startswith("text/plain")
    assert response.headers["server"] == NGINX_SERVER  # nginx hides uvicorn's
    assert response.headers.get_all(BACKEND_HEADER)  # a backend answered it, not nginx
    assert response.headers["connection"] == "keep-alive"
    # Polling through the same nginx works, and the backend still offers the upgrade.
    with http(lab) as client:
        opened, _ = polling_open(client, lab.lb)
    assert opened.headers["server"] == NGINX_SERVER
    assert json.loads(opened.text[1:])["upgrades"] == ["websocket"]


async def test_real_clients_through_nginx_without_upgrade_headers(
    wire_labs: dict[object, LabInfo], lab_key: str
) -> None:
    lab = wire_labs["no-upgrade"]
    ws, polling = await asyncio.gather(
        sio_session(lab.lb, str(lab.ca_bundle), lab_key, "websocket"),
        sio_session(lab.lb, str(lab.ca_bundle), lab_key, "polling"),
    )
    # FACTS.md 3.1: python-socketio over WebSocket says only "Connection error"; polling connects.
    assert not ws.connected and ws.error == "Connection error", ws
    assert polling.connected and polling.transport == "polling", polling


def test_nginx_ip_hash_keeps_a_polling_session_on_one_backend(wire_labs: dict[object, LabInfo]) -> None:
    lab = wire_labs["no-upgrade"]
    with http(lab) as client:
        opened, sid = polling_open(client, lab.lb)
        answers = {
            (r.status_code, r.headers[BACKEND_HEADER])
            for r in (polling_follow_up(client, lab.lb, sid) for _ in range(12))
        }
    assert answers == {(200, opened.headers[BACKEND_HEADER])}


# --- idle cuts ------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", LIMITED)
def test_an_idle_websocket_is_cut_at_the_balancers_timeout_without_a_close_frame(
    idle_cuts: dict[BalancerKind, IdleCut], kind: BalancerKind
) -> None:
    """FACTS.md 4.1: a bare FIN at ~4 s (code 1006 to the client), well before the 25 s heartbeat."""
    cut = idle_cuts[kind]
    assert IDLE_S - 0.1 <= cut.ws_after_s <= IDLE_S + 1.0, cut
    assert not cut.ws_close_frame


def test_haproxy_answers_a_waiting_long_poll_504_at_its_timeout(
    idle_cuts: dict[BalancerKind, IdleCut],
) -> None:
    cut = idle_cuts[BalancerKind.HAPROXY]
    assert IDLE_S - 0.1 <= cut.poll_after_s <= IDLE_S + 1.0, cut
    assert cut.poll_status == 504
    assert cut.poll_body.startswith("<html><body><h1>504 Gateway Time-out</h1>")  # HAProxy's page
    assert "server" not in cut.poll_headers


def test_nginx_retries_a_timed_out_long_poll_on_the_next_backend(
    idle_cuts: dict[BalancerKind, IdleCut],
) -> None:
    """Not FACTS.md's 504 (measured with one upstream): with several, nginx's default
    ``proxy_next_upstream error timeout`` passes the timed-out GET to the next backend, which
    does not know the sid: python-engineio's 400 "Invalid session", at the same 4 s."""
    cut = idle_cuts[BalancerKind.NGINX]
    assert IDLE_S - 0.1 <= cut.poll_after_s <= IDLE_S + 1.0, cut
    assert cut.poll_status == 400
    assert cut.poll_body.startswith('"Invalid session ')
    assert cut.poll_headers["server"] == NGINX_SERVER


def test_caddy_answers_a_waiting_long_poll_an_empty_504_after_twice_its_read_timeout(
    idle_cuts: dict[BalancerKind, IdleCut],
) -> None:
    """Caddy's transport read_timeout (measured here, Caddy 2.11.7): the long-poll's 504
    comes after two timeouts, with an empty body."""
    cut = idle_cuts[BalancerKind.CADDY]
    assert 2 * IDLE_S - 0.1 <= cut.poll_after_s <= 2 * IDLE_S + 1.0, cut
    assert (cut.poll_status, cut.poll_body, cut.poll_headers["server"]) == (504, "", "Caddy")


# --- body limits ----------------------------------------------------------------------------------


# Engine.IO noop packets: a payload every server accepts, whatever its size.
def noops(size: int) -> bytes:
    return (b"6\x1e" * (size // 2 + 1))[: size - 1] + b"6"


EXPECTED_413 = {
    BalancerKind.NGINX: ("<html>\r\n<head><title>413 Request Entity Too Large</title></head>", NGINX_SERVER),
    BalancerKind.HAPROXY: ("<html><body><h1>413 Payload Too Large</h1>", None),
    BalancerKind.CADDY: ("", "Caddy"),
}


@pytest.mark.parametrize("kind", LIMITED)
def test_a_polling_post_over_the_body_limit_gets_the_balancers_413(
    wire_labs: dict[object, LabInfo], kind: BalancerKind
) -> None:
    """FACTS.md 4.2 (nginx ``client_max_body_size``): 413 from the balancer itself, before the
    backend sees the body; a body at the limit passes."""
    lab = wire_labs[kind]
    page, server = EXPECTED_413[kind]
    with http(lab) as client:
        _, sid = polling_open(client, lab.lb)
        params = {"EIO": "4", "transport": "polling", "sid": sid}
        at_limit = client.post(lab.lb + "/socket.io/", params=params, content=noops(LIMIT))
        assert (at_limit.status_code, at_limit.text) == (200, "OK")
        over = client.post(lab.lb + "/socket.io/", params=params, content=noops(LIMIT + 1))
    assert over.status_code == 413
    assert over.text.startswith(page)
    assert over.headers.get("server") == server
    assert BACKEND_HEADER not in over.headers  # the backend never saw it


# --- HAProxy's cookie ------------------------------------------------------------------------------


@pytest.mark.parametrize("keep_cookies", [True, False], ids=["browser", "node-client"])
def test_haproxy_cookie_stickiness_holds_only_with_the_cookie(
    wire_labs: dict[object, LabInfo], keep_cookies: bool
) -> None:
    lab = wire_labs[BalancerKind.HAPROXY]
    with http(lab) as client:
        opened, sid = polling_open(client, lab.lb)
        opener = opened.headers[BACKEND_HEADER]
        assert opened.headers["set-cookie"].startswith(f"lb={opener}")
        answers = []
        for _ in range(12):
            if not keep_cookies:
                client.cookies.clear()
            response = polling_follow_up(client, lab.lb, sid)
            answers.append((response.status_code, response.headers[BACKEND_HEADER]))
    if keep_cookies:
        assert answers == [(200, opener)] * 12
    else:  # round robin underneath: two of three follow-ups reach a backend without the sid
        assert sum(status == 400 for status, _ in answers) == 8
