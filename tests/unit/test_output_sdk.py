"""sdk-check's human output: a table per runtime, the SDK's log lines, the findings."""

from __future__ import annotations

from kiloscribe_lab.names import FindingId, Outcome, ProbeName, Severity
from kiloscribe_lab.output import Style, sdk_notices
from kiloscribe_lab.output import render_sdk_check as render_text
from kiloscribe_lab.results import Finding, ProbeResult, Timings


def result(variant: str, outcome: Outcome, error: str | None, **detail: object) -> ProbeResult:
    base: dict[str, object] = {
        "runtime": variant.partition(":")[0],
        "mode": "plain" if variant.startswith("node-plain") else "websocket",
        "node_version": "v20.20.2",
        "node_path": "/usr/bin/node",
        "websocket_global": "none" if variant.startswith("node-plain") else "flag",
        "sdk_package": "@kiloscribe/inscription-sdk",
        "sdk_version": "2.0.9",
        "label": "edge",
    }
    base.update(detail)
    return ProbeResult(
        ProbeName.SDK_REPLAY,
        "wss://e.example",
        outcome,
        variant=variant,
        error=error,
        timings=Timings(total=10_004.4),
        detail=base,
    )


def test_render_groups_by_runtime_and_quotes_the_sdk() -> None:
    results = [
        result("node-plain:connect-valid", Outcome.TIMEOUT, "WebSocket connection timeout"),
        result("node-websocket:connect-valid", Outcome.OK, None, sdk_log=["info: WebSocket connected"]),
    ]
    finding = Finding(FindingId.SDK_RUNTIME_MISSING_WEBSOCKET, Severity.CRITICAL, "T", "S", "R")
    text = render_text(results, [finding], Style(width=200))
    assert text.splitlines()[0] == "sdk-check edge  wss://e.example  (@kiloscribe/inscription-sdk 2.0.9)"
    assert "node-plain: node v20.20.2 as run (/usr/bin/node; no global WebSocket)" in text
    assert "global WebSocket from --experimental-websocket" in text
    assert "  connect-valid      timeout            10004  WebSocket connection timeout" in text
    assert "node-websocket:connect-valid       info: WebSocket connected" in text
    assert "[CRITICAL] sdk-runtime-missing-websocket: T" in text


def test_render_without_findings_says_none() -> None:
    assert render_text([], []).endswith("Findings\n  none")


def test_what_did_not_run_is_said_under_the_header() -> None:
    assert sdk_notices(api_key_env="K", api_base="https://a.example/api", inscription=True) == []
    notices = sdk_notices(api_key_env=None, api_base=None, inscription=False)
    assert len(notices) == 2 and "--api-key-env" in notices[0] and "--api-base" in notices[1]
    [no_inscription] = sdk_notices(api_key_env="K", api_base="https://a.example/api", inscription=False)
    assert "start-inscription was not sent" in no_inscription
    results = [result("node-plain:connect-invalid", Outcome.AUTH_REJECTED, "Invalid API key")]
    lines = render_text(results, [], Style(width=80), notices).splitlines()
    assert lines[0].startswith("sdk-check edge") and lines[1].startswith("Not checked: no --api-key-env")
    assert all(len(line) <= 80 for line in lines) and "\x1b" not in "\n".join(lines)
