"""The lab behaves as each scenario promises, seen by real clients over loopback TLS."""

from __future__ import annotations

import httpx
import pytest

from kiloscribe_lab.lab import fleet
from kiloscribe_lab.lab.backend_config import BACKEND_HEADER
from tests.integration.clients import http, polling_follow_up, polling_open, sio_session
from tests.integration.conftest import LabGetter

pytestmark = pytest.mark.timeout(60)

FOLLOW_UPS = 12  # P(all land on the opener by chance) = (1/3)**12 without stickiness


@pytest.mark.parametrize("transport", ["websocket", "polling"])
@pytest.mark.parametrize("site", ["edge", "lb"])
async def test_valid_key_connects_through_edge_and_lb(
    labs: LabGetter, lab_key: str, site: str, transport: str
) -> None:
    lab = labs("healthy")
    url = lab.edge if site == "edge" else lab.lb
    outcome = await sio_session(url, str(lab.ca_bundle), lab_key, transport)
    assert outcome.connected, outcome
    assert outcome.transport == transport


@pytest.mark.parametrize("transport", ["websocket", "polling"])
async def test_wrong_key_is_refused_with_invalid_api_key(labs: LabGetter, transport: str) -> None:
    lab = labs("healthy")
    outcome = await sio_session(lab.edge, str(lab.ca_bundle), "not-the-key", transport)
    assert not outcome.connected
    assert outcome.connect_error == {"message": "Invalid API key"}


async def test_missing_auth_is_refused(labs: LabGetter) -> None:
    lab = labs("healthy")
    outcome = await sio_session(lab.lb, str(lab.ca_bundle), None, "websocket")
    assert outcome.connect_error == {"message": "Invalid API key"}


async def test_start_inscription_ack_progress_and_complete(labs: LabGetter, lab_key: str) -> None:
    lab = labs("healthy")
    outcome = await sio_session(lab.edge, str(lab.ca_bundle), lab_key, "websocket", start_inscription=True)
    assert outcome.connected, outcome
    ack = outcome.ack
    assert ack["success"] is True
    assert ack["transactionBytes"] and ack["jobId"] and ack["tx_id"].startswith("0.0.1234@")
    names = [name for name, _ in outcome.events]
    assert names[-1] == "inscription-complete"
    progress = [data for name, data in outcome.events if name == "inscription-progress"]
    assert [p["progress"] for p in progress] == [25, 50, 75, 100]
    assert all(p["jobId"] == ack["jobId"] and p["topicId"] for p in progress)
    assert outcome.events[-1][1]["topicId"] == progress[-1]["topicId"]


@pytest.mark.parametrize("http2", [False, True], ids=["http1.1", "h2"])
def test_incident_inscribe_2_answers_502(labs: LabGetter, http2: bool) -> None:
    lab = labs("incident")
    with http(lab, http2=http2) as client:
        response = client.get(
            lab.backend_url("inscribe-2") + "/socket.io/", params={"EIO": "4", "transport": "polling"}
        )
        assert response.status_code == 502
        assert response.http_version == ("HTTP/2" if http2 else "HTTP/1.1")
        ok = client.get(lab.backend_url("inscribe-1") + "/api/health")
        assert ok.status_code == 200 and ok.headers[BACKEND_HEADER] == "inscribe-1"


def test_incident_lb_sends_a_share_of_requests_to_the_dead_backend(labs: LabGetter) -> None:
    lab = labs("incident")
    with http(lab) as client:
        statuses = [client.get(lab.lb + "/api/health").status_code for _ in range(9)]
    # Round robin over three upstreams, one dead: a third of requests fail.
    assert statuses.count(502) == 3
    assert statuses.count(200) == 6


def test_incident_root_redirects_with_308(labs: LabGetter) -> None:
    lab = labs("incident")
    with http(lab) as client:
        response = client.get(lab.backend_url("inscribe-1") + "/")
    assert response.status_code == 308
    assert response.headers["location"] == "/api/health"


def test_edge_carries_cdn_fingerprint(labs: LabGetter) -> None:
    lab = labs("healthy")
    with http(lab, http2=True) as client:
        response = client.get(lab.edge + "/api/health")
    assert response.status_code == 200
    assert response.headers["server"] == "cloudflare"
    assert response.headers["cf-cache-status"] == "BYPASS"
    assert response.headers["cf-ray"]
    assert response.http_version == "HTTP/2"


def _sticky_run(lab: fleet.LabInfo, *, keep_cookies: bool) -> tuple[str, list[tuple[int, str]]]:
    """Open a polling session on the LB, then send follow-ups on it; who answered each?"""
    lab_url = lab.lb
    with http(lab) as client:
        opened, sid = polling_open(client, lab_url)
        opener = opened.headers[BACKEND_HEADER]
        answers = []
        for _ in range(FOLLOW_UPS):
            if not keep_cookies:
                client.cookies.clear()
            response = polling_follow_up(client, lab_url, sid)
            answers.append((response.status_code, response.headers.get(BACKEND_HEADER, "")))
    return opener, answers


def test_incident_polling_session_is_refused_by_other_backends(labs: LabGetter) -> None:
    lab = labs("incident")
    opener, answers = _sticky_run(lab, keep_cookies=True)
    refused = [(status, backend) for status, backend in answers if status != 200]
    assert refused, "round robin without stickiness must lose the session"
    for status, backend in refused:
        # 400 from a live backend that did not open the session, or 502 from the dead one
        assert (status == 400 and backend not in {"", opener}) or status == 502
    assert all(backend == opener for status, backend in answers if status == 200)


def test_healthy_polling_session_stays_on_one_backend(labs: LabGetter) -> None:
    lab = labs("healthy")
    opener, answers = _sticky_run(lab, keep_cookies=False)
    assert answers == [(200, opener)] * FOLLOW_UPS


@pytest.mark.parametrize("keep_cookies", [True, False], ids=["browser", "node-client"])
def test_cookie_sticky_holds_only_with_the_cookie(labs: LabGetter, keep_cookies: bool) -> None:
    lab = labs("cookie-sticky")
    opener, answers = _sticky_run(lab, keep_cookies=keep_cookies)
    if keep_cookies:
        assert answers == [(200, opener)] * FOLLOW_UPS
    else:
        assert any(status == 400 for status, _ in answers)


def test_cookie_sticky_sets_the_balancer_cookie(labs: LabGetter) -> None:
    lab = labs("cookie-sticky")
    with http(lab) as client:
        response, _ = polling_open(client, lab.lb)
    assert "lb=" in response.headers["set-cookie"]


UPGRADE_HEADERS = {
    "Connection": "Upgrade",
    "Upgrade": "websocket",
    "Sec-WebSocket-Version": "13",
    "Sec-WebSocket-Key": "x3JJHMbDL1EzLkh9GBhXDw==",
}


def test_edge_refuses_upgrade_while_lb_accepts(labs: LabGetter, lab_key: str) -> None:
    lab = labs("edge-blocks-websocket")
    with http(lab) as client:
        params = {"EIO": "4", "transport": "websocket"}
        with client.stream("GET", lab.edge + "/socket.io/", params=params, headers=UPGRADE_HEADERS) as edge:
            assert edge.status_code == 403
            assert edge.headers["server"] == "cloudflare"
        with client.stream("GET", lab.lb + "/socket.io/", params=params, headers=UPGRADE_HEADERS) as lb:
            assert lb.status_code == 101
        # polling still works through the edge
        response, _ = polling_open(client, lab.edge)
        assert response.status_code == 200


@pytest.mark.parametrize(
    ("connection", "upgrade"),
    [
        ("upgrade", "websocket"),  # Node's built-in WebSocket (undici)
        ("keep-alive, Upgrade", "websocket"),  # Firefox
        ("UPGRADE", "WebSocket"),
    ],
)
def test_edge_refuses_an_upgrade_whatever_the_headers_case(
    labs: LabGetter, connection: str, upgrade: str
) -> None:
    """A CDN matches upgrade headers without regard to case; the lab's edge does too (its
    first matcher, Caddy's case-sensitive ``header Connection *Upgrade*``, let these through)."""
    lab = labs("edge-blocks-websocket")
    headers = {**UPGRADE_HEADERS, "Connection": connection, "Upgrade": upgrade}
    params = {"EIO": "4", "transport": "websocket"}
    with http(lab) as client:
        with client.stream("GET", lab.edge + "/socket.io/", params=params, headers=headers) as edge:
            assert edge.status_code == 403
            assert edge.headers["server"] == "cloudflare"
        with client.stream("GET", lab.lb + "/socket.io/", params=params, headers=headers) as lb:
            assert lb.status_code == 101  # the same request is a valid upgrade behind the edge


async def test_edge_blocks_socketio_websocket_but_not_polling(labs: LabGetter, lab_key: str) -> None:
    lab = labs("edge-blocks-websocket")
    ws = await sio_session(lab.edge, str(lab.ca_bundle), lab_key, "websocket")
    polling = await sio_session(lab.edge, str(lab.ca_bundle), lab_key, "polling")
    assert not ws.connected
    assert polling.connected, polling


def test_slow_backend_stalls_inscribe_3(labs: LabGetter) -> None:
    lab = labs("slow-backend")
    with http(lab, timeout=1.0) as client:
        with pytest.raises(httpx.ReadTimeout):
            client.get(
                lab.backend_url("inscribe-3") + "/socket.io/", params={"EIO": "4", "transport": "polling"}
            )
        assert client.get(lab.backend_url("inscribe-1") + "/api/health").status_code == 200
        # Stalled, not dead: the process answers its own health check.
        assert client.get(lab.upstream_url("inscribe-3") + "/api/health").status_code == 200


async def test_auth_broken_refuses_the_valid_key(labs: LabGetter, lab_key: str) -> None:
    lab = labs("auth-broken")
    outcome = await sio_session(lab.edge, str(lab.ca_bundle), lab_key, "websocket")
    assert outcome.connect_error == {"message": "Invalid API key"}


def test_all_down_every_site_answers_502(labs: LabGetter) -> None:
    lab = labs("all-down")
    with http(lab) as client:
        for url in lab.targets():
            assert client.get(url + "/api/health").status_code == 502, url
