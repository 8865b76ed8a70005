"""Discovery: does GET /inscriptions/websocket-servers send clients somewhere that works?"""

from __future__ import annotations

from kiloscribe_lab.diagnosis.evidence import Evidence, Health, refs, targets_of
from kiloscribe_lab.diagnosis.registry import Draft, rule
from kiloscribe_lab.names import FindingId, Outcome, ProbeName, Severity


def _origin(url: str) -> str:
    return url.split("://", 1)[-1].rstrip("/")


@rule(
    FindingId.DISCOVERY_PROBLEM,
    severities={Severity.WARNING},
    title="Discovery points clients at trouble",
    means="GET /inscriptions/websocket-servers fails, lists servers clients cannot use, or recommends one "
    "that does not work.",
    evidence="The discovery call fails or its document has problems, or the server the SDK would choose is "
    "down, stalled or not Socket.IO.",
)
def discovery_problem(ev: Evidence) -> Draft | None:
    found = ev.where(ProbeName.DISCOVERY)
    if not found:
        return None
    problems: list[str] = []
    for r in found:
        if r.outcome is Outcome.AUTH_REJECTED:
            if not ev.api_key_env:
                problems.append("the API refused the call without a key (pass --api-key-env NAME)")
            continue  # with a key configured, auth-rejected says it
        if not r.ok:
            problems.append(f"the discovery call failed: {r.error or r.outcome.value}")
        problems += [str(p) for p in r.detail.get("problems") or []]
        chosen = r.detail.get("chosen")
        # wss://host and https://host are one server: compare without the scheme.
        same = [t for t in ev.targets if isinstance(chosen, str) and _origin(t) == _origin(chosen)]
        for target in same:
            h = ev.health(target)
            # BLOCKED is websocket-blocked's finding, on the same evidence.
            if h.health in {Health.DOWN, Health.STALLED, Health.OTHER}:
                problems.append(f"the server the SDK would choose ({chosen}) is {h.health.value}")
    if not problems:
        return None
    return Draft(
        severity=Severity.WARNING,
        title="Discovery points clients at trouble",
        summary="; ".join(problems) + ".",
        recommendation=(
            "Fix GET /inscriptions/websocket-servers: list only servers that answer, mark the "
            "others inactive, and make `recommended` one of the active ones. The SDK trusts "
            "`recommended` first, then the first active server."
        ),
        evidence=refs(found),
        targets=targets_of(found),
    )
