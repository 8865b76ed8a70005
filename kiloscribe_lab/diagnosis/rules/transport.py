"""Transport: does the way between client and backend carry Socket.IO? Upgrade headers dropped or
WebSocket refused on the way, a transport the server itself refuses, polling sessions that lose
their backend, networks that time out."""

from __future__ import annotations

from kiloscribe_lab.diagnosis.evidence import (
    FAILURES_OF_SERVICE,
    Evidence,
    Health,
    Place,
    is_cdn,
    is_polling,
    is_websocket,
    partly_worked,
    path_works,
    raw_websocket,
    reached_engineio,
    refs,
    refusal_of,
    targets_of,
)
from kiloscribe_lab.diagnosis.fingerprint import marks_of
from kiloscribe_lab.diagnosis.registry import Draft, rule
from kiloscribe_lab.names import Component, CookieMode, FindingId, Outcome, PlainPath, ProbeName, Severity
from kiloscribe_lab.outcomes import Refusal
from kiloscribe_lab.protocol import classify_engineio_error
from kiloscribe_lab.results import ProbeResult

# Refusals whose answer names its cause: each is its own finding, never "WebSocket is blocked".
_EXPLAINED = {
    Refusal.HEADERS_DROPPED,  # upgrade-headers-dropped
    Refusal.TRANSPORT_DISABLED,  # websocket-disabled
    Refusal.CHALLENGE,  # cdn-challenge
    Refusal.RATE_LIMITED,  # rate-limited
    Refusal.ORIGIN_REFUSED,  # cors-origin-rejected
}


_PROXIES = {Component.CLOUDFLARE, Component.CADDY, Component.NGINX, Component.HAPROXY}


def _server_refuses_websocket(ev: Evidence, target: str, place: Place) -> list[ProbeResult]:
    """WebSocket requests the Engine.IO server itself refused for the transport: engine.io's
    'Transport unknown'; or python-engineio's bare 403 to a fresh WebSocket (no sid, no
    Origin: it refuses one only when websocket is not among its transports, and still offers
    the upgrade in its OPEN packet), when that 403 carries no proxy's mark."""
    rs = ev.socket(target, place)
    said = [r for r in rs if raw_websocket(r) and refusal_of(r) is Refusal.TRANSPORT_DISABLED]
    python = ev.fingerprint([target]).get(Component.PYTHON_ENGINEIO)
    if python is not None and python.strong:
        said += [
            r
            for r in rs
            if (r.probe, r.variant) == (ProbeName.WEBSOCKET_PLAIN, PlainPath.SOCKETIO)
            and r.status == 403
            and not str(r.detail.get("body") or "").strip()
            and not {m.component for m in marks_of(r)} & _PROXIES
        ]
    return said


def _explained(ev: Evidence, target: str, place: Place) -> bool:
    """A WebSocket refusal at ``place`` says why (the server's own words, an edge's
    challenge...): the Socket.IO client's bare 'HTTP 400' beside it is the same answer."""
    return any(raw_websocket(r) and refusal_of(r) in _EXPLAINED for r in ev.socket(target, place)) or bool(
        _server_refuses_websocket(ev, target, place)
    )


def _websocket_refused_on(ev: Evidence, target: str, place: Place) -> list[ProbeResult]:
    """The target's WebSocket probes at ``place`` when every one was refused on the way
    (BLOCKED), for no cause the answer names, while polling reached the Engine.IO server there
    (an answer in its own words, even an error); else []. The polling need not *work*: a round
    robin that loses sessions, or a dead backend beside, is another fault, found by its rule."""
    rs = ev.socket(target, place)
    ws = [r for r in rs if is_websocket(r)]
    # A WebSocket probe that failed before its upgrade (a 502 from a dead backend behind a
    # round robin, a polling session lost) says nothing about the upgrade: it may sit
    # beside the refusals, but nothing may have upgraded.
    before_upgrade = FAILURES_OF_SERVICE | {Outcome.SESSION_UNKNOWN}
    blocked = [r for r in ws if r.outcome is Outcome.BLOCKED]
    if not blocked or not all(r.outcome is Outcome.BLOCKED or r.outcome in before_upgrade for r in ws):
        return []
    if _explained(ev, target, place):
        return []
    if not any(reached_engineio(r) for r in rs if is_polling(r) or r.probe == ProbeName.STICKY_SESSION):
        return []
    return blocked


def _failures_explained(ev: Evidence, target: str, place: Place) -> bool:
    """Every other failure at ``place`` is another fault's, found by its own rule (sessions
    lost to a round robin, a dead backend's 502s, polling refused by the server, 429s); a
    polling probe that stalled or met something unknown leaves the refusal's cause open."""
    for r in ev.socket(target, place):
        if is_websocket(r) or path_works(r):
            continue
        explained = (
            r.outcome is Outcome.SESSION_UNKNOWN
            or r.outcome in FAILURES_OF_SERVICE
            or r.status == 429
            or refusal_of(r) is Refusal.TRANSPORT_DISABLED
            or (r.probe == ProbeName.STICKY_SESSION and partly_worked(r))
        )
        if not explained:
            return False
    return True


def _websocket_works_on(ev: Evidence, target: str, place: Place) -> bool:
    return any(path_works(r) for r in ev.socket(target, place) if is_websocket(r))


def _what_answered(r: ProbeResult) -> str:
    """A refusal as the reader can recognise it: whose words, which status, which body."""
    body = str(r.detail.get("body") or "").strip()
    error = classify_engineio_error(r.status or 0, body) if r.status else None
    if error is not None and error.style == "node":
        return f"{r.status} {body[:60]} (engine.io's own error, as JSON)"
    if error is not None:
        return f"{r.status} {body[:60]} (python-engineio's own error)"
    if r.status is not None and 200 <= r.status < 300:
        return f"{r.status} with a page ({body[:50]!r}) instead of 101"
    return f"{r.status} {body[:60]!r}" if body else str(r.status)


@rule(
    FindingId.UPGRADE_HEADERS_DROPPED,
    severities={Severity.CRITICAL, Severity.WARNING},
    title="The WebSocket upgrade reaches the server without its Upgrade headers",
    means="Something on the way (usually the balancer) drops Upgrade/Connection: the server sees a plain GET "
    "and no client gets a WebSocket; critical unless another network upgrades.",
    evidence="A WebSocket request at /socket.io/ answered by the Engine.IO server as a plain GET: "
    "engine.io's 400 code 3, python-engineio's 'Invalid websocket upgrade', or a 200 page instead of 101.",
)
def upgrade_headers_dropped(ev: Evidence) -> Draft | None:
    hits: list[tuple[str, Place, list[ProbeResult]]] = []
    for t in ev.targets:
        for n in ev.places:
            rs = ev.socket(t, n)
            dropped = [r for r in rs if raw_websocket(r) and refusal_of(r) is Refusal.HEADERS_DROPPED]
            if dropped:
                # The Socket.IO clients' bare "HTTP 400" on the same way is the same answer.
                statuses = {r.status for r in dropped}
                clients = [
                    r
                    for r in rs
                    if is_websocket(r)
                    and not raw_websocket(r)
                    and r.outcome is Outcome.BLOCKED
                    and r.status in statuses
                ]
                hits.append((t, n, dropped + clients))
    if not hits:
        return None
    # One place drops them while another upgrades: that network's proxy, not the service's.
    local = all(any(_websocket_works_on(ev, t, o) for o in ev.places if o != n) for t, n, _ in hits)
    places = sorted({n for _, n, _ in hits}, key=lambda p: (p.network, p.vantage))
    answers = sorted({_what_answered(r) for _, _, rs in hits for r in rs if raw_websocket(r)})
    names = ev.names(t for t, _, _ in hits)
    return Draft(
        severity=Severity.WARNING if local else Severity.CRITICAL,
        title=f"The WebSocket upgrade reaches the server without its Upgrade headers ({names})"
        + (f" {ev.scope(places)}" if local else ""),
        summary=(
            "A WebSocket request at /socket.io/?EIO=4&transport=websocket was answered "
            f"{'; '.join(answers[:3])}, not 101 Switching Protocols: the server received it as a plain "
            "GET, without Upgrade and Connection. Something on the way dropped them"
            + (f" {ev.scope(places)} only (the same targets upgrade elsewhere)" if local else "")
            + ". No client gets a WebSocket: polling-first clients stay on long-polling (their upgrade "
            "fails, socket.io-client's 'probe error'), WebSocket-first clients such as the SDK fail with "
            "'websocket error' unless they fall back (tryAllTransports: true)."
        ),
        recommendation=(
            "Then check that `curl -i -N -H 'Connection: Upgrade' -H 'Upgrade: websocket' -H "
            "'Sec-WebSocket-Version: 13' -H 'Sec-WebSocket-Key: x3JJHMbDL1EzLkh9GBhXDw==' "
            "'https://HOST/socket.io/?EIO=4&transport=websocket'` answers 101."
        ),
        evidence=refs(r for _, _, rs in hits for r in rs),
        targets=tuple(dict.fromkeys(t for t, _, _ in hits)),
        path=ev.fingerprint(t for t, _, _ in hits),
    )


def _engineio_words(rs: list[ProbeResult]) -> str:
    said = sorted({f"{r.status} {str(r.detail.get('body') or '').strip()[:60]}" for r in rs})
    return "; ".join(said[:2])


@rule(
    FindingId.POLLING_DISABLED,
    severities={Severity.WARNING},
    title="The server refuses HTTP long-polling",
    means="The Engine.IO server accepts only WebSocket: clients on networks that block WebSocket have no "
    "fallback, and polling-first clients (socket.io-client's default) fail.",
    evidence="The polling handshake answered by the Engine.IO server itself with 'Transport unknown' "
    "(engine.io, code 0) or 'Invalid transport' (python-engineio).",
)
def polling_disabled(ev: Evidence) -> Draft | None:
    refused = [
        r
        for r in ev.where(ProbeName.ENGINEIO_HANDSHAKE)
        if r.target in ev.targets and refusal_of(r) is Refusal.TRANSPORT_DISABLED
    ]
    if not refused:
        return None
    targets = targets_of(refused)
    ws_works = [r for t in targets for r in ev.socket(t) if is_websocket(r) and path_works(r)]
    return Draft(
        severity=Severity.WARNING,
        title=f"The server refuses HTTP long-polling ({ev.names(targets)})",
        summary=(
            f"GET /socket.io/?EIO=4&transport=polling is refused by the Engine.IO server itself "
            f"({_engineio_words(refused)}): the server accepts WebSocket only."
            + (
                " WebSocket connects, so WebSocket-first clients (the SDK) work."
                if ws_works
                else " WebSocket did not connect either."
            )
            + " Clients on networks that block WebSocket (some corporate proxies) have no fallback, "
            "and polling-first clients (socket.io-client's default) fail with 'xhr poll error' unless "
            "they set `tryAllTransports: true` (v4.8+)."
        ),
        recommendation=(
            "If WebSocket-only is deliberate, make every client say so (`transports: ['websocket']`) "
            "and accept that networks that block WebSocket cannot connect."
        ),
        evidence=refs(refused + ws_works[:2]),
        targets=targets,
        path=ev.fingerprint(targets),
    )


@rule(
    FindingId.WEBSOCKET_DISABLED,
    severities={Severity.CRITICAL},
    title="The server refuses WebSocket",
    means="The Engine.IO server itself does not serve the WebSocket transport: WebSocket-first clients such "
    "as the SDK fail (socket.io-client does not fall back by default).",
    evidence="A WebSocket request answered by the Engine.IO server with 'Transport unknown' / 'Invalid "
    "transport', or a polling session whose OPEN offers no upgrade, and no WebSocket probe works.",
)
def websocket_disabled(ev: Evidence) -> Draft | None:
    hits: list[tuple[str, list[ProbeResult]]] = []
    for t in ev.targets:
        rs = ev.socket(t)
        if any(is_websocket(r) and path_works(r) for r in rs):
            continue
        said = [r for n in ev.places for r in _server_refuses_websocket(ev, t, n)]
        offered_none = [
            r for r in rs if r.probe == ProbeName.ENGINEIO_UPGRADE and r.detail.get("upgrades_offered") == []
        ]
        if said or offered_none:
            hits.append((t, said + offered_none))
    if not hits:
        return None
    names = ev.names(t for t, _ in hits)
    seen = sorted(
        {
            "its OPEN packet offers no upgrade"
            if r.probe == ProbeName.ENGINEIO_UPGRADE and r.detail.get("upgrades_offered") == []
            else f"a WebSocket request was answered {_what_answered(r)}"
            if r.detail.get("body")
            else f"a fresh WebSocket was answered {r.status} with no body, python-engineio's refusal"
            for _, rs in hits
            for r in rs
        }
    )
    return Draft(
        severity=Severity.CRITICAL,
        title=f"The server refuses WebSocket ({names})",
        summary=(
            f"The Engine.IO server behind {names} does not serve WebSocket: {'; '.join(seen)}. Polling "
            "clients connect; "
            "WebSocket-first clients (the SDK, `transports: ['websocket', 'polling']`) fail with "
            "'websocket error', since socket.io-client tries the next transport only with "
            "`tryAllTransports: true` (v4.8+)."
        ),
        recommendation="Meanwhile clients need `transports: ['polling']` or `tryAllTransports: true`.",
        evidence=refs(r for _, rs in hits for r in rs),
        targets=tuple(t for t, _ in hits),
        path=ev.fingerprint(t for t, _ in hits),
    )


@rule(
    FindingId.WEBSOCKET_BLOCKED,
    severities={Severity.CRITICAL, Severity.WARNING},
    title="WebSocket is blocked",
    means="WebSocket upgrades are refused on the way (a 403, a CDN setting, a corporate proxy) while HTTP "
    "reaches the server: critical at the edge, a warning when only some networks refuse.",
    evidence="Every WebSocket probe of a target refused, for no cause the answer names, while polling "
    "reaches the Engine.IO server, on every network, or on one while another upgrades.",
)
def websocket_blocked(ev: Evidence) -> Draft | None:
    at_edge: list[tuple[str, Place, list[ProbeResult]]] = []
    on_network: list[tuple[str, Place, list[ProbeResult]]] = []
    for t in ev.targets:
        for n in ev.places:
            refused = _websocket_refused_on(ev, t, n)
            if not refused:
                continue
            if any(_websocket_works_on(ev, t, o) for o in ev.places if o != n):
                # The same target upgrades from another place: what refuses it is on this one's
                # way (its network's proxy, the vantage's own network).
                on_network.append((t, n, refused))
            elif _failures_explained(ev, t, n):
                at_edge.append((t, n, refused))
    if not at_edge and not on_network:
        return None
    where = []
    cdn = any(is_cdn(r) for _, _, rs in at_edge for r in rs)
    if at_edge:
        where.append(
            f"at {'the CDN edge' if cdn else 'a proxy in front of'} {ev.names(t for t, _, _ in at_edge)}"
        )
    places = list(dict.fromkeys(n for _, n, _ in on_network))
    if on_network:
        where.append("only " + ev.scope(places))
    statuses = sorted({str(r.status) for _, _, rs in at_edge + on_network for r in rs if r.status})
    summary = (
        f"WebSocket upgrades are refused ({'/'.join(statuses) or 'no 101'}) "
        + "; ".join(where)
        + ", while long-polling to the same target works. Clients that "
        "insist on WebSocket (the SDK's default) fail; polling clients connect."
    )
    if on_network:
        hit = {t for t, _, _ in on_network}
        working = [
            o for o in ev.places if o not in places and any(_websocket_works_on(ev, t, o) for t in hit)
        ]
        refusers = sorted(
            {str(r.headers["via"]) for _, _, rs in on_network for r in rs if r.headers.get("via")}
        )
        bodies = sorted(
            {
                str(r.detail["body"]).strip()[:80]
                for _, _, rs in on_network
                for r in rs
                if r.detail.get("body")
            }
        )
        summary += (
            f" The same targets upgrade to WebSocket from {ev.place_names(working) or 'another network'}: "
            f"something on {ev.place_names(places)} (a proxy or firewall) refuses the upgrade, "
            "not the service."
            + (f" The refusal came via {'; '.join(refusers)}." if refusers else "")
            + (f" It said: {' / '.join(repr(b) for b in bodies[:2])}." if bodies else "")
        )
    recommendation = []
    if on_network:
        recommendation.append(
            f"on {ev.place_names(places)}, ask the network's administrators to let WebSocket "
            "(Upgrade: websocket) through to this host, or to exempt it from TLS inspection"
        )
    recommendation.append(
        ("meanwhile clients need" if at_edge or on_network else "clients need")
        + " a working fallback: socket.io-client `transports: "
        "['websocket', 'polling']` with `tryAllTransports: true` (v4.8+), or "
        "`transports: ['polling']` for affected users; serve WSS on 443, which proxies pass more "
        "often; note SDK 2.0.9 does not fall back by itself (connectionMode 'auto' does)"
    )
    rest = "; ".join(recommendation) + "."
    return Draft(
        severity=Severity.CRITICAL if at_edge else Severity.WARNING,
        title="WebSocket is blocked " + "; ".join(where),
        summary=summary,
        recommendation=rest[0].upper() + rest[1:],
        evidence=refs(r for _, _, rs in at_edge + on_network for r in rs),
        targets=tuple(dict.fromkeys(t for t, _, _ in at_edge + on_network)),
        # At the edge, the fix is the refusing component's (its words first); on a network,
        # it is that network's administrators'.
        path=ev.fingerprint(t for t, _, _ in at_edge) if at_edge else None,
    )


def _moved(r: ProbeResult) -> bool:
    """A follow-up on an open session did not reach the backend that opened it."""
    return r.outcome is Outcome.SESSION_UNKNOWN or int(r.detail.get("moved") or 0) > 0


_Lost = list[tuple[str, list[ProbeResult]]]


def _sessions_lost(ev: Evidence) -> tuple[_Lost, _Lost]:
    """(targets where every client loses its polling session, targets where only a client
    that drops the balancer's cookie does), per network, with the sticky results of each."""
    missing: _Lost = []
    cookie_only: _Lost = []
    for t in ev.targets:
        for n in ev.places:
            with_cookies = ev.where(ProbeName.STICKY_SESSION, CookieMode.COOKIES, t, place=n)
            without = ev.where(ProbeName.STICKY_SESSION, CookieMode.NO_COOKIES, t, place=n)
            lost_with = any(_moved(r) for r in with_cookies)
            lost_without = any(_moved(r) for r in without)
            # Kept "thanks to the cookie" only when the balancer set one: with none, the client
            # that returns cookies kept its session by the luck of a round robin's draw.
            cookie_set = any(r.detail.get("cookie_names") for r in with_cookies)
            kept_with = any(r.ok for r in with_cookies)
            if lost_with or (lost_without and not (kept_with and cookie_set)):
                missing.append((t, with_cookies + without))
            elif lost_without:
                cookie_only.append((t, with_cookies + without))
    return missing, cookie_only


@rule(
    FindingId.STICKY_SESSIONS_MISSING,
    severities={Severity.CRITICAL, Severity.WARNING},
    # A balancer that loses sessions for every client makes "only cookie-less clients lose
    # theirs" elsewhere a detail: the same fix (ip_hash) covers both.
    supersedes={FindingId.STICKY_SESSIONS_COOKIE_ONLY},
    title="No sticky sessions: polling sessions are lost",
    means="Requests of one Engine.IO polling session reach backends that do not know it: critical when "
    "no WebSocket works, so polling is the only transport left.",
    evidence="A follow-up on an open polling session answered 'Session ID unknown' or by another backend, "
    "even for a client that returns cookies.",
)
def sticky_sessions_missing(ev: Evidence) -> Draft | None:
    missing, _ = _sessions_lost(ev)
    if not missing:
        return None
    # Without a working WebSocket, polling is the only transport left, and it breaks: whether
    # some polling probe got lucky with the rotation must not decide the severity. What counts
    # is WebSocket through the targets that lose sessions: the backends behind an nginx that
    # drops the upgrade upgrade fine when asked directly, and no client goes there.
    ws_works = any(path_works(r) for t, _ in missing for r in ev.socket(t) if is_websocket(r))
    severity = Severity.WARNING if ws_works else Severity.CRITICAL
    names = ev.names(t for t, _ in missing)
    lost = sum(int(r.detail.get("moved") or 0) for _, rs in missing for r in rs)
    total = sum(int(r.detail.get("follow_ups") or 0) for _, rs in missing for r in rs)
    return Draft(
        severity=severity,
        title=f"No sticky sessions: polling sessions are lost ({names})",
        summary=(
            f"{lost} of {total} follow-up requests on an open Engine.IO polling session "
            f"did not reach the backend that opened it: another backend answered "
            "'Session ID unknown' / 'Invalid session', or a dead one 502. HTTP long-polling "
            "needs every request of a session on the same backend; WebSocket needs it for "
            "the upgrade."
            + (
                " WebSocket does not work here, so polling is the only transport left, and it breaks."
                if severity is Severity.CRITICAL
                else ""
            )
        ),
        recommendation="On the client side, `transports: ['websocket']` avoids polling sessions entirely.",
        evidence=refs(r for _, rs in missing for r in rs),
        targets=tuple(dict.fromkeys(t for t, _ in missing)),
        path=ev.fingerprint(t for t, _ in missing),
    )


@rule(
    FindingId.STICKY_SESSIONS_COOKIE_ONLY,
    severities={Severity.WARNING},
    title="Sticky only for clients that return the balancer's cookie",
    means="Stickiness rests on a cookie: browsers keep their polling session, clients that drop cookies "
    "(the SDK's Node client) lose theirs.",
    evidence="The cookie-less sticky probe loses its polling session while the one that returns cookies "
    "keeps it.",
)
def sticky_sessions_cookie_only(ev: Evidence) -> Draft | None:
    _, cookie_only = _sessions_lost(ev)
    if not cookie_only:
        return None
    names = ev.names(t for t, _ in cookie_only)
    cookies = sorted(
        {
            c
            for _, rs in cookie_only
            for r in rs
            for c in r.detail.get("cookie_names") or []
            if isinstance(c, str)
        }
    )
    return Draft(
        severity=Severity.WARNING,
        title=f"Sticky only for clients that return the balancer's cookie ({names})",
        summary=(
            "A client that sends the balancer's cookie back stays on one backend; a client "
            "that drops it (the SDK's Node client, curl, most server-side clients) loses its "
            "polling session on a later request ('Session ID unknown')."
            + (f" Cookie: {', '.join(cookies)}." if cookies else "")
        ),
        recommendation="Node clients can also use `transports: ['websocket']`.",
        evidence=refs(r for _, rs in cookie_only for r in rs),
        targets=tuple(dict.fromkeys(t for t, _ in cookie_only)),
        path=ev.fingerprint(t for t, _ in cookie_only),
    )


def _round_trip_ms(ev: Evidence, place: Place) -> float | None:
    """A place's round trip as the probes measured it: the fastest TLS handshake (one round
    trip in TLS 1.3) of the raw-stream probes. The fastest, because probes run concurrently
    and waiting for the CPU only ever adds to a handshake."""
    handshakes = [r.timings.tls for r in ev.where(place=place) if r.timings.tls is not None]
    return min(handshakes) if handshakes else None


@rule(
    FindingId.NETWORK_TIMEOUTS,
    severities={Severity.WARNING},
    title="Timeouts on some networks only",
    means="Probes time out from some networks while the same targets answer in time from others: the "
    "client's network, not the service.",
    evidence="Socket.IO probes of a target time out on one network while it works without timeouts on "
    "another (two networks or more).",
)
def network_timeouts(ev: Evidence) -> Draft | None:
    if len(ev.places) < 2:
        return None
    hits = []
    for t in ev.targets:
        for n in ev.places:
            timeouts = [r for r in ev.socket(t, n) if r.outcome is Outcome.TIMEOUT]
            fine_elsewhere = any(
                ev.health(t, other).health in {Health.WORKS, Health.PARTIAL}
                and not any(r.outcome is Outcome.TIMEOUT for r in ev.socket(t, other))
                for other in ev.places
                if other != n
            )
            if timeouts and fine_elsewhere:
                hits.append((t, n, timeouts))
    if not hits:
        return None
    slow = list(dict.fromkeys(n for _, n, _ in hits))
    nets = ev.place_names(slow)
    fine = [n for n in ev.places if n not in slow]
    phases = sorted(
        {str(r.detail["stalled_during"]) for _, _, rs in hits for r in rs if r.detail.get("stalled_during")}
    )
    measured = []
    for n in [*slow, *fine]:
        rtt = _round_trip_ms(ev, n)
        if rtt is not None:
            measured.append(f"{rtt:.0f} ms on {ev.place_names([n])}")
    deadlines = [m for _, _, rs in hits for r in rs if r.error and (m := _deadline_of(r.error)) is not None]
    return Draft(
        severity=Severity.WARNING,
        title=f"Timeouts {ev.scope(slow)} only: the client's network, not the service",
        summary=(
            f"{sum(len(rs) for _, _, rs in hits)} probes of {ev.names(t for t, _, _ in hits)} timed out "
            f"on {nets}"
            + (f" (deadline {max(deadlines):g} s)" if deadlines else "")
            + f" while the same targets answered in time on {ev.place_names(fine) or 'other networks'}."
            + (f" They were waiting in: {', '.join(phases)}." if phases else "")
            + (f" Round trip (fastest TLS handshake): {', '.join(measured)}." if measured else "")
            + " The service is up; the path from these networks is slow or drops traffic."
        ),
        recommendation=(
            "Ask the affected user for their network (VPN, corporate proxy, mobile); raise client "
            "timeouts above what the measured round trips need (a Socket.IO connect over TLS takes "
            "about 4 round trips; SDK 2.0.9 gives its WebSocket detection 3 s); prefer "
            "`transports: ['polling']` or `tryAllTransports: true` where WebSocket stalls; compare "
            "with a mobile hotspot."
        ),
        evidence=refs(r for _, _, rs in hits for r in rs),
        targets=tuple(dict.fromkeys(t for t, _, _ in hits)),
    )


def _deadline_of(error: str) -> float | None:
    """The deadline a timeout result names: 'no answer within 3 s (while ...)' -> 3.0."""
    marker = "no answer within "
    if marker not in error:
        return None
    number = error.split(marker, 1)[1].split(" ", 1)[0]
    try:
        return float(number)
    except ValueError:
        return None
