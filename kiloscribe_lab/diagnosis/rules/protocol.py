"""Protocol: is what answers Engine.IO v4 / Socket.IO at all?"""

from __future__ import annotations

import re
import urllib.parse

from kiloscribe_lab.diagnosis.evidence import Evidence, path_works, refs, refusal_of, targets_of
from kiloscribe_lab.diagnosis.registry import Draft, rule
from kiloscribe_lab.names import FindingId, Outcome, PlainPath, ProbeName, Severity
from kiloscribe_lab.results import ProbeResult

# engine.io ends an upgrade on a path it does not serve after destroyUpgradeTimeout (1 s),
# without a byte: a WebSocket at /socket.io/ closed silently after about that long.
_ENGINEIO_HANGUP_MS = (900.0, 1500.0)
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
        if as_given and r.status == 101:
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
