"""Expected behaviour: answers that look like failures and are not (info findings, so the
seed's false conclusions are named and set aside)."""

from __future__ import annotations

from kiloscribe_lab.diagnosis.evidence import WEBSOCKET_VARIANTS, Evidence, path_works, refs, targets_of
from kiloscribe_lab.diagnosis.registry import Draft, rule
from kiloscribe_lab.names import FindingId, Outcome, PlainPath, ProbeName, Severity


@rule(
    FindingId.PLAIN_WEBSOCKET_PROTOCOL_MISMATCH,
    severities={Severity.INFO},
    title="Plain WebSocket fails where Socket.IO works",
    means="A plain WebSocket client (wscat) at the URL as given is the wrong tool for a Socket.IO server: "
    "expected, not an outage.",
    evidence="The plain WebSocket probe at the URL as given fails while Socket.IO connects to the same "
    "target.",
)
def plain_websocket_protocol_mismatch(ev: Evidence) -> Draft | None:
    hits = []
    for t in ev.targets:
        plain = [r for r in ev.where(ProbeName.WEBSOCKET_PLAIN, PlainPath.AS_GIVEN, t) if not r.ok]
        socketio = [
            r
            for r in ev.where(target=t)
            if path_works(r)
            and (r.probe == ProbeName.SOCKETIO_CONNECT or (r.probe, r.variant) in WEBSOCKET_VARIANTS)
        ]
        if plain and socketio:
            hits.append((t, plain + socketio[:2]))
    if not hits:
        return None
    statuses = sorted(
        {
            str(r.status)
            for _, rs in hits
            for r in rs
            if r.probe == ProbeName.WEBSOCKET_PLAIN and r.variant == PlainPath.AS_GIVEN and r.status
        }
    )
    return Draft(
        severity=Severity.INFO,
        title="Plain WebSocket fails where Socket.IO works: expected, not an outage",
        summary=(
            f"A plain WebSocket client (what wscat does) at the URL as given gets "
            f"{'/'.join(statuses) or 'no upgrade'}, while Socket.IO at /socket.io/ connects on the "
            "same target. The server speaks Socket.IO (Engine.IO v4): a plain WebSocket client "
            "is the wrong tool, not evidence of a fault."
        ),
        recommendation=(
            "Test with a Socket.IO client (`kiloscribe-lab probe URL`, or socket.io-client with "
            "the SDK's options); use wscat only on "
            "wss://HOST/socket.io/?EIO=4&transport=websocket, where the server's first frame is "
            "its Engine.IO open packet 0{...}."
        ),
        evidence=refs(r for _, rs in hits for r in rs),
        targets=tuple(t for t, _ in hits),
    )


@rule(
    FindingId.ROOT_REDIRECT,
    severities={Severity.INFO},
    title="/ answers with a redirect",
    means="The root path redirects; the socket lives at /socket.io/, which the other probes test directly. "
    "Nothing to fix.",
    evidence="The upgrade or plain WebSocket probe at the URL as given is answered with a redirect.",
)
def root_redirect(ev: Evidence) -> Draft | None:
    hits = [
        r
        for r in ev.results
        if r.probe in {ProbeName.HTTP_UPGRADE, ProbeName.WEBSOCKET_PLAIN}
        and r.variant != PlainPath.SOCKETIO
        and r.outcome is Outcome.REDIRECT
    ]
    if not hits:
        return None
    locations = sorted({str(r.headers.get("location")) for r in hits if r.headers.get("location")})
    statuses = sorted({str(r.status) for r in hits if r.status})
    return Draft(
        severity=Severity.INFO,
        title=f"/ answers {'/'.join(statuses)}: a redirect, not a failure",
        summary=(
            f"The root path redirects ({'/'.join(statuses)} to {', '.join(locations) or '?'}). "
            "That is where the seed's curl and wscat went; the socket lives at /socket.io/, which "
            "the other probes test directly."
        ),
        recommendation="Nothing to fix. Point upgrade tests at /socket.io/, not at /.",
        evidence=refs(hits),
        targets=targets_of(hits),
    )
