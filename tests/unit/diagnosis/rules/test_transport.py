"""Transport rules: WebSocket refused on the way (at the edge, on one network), polling
sessions that lose their backend, networks that time out."""

from __future__ import annotations

from typing import Any

from kiloscribe_lab.diagnosis import diagnose
from kiloscribe_lab.diagnosis.rules.transport import (
    network_timeouts,
    sticky_sessions_cookie_only,
    sticky_sessions_missing,
    websocket_blocked,
)
from kiloscribe_lab.names import FindingId, Outcome, ProbeName, Severity
from kiloscribe_lab.results import ProbeResult, Timings, replace
from tests.unit.diagnosis.helpers import EDGE, LB, A, B, failing, fire, ids, pr, quiet, working, ws_blocked

# sticky sessions


def _sticky(
    target: str, cookies: Outcome, no_cookies: Outcome, *, network: str = "direct", **detail: Any
) -> list[ProbeResult]:
    # The no-cookie jar loses more sessions (3 of 6) than the one that returns cookies (2 of 6).
    return [
        pr(
            ProbeName.STICKY_SESSION,
            variant,
            target,
            outcome,
            200,
            network=network,
            follow_ups=6,
            session_unknown=lost if outcome is Outcome.SESSION_UNKNOWN else 0,
            moved=lost if outcome is Outcome.SESSION_UNKNOWN else 0,
            answered=6,
            **detail,
        )
        for variant, outcome, lost in (("cookies", cookies, 2), ("no-cookies", no_cookies, 3))
    ]


def test_sticky_missing_when_the_cookie_client_loses_its_session() -> None:
    results = working(LB, label="lb") + _sticky(LB, Outcome.SESSION_UNKNOWN, Outcome.SESSION_UNKNOWN)
    f = fire(sticky_sessions_missing, results)
    quiet(sticky_sessions_cookie_only, results)
    assert f.id == FindingId.STICKY_SESSIONS_MISSING
    assert f.severity is Severity.WARNING  # WebSocket still works here
    assert f.targets == (LB,)
    assert "lb" in f.title
    assert "5 of 12" in f.summary
    assert "ip_hash" in f.recommendation


def test_sticky_missing_is_critical_when_websocket_fails_everywhere_and_polling_works() -> None:
    results = [
        pr(ProbeName.WEBSOCKET_PLAIN, "socket.io", LB, "blocked", 403),
        pr(ProbeName.ENGINEIO_UPGRADE, "", LB, "blocked", 403),
        pr(ProbeName.SOCKETIO_CONNECT, "websocket:valid", LB, "blocked", 403),
        pr(ProbeName.ENGINEIO_HANDSHAKE, "", LB, "ok", 200),
        pr(ProbeName.SOCKETIO_CONNECT, "polling:valid", LB, "ok", 200),
        *_sticky(LB, Outcome.SESSION_UNKNOWN, Outcome.OK),
    ]
    f = fire(sticky_sessions_missing, results)
    quiet(sticky_sessions_cookie_only, results)
    assert f.id == FindingId.STICKY_SESSIONS_MISSING
    assert f.severity is Severity.CRITICAL
    assert "only transport" in f.summary


def test_sticky_cookie_only_when_only_the_cookieless_client_loses_it() -> None:
    results = working(LB) + _sticky(LB, Outcome.OK, Outcome.SESSION_UNKNOWN, cookie_names=["lb_sticky"])
    f = fire(sticky_sessions_cookie_only, results)
    quiet(sticky_sessions_missing, results)
    assert f.id == FindingId.STICKY_SESSIONS_COOKIE_ONLY
    assert f.severity is Severity.WARNING
    assert f.targets == (LB,)
    assert "lb_sticky" in f.summary


def test_sticky_quiet_when_both_clients_keep_their_session() -> None:
    results = working(LB) + _sticky(LB, Outcome.OK, Outcome.OK)
    quiet(sticky_sessions_missing, results)
    quiet(sticky_sessions_cookie_only, results)


def test_sticky_missing_on_one_balancer_supersedes_cookie_only_on_another() -> None:
    """One rule each, and the diagnosis reports the one fix (ip_hash) once: as before the split."""
    results = (
        working(LB)
        + _sticky(LB, Outcome.SESSION_UNKNOWN, Outcome.SESSION_UNKNOWN)
        + working(EDGE)
        + _sticky(EDGE, Outcome.OK, Outcome.SESSION_UNKNOWN)
    )
    assert fire(sticky_sessions_missing, results).targets == (LB,)
    assert fire(sticky_sessions_cookie_only, results).targets == (EDGE,)
    found = ids(diagnose(results))
    assert FindingId.STICKY_SESSIONS_MISSING in found
    assert FindingId.STICKY_SESSIONS_COOKIE_ONLY not in found


def test_sticky_missing_when_the_cookieless_client_loses_it_and_cookies_do_not_help() -> None:
    """Cookie-only stickiness needs proof that the cookie helps: a failing cookie client is none."""
    results = working(LB) + _sticky(LB, Outcome.UPSTREAM_ERROR, Outcome.SESSION_UNKNOWN)
    f = fire(sticky_sessions_missing, results)
    quiet(sticky_sessions_cookie_only, results)
    assert f.id == FindingId.STICKY_SESSIONS_MISSING


def test_sticky_moved_counts_even_without_session_unknown() -> None:
    """A follow-up answered by another backend (or a dead one's 502) is a lost session too."""
    results = [
        *working(LB),
        pr(ProbeName.STICKY_SESSION, "cookies", LB, "upstream_error", 200, follow_ups=6, moved=2, answered=4),
        pr(
            ProbeName.STICKY_SESSION,
            "no-cookies",
            LB,
            "upstream_error",
            200,
            follow_ups=6,
            moved=4,
            answered=2,
        ),
    ]
    f = fire(sticky_sessions_missing, results)
    quiet(sticky_sessions_cookie_only, results)
    assert f.id == FindingId.STICKY_SESSIONS_MISSING
    assert "6 of 12" in f.summary


# websocket-blocked


def test_websocket_blocked_at_the_cdn_edge_is_critical() -> None:
    results = ws_blocked(EDGE, headers={"cf-ray": "8f-AMS", "server": "cloudflare"}) + working(A)
    f = fire(websocket_blocked, results)
    assert f.severity is Severity.CRITICAL
    assert f.targets == (EDGE,)
    assert "CDN edge" in f.title
    assert "403" in f.summary
    assert "Cloudflare" in f.recommendation
    assert all(EDGE in ref for ref in f.evidence)


def test_websocket_blocked_by_a_plain_proxy() -> None:
    f = fire(websocket_blocked, ws_blocked(EDGE))
    assert "a proxy in front of" in f.title
    assert "Upgrade/Connection" in f.recommendation


def test_websocket_blocked_on_one_network_only_is_a_warning() -> None:
    results = working(A, network="direct") + ws_blocked(A, network="corp")
    f = fire(websocket_blocked, results)
    assert f.severity is Severity.WARNING
    assert "only on network(s) corp" in f.title
    assert all(ref.endswith("#corp") for ref in f.evidence)


def test_websocket_blocked_quiet_when_websocket_fails_for_another_reason() -> None:
    results = [
        pr(ProbeName.ENGINEIO_UPGRADE, "", LB, "upstream_error", 502),
        pr(ProbeName.SOCKETIO_CONNECT, "websocket:valid", LB, "upstream_error", 502),
        pr(ProbeName.SOCKETIO_CONNECT, "polling:valid", LB, "ok", 200),
    ]
    quiet(websocket_blocked, results)


def test_websocket_blocked_quiet_when_polling_fails_too() -> None:
    results = [
        pr(ProbeName.ENGINEIO_UPGRADE, "", LB, "blocked", 403),
        pr(ProbeName.SOCKETIO_CONNECT, "polling:valid", LB, "timeout"),
        pr(ProbeName.ENGINEIO_HANDSHAKE, "", LB, "ok", 200),
    ]
    quiet(websocket_blocked, results)


# network-timeouts


def test_network_timeouts_when_one_network_times_out_and_another_works() -> None:
    results = working(A) + working(B) + failing(A, Outcome.TIMEOUT, network="vpn") + working(B, network="vpn")
    f = fire(network_timeouts, results)
    assert f.severity is Severity.WARNING
    assert "vpn" in f.title and "direct" not in f.title
    assert f.targets == (A,)
    assert all(ref.endswith("#vpn") for ref in f.evidence)


def test_network_timeouts_needs_two_networks() -> None:
    results = working(A)[:3] + failing(A, Outcome.TIMEOUT)[3:]
    quiet(network_timeouts, results)


def test_network_timeouts_quiet_when_every_network_times_out() -> None:
    results = failing(A, Outcome.TIMEOUT) + failing(A, Outcome.TIMEOUT, network="vpn")
    quiet(network_timeouts, results)


# --- the rules that compare networks, on evidence shaped like the lab networks' ----------
# (corporate-proxy refuses every upgrade itself; mobile is slow)

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
    f = fire(websocket_blocked, direct + through)
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
    f = fire(websocket_blocked, direct + through)
    assert f.targets == (A,)


def test_blocked_everywhere_is_still_the_edge_not_a_network() -> None:
    results = corporate(A) + [replace(r, network="direct") for r in corporate(A)]
    f = fire(websocket_blocked, results)
    assert f.severity is Severity.CRITICAL and "only on network" not in f.title


def test_network_timeouts_says_the_deadline_the_phases_and_the_round_trips() -> None:
    direct = with_tls(working(A), 2.0)
    mobile = with_tls(
        failing(A, Outcome.TIMEOUT, network="mobile", stalled_during="socket.io connect (websocket)"), 152.0
    )
    mobile = [replace(r, error="no answer within 1 s (while socket.io connect (websocket))") for r in mobile]
    f = fire(network_timeouts, direct + mobile)
    assert f.title == "Timeouts on network(s) mobile only: the client's network, not the service"
    assert "(deadline 1 s)" in f.summary
    assert "waiting in: socket.io connect (websocket)" in f.summary
    assert "152 ms on mobile, 2 ms on direct" in f.summary
    assert "round trips" in f.recommendation
    assert FindingId.NETWORK_TIMEOUTS in ids(diagnose(direct + mobile))


def test_network_timeouts_without_timings_still_fires() -> None:
    results = working(A) + failing(A, Outcome.TIMEOUT, network="mobile")
    f = fire(network_timeouts, results)
    assert "Round trip" not in f.summary and "deadline" not in f.summary
    quiet(network_timeouts, failing(A, Outcome.TIMEOUT, network="mobile"))
