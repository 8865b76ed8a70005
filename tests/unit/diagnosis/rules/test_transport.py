"""Transport rules: WebSocket refused on the way (at the edge, on one network), polling
sessions that lose their backend, networks that time out."""

from __future__ import annotations

from typing import Any

import pytest

from kiloscribe_lab.diagnosis import diagnose
from kiloscribe_lab.diagnosis.rules.transport import (
    network_timeouts,
    polling_disabled,
    sticky_sessions_cookie_only,
    sticky_sessions_missing,
    upgrade_headers_dropped,
    websocket_blocked,
    websocket_disabled,
)
from kiloscribe_lab.names import FindingId, Outcome, ProbeName, Severity, Transport
from kiloscribe_lab.results import ProbeResult, Timings, replace
from tests.unit.diagnosis import facts
from tests.unit.diagnosis.helpers import EDGE, LB, A, B, failing, fire, ids, pr, quiet, working, ws_blocked

# sticky sessions


def _sticky(
    target: str, cookies: Outcome, no_cookies: Outcome, *, network: str = "direct", **detail: Any
) -> list[ProbeResult]:
    # The no-cookie jar loses more sessions (3 of 6) than the one that returns cookies (2 of 6);
    # the balancer set its cookie "lb" unless told otherwise.
    detail.setdefault("cookie_names", ["lb"])
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


def test_a_session_kept_without_any_cookie_is_luck_not_cookie_stickiness() -> None:
    """nginx round robin sets no cookie: the client that returns cookies kept its session only
    because the rotation happened to bring its requests back (other clients' requests between)."""
    results = working(LB) + _sticky(LB, Outcome.OK, Outcome.SESSION_UNKNOWN, cookie_names=[])
    assert fire(sticky_sessions_missing, results).targets == (LB,)
    quiet(sticky_sessions_cookie_only, results)


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


# upgrade-headers-dropped: the WebSocket request reached the server as a plain GET (FACTS.md §3.1)


def _behind_nginx_without_upgrade(target: str, body: str, status: int = 400) -> list[ProbeResult]:
    """nginx without proxy_http_version 1.1/Upgrade/Connection, sticky: polling works, every
    WebSocket request is answered by the backend as a plain GET."""
    blocked = Outcome.BLOCKED
    return [
        facts.plain_ws(target, blocked, status, body, facts.NGINX),
        facts.upgrade(target, blocked, status, body, facts.NGINX),
        facts.handshake(target, Outcome.OK, 200, facts.NODE_OPEN, facts.NGINX, engineio_version=4),
        *facts.connects(target, Transport.WEBSOCKET, blocked, status, facts.NGINX),
        *facts.connects(target, Transport.POLLING, Outcome.OK, 200, facts.NGINX),
        *facts.sticky(target, Outcome.OK, headers=facts.NGINX),
    ]


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        (facts.NODE_BAD_REQUEST, 400, "engine.io's own error"),
        (facts.PY_BAD_UPGRADE, 400, "python-engineio's own error"),
        ("<!doctype html><html><head><title>App</title></head></html>", 200, "a page"),
    ],
    ids=["engine.io", "python-engineio", "spa-fallback"],
)
def test_upgrade_headers_dropped_in_either_servers_words(body: str, status: int, words: str) -> None:
    results = _behind_nginx_without_upgrade(LB, body, status)
    f = fire(upgrade_headers_dropped, results)
    assert f.severity is Severity.CRITICAL
    assert words in f.summary and "plain GET" in f.summary
    # nginx's words, and why we believe it is nginx
    assert "proxy_http_version 1.1" in f.recommendation and "map $http_upgrade" in f.recommendation
    assert "looks like nginx: Server: nginx/1.22.1" in f.recommendation
    assert "lb_policy" not in f.recommendation
    # the same evidence is not also "something refuses WebSocket"
    quiet(websocket_blocked, results)
    assert set(ids(diagnose(results))) & {FindingId.WEBSOCKET_BLOCKED, FindingId.WEBSOCKET_DISABLED} == set()


def test_upgrade_headers_dropped_quiet_for_a_refusal_on_the_way() -> None:
    """A 403 from something that refuses the upgrade is websocket-blocked's, never this rule's."""
    results = ws_blocked(EDGE, headers=facts.CLOUDFLARE)
    quiet(upgrade_headers_dropped, results)
    fire(websocket_blocked, results)


def test_upgrade_headers_dropped_quiet_when_websocket_upgrades() -> None:
    quiet(upgrade_headers_dropped, working(A, headers=facts.NGINX))


def test_upgrade_headers_dropped_on_one_network_only_is_a_warning() -> None:
    results = [
        *working(A, network="direct"),
        facts.plain_ws(A, Outcome.BLOCKED, 400, facts.PY_BAD_UPGRADE, network="corp"),
        pr(ProbeName.SOCKETIO_CONNECT, "websocket:valid", A, Outcome.BLOCKED, 400, network="corp"),
        facts.handshake(A, Outcome.OK, 200, facts.PY_OPEN, network="corp"),
    ]
    f = fire(upgrade_headers_dropped, results)
    assert f.severity is Severity.WARNING
    assert "on network(s) corp" in f.title


def test_nginx_naive_finds_both_faults() -> None:
    """Upgrade headers dropped and round robin at once: neither hides the other (FACTS.md §3.2)."""
    results = [
        facts.plain_ws(LB, Outcome.BLOCKED, 400, facts.NODE_BAD_REQUEST, facts.NGINX),
        facts.upgrade(LB, Outcome.SESSION_UNKNOWN, 400, facts.NODE_SESSION_UNKNOWN, facts.NGINX),
        facts.handshake(LB, Outcome.OK, 200, facts.NODE_OPEN, facts.NGINX, engineio_version=4),
        *facts.connects(LB, Transport.WEBSOCKET, Outcome.BLOCKED, 400, facts.NGINX),
        *facts.connects(LB, Transport.POLLING, Outcome.SESSION_UNKNOWN, 400, facts.NGINX),
        *facts.sticky(LB, Outcome.SESSION_UNKNOWN, lost=5, headers=facts.NGINX),
    ]
    found = {f.id: f for f in diagnose(results)}
    assert found[FindingId.UPGRADE_HEADERS_DROPPED].severity is Severity.CRITICAL
    sticky = found[FindingId.STICKY_SESSIONS_MISSING]
    assert sticky.severity is Severity.CRITICAL  # no WebSocket: polling is all there is
    assert "hash $remote_addr consistent" in sticky.recommendation
    assert {f.id for f in found.values() if f.severity is not Severity.INFO} == {
        FindingId.UPGRADE_HEADERS_DROPPED,
        FindingId.STICKY_SESSIONS_MISSING,
    }


# polling-disabled, websocket-disabled (FACTS.md §3.3)


@pytest.mark.parametrize(
    ("body", "headers", "words"),
    [
        (facts.NODE_TRANSPORT_UNKNOWN, {}, "new Server(httpServer, { transports:"),
        (facts.PY_INVALID_TRANSPORT, facts.UVICORN, "socketio.AsyncServer(transports="),
    ],
    ids=["engine.io", "python-engineio"],
)
def test_polling_disabled_in_either_servers_words(body: str, headers: dict[str, str], words: str) -> None:
    results = [
        facts.handshake(A, Outcome.HTTP_ERROR, 400, body, headers),
        facts.plain_ws(A, Outcome.OK, 101, headers=headers),
        *facts.connects(A, Transport.WEBSOCKET, Outcome.OK, 101, headers),
        *facts.connects(A, Transport.POLLING, Outcome.HTTP_ERROR, 400, headers),
        *facts.sticky(A, Outcome.HTTP_ERROR, headers=headers),
    ]
    f = fire(polling_disabled, results)
    assert f.severity is Severity.WARNING
    assert body.strip('"') in f.summary or "Transport unknown" in f.summary
    assert "WebSocket connects" in f.summary and "no fallback" in f.summary
    assert words in f.recommendation
    assert [x.id for x in diagnose(results) if x.severity is not Severity.INFO] == [
        FindingId.POLLING_DISABLED
    ]


def test_polling_disabled_quiet_for_other_handshake_errors() -> None:
    results = [facts.handshake(A, Outcome.SESSION_UNKNOWN, 400, facts.NODE_SESSION_UNKNOWN), *working(A)]
    quiet(polling_disabled, results)
    quiet(polling_disabled, working(A))


def test_websocket_disabled_when_engineio_says_transport_unknown() -> None:
    """A polling-only socket.io server: its OPEN offers no upgrade, a WebSocket gets code 0."""
    results = [
        facts.plain_ws(A, Outcome.BLOCKED, 400, facts.NODE_TRANSPORT_UNKNOWN),
        pr(
            ProbeName.ENGINEIO_UPGRADE,
            "",
            A,
            Outcome.BLOCKED,
            200,
            upgrades_offered=[],
            stuck_in_polling=True,
        ),
        facts.handshake(A, Outcome.OK, 200, facts.NODE_OPEN_NO_UPGRADE, engineio_version=4),
        *facts.connects(A, Transport.WEBSOCKET, Outcome.BLOCKED, 400),
        *facts.connects(A, Transport.POLLING, Outcome.OK, 200),
    ]
    f = fire(websocket_disabled, results)
    assert f.severity is Severity.CRITICAL
    assert "new Server(httpServer, { transports: ['polling', 'websocket'] })" in f.recommendation
    quiet(websocket_blocked, results)  # the server said so itself: no proxy refuses it


def test_websocket_disabled_from_python_engineios_bare_403() -> None:
    """python-engineio refuses a fresh WebSocket with 403 and no body when its transports lack
    websocket, and still offers the upgrade in its OPEN packet."""
    results = [
        facts.plain_ws(A, Outcome.BLOCKED, 403, headers=facts.UVICORN),
        facts.upgrade(A, Outcome.BLOCKED, 403, headers=facts.UVICORN),
        facts.handshake(A, Outcome.OK, 200, facts.PY_OPEN, facts.UVICORN, engineio_version=4),
        *facts.connects(A, Transport.WEBSOCKET, Outcome.BLOCKED, 403, facts.UVICORN),
        *facts.connects(A, Transport.POLLING, Outcome.OK, 200, facts.UVICORN),
    ]
    f = fire(websocket_disabled, results)
    assert "socketio.AsyncServer(transports=['polling', 'websocket'])" in f.recommendation
    quiet(websocket_blocked, results)


def test_websocket_disabled_quiet_when_a_proxy_refuses() -> None:
    """The same bare 403, with a proxy's mark on it: a refusal on the way, not the server's."""
    results = [
        facts.plain_ws(A, Outcome.BLOCKED, 403, headers=facts.CADDY),
        facts.handshake(A, Outcome.OK, 200, facts.PY_OPEN, facts.CADDY, engineio_version=4),
        *facts.connects(A, Transport.WEBSOCKET, Outcome.BLOCKED, 403, facts.CADDY),
        *facts.connects(A, Transport.POLLING, Outcome.OK, 200, facts.CADDY),
    ]
    quiet(websocket_disabled, results)
    assert "Caddy" in fire(websocket_blocked, results).recommendation


def test_websocket_blocked_found_beside_lost_sessions() -> None:
    """An edge that refuses WebSocket in front of a round robin: both faults (the old rule lost
    the refusal because polling failed too)."""
    results = [
        facts.plain_ws(EDGE, Outcome.BLOCKED, 403, "WebSocket connections are disabled", facts.CLOUDFLARE),
        facts.upgrade(EDGE, Outcome.BLOCKED, 403, "WebSocket connections are disabled", facts.CLOUDFLARE),
        facts.handshake(EDGE, Outcome.OK, 200, facts.PY_OPEN, facts.CLOUDFLARE, engineio_version=4),
        *facts.connects(EDGE, Transport.WEBSOCKET, Outcome.BLOCKED, 403, facts.CLOUDFLARE),
        *facts.connects(EDGE, Transport.POLLING, Outcome.SESSION_UNKNOWN, 400, facts.CLOUDFLARE),
        *facts.sticky(EDGE, Outcome.SESSION_UNKNOWN, lost=4, headers=facts.CLOUDFLARE),
    ]
    found = {f.id for f in diagnose(results) if f.severity is not Severity.INFO}
    assert found == {FindingId.WEBSOCKET_BLOCKED, FindingId.STICKY_SESSIONS_MISSING}


# --- vantages: the same rules, comparing where the probes ran -----------------------------


def from_vantage(results: list[ProbeResult], vantage: str, network: str = "direct") -> list[ProbeResult]:
    """``results`` as a Dask worker named ``vantage`` would have recorded them on ``network``."""
    return [replace(r, vantage=vantage, network=network) for r in results]


def test_blocked_from_one_vantage_only_is_named_for_that_vantage() -> None:
    """Two workers probe the same target on the same (direct) network profile; the one whose
    own network goes through the corporate proxy sees every upgrade refused."""
    results = from_vantage(working(LB), "eu-west") + from_vantage(corporate(LB), "corp-office")
    f = fire(websocket_blocked, results)
    assert f.severity is Severity.WARNING
    assert f.title == "WebSocket is blocked only from vantage corp-office"
    assert all(ref.endswith("#direct/corp-office") for ref in f.evidence)
    assert "from vantage eu-west" in f.summary and "something on vantage corp-office" in f.summary
    assert "eu-west" not in f.title


def test_a_network_blocked_from_every_vantage_is_the_networks() -> None:
    """corporate-proxy refuses upgrades from both workers; direct upgrades from both: the
    network explains it, not a vantage."""
    results = [
        *from_vantage(working(LB), "eu-west"),
        *from_vantage(working(LB), "us-east"),
        *from_vantage(corporate(LB), "eu-west", "corporate-proxy"),
        *from_vantage(corporate(LB), "us-east", "corporate-proxy"),
    ]
    f = fire(websocket_blocked, results)
    assert f.title == "WebSocket is blocked only on network corporate-proxy"


def test_one_network_from_one_vantage_is_named_as_that_pair() -> None:
    results = [
        *from_vantage(working(LB), "eu-west"),
        *from_vantage(working(LB), "us-east"),
        *from_vantage(working(LB), "eu-west", "corporate-proxy"),
        *from_vantage(corporate(LB), "us-east", "corporate-proxy"),
    ]
    f = fire(websocket_blocked, results)
    assert f.title == "WebSocket is blocked only on corporate-proxy from vantage us-east"


def test_blocked_from_every_vantage_is_still_the_edge() -> None:
    results = from_vantage(corporate(A), "eu-west") + from_vantage(corporate(A), "corp-office")
    f = fire(websocket_blocked, results)
    assert f.severity is Severity.CRITICAL and "only" not in f.title


def test_timeouts_from_one_vantage_only() -> None:
    direct = from_vantage(with_tls(working(A), 2.0), "eu-west")
    far = from_vantage(with_tls(failing(A, Outcome.TIMEOUT), 310.0), "ap-south")
    f = fire(network_timeouts, direct + far)
    assert f.title == "Timeouts from vantage ap-south only: the client's network, not the service"
    assert "310 ms on vantage ap-south, 2 ms on vantage eu-west" in f.summary


def test_records_without_a_vantage_compare_as_before() -> None:
    """Every result local (files from before vantages): the words are the networks' alone."""
    results = working(LB) + corporate(LB)
    assert all(r.vantage == "local" for r in results)
    assert fire(websocket_blocked, results).title == "WebSocket is blocked only on network(s) corporate-proxy"
