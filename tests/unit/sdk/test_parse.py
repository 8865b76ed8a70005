"""The replay program's JSON lines -> sdk_replay ProbeResults: outcomes, the SDK's messages kept
verbatim, missing steps explained, secrets scrubbed, stray output ignored."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from kiloscribe_lab.names import Outcome, ProbeName
from kiloscribe_lab.results import ProbeResult
from kiloscribe_lab.sdk.parse import (
    ReplayRun,
    connect_outcome,
    read_records,
    results_from_run,
    status_outcome,
    transport_outcome,
)

FIXTURES = Path(__file__).parent / "fixtures"
TARGET = "wss://edge.example"
ALL_STEPS = ("connect-valid", "connect-invalid", "detect", "discover")
RUNTIME: dict[str, Any] = {
    "kind": "runtime",
    "mode": "plain",
    "node_version": "v20.20.2",
    "node_path": "/usr/bin/node",
    "exec_argv": [],
    "websocket_global": "none",
    "xmlhttprequest": False,
    "t0_epoch_ms": 1_795_000_000_000.0,
    "sdk_version": "2.0.9",
    "import_ms": 450.0,
}


def step(name: str, result: str, **extra: Any) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "kind": "step",
        "step": name,
        "credential": "invalid" if name == "connect-invalid" else "valid",
        "sdk_timer_ms": {"detect": 3000, "discover": None}.get(name, 10000),
        "logs": [],
        "observed": {},
        "started_ms": 500.0,
        "elapsed_ms": 80.0,
        "result": result,
    }
    rec.update(extra)
    return rec


def run_of(*records: dict[str, Any], mode: str = "plain", **kw: Any) -> list[ProbeResult]:
    stdout = "".join(json.dumps(r) + "\n" for r in records)
    args: dict[str, Any] = {"mode": mode, "target": TARGET, "stdout": stdout, "expected_steps": ALL_STEPS}
    args.update(kw)
    return results_from_run(ReplayRun(**args))


def by_step(results: list[ProbeResult]) -> dict[str, ProbeResult]:
    return {r.variant.partition(":")[2]: r for r in results}


def fixture_run(mode: str) -> list[ProbeResult]:
    stdout = (FIXTURES / f"healthy-{mode}.jsonl").read_text()
    return results_from_run(ReplayRun(mode=mode, target=TARGET, stdout=stdout, expected_steps=ALL_STEPS))


# --- recorded output of the real program (SDK 2.0.9, Node 20, the healthy lab) ---------------


def test_recorded_plain_run_times_out_with_the_sdks_message() -> None:
    rs = by_step(fixture_run("plain"))
    assert set(rs) == set(ALL_STEPS)
    for name in ("connect-valid", "connect-invalid"):
        assert rs[name].outcome is Outcome.TIMEOUT
        assert rs[name].error == "WebSocket connection timeout"
        assert rs[name].detail["sdk_message"] == "WebSocket connection timeout"
        assert 9_900 <= (rs[name].timings.total or 0) <= 11_000
        assert rs[name].detail["observed"]["engine"]["engine"] == "opening"
    assert rs["detect"].outcome is Outcome.TIMEOUT
    assert rs["discover"].outcome is Outcome.OK  # the REST path works in the same runtime
    for r in rs.values():
        assert r.probe == ProbeName.SDK_REPLAY and r.variant.startswith("node-plain:")
        assert r.detail["node_version"].startswith("v20.")
        assert r.detail["websocket_global"] == "none" and r.detail["mode"] == "plain"


def test_recorded_websocket_run_connects_and_gets_the_ack() -> None:
    rs = by_step(fixture_run("websocket"))
    assert rs["connect-valid"].outcome is Outcome.OK and rs["connect-valid"].error is None
    assert rs["connect-invalid"].outcome is Outcome.AUTH_REJECTED
    assert rs["connect-invalid"].error == "WebSocket connection failed: Invalid API key"
    assert rs["detect"].outcome is Outcome.OK
    si = rs["start-inscription"]
    assert si.outcome is Outcome.OK and si.detail["ack"]["success"] is True
    assert "file" in si.detail["observed"]["payload_keys"]
    assert "info: WebSocket connected" in rs["connect-valid"].detail["sdk_log"]
    assert rs["connect-valid"].detail["websocket_global"] == "flag"


def test_started_at_comes_from_nodes_clock() -> None:
    rs = by_step(run_of(RUNTIME, step("connect-valid", "resolved", started_ms=1500.0), expected_steps=()))
    assert rs["connect-valid"].started_at == "2026-11-18T11:06:41.500Z"


# --- connect outcomes -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "observed", "outcome"),
    [
        ("WebSocket connection timeout", {}, Outcome.TIMEOUT),
        (
            "WebSocket connection failed: Invalid API key",
            {"connect_errors": [{"message": "Invalid API key", "type": None}]},
            Outcome.AUTH_REJECTED,
        ),
        (
            "WebSocket connection failed: Invalid namespace",
            {"connect_errors": [{"message": "Invalid namespace", "type": None}]},
            Outcome.PROTOCOL_MISMATCH,
        ),
        (
            "WebSocket connection failed: websocket error",
            {
                "connect_errors": [{"message": "websocket error", "type": "TransportError"}],
                "transport_check": {"kind": "refused", "code": "ECONNREFUSED"},
            },
            Outcome.REFUSED,
        ),
        (
            "WebSocket connection failed: websocket error",
            {
                "connect_errors": [{"message": "websocket error", "type": "TransportError"}],
                "transport_check": {"kind": "http", "status": 403},
            },
            Outcome.BLOCKED,
        ),
        (
            "WebSocket connection failed: websocket error",
            {
                "connect_errors": [
                    {"type": "TransportError", "description": "Unexpected server response: 502"}
                ]
            },
            Outcome.UPSTREAM_ERROR,
        ),
        ("WebSocket connection failed: websocket error", {}, Outcome.BLOCKED),
        ("WebSocket URL not configured", {}, Outcome.MALFORMED),
    ],
)
def test_connect_outcome(message: str, observed: dict[str, Any], outcome: Outcome) -> None:
    assert connect_outcome(message, observed) is outcome


@pytest.mark.parametrize(
    ("check", "description", "outcome"),
    [
        ({"kind": "tls", "code": "UNABLE_TO_GET_ISSUER_CERT_LOCALLY"}, None, Outcome.TLS_ERROR),
        ({"kind": "dns"}, None, Outcome.DNS_ERROR),
        ({"kind": "timeout"}, None, Outcome.TIMEOUT),
        ({"kind": "http", "status": 308}, None, Outcome.REDIRECT),
        ({"kind": "http", "status": True}, "ECONNRESET", Outcome.RESET),  # a bool is no status
        (None, "connect ECONNREFUSED 127.0.0.1:1; ECONNREFUSED", Outcome.REFUSED),
        (None, "self-signed certificate", Outcome.TLS_ERROR),
        (None, 42, Outcome.BLOCKED),
    ],
)
def test_transport_outcome(check: Any, description: Any, outcome: Outcome) -> None:
    assert transport_outcome(check, description) is outcome


def test_status_outcome() -> None:
    assert status_outcome(101) is Outcome.RESET
    assert status_outcome(503) is Outcome.UPSTREAM_ERROR
    assert status_outcome(400) is Outcome.BLOCKED


def test_transport_error_keeps_the_sdks_message_and_the_status() -> None:
    observed = {
        "connect_errors": [{"message": "websocket error", "type": "TransportError"}],
        "transport_check": {"kind": "http", "status": 502},
    }
    rec = step(
        "connect-valid",
        "rejected",
        sdk_message="WebSocket connection failed: websocket error",
        observed=observed,
    )
    r = by_step(run_of(RUNTIME, rec, expected_steps=()))["connect-valid"]
    assert r.outcome is Outcome.UPSTREAM_ERROR and r.status == 502
    assert r.error == "WebSocket connection failed: websocket error"


# --- detect, discover, start-inscription ----------------------------------------------------


def test_detect_false_at_its_timer_is_a_timeout() -> None:
    r = by_step(
        run_of(RUNTIME, step("detect", "resolved", value=False, elapsed_ms=3004.0), expected_steps=())
    )
    assert r["detect"].outcome is Outcome.TIMEOUT and r["detect"].detail["chooses"] == "http"


def test_detect_false_early_takes_the_reason_from_the_connect_with_the_same_key() -> None:
    refused = step(
        "connect-valid",
        "rejected",
        sdk_message="WebSocket connection failed: Invalid API key",
        observed={"connect_errors": [{"message": "Invalid API key", "type": None}]},
    )
    rs = by_step(
        run_of(RUNTIME, refused, step("detect", "resolved", value=False, elapsed_ms=40.0), expected_steps=())
    )
    assert rs["detect"].outcome is Outcome.AUTH_REJECTED
    assert rs["detect"].detail["outcome_from"] == "node-plain:connect-valid"


def test_discover_refused_key_and_empty_list() -> None:
    refused = step("discover", "resolved", value=None, observed={"http": {"status": 401, "message": "401"}})
    empty = step("discover", "resolved", value=None, observed={"http": {"status": 200}})
    assert by_step(run_of(RUNTIME, refused, expected_steps=()))["discover"].outcome is Outcome.AUTH_REJECTED
    assert by_step(run_of(RUNTIME, empty, expected_steps=()))["discover"].outcome is Outcome.MALFORMED


def test_discover_network_failure_says_the_sdks_log_line() -> None:
    rec = step(
        "discover",
        "resolved",
        value=None,
        logs=[{"level": "debug", "text": "Could not fetch WebSocket servers, will use HTTP only"}],
        observed={"http": {"status": None, "code": "ECONNREFUSED", "message": "connect ECONNREFUSED"}},
    )
    r = by_step(run_of(RUNTIME, rec, expected_steps=()))["discover"]
    assert r.outcome is Outcome.REFUSED
    assert r.error == "Could not fetch WebSocket servers, will use HTTP only"


def test_start_inscription_is_expected_once_connect_valid_connected() -> None:
    rs = by_step(
        run_of(
            RUNTIME,
            step("connect-valid", "resolved"),
            expected_steps=("connect-valid",),
            returncode=None,
            deadline_s=36.0,
        )
    )
    assert rs["start-inscription"].outcome is Outcome.TIMEOUT
    assert "deadline (36 s)" in str(rs["start-inscription"].error)


@pytest.mark.parametrize(
    ("rec", "outcome", "error"),
    [
        (step("start-inscription", "ack", ack={"success": True}, ack_ms=600.0), Outcome.OK, None),
        (
            step(
                "start-inscription",
                "rejected",
                sdk_message="Provide fileURL",
                ack={"success": False, "error": "Provide fileURL"},
            ),
            Outcome.HTTP_ERROR,
            "Provide fileURL",
        ),
        (
            step(
                "start-inscription",
                "rejected",
                sdk_message="No transaction bytes returned from WebSocket inscription",
                ack={"success": True},
            ),
            Outcome.MALFORMED,
            "No transaction bytes returned from WebSocket inscription",
        ),
        (
            step("start-inscription", "deadline", deadline_ms=5000),
            Outcome.TIMEOUT,
            "no start-inscription ack (5 s)",
        ),
    ],
)
def test_start_inscription_outcomes(rec: dict[str, Any], outcome: Outcome, error: str | None) -> None:
    r = by_step(run_of(RUNTIME, rec, expected_steps=()))["start-inscription"]
    assert (r.outcome, r.error) == (outcome, error)


# --- what went wrong around the SDK ---------------------------------------------------------


def test_a_sdk_that_cannot_load_is_one_result() -> None:
    fatal = {"kind": "fatal", "stage": "import", "message": "Cannot find module '@hashgraph/sdk'"}
    (r,) = run_of(RUNTIME, fatal)
    assert r.variant == "node-plain:load" and r.outcome is Outcome.MALFORMED
    assert "Cannot find module" in str(r.error)


def test_missing_steps_say_why() -> None:
    killed = by_step(
        run_of(RUNTIME, step("detect", "resolved", value=True), returncode=None, deadline_s=36.0)
    )
    assert killed["connect-valid"].outcome is Outcome.TIMEOUT
    assert "stopped at kiloscribe-lab's deadline" in str(killed["connect-valid"].error)
    crashed = by_step(run_of(RUNTIME, returncode=1, stderr_tail="TypeError: boom"))
    assert crashed["connect-invalid"].outcome is Outcome.MALFORMED
    assert "TypeError: boom" in str(crashed["connect-invalid"].error)


def test_stray_output_is_ignored_and_kept_aside() -> None:
    records, stray = read_records('hello\n{"kind":"runtime"}\n[1]\n\n{"no":"kind"}\n')
    assert records == [{"kind": "runtime"}]
    assert stray == ["hello", "[1]", '{"no":"kind"}']
    rs = run_of(RUNTIME, step("connect-invalid", "resolved"), expected_steps=())
    assert "stray_output" not in rs[0].detail


def test_the_key_is_scrubbed_everywhere() -> None:
    key = "sk-live-0123456789"
    rec = step(
        "connect-valid",
        "rejected",
        sdk_message=f"WebSocket connection failed: bad key {key}",
        logs=[{"level": "warn", "text": f"headers: {{ 'x-api-key': '{key}' }}"}],
        observed={"connect_errors": [{"message": key, "type": None}]},
    )
    rs = run_of(RUNTIME, rec, expected_steps=(), secrets=(key,))
    text = json.dumps([r.to_json() for r in rs])
    assert key not in text and "[redacted]" in text
