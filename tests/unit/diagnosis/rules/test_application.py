"""Application rules: the session works, the application does not answer (FACTS.md §3.4)."""

from __future__ import annotations

from kiloscribe_lab.diagnosis import diagnose
from kiloscribe_lab.diagnosis.rules.application import inscription_not_acknowledged
from kiloscribe_lab.names import (
    FindingId,
    FlowStep,
    Outcome,
    ProbeName,
    SdkMode,
    SdkStep,
    Severity,
    sdk_variant,
)
from kiloscribe_lab.results import ProbeResult
from tests.unit.diagnosis import facts
from tests.unit.diagnosis.helpers import A, fire, pr, quiet, working


def _flow(outcome: Outcome, failed_step: FlowStep | None, **detail: object) -> list[ProbeResult]:
    if failed_step is not None:
        detail["failed_step"] = failed_step
    return [pr(ProbeName.SDK_FLOW, "", A, outcome, 101, headers=facts.UVICORN, **detail)]


def test_inscription_not_acknowledged_when_the_connect_worked() -> None:
    flow = _flow(
        Outcome.TIMEOUT,
        FlowStep.START_INSCRIPTION,
        ack_wait_s=3.01,
        sdk_message="no start-inscription ack within 3.01 s",
    )
    results = working(A, headers=facts.UVICORN) + flow
    f = fire(inscription_not_acknowledged, results)
    assert f.severity is Severity.CRITICAL
    assert "within 3.01 s" in f.summary and "connect worked" in f.summary
    assert "WebSocket connection timeout' is involved" in f.summary  # said only to deny it
    assert "return its answer on every path" in f.recommendation  # python-socketio's words (server: uvicorn)
    # the connect worked: no finding says otherwise
    assert [x.id for x in diagnose(results) if x.severity is not Severity.INFO] == [
        FindingId.INSCRIPTION_NOT_ACKNOWLEDGED
    ]


def test_inscription_not_acknowledged_from_the_sdk_replay() -> None:
    replay = pr(
        ProbeName.SDK_REPLAY,
        sdk_variant(SdkMode.WEBSOCKET, SdkStep.START_INSCRIPTION),
        A,
        Outcome.TIMEOUT,
        error="no start-inscription ack within 5 s",
    )
    fire(inscription_not_acknowledged, [*working(A), replay])


def test_inscription_not_acknowledged_quiet_when_the_connect_timed_out() -> None:
    """A connect that never finished is the connect's fault, not the application's."""
    quiet(inscription_not_acknowledged, _flow(Outcome.TIMEOUT, FlowStep.CONNECT))


def test_inscription_not_acknowledged_quiet_for_a_refused_inscription() -> None:
    """An ack that says no is the application's answer, not its silence."""
    quiet(inscription_not_acknowledged, _flow(Outcome.HTTP_ERROR, FlowStep.START_INSCRIPTION))
    quiet(inscription_not_acknowledged, working(A) + _flow(Outcome.OK, None))
