"""The SDK replay's rules, and the SDK's auth results feeding the auth findings, on synthetic
sdk_replay results (the rules run with ``KEY_ENV`` configured, as sdk-check does)."""

from __future__ import annotations

from typing import Any

from kiloscribe_lab.diagnosis import diagnose
from kiloscribe_lab.diagnosis.rules.auth import auth_path_healthy, auth_rejected
from kiloscribe_lab.diagnosis.rules.sdk import sdk_fallback_not_effective, sdk_runtime_missing_websocket
from kiloscribe_lab.names import FindingId, Outcome, ProbeName, Severity
from kiloscribe_lab.results import ProbeResult, Timings
from tests.unit.diagnosis.helpers import KEY_ENV, fire, quiet

T = "wss://edge.example"
U = "wss://other.example"
TIMEOUT = "WebSocket connection timeout"
INVALID = "WebSocket connection failed: Invalid API key"


def sr(
    variant: str,
    outcome: Outcome,
    error: str | None = None,
    *,
    target: str = T,
    total: float = 80.0,
    **detail: Any,
) -> ProbeResult:
    runtime = variant.partition(":")[0]
    base: dict[str, Any] = {
        "runtime": runtime,
        "node_version": "v20.20.2",
        "sdk_version": "2.0.9",
        "websocket_global": "none" if runtime == "node-plain" else "flag",
    }
    base.update(detail)
    return ProbeResult(
        ProbeName.SDK_REPLAY,
        target,
        outcome,
        variant=variant,
        error=error,
        timings=Timings(total=total),
        detail=base,
    )


def plain_timeouts(target: str = T) -> list[ProbeResult]:
    return [
        sr("node-plain:connect-valid", Outcome.TIMEOUT, TIMEOUT, target=target, total=10_004.0),
        sr("node-plain:connect-invalid", Outcome.TIMEOUT, TIMEOUT, target=target, total=10_002.0),
        sr(
            "node-plain:detect",
            Outcome.TIMEOUT,
            "detectBestConnection() returned false",
            target=target,
            total=3_004.0,
        ),
    ]


def websocket_works(target: str = T) -> list[ProbeResult]:
    return [
        sr("node-websocket:connect-valid", Outcome.OK, target=target),
        sr("node-websocket:connect-invalid", Outcome.AUTH_REJECTED, INVALID, target=target),
        sr("node-websocket:start-inscription", Outcome.OK, target=target),
    ]


# --- sdk-runtime-missing-websocket ---------------------------------------------------------


def test_runtime_rule_fires_when_plain_times_out_and_a_websocket_global_connects() -> None:
    f = fire(sdk_runtime_missing_websocket, plain_timeouts() + websocket_works())
    assert f is not None and f.severity is Severity.CRITICAL
    assert f.targets == (T,)
    assert "v20.20.2" in f.title and repr(TIMEOUT) in f.summary and repr(INVALID) in f.summary
    assert "--experimental-websocket" in f.summary
    for needle in ("Node 22", "--experimental-websocket", "`ws`", "transports: ['polling']"):
        assert needle in f.recommendation
    assert "sdk_replay:node-plain:connect-valid@wss://edge.example#direct" in f.evidence
    assert "sdk_replay:node-websocket:connect-valid@wss://edge.example#direct" in f.evidence


def test_runtime_rule_needs_the_server_reached_with_a_global() -> None:
    down = [
        sr(
            "node-websocket:connect-valid",
            Outcome.UPSTREAM_ERROR,
            "WebSocket connection failed: websocket error",
        ),
        sr("node-websocket:connect-invalid", Outcome.TIMEOUT, TIMEOUT),
    ]
    quiet(sdk_runtime_missing_websocket, plain_timeouts() + down)
    quiet(sdk_runtime_missing_websocket, plain_timeouts())  # no comparison run


def test_runtime_rule_counts_an_auth_refusal_as_reaching_the_server() -> None:
    refused = [sr("node-websocket:connect-valid", Outcome.AUTH_REJECTED, INVALID)]
    f = fire(sdk_runtime_missing_websocket, plain_timeouts() + refused)
    assert f is not None and "was refused with" in f.summary


def test_runtime_rule_ignores_a_runtime_that_had_a_websocket() -> None:
    had = [sr("node-plain:connect-valid", Outcome.TIMEOUT, TIMEOUT, websocket_global="native")]
    quiet(sdk_runtime_missing_websocket, had + websocket_works())


def test_runtime_rule_pairs_runs_per_target() -> None:
    results = plain_timeouts(T) + websocket_works(U)
    quiet(sdk_runtime_missing_websocket, results)
    f = fire(sdk_runtime_missing_websocket, results + plain_timeouts(U))
    assert f is not None and f.targets == (U,)


def test_runtime_rule_survives_foreign_detail() -> None:
    # Wrong types read as unknown: the rule neither crashes nor trusts them.
    odd = sr("node-plain:connect-valid", Outcome.TIMEOUT, None, node_version=7, websocket_global=["x"])
    f = fire(sdk_runtime_missing_websocket, [odd, *websocket_works()])
    assert f is not None and "Node ?" in f.title
    bare = ProbeResult(ProbeName.SDK_REPLAY, T, Outcome.TIMEOUT, variant="node-plain:connect-valid")
    fire(sdk_runtime_missing_websocket, [bare, *websocket_works()])


# --- sdk-fallback-not-effective ------------------------------------------------------------


def test_fallback_rule_fires_on_a_websocket_failure_with_2_0_9() -> None:
    f = fire(sdk_fallback_not_effective, plain_timeouts())
    assert f is not None and f.severity is Severity.WARNING
    assert "2.0.9" in f.title and "falling back to HTTP" in f.summary and TIMEOUT in f.summary
    assert "connectionMode: 'auto'" in f.recommendation and "startInscription" in f.recommendation
    assert all("detect" not in e for e in f.evidence)  # detection failing is auto mode's business


def test_fallback_rule_fires_on_transport_errors_and_a_lost_ack() -> None:
    for r in (
        sr("node-websocket:connect-valid", Outcome.BLOCKED, "WebSocket connection failed: websocket error"),
        sr("node-websocket:start-inscription", Outcome.TIMEOUT, "no start-inscription ack (5 s)"),
    ):
        fire(sdk_fallback_not_effective, [r])


def test_fallback_rule_quiet_when_the_websocket_path_works_or_only_auth_fails() -> None:
    quiet(sdk_fallback_not_effective, websocket_works())
    refused = [
        sr("node-websocket:connect-valid", Outcome.AUTH_REJECTED, INVALID),
        sr("node-websocket:start-inscription", Outcome.HTTP_ERROR, "Provide fileURL"),
    ]
    quiet(sdk_fallback_not_effective, refused)


def test_fallback_rule_only_for_the_versions_known_to_lack_it() -> None:
    other = [sr("node-plain:connect-valid", Outcome.TIMEOUT, TIMEOUT, sdk_version="2.1.0")]
    quiet(sdk_fallback_not_effective, other)
    unknown = [ProbeResult(ProbeName.SDK_REPLAY, T, Outcome.TIMEOUT, variant="node-plain:connect-valid")]
    quiet(sdk_fallback_not_effective, unknown)


# --- the SDK's auth results feed the auth findings -----------------------------------------


def test_invalid_key_refused_by_the_sdk_makes_the_auth_path_healthy() -> None:
    f = fire(auth_path_healthy, websocket_works())
    assert f is not None and repr(INVALID) in f.summary
    assert f.evidence == ("sdk_replay:node-websocket:connect-invalid@wss://edge.example#direct",)


def test_valid_key_refused_by_the_sdk_is_auth_rejected_and_supersedes_healthy() -> None:
    results = [
        sr("node-websocket:connect-valid", Outcome.AUTH_REJECTED, INVALID),
        sr("node-websocket:connect-invalid", Outcome.AUTH_REJECTED, INVALID),
    ]
    f = fire(auth_rejected, results)
    assert f is not None and f.severity is Severity.CRITICAL and "$KILOSCRIBE_API_KEY" in f.title
    ids = [x.id for x in diagnose(results, KEY_ENV)]
    assert FindingId.AUTH_REJECTED in ids and FindingId.AUTH_PATH_HEALTHY not in ids


def test_timeouts_feed_no_auth_finding() -> None:
    quiet(auth_path_healthy, plain_timeouts())
    quiet(auth_rejected, plain_timeouts())


def test_lab_healthy_shape_gives_the_expected_findings_most_severe_first() -> None:
    found = diagnose(plain_timeouts() + websocket_works(), KEY_ENV)
    assert [f.id for f in found] == [
        FindingId.SDK_RUNTIME_MISSING_WEBSOCKET,
        FindingId.SDK_FALLBACK_NOT_EFFECTIVE,
        FindingId.AUTH_PATH_HEALTHY,
    ]
