"""Application: the Socket.IO session works, and the application behind it does not answer."""

from __future__ import annotations

from kiloscribe_lab.diagnosis.evidence import Evidence, refs, targets_of
from kiloscribe_lab.diagnosis.registry import Draft, rule
from kiloscribe_lab.names import FindingId, FlowStep, Outcome, ProbeName, SdkStep, Severity, parse_sdk_variant
from kiloscribe_lab.results import ProbeResult

SDK_ACK_WAIT_S = 60  # inscribeViaWebSocket's wait for the ack (kiloscribe-contract.md)


def _unacknowledged(r: ProbeResult) -> bool:
    if r.outcome is not Outcome.TIMEOUT:
        return False
    if r.probe == ProbeName.SDK_FLOW:
        return r.detail.get("failed_step") == FlowStep.START_INSCRIPTION
    return r.probe == ProbeName.SDK_REPLAY and parse_sdk_variant(r.variant)[1] is SdkStep.START_INSCRIPTION


@rule(
    FindingId.INSCRIPTION_NOT_ACKNOWLEDGED,
    severities={Severity.CRITICAL},
    title="start-inscription is never acknowledged",
    means="The Socket.IO connect works and the application does not answer start-inscription: every "
    "inscription hangs until the SDK gives up. Not a connection timeout.",
    evidence="sdk_flow (or the SDK replay) connected, emitted start-inscription and got no ack within its "
    "own wait.",
)
def inscription_not_acknowledged(ev: Evidence) -> Draft | None:
    hits = [r for r in ev.results if _unacknowledged(r)]
    if not hits:
        return None
    waits = sorted(
        {float(r.detail["ack_wait_s"]) for r in hits if isinstance(r.detail.get("ack_wait_s"), int | float)}
    )
    waited = f"{max(waits):g} s" if waits else "the probe's deadline"
    targets = targets_of(hits)
    return Draft(
        severity=Severity.CRITICAL,
        title=f"start-inscription is never acknowledged ({ev.names(targets)})",
        summary=(
            f"The Socket.IO connect worked (CONNECT accepted with the configured key), then "
            f"start-inscription got no ack within {waited}. The connection is fine: the application "
            f"did not answer. SDK 2.0.9 waits {SDK_ACK_WAIT_S} s for that ack and then fails the "
            "inscription; no 'WebSocket connection timeout' is involved."
        ),
        recommendation=(
            "Look at the server's log for the job that start-inscription should have started (a hung "
            "call to a downstream service, a handler that throws before acknowledging)."
        ),
        evidence=refs(hits),
        targets=targets,
        path=ev.fingerprint(targets),
        fix_last=True,
    )
