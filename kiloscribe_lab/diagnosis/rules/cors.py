"""CORS: what a browser page on ``--origin`` would be allowed (the ``cors`` probes). Without
``--origin`` there is no such evidence, and nothing is said about CORS."""

from __future__ import annotations

from kiloscribe_lab.diagnosis.evidence import Evidence, is_websocket, path_works, refs, targets_of
from kiloscribe_lab.diagnosis.registry import Draft, rule
from kiloscribe_lab.names import CorsCheck, FindingId, Outcome, PlainPath, ProbeName, Severity
from kiloscribe_lab.results import ProbeResult


def _origin_less_websocket_works(ev: Evidence, target: str) -> bool:
    """The same WebSocket without an Origin upgraded: a 403 with one is about the origin."""
    return any(
        path_works(r)
        for r in ev.socket(target)
        if is_websocket(r) and (r.probe, r.variant) != (ProbeName.WEBSOCKET_PLAIN, PlainPath.AS_GIVEN)
    )


def _refused(ev: Evidence, target: str) -> dict[CorsCheck, ProbeResult]:
    refused: dict[CorsCheck, ProbeResult] = {}
    for r in ev.where(ProbeName.CORS, target=target):
        if r.outcome is not Outcome.BLOCKED:
            continue
        check = CorsCheck(r.variant) if r.variant in set(CorsCheck) else None
        if check is CorsCheck.WEBSOCKET and not _origin_less_websocket_works(ev, target):
            continue  # refused with or without an Origin: the path's refusal, not the origin's
        if check is not None:
            refused.setdefault(check, r)
    return refused


@rule(
    FindingId.CORS_ORIGIN_REJECTED,
    severities={Severity.CRITICAL, Severity.WARNING},
    title="A browser page on the given origin is refused (CORS)",
    means="Browsers on that origin cannot use the service: critical when polling and WebSocket are both "
    "refused, a warning when WebSocket-first clients still connect.",
    evidence="With --origin: the polling handshake or preflight without a matching "
    "Access-Control-Allow-Origin, python-socketio's 'not an accepted origin', or a 403 WebSocket that "
    "upgrades without Origin.",
)
def cors_origin_rejected(ev: Evidence) -> Draft | None:
    hits = {t: refused for t in ev.targets if (refused := _refused(ev, t))}
    if not hits:
        return None
    results = [r for refused in hits.values() for r in refused.values()]
    origin = next((str(r.detail["origin"]) for r in results if r.detail.get("origin")), "the given origin")
    allowed = sorted(
        {
            str(r.detail["allow_origin"]).strip()
            for r in ev.where(ProbeName.CORS)
            if r.detail.get("allow_origin") and str(r.detail["allow_origin"]).strip() not in {origin, "*"}
        }
    )
    polling_refused = any(CorsCheck.POLLING in refused for refused in hits.values())
    ws_refused = any(CorsCheck.WEBSOCKET in refused for refused in hits.values())
    critical = polling_refused and ws_refused
    seen = [
        f"{check}: {r.detail.get('why') or r.error}"
        for refused in hits.values()
        for check, r in refused.items()
    ]
    if critical:
        consequence = (
            "Neither polling nor WebSocket works for a page there: no browser client on it connects."
        )
    elif polling_refused:
        consequence = (
            "The polling handshake is refused, so socket.io-client with its default transports (polling "
            "first) fails with 'xhr poll error'; WebSocket-first clients (`transports: ['websocket', "
            "'polling']`, as the SDK) connect, since browsers apply no CORS to WebSockets."
        )
    elif ws_refused:
        consequence = (
            "The server refuses the WebSocket from that origin, so WebSocket-first clients fail; polling "
            "clients connect."
        )
    else:
        consequence = "Only the preflight is refused: clients that add headers (extraHeaders) fail."
    return Draft(
        severity=Severity.CRITICAL if critical else Severity.WARNING,
        title=f"A browser page on {origin} is refused (CORS)",
        summary=(
            f"As a browser page on {origin} would: {'; '.join(seen)}. {consequence}"
            + (f" The server allows {', '.join(allowed)}." if allowed else "")
            + " Node clients (the SDK) send no Origin and are not affected."
        ),
        recommendation="If that origin should not connect, nothing is wrong: the check works.",
        evidence=refs(results),
        targets=targets_of(results),
        path=ev.fingerprint(hits),
        fill={"ORIGIN": origin, "ALLOWED": "".join(f"'{a}', " for a in allowed)},
    )
