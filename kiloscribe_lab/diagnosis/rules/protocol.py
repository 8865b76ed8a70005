"""Protocol: is what answers Engine.IO v4 / Socket.IO at all? Does it keep to HTTP, WebSocket and
Engine.IO, and does its path lead somewhere a client can follow?"""

from __future__ import annotations

import re
import urllib.parse

from kiloscribe_lab.diagnosis.evidence import (
    Evidence,
    partly_worked,
    path_works,
    refs,
    refusal_of,
    targets_of,
)
from kiloscribe_lab.diagnosis.registry import Draft, rule
from kiloscribe_lab.names import FindingId, Outcome, PlainPath, ProbeName, RedirectRefusal, Severity
from kiloscribe_lab.results import ProbeResult

# engine.io ends an upgrade on a path it does not serve after destroyUpgradeTimeout (1 s),
# without a byte: a WebSocket at /socket.io/ closed silently after about that long. The total
# counts connect and TLS too, which a busy machine or a far server stretches; the sign is only a
# hint, and only beside a 404 for /socket.io/ (1.5 s lost the lab's node cell under load).
_ENGINEIO_HANGUP_MS = (900.0, 3000.0)
# A URL path in an answer's text: "/ws/", "/realtime/socket.io" (not inside a word or a URL).
_PATH_IN_TEXT = re.compile(r"(?<![\w.:/])(/[A-Za-z0-9._~-]+(?:/[A-Za-z0-9._~-]+)*/?)")


def _alien(r: ProbeResult) -> bool:
    """An answer at the Engine.IO path that is not Engine.IO: a handshake answered with
    something else, or a WebSocket that upgraded and sent no OPEN packet. An edge's refusal
    (a challenge, a 429) says nothing of what is behind it."""
    if r.outcome is not Outcome.PROTOCOL_MISMATCH or not r.detail.get("not_engineio"):
        return False
    if refusal_of(r) is not None:
        return False
    return r.probe == ProbeName.ENGINEIO_HANDSHAKE or (
        r.probe == ProbeName.WEBSOCKET_PLAIN and r.variant == PlainPath.SOCKETIO
    )


def _asked(r: ProbeResult) -> str:
    if r.probe == ProbeName.ENGINEIO_HANDSHAKE:
        return "GET /socket.io/?EIO=4&transport=polling"
    return "the WebSocket at /socket.io/?EIO=4&transport=websocket"


def _named_path(r: ProbeResult) -> str | None:
    """The path a WebSocket refusal's own words name as where WebSockets are served (a plain-text
    or JSON body, never a proxy's HTML page), when it is not /socket.io/."""
    body = str(r.detail.get("body") or "")
    if r.status is None or not 400 <= r.status < 500 or not body or "<" in body or len(body) > 300:
        return None
    named = [p for p in _PATH_IN_TEXT.findall(body) if p.rstrip("/") != "/socket.io"]
    return named[0] if named else None


def _elsewhere(ev: Evidence, target: str) -> tuple[list[str], str | None]:
    """Signs that a Socket.IO server answers on this host at another path than /socket.io/, and
    that path when an upgrade there, or a refusal's words, showed it."""
    signs = []
    path = None
    for r in ev.where(target=target):
        as_given = (
            r.probe in {ProbeName.HTTP_UPGRADE, ProbeName.WEBSOCKET_PLAIN} and r.variant != PlainPath.SOCKETIO
        )
        if as_given and r.status == 101 and r.outcome is not Outcome.MALFORMED:
            where = str(r.detail.get("url") or r.target)
            signs.append(f"a WebSocket upgrade at {where} succeeded")
            path = path or urllib.parse.urlsplit(where).path or None
        named = _named_path(r) if r.probe == ProbeName.WEBSOCKET_PLAIN else None
        if named is not None:
            body = str(r.detail.get("body")).strip()
            signs.append(f"a WebSocket was refused {r.status} with {body[:120]!r}")
            path = path or named
        total = r.timings.total
        # Direct, a close without a byte; behind a proxy, the proxy's 502 for it.
        hung_up = (r.outcome is Outcome.RESET and r.status is None) or r.status == 502
        if (
            r.probe == ProbeName.WEBSOCKET_PLAIN
            and r.variant == PlainPath.SOCKETIO
            and hung_up
            and total is not None
            and _ENGINEIO_HANGUP_MS[0] <= total <= _ENGINEIO_HANGUP_MS[1]
        ):
            how = "closed without a byte" if r.status is None else "answered 502 by the proxy"
            signs.append(
                f"the WebSocket at /socket.io/ was {how} after {total / 1000:.1f} s, as engine.io ends an "
                "upgrade on a path it does not serve"
            )
    return list(dict.fromkeys(signs)), path


@rule(
    FindingId.NOT_SOCKETIO,
    severities={Severity.CRITICAL},
    # Discovery pointing at a server that does not speak Socket.IO there is the same fault.
    supersedes={FindingId.DISCOVERY_PROBLEM},
    title="The endpoint does not speak Engine.IO / Socket.IO",
    means="Whatever serves the URL (a plain WebSocket server, a catch-all site, a maintenance page, a wrong "
    "upstream or path) is not the Socket.IO server.",
    evidence="The Engine.IO handshake gets an answer that is not Engine.IO, or a WebSocket at /socket.io/ "
    "upgrades without an OPEN packet, and no Socket.IO probe of the target works.",
)
def not_socketio(ev: Evidence) -> Draft | None:
    hits = []
    for t in ev.targets:
        alien = [r for r in ev.where(target=t) if _alien(r)]
        if alien and not any(path_works(r) for r in ev.socket(t)):
            hits.append((t, alien))
    if not hits:
        return None
    results = [r for _, rs in hits for r in rs]
    said = sorted({f"{_asked(r)} answered with {r.detail['not_engineio']}" for r in results})
    plain_ws = any(r.probe == ProbeName.WEBSOCKET_PLAIN for r in results) or any(
        r.status == 426 for r in results
    )
    not_found = any(r.status == 404 for r in results if r.probe == ProbeName.ENGINEIO_HANDSHAKE)
    found = [_elsewhere(ev, t) for t, _ in hits]
    elsewhere = list(dict.fromkeys(s for signs, _ in found for s in signs))
    other_path = next((p for _, p in found if p and p != "/"), None)
    what = "Whatever serves this URL is not the Socket.IO server."
    if plain_ws:
        what = (
            "This is a plain WebSocket server (it upgrades, but never sends Engine.IO's OPEN packet "
            "0{...}; a 426 'Upgrade Required' to the polling request is what the `ws` library says to "
            "plain HTTP), not a Socket.IO server: Socket.IO clients (the SDK) cannot talk to it."
        )
    recommendation = (
        "Check the URL (host and path: the SDK uses /socket.io/), and the proxy's routing: a "
        "catch-all site, a maintenance page or a wrong upstream answers instead of the backend."
    )
    if plain_ws:
        recommendation = (
            "Point the client at the Socket.IO server, or serve Socket.IO here (a socket.io / "
            "python-socketio server, not a bare WebSocket one); a plain WebSocket service needs a "
            "plain WebSocket client, not socket.io-client."
        )
    if not_found and elsewhere:
        what += (
            f" /socket.io/ answers 404 while {'; '.join(elsewhere[:2])}: a Socket.IO server may be "
            "served at another path."
        )
        recommendation = (
            "Make client and server use the same path: socket.io `new Server(httpServer, { path: "
            "'/socket.io/' })` / python-socketio `ASGIApp(sio, socketio_path='socket.io')`, or give the "
            f"client the server's (socket.io-client `path: '{other_path or '/ws/'}'`); check the proxy's "
            "path rewriting "
            "(nginx `proxy_pass` with a trailing slash strips the location's prefix)."
        )
    return Draft(
        severity=Severity.CRITICAL,
        title="The endpoint does not speak Engine.IO / Socket.IO"
        + (": a plain WebSocket server" if plain_ws else ""),
        summary=f"{'; '.join(said)}: not Engine.IO. {what}",
        recommendation=recommendation,
        evidence=refs(results),
        targets=tuple(t for t, _ in hits),
    )


@rule(
    FindingId.ENGINEIO_VERSION_MISMATCH,
    severities={Severity.CRITICAL},
    title="Engine.IO protocol version mismatch",
    means="The server does not speak Engine.IO v4, the protocol of the socket.io-client the SDK bundles: "
    "every SDK connect fails.",
    evidence="The Engine.IO handshake answers in v3 framing, or refuses EIO=4 (Engine.IO error code 5).",
)
def engineio_version_mismatch(ev: Evidence) -> Draft | None:
    hits = [
        r
        for r in ev.where(ProbeName.ENGINEIO_HANDSHAKE)
        if r.detail.get("engineio_version") == 3 or (r.detail.get("engineio_error") or {}).get("code") == 5
    ]
    if not hits:
        return None
    return Draft(
        severity=Severity.CRITICAL,
        title="Engine.IO protocol version mismatch",
        summary=(
            "The server does not speak Engine.IO v4, the protocol of socket.io-client v4 that "
            "SDK 2.0.9 bundles: it answers in v3 framing or refuses EIO=4. Every SDK connect fails."
        ),
        recommendation=(
            "Upgrade the server to Socket.IO v4 (Engine.IO v4), or enable `allowEIO3` on a v4 "
            "server for old clients; keep client and server majors aligned."
        ),
        evidence=refs(hits),
        targets=targets_of(hits),
    )


_CONNECTS = {ProbeName.SOCKETIO_CONNECT, ProbeName.SDK_FLOW, ProbeName.CONNECT_STATS}


def _socketio_works(ev: Evidence, target: str) -> bool:
    """Can a Socket.IO client get a session there? Judged by the connects when they ran (an
    Engine.IO handshake that works is no use when every CONNECT fails), else by every probe."""
    rs = ev.socket(target)
    connects = [r for r in rs if r.probe in _CONNECTS]
    return any(path_works(r) or partly_worked(r) for r in (connects or rs))


@rule(
    FindingId.MALFORMED_HANDSHAKE,
    severities={Severity.CRITICAL, Severity.WARNING},
    title="The answers break the protocol",
    means="What answers (the server, or something on the way) sends bytes that break HTTP, WebSocket or "
    "Engine.IO, or more than a client accepts: clients fail with errors that name nothing.",
    evidence="Probes of a target end malformed, each naming the rule broken: critical when no Socket.IO "
    "connect to the target works, a warning when another transport still connects.",
)
def malformed_handshake(ev: Evidence) -> Draft | None:
    hits = []
    for t in ev.targets:
        bad = [r for r in ev.where(target=t) if r.outcome is Outcome.MALFORMED]
        if bad:
            hits.append((t, bad, _socketio_works(ev, t)))
    if not hits:
        return None
    results = [r for _, rs, _ in hits for r in rs]
    broken = list(dict.fromkeys(str(r.error) for r in results if r.error))
    dead = [t for t, _, works in hits if not works]
    severity = Severity.CRITICAL if dead else Severity.WARNING
    shown = "; ".join(broken[:4]) + (f" (and {len(broken) - 4} more)" if len(broken) > 4 else "")
    impact = (
        f"No Socket.IO client can connect to {ev.names(dead)}: the answers cannot be read as HTTP, "
        "WebSocket or Engine.IO."
        if dead
        else "Socket.IO still connects over another transport, but the probes listed fail on answers "
        "no client can read."
    )
    return Draft(
        severity=severity,
        title=f"The answers break the protocol: {ev.names(t for t, _, _ in hits)}",
        summary=f"{len(results)} probe(s) got answers that break the protocol: {shown}. {impact}",
        recommendation=(
            "Find what answers on that address and port (`curl -v URL`, the balancer's and the server's "
            "logs): a non-HTTP service, a TLS port spoken to in plain HTTP, a proxy that mangles "
            "WebSocket upgrades (Sec-WebSocket-Accept, frames), or a server that sends more than a "
            "client accepts. Point the client at the Socket.IO server itself to compare."
        ),
        evidence=refs(results),
        targets=tuple(t for t, _, _ in hits),
    )


_REDIRECTS = {
    RedirectRefusal.LOOP: "in a loop",
    RedirectRefusal.CROSS_ORIGIN: "to another origin (not followed: it would get the client's headers)",
    RedirectRefusal.TOO_MANY: "through more hops than a client follows",
    RedirectRefusal.UNFOLLOWABLE: "to a location that is no http(s) URL",
}


@rule(
    FindingId.REDIRECT_LOOP,
    severities={Severity.CRITICAL},
    # "/ redirects, nothing to fix" is wrong comfort when the Socket.IO path redirects too.
    supersedes={FindingId.ROOT_REDIRECT},
    title="The Socket.IO path redirects where no client can follow",
    means="Requests to /socket.io/ are redirected (in a loop, to another origin, too often, or to no "
    "http(s) URL): Socket.IO clients never reach a server.",
    evidence="A target's Socket.IO probes end in redirects, none of them works, and the chain is recorded "
    "hop by hop.",
)
def redirect_loop(ev: Evidence) -> Draft | None:
    hits = []
    for t in ev.targets:
        redirected = [r for r in ev.socket(t) if r.outcome is Outcome.REDIRECT]
        if redirected and not _socketio_works(ev, t):
            hits.append((t, redirected))
    if not hits:
        return None
    results = [r for _, rs in hits for r in rs]
    kinds = {
        RedirectRefusal(k) for r in results if (k := r.detail.get("redirect_refused")) in set(RedirectRefusal)
    }
    how = (
        "; ".join(_REDIRECTS[k] for k in RedirectRefusal if k in kinds)
        or "to somewhere that is not Engine.IO"
    )
    locations = sorted(
        {str(r.headers["location"]) for r in results if r.headers.get("location")}
        | {
            str(hop.get("location"))
            for r in results
            for hop in r.detail.get("redirects") or []
            if hop.get("location")
        }
    )
    return Draft(
        severity=Severity.CRITICAL,
        title=f"The Socket.IO path redirects where no client can follow: {ev.names(t for t, _ in hits)}",
        summary=(
            f"Requests to /socket.io/ on {ev.names(t for t, _ in hits)} are redirected {how}"
            + (f" (Location: {', '.join(locations[:3])})" if locations else "")
            + ". No Socket.IO client reaches a server there."
        ),
        recommendation=(
            "Serve /socket.io/ without a redirect: fix the balancer's or the CDN's rewrite rules (an "
            "http-to-https or trailing-slash rule that points back at itself, a host rewrite to another "
            "domain), or give the client the final URL."
        ),
        evidence=refs(results),
        targets=tuple(t for t, _ in hits),
    )
