"""Protocol: is what answers Engine.IO v4 / Socket.IO at all?"""

from __future__ import annotations

from kiloscribe_lab.diagnosis.evidence import Evidence, path_works, refs, targets_of
from kiloscribe_lab.diagnosis.registry import Draft, rule
from kiloscribe_lab.names import FindingId, Outcome, ProbeName, Severity


@rule(
    FindingId.NOT_SOCKETIO,
    severities={Severity.CRITICAL},
    title="The endpoint does not speak Engine.IO / Socket.IO",
    means="Whatever serves the URL (a catch-all site, a maintenance page, a wrong upstream) is not the "
    "Socket.IO server.",
    evidence="The Engine.IO handshake gets an answer that is not Engine.IO, and no Socket.IO probe of the "
    "target works.",
)
def not_socketio(ev: Evidence) -> Draft | None:
    hits = []
    for t in ev.targets:
        handshakes = ev.where(ProbeName.ENGINEIO_HANDSHAKE, target=t)
        alien = [
            r for r in handshakes if r.detail.get("not_engineio") and r.outcome is Outcome.PROTOCOL_MISMATCH
        ]
        if alien and not any(path_works(r) for r in ev.socket(t)):
            hits.append((t, alien))
    if not hits:
        return None
    what = sorted({str(r.detail["not_engineio"]) for _, rs in hits for r in rs})
    return Draft(
        severity=Severity.CRITICAL,
        title="The endpoint does not speak Engine.IO / Socket.IO",
        summary=(
            f"GET /socket.io/?EIO=4&transport=polling answered with {'; '.join(what)}: not an "
            "Engine.IO handshake. Whatever serves this URL is not the Socket.IO server."
        ),
        recommendation=(
            "Check the URL (host and path: the SDK uses /socket.io/), and the proxy's routing: a "
            "catch-all site, a maintenance page or a wrong upstream answers instead of the backend."
        ),
        evidence=refs(r for _, rs in hits for r in rs),
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
