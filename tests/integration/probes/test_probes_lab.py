"""Each probe's outcome against each lab scenario, over real TLS on loopback."""

from __future__ import annotations

import json

import pytest

from kiloscribe_lab.details import DETAIL_SHAPES, shape_problems
from kiloscribe_lab.lab.scenarios import LAB_PING_INTERVAL_MS, PING_TIMEOUT_MS
from kiloscribe_lab.names import Outcome, ProbeName
from kiloscribe_lab.results import ProbeResult
from tests.integration.conftest import InvestigationGetter

pytestmark = pytest.mark.timeout(90)


def pick(results: list[ProbeResult], label: str, probe: str, variant: str = "") -> ProbeResult:
    found = [
        r for r in results if r.detail.get("label") == label and r.probe == probe and r.variant == variant
    ]
    assert len(found) == 1, (label, probe, variant, len(found))
    return found[0]


def test_every_result_is_bounded_and_well_formed(investigation: InvestigationGetter) -> None:
    for scenario in ("healthy", "incident"):
        for r in investigation(scenario):
            assert r.timings.total is not None and r.timings.total >= 0
            assert isinstance(r.outcome, Outcome)
            # a phase that did not happen is null, never 0
            for phase in ("dns", "connect", "tls", "first_byte", "handshake"):
                value = getattr(r.timings, phase)
                assert value is None or value > 0, (r.ref, phase, value)


def test_every_detail_fits_the_shape_its_probe_declares(investigation: InvestigationGetter) -> None:
    for scenario in ("healthy", "incident", "edge-blocks-websocket", "cookie-sticky", "slow-backend"):
        for r in investigation(scenario):
            # read back as a reader of the JSON record would see it
            detail = json.loads(json.dumps(dict(r.detail)))
            assert shape_problems(detail, DETAIL_SHAPES[ProbeName(r.probe)], r.ref) == []


def test_backends_root_answers_308_with_its_location(investigation: InvestigationGetter) -> None:
    results = investigation("incident")
    for variant in ("http1.1", "h2"):
        r = pick(results, "inscribe-1", ProbeName.HTTP_UPGRADE, variant)
        assert r.outcome is Outcome.REDIRECT and r.status == 308
        assert r.headers["location"] == "/api/health"
    h1 = pick(results, "inscribe-1", ProbeName.HTTP_UPGRADE, "http1.1")
    assert h1.detail["redirects"][0] == {"url": h1.target, "status": 308, "location": "/api/health"}
    assert "curl -i -N --http1.1" in h1.detail["command"]


def test_http2_says_what_it_did_with_the_upgrade(investigation: InvestigationGetter) -> None:
    r = pick(investigation("healthy"), "inscribe-1", ProbeName.HTTP_UPGRADE, "h2")
    assert r.detail["alpn"] == "h2"
    assert r.detail["enable_connect_protocol"] is False
    assert "forbidden in HTTP/2" in r.detail["upgrade_headers"]


def test_plain_websocket_fails_where_socketio_works(investigation: InvestigationGetter) -> None:
    results = investigation("incident")
    plain = pick(results, "inscribe-1", ProbeName.WEBSOCKET_PLAIN, "as-given")
    assert plain.outcome is Outcome.REDIRECT and plain.error == "Unexpected server response: 308"
    engineio_ws = pick(results, "inscribe-1", ProbeName.WEBSOCKET_PLAIN, "socket.io")
    assert engineio_ws.outcome is Outcome.OK
    assert engineio_ws.detail["first_frame"].startswith("0{")
    assert engineio_ws.detail["engineio_open"]["pingInterval"] == LAB_PING_INTERVAL_MS  # the lab beats fast
    for transport in ("websocket", "polling"):
        assert pick(results, "inscribe-1", ProbeName.SOCKETIO_CONNECT, f"{transport}:valid").ok


def test_incident_inscribe_2_is_upstream_error_everywhere(investigation: InvestigationGetter) -> None:
    rs = [r for r in investigation("incident") if r.detail.get("label") == "inscribe-2"]
    assert rs and all(r.outcome is Outcome.UPSTREAM_ERROR for r in rs), {r.ref: r.outcome for r in rs}
    assert all(r.status == 502 for r in rs if r.status is not None)


def test_engineio_handshake_parses_the_open_packet(investigation: InvestigationGetter) -> None:
    r = pick(investigation("healthy"), "inscribe-2", ProbeName.ENGINEIO_HANDSHAKE)
    assert r.outcome is Outcome.OK
    assert r.detail["engineio_version"] == 4
    assert r.detail["upgrades"] == ["websocket"]
    assert (r.detail["pingInterval"], r.detail["pingTimeout"]) == (LAB_PING_INTERVAL_MS, PING_TIMEOUT_MS)
    assert r.detail["maxPayload"] == 1_000_000
    assert r.detail["eio3"].startswith("refused: HTTP/1.1 400")


def test_engineio_upgrade_works_on_a_sticky_lb(investigation: InvestigationGetter) -> None:
    r = pick(investigation("healthy"), "lb", ProbeName.ENGINEIO_UPGRADE)
    assert r.outcome is Outcome.OK and r.detail["stuck_in_polling"] is False
    assert r.detail["probe_answer"] == "3probe"


def test_engineio_upgrade_blocked_at_the_edge(investigation: InvestigationGetter) -> None:
    results = investigation("edge-blocks-websocket")
    edge = pick(results, "edge", ProbeName.ENGINEIO_UPGRADE)
    assert edge.outcome is Outcome.BLOCKED and edge.detail["stuck_in_polling"] is True
    assert edge.status == 403 and edge.headers["server"] == "cloudflare"
    assert pick(results, "lb", ProbeName.ENGINEIO_UPGRADE).ok
    for credential in ("valid", "invalid"):
        assert (
            pick(results, "edge", ProbeName.SOCKETIO_CONNECT, f"websocket:{credential}").outcome
            is Outcome.BLOCKED
        )
        assert (
            pick(results, "edge", ProbeName.SOCKETIO_CONNECT, "polling:invalid").outcome
            is Outcome.AUTH_REJECTED
        )
    assert pick(results, "edge", ProbeName.SOCKETIO_CONNECT, "polling:valid").ok


@pytest.mark.parametrize("transport", ["websocket", "polling"])
def test_wrong_key_is_auth_rejected_with_the_servers_message(
    investigation: InvestigationGetter, transport: str
) -> None:
    for credential in ("invalid", "none"):
        r = pick(investigation("healthy"), "edge", ProbeName.SOCKETIO_CONNECT, f"{transport}:{credential}")
        assert r.outcome is Outcome.AUTH_REJECTED
        assert r.error == "Invalid API key" and r.detail["server_message"] == "Invalid API key"


def test_auth_broken_refuses_the_valid_key(investigation: InvestigationGetter) -> None:
    results = investigation("auth-broken")
    for transport in ("websocket", "polling"):
        assert (
            pick(results, "lb", ProbeName.SOCKETIO_CONNECT, f"{transport}:valid").outcome
            is Outcome.AUTH_REJECTED
        )
    flow = pick(results, "lb", ProbeName.SDK_FLOW)
    assert flow.outcome is Outcome.AUTH_REJECTED
    assert flow.detail["sdk_message"] == "WebSocket connection failed: Invalid API key"


def test_sticky_sessions_lost_in_incident(investigation: InvestigationGetter) -> None:
    results = investigation("incident")
    for variant in ("cookies", "no-cookies"):
        r = pick(results, "lb", ProbeName.STICKY_SESSION, variant)
        # Round robin: follow-ups reach other backends (400 Invalid session) or the dead one (502)
        assert r.detail["moved"] >= 1, r.detail["answers"]
        lost = [a for a in r.detail["answers"] if a["session_unknown"]]
        assert all(a["backend"] != r.detail["opener"] for a in lost)
        assert all(a["backend"] == r.detail["opener"] for a in r.detail["answers"] if a["status"] == 200)


def test_sticky_sessions_hold_in_healthy(investigation: InvestigationGetter) -> None:
    for variant in ("cookies", "no-cookies"):
        r = pick(investigation("healthy"), "lb", ProbeName.STICKY_SESSION, variant)
        assert r.outcome is Outcome.OK
        assert r.detail["answered"] == r.detail["follow_ups"] > 0
        assert r.detail["backends"] == [r.detail["opener"]]


def test_cookie_sticky_holds_only_with_the_cookie(investigation: InvestigationGetter) -> None:
    results = investigation("cookie-sticky")
    with_cookie = pick(results, "lb", ProbeName.STICKY_SESSION, "cookies")
    without = pick(results, "lb", ProbeName.STICKY_SESSION, "no-cookies")
    assert with_cookie.outcome is Outcome.OK
    assert with_cookie.detail["cookie_names"] == ["lb"]
    assert without.outcome is Outcome.SESSION_UNKNOWN


def test_slow_backend_times_out_within_its_deadline(investigation: InvestigationGetter) -> None:
    from tests.integration.conftest import PROBE_TIMEOUT_S

    rs = [r for r in investigation("slow-backend") if r.detail.get("label") == "inscribe-3"]
    assert rs and all(r.outcome is Outcome.TIMEOUT for r in rs), {r.ref: r.outcome for r in rs}
    for r in rs:
        # TCP and TLS to Caddy worked: the stall is behind it (aiohttp times them together)
        assert r.timings.tls is not None or r.timings.connect is not None, r.ref
        assert r.timings.total is not None and r.timings.total < PROBE_TIMEOUT_S * 1000 + 500


def test_discovery_lists_the_edge(investigation: InvestigationGetter) -> None:
    results = investigation("healthy")
    [found] = [r for r in results if r.probe == ProbeName.DISCOVERY]
    assert found.outcome is Outcome.OK and found.status == 200
    assert found.detail["problems"] == []
    [server] = found.detail["servers"]
    assert server["status"] == "active" and server["url"].startswith("wss://127.0.0.1:")
    assert found.detail["chosen"] == server["url"]
    # the discovered server is the edge (wss:// of the same origin): probed once, not twice
    [edge_handshake] = [
        r
        for r in results
        if r.probe == ProbeName.ENGINEIO_HANDSHAKE
        and r.target.split("://")[1] == server["url"].split("://")[1]
    ]
    assert edge_handshake.detail["label"] == "edge"


def test_sdk_flow_reaches_inscription_events(investigation: InvestigationGetter) -> None:
    r = pick(investigation("healthy"), "edge", ProbeName.SDK_FLOW)
    assert r.outcome is Outcome.OK, r.error
    steps = {s["step"]: s for s in r.detail["steps"]}
    assert steps["detectBestConnection"]["result"] == "websocket"
    assert steps["start-inscription"]["ack_success"] is True
    assert "inscription-progress" in steps["start-inscription"]["events"]


def test_the_key_value_is_in_no_result(investigation: InvestigationGetter, lab_key: str) -> None:
    from kiloscribe_lab.results import write_jsonl

    for scenario in ("healthy", "incident", "auth-broken"):
        assert lab_key not in write_jsonl(investigation(scenario))
