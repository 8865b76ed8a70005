"""The run in a few numbers (summarize), and what changed since the previous run (compare)."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

import pytest

from kiloscribe_lab.diagnosis import diagnose, verdicts
from kiloscribe_lab.names import FindingId, Outcome, ProbeName
from kiloscribe_lab.report.sections import changes_section
from kiloscribe_lab.report.summary import compare, load_previous, summarize
from kiloscribe_lab.results import ProbeResult
from tests.unit.report.helpers import fixture

# --- summarize ----------------------------------------------------------------------------


def test_summarize_keys_targets_by_label_and_is_json(incident: Any) -> None:
    results, findings, tv = incident
    summary = summarize(results, findings, tv)
    assert json.loads(json.dumps(summary)) == summary
    assert list(summary["targets"]) == ["edge", "lb", "inscribe-1", "inscribe-2", "inscribe-3"]
    assert not any("://" in key for key in summary["targets"])
    assert summary["status"] == "critical"
    assert [f["id"] for f in summary["findings"]] == [f.id for f in findings]
    assert {f["severity"] for f in summary["findings"]} == {"critical", "warning", "info"}
    backend_down = next(f for f in summary["findings"] if f["id"] == FindingId.BACKEND_DOWN)
    assert "inscribe-2" in backend_down["targets"]


def test_summarize_success_rates_and_latency(incident: Any) -> None:
    results, findings, tv = incident
    targets = summarize(results, findings, tv)["targets"]
    one, two, lb = (targets[k]["networks"]["direct"] for k in ("inscribe-1", "inscribe-2", "lb"))
    assert one["basis"] == "socketio_connect:valid"
    assert (one["attempts"], one["successes"], one["success_rate"]) == (2, 2, 1.0)
    valid = [
        r.timings.handshake
        for r in results
        if r.detail.get("label") == "inscribe-1"
        and r.probe == ProbeName.SOCKETIO_CONNECT
        and r.variant.endswith(":valid")
    ]
    assert one["p50_handshake_ms"] == pytest.approx(statistics.median(valid), abs=0.06)
    assert (two["success_rate"], two["p50_handshake_ms"]) == (0.0, None)
    lb_valid = [
        r
        for r in results
        if r.detail.get("label") == "lb"
        and r.probe == ProbeName.SOCKETIO_CONNECT
        and r.variant.endswith(":valid")
    ]
    assert lb["success_rate"] == sum(r.ok for r in lb_valid) / len(lb_valid)
    assert targets["inscribe-2"]["verdict"] == "down"
    assert targets["inscribe-1"]["url"].startswith("https://127.0.0.1:")


def test_summarize_falls_back_to_the_engineio_handshake_without_a_key() -> None:
    results = [r for r in fixture("healthy") if not r.variant.endswith(":valid")]
    summary = summarize(results, diagnose(results), verdicts(results))
    cell = summary["targets"]["inscribe-1"]["networks"]["direct"]
    assert cell["basis"] == ProbeName.ENGINEIO_HANDSHAKE
    assert (cell["attempts"], cell["success_rate"]) == (1, 1.0)


def test_summarize_counts_every_attempt_of_connect_stats() -> None:
    runs = [{"outcome": "ok", "ms": 10.0 * i, "backend": "inscribe-1"} for i in range(1, 8)]
    runs += [{"outcome": "upstream_error", "ms": None, "backend": None}] * 3
    stats = ProbeResult(
        probe=ProbeName.CONNECT_STATS,
        variant="websocket",
        target="https://a.example",
        outcome=Outcome.UPSTREAM_ERROR,
        detail={"label": "a", "transport": "websocket", "attempts": 10, "successes": 7, "runs": runs},
    )
    cell = summarize([stats], [], [])["targets"]["a"]["networks"]["direct"]
    assert (cell["attempts"], cell["successes"], cell["success_rate"], cell["p50_handshake_ms"]) == (
        10,
        7,
        0.7,
        40.0,
    )


def test_summarize_per_network_and_unlabelled_targets() -> None:
    base = [r for r in fixture("healthy") if r.detail.get("label") == "inscribe-1"]
    mobile = [
        rs_replace(r, network="mobile", outcome=Outcome.TIMEOUT)
        if r.probe == ProbeName.SOCKETIO_CONNECT
        else rs_replace(r, network="mobile")
        for r in base
    ]
    unlabelled = [rs_replace(r, target="https://x.example", detail={}) for r in base]
    summary = summarize(base + mobile + unlabelled, [], [])
    assert set(summary["targets"]) == {"inscribe-1", "https://x.example"}
    nets = summary["targets"]["inscribe-1"]["networks"]
    assert (nets["direct"]["success_rate"], nets["mobile"]["success_rate"]) == (1.0, 0.0)
    assert summary["networks"] == ["direct", "mobile"]


def rs_replace(r: ProbeResult, **changes: Any) -> ProbeResult:
    from kiloscribe_lab.results import replace

    return replace(r, **changes)


# --- compare ------------------------------------------------------------------------------


def summary_of(findings: list[str], cells: dict[str, tuple[float | None, float | None]]) -> dict[str, Any]:
    return {
        "status": "critical" if FindingId.BACKEND_DOWN in findings else "healthy",
        "run": {"title": "previous", "started_at": "2026-11-25T10:00:00Z"},
        "findings": [{"id": f, "severity": "info", "title": f.replace("-", " ")} for f in findings],
        "targets": {
            t: {"networks": {"direct": {"success_rate": rate, "p50_handshake_ms": p50}}}
            for t, (rate, p50) in cells.items()
        },
    }


@pytest.mark.parametrize(
    ("before", "after", "moved"),
    [
        (1.0, 0.9, True),  # exactly 10 points
        (1.0, 0.91, False),
        (0.5, 0.0, True),
        (0.0, 1.0, True),
        (0.8, 0.8, False),
        (None, 0.5, False),  # nothing to compare with
        (0.5, None, False),
    ],
)
def test_compare_success_rate_moves(before: float | None, after: float | None, moved: bool) -> None:
    c = compare(summary_of([], {"lb": (after, None)}), summary_of([], {"lb": (before, None)}))
    assert bool(c.success_moves) is moved
    if moved:
        assert c.success_moves[0].target == "lb" and c.success_moves[0].network == "direct"


@pytest.mark.parametrize(
    ("before", "after", "moved"),
    [
        (100.0, 150.0, True),  # +50 %, +50 ms
        (100.0, 140.0, False),  # +40 %
        (20.0, 35.0, False),  # +75 %, but 15 ms
        (40.0, 60.0, True),  # +50 %, +20 ms
        (300.0, 200.0, False),  # -33 %
        (300.0, 140.0, True),  # -53 %, -160 ms
        (0.0, 25.0, True),
        (None, 500.0, False),
    ],
)
def test_compare_latency_moves(before: float | None, after: float | None, moved: bool) -> None:
    c = compare(summary_of([], {"lb": (1.0, after)}), summary_of([], {"lb": (1.0, before)}))
    assert bool(c.latency_moves) is moved


def test_compare_new_and_resolved_findings_and_targets() -> None:
    previous = summary_of(
        [FindingId.BACKEND_DOWN, FindingId.ROOT_REDIRECT], {"lb": (0.5, 100.0), "old": (1.0, 1.0)}
    )
    current = summary_of(
        [FindingId.ROOT_REDIRECT, FindingId.STICKY_SESSIONS_MISSING], {"lb": (1.0, 100.0), "new": (1.0, 1.0)}
    )
    c = compare(current, previous)
    assert not c.first_run and c.has_changes
    assert [f.id for f in c.new_findings] == [FindingId.STICKY_SESSIONS_MISSING]
    assert [f.id for f in c.resolved_findings] == [FindingId.BACKEND_DOWN]
    assert (c.status_before, c.status_after) == ("critical", "healthy")
    assert c.targets_added == ("new",) and c.targets_removed == ("old",)
    assert [(m.target, round(m.delta, 2)) for m in c.success_moves] == [("lb", 0.5)]
    md = changes_section(c).markdown()
    for text in (
        FindingId.STICKY_SESSIONS_MISSING,
        FindingId.BACKEND_DOWN,
        "critical → healthy",
        "+50 points",
        "previous",
    ):
        assert text in md.replace("\\_", "_")


def test_compare_identical_runs_and_first_run() -> None:
    s = summary_of([FindingId.ROOT_REDIRECT], {"lb": (1.0, 10.0)})
    c = compare(s, s)
    assert not c.has_changes
    assert "No change" in changes_section(c).markdown()
    first = compare(s, None)
    assert first.first_run
    for section in (changes_section(first), changes_section(None)):
        assert "first run" in section.markdown() and "first run" in section.html()


@pytest.mark.parametrize(
    "previous",
    [{}, {"targets": []}, {"targets": {"lb": 3}}, {"findings": "x", "targets": {"lb": {"networks": [1]}}}],
)
def test_compare_tolerates_malformed_previous_summaries(previous: dict[str, Any]) -> None:
    c = compare(summary_of([FindingId.ROOT_REDIRECT], {"lb": (1.0, 10.0)}), previous)
    assert [f.id for f in c.new_findings] == [FindingId.ROOT_REDIRECT]


def test_load_previous(tmp_path: Path, incident: Any) -> None:
    summary = summarize(*incident)
    (tmp_path / "summary.json").write_text(json.dumps(summary), encoding="utf-8")
    assert load_previous(tmp_path) == summary
    assert load_previous(str(tmp_path / "summary.json")) == summary
    assert load_previous(None) is None
    assert load_previous("") is None
    assert load_previous(tmp_path / "missing") is None
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "summary.json").write_text("[1, 2", encoding="utf-8")
    assert load_previous(tmp_path / "bad") is None
    (tmp_path / "bad" / "summary.json").write_text("[1, 2]", encoding="utf-8")
    assert load_previous(tmp_path / "bad") is None
