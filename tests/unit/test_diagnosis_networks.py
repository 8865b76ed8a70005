"""The two rules that compare networks (websocket-blocked on one network, network-timeouts),
on synthetic evidence shaped like the lab networks' (corporate-proxy, mobile)."""

from __future__ import annotations

from kiloscribe_lab.diagnosis import diagnose, rule_network_timeouts, rule_websocket_blocked
from kiloscribe_lab.names import FindingId, Outcome, ProbeName, Severity
from kiloscribe_lab.results import ProbeResult, Timings, replace
from tests.unit.test_diagnosis import LB, A, B, ev, failing, fire, ids, pr, working

VIA = {"via": "1.1 corporate-proxy (kiloscribe-lab)", "server": "corporate-proxy"}


def corporate(target: str, *, polling: Outcome = Outcome.OK, status: int = 200) -> list[ProbeResult]:
    """Through a proxy that refuses every WebSocket upgrade itself, before the origin."""
    net = "corporate-proxy"
    return [
        pr(ProbeName.WEBSOCKET_PLAIN, "socket.io", target, "blocked", 403, network=net, headers=VIA),
        pr(ProbeName.ENGINEIO_UPGRADE, "", target, "blocked", 403, network=net, headers=VIA),
        pr(ProbeName.SOCKETIO_CONNECT, "websocket:valid", target, "blocked", 403, network=net, headers=VIA),
        pr(ProbeName.SDK_FLOW, "", target, "blocked", 403, network=net, headers=VIA),
        pr(ProbeName.ENGINEIO_HANDSHAKE, "", target, polling, status, network=net),
        pr(ProbeName.SOCKETIO_CONNECT, "polling:valid", target, polling, status, network=net),
    ]


def with_tls(results: list[ProbeResult], tls_ms: float) -> list[ProbeResult]:
    return [replace(r, timings=Timings(connect=tls_ms, tls=tls_ms, total=3 * tls_ms)) for r in results]


def test_blocked_on_a_network_while_the_balancer_also_fails_some_requests() -> None:
    """incident's balancer: direct, some requests 502 (PARTIAL) but WebSocket works; through
    the corporate proxy every upgrade is refused. The target is named, on that network."""
    refused = pr(ProbeName.SOCKETIO_CONNECT, "polling:invalid", LB, "upstream_error", 502)
    direct = [*working(LB), refused]
    through = [*corporate(LB), replace(refused, network="corporate-proxy")]
    f = fire(rule_websocket_blocked, direct + through)
    assert f.severity is Severity.WARNING
    assert f.title == "WebSocket is blocked only on network(s) corporate-proxy"
    assert f.targets == (LB,)
    assert all(ref.endswith("#corporate-proxy") for ref in f.evidence)
    assert "from direct" in f.summary and "via 1.1 corporate-proxy (kiloscribe-lab)" in f.summary
    assert "not the service" in f.summary
    for remedy in ("transports: ['polling']", "tryAllTransports: true", "WSS on 443", "administrators"):
        assert remedy in f.recommendation


def test_a_target_down_behind_the_blocking_proxy_is_not_called_blocked() -> None:
    """inscribe-2 down: its polling fails through the proxy too, so nothing says WebSocket
    is the problem there; only the target that works elsewhere is named."""
    direct = working(A) + failing(B, Outcome.UPSTREAM_ERROR, 502)
    through = corporate(A) + corporate(B, polling=Outcome.UPSTREAM_ERROR, status=502)
    f = fire(rule_websocket_blocked, direct + through)
    assert f.targets == (A,)


def test_blocked_everywhere_is_still_the_edge_not_a_network() -> None:
    results = corporate(A) + [replace(r, network="direct") for r in corporate(A)]
    f = fire(rule_websocket_blocked, results)
    assert f.severity is Severity.CRITICAL and "only on network" not in f.title


def test_network_timeouts_says_the_deadline_the_phases_and_the_round_trips() -> None:
    direct = with_tls(working(A), 2.0)
    mobile = with_tls(
        failing(A, Outcome.TIMEOUT, network="mobile", stalled_during="socket.io connect (websocket)"), 152.0
    )
    mobile = [replace(r, error="no answer within 1 s (while socket.io connect (websocket))") for r in mobile]
    f = fire(rule_network_timeouts, direct + mobile)
    assert f.title == "Timeouts on network(s) mobile only: the client's network, not the service"
    assert "(deadline 1 s)" in f.summary
    assert "waiting in: socket.io connect (websocket)" in f.summary
    assert "152 ms on mobile, 2 ms on direct" in f.summary
    assert "round trips" in f.recommendation
    assert FindingId.NETWORK_TIMEOUTS in ids(diagnose(direct + mobile))


def test_network_timeouts_without_timings_still_fires() -> None:
    results = working(A) + failing(A, Outcome.TIMEOUT, network="mobile")
    f = fire(rule_network_timeouts, results)
    assert "Round trip" not in f.summary and "deadline" not in f.summary
    assert rule_network_timeouts(ev(failing(A, Outcome.TIMEOUT, network="mobile"))) is None
