"""Edge: answers a CDN or a rate limiter gives in the service's place (a bot challenge, 429s)."""

from __future__ import annotations

from kiloscribe_lab.diagnosis.evidence import Evidence, path_works, pct, refs, refusal_of, targets_of
from kiloscribe_lab.diagnosis.registry import Draft, rule
from kiloscribe_lab.names import FindingId, PlainPath, ProbeName, Severity
from kiloscribe_lab.outcomes import Refusal
from kiloscribe_lab.results import ProbeResult


@rule(
    FindingId.CDN_CHALLENGE,
    severities={Severity.CRITICAL},
    # Discovery pointing at the challenged edge is the same fault, seen earlier.
    supersedes={FindingId.DISCOVERY_PROBLEM},
    title="The edge answers Socket.IO with a bot challenge",
    means="A CDN answers the Socket.IO path with a challenge page (Cloudflare: 403, cf-mitigated: "
    "challenge): no Socket.IO client can solve it, browsers included (XHR and WebSocket cannot).",
    evidence="A polling or WebSocket request at /socket.io/ answered 403 with cf-mitigated: challenge.",
)
def cdn_challenge(ev: Evidence) -> Draft | None:
    hits = [r for r in ev.results if r.probe != ProbeName.DISCOVERY and refusal_of(r) is Refusal.CHALLENGE]
    if not hits:
        return None
    targets = targets_of(hits)
    kinds = sorted({"WebSocket" if "websocket" in f"{r.probe} {r.variant}" else "polling" for r in hits})
    rays = sorted({str(r.headers["cf-ray"]) for r in hits if r.headers.get("cf-ray")})
    return Draft(
        severity=Severity.CRITICAL,
        title=f"The edge answers Socket.IO with a bot challenge ({ev.names(targets)})",
        summary=(
            f"{len(hits)} {' and '.join(kinds)} request(s) to {ev.names(targets)} were answered 403 "
            "with `cf-mitigated: challenge`: the edge's bot check (a 'Just a moment...' page), not the "
            "service. A challenge is solved by a browser *page*; an XHR poll, a WebSocket and the SDK's "
            "Node client cannot, so every Socket.IO client fails ('xhr poll error' / 'websocket error' "
            "403)." + (f" cf-ray: {', '.join(rays[:2])}." if rays else "")
        ),
        recommendation="Clients cannot work around it: the fix is the edge's.",
        evidence=refs(hits),
        targets=targets,
        path=ev.fingerprint(targets),
    )


def _answers(r: ProbeResult) -> list[tuple[int, str | None]]:
    """(status, Retry-After) of every Socket.IO request one result saw: polling requests and
    WebSocket handshakes (a limit on /socket.io/ counts both)."""
    if r.probe == ProbeName.STICKY_SESSION:
        exchanges = list(r.detail.get("open_attempts") or []) + list(r.detail.get("answers") or [])
        return [(int(e.get("status") or 0), e.get("retry_after")) for e in exchanges]
    if r.probe in {ProbeName.SOCKETIO_CONNECT, ProbeName.CONNECT_STATS, ProbeName.SDK_FLOW}:
        exchanges = r.detail.get("exchanges") or []
        return [(int(e.get("status") or 0), None) for e in exchanges if isinstance(e, dict)]
    if r.probe in {ProbeName.ENGINEIO_HANDSHAKE, ProbeName.ENGINEIO_UPGRADE, ProbeName.CORS} or (
        r.probe == ProbeName.WEBSOCKET_PLAIN and r.variant == PlainPath.SOCKETIO
    ):
        return [(r.status or 0, r.headers.get("retry-after"))] if r.status else []
    return []


@rule(
    FindingId.RATE_LIMITED,
    severities={Severity.WARNING},
    title="Socket.IO requests are rate-limited",
    means="Something on the path answers part of the Socket.IO requests 429: connects fail, polling sessions "
    "break mid-way, and reconnecting clients make it worse.",
    evidence="Requests at /socket.io/ (polling handshakes and follow-ups, WebSocket handshakes) answered 429 "
    "Too Many Requests.",
)
def rate_limited(ev: Evidence) -> Draft | None:
    hits: list[tuple[str, list[ProbeResult], int, int, set[str]]] = []
    for t in ev.targets:
        limited: list[ProbeResult] = []
        total = count = 0
        retry: set[str] = set()
        for r in ev.where(target=t):
            answers = _answers(r)
            total += len(answers)
            these = [(s, ra) for s, ra in answers if s == 429]
            if these:
                limited.append(r)
                count += len(these)
                retry |= {ra for _, ra in these if ra}
        if limited:
            hits.append((t, limited, count, total, retry))
    if not hits:
        return None
    targets = [t for t, *_ in hits]
    # Which requests a burst limit lets through is the luck of the order: no severity on it.
    nothing_works = not any(path_works(r) for t in targets for r in ev.socket(t))
    count = sum(c for *_, c, _, _ in hits)
    total = sum(n for *_, n, _ in hits)
    retry_after = sorted(set().union(*(ra for *_, ra in hits)))
    limited = [r for _, rs, *_ in hits for r in rs]
    return Draft(
        severity=Severity.WARNING,
        title=f"Socket.IO requests are rate-limited ({ev.names(targets)})",
        summary=(
            f"{count} of {total} requests at /socket.io/ ({pct(count / total if total else 1.0)}) were "
            "answered 429 Too Many Requests"
            + (f", Retry-After: {', '.join(retry_after)} s" if retry_after else ", with no Retry-After")
            + ". A polling session makes a request per message and per heartbeat: a 429 in the middle "
            "ends it ('transport error'), and clients that reconnect at once add to the load."
            + (" No Socket.IO connect got through here." if nothing_works else "")
        ),
        recommendation=(
            "Clients: prefer WebSocket (one request per session), and back off on 429 (socket.io-client's "
            "`reconnectionDelay`/`randomizationFactor`), honouring Retry-After."
        ),
        evidence=refs(limited),
        targets=tuple(targets),
        path=ev.fingerprint(targets),
    )
