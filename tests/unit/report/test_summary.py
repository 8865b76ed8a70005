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


Cell = tuple[int, int, list[float]]  # successes, attempts, handshake samples


def summary_of(findings: list[str], cells: dict[str, Cell]) -> dict[str, Any]:
    return {
        "status": "critical" if FindingId.BACKEND_DOWN in findings else "healthy",
        "run": {"title": "previous", "started_at": "2026-11-25T10:00:00Z"},
        "findings": [{"id": f, "severity": "info", "title": f.replace("-", " ")} for f in findings],
        "targets": {
            t: {
                "networks": {
                    "direct": {
                        "successes": ok,
                        "attempts": n,
                        "success_rate": ok / n if n else None,
                        "p50_handshake_ms": statistics.median(ms) if ms else None,
                        "handshake_ms": ms,
                    }
                }
            }
            for t, (ok, n, ms) in cells.items()
        },
    }


FAST = [3.0, 3.4, 4.1, 3.8, 4.4, 3.2, 3.9, 4.0]


@pytest.mark.parametrize(
    ("before", "after", "moved"),
    [
        ((10, 10), (0, 10), True),  # p = 1e-5
        ((12, 12), (4, 12), True),  # p = 0.0013
        ((10, 10), (9, 10), False),  # 10 points, but one connect: noise
        ((0, 10), (2, 10), False),  # two round-robin runs of one lab: p = 0.47
        ((4, 10), (6, 10), False),
        ((8, 10), (8, 10), False),
        ((200, 200), (190, 200), False),  # significant at this n, but 5 points do not matter
        ((0, 0), (5, 10), False),  # nothing counted before
    ],
)
def test_compare_calls_a_success_change_only_beyond_sampling_noise(
    before: tuple[int, int], after: tuple[int, int], moved: bool
) -> None:
    c = compare(summary_of([], {"lb": (*after, [])}), summary_of([], {"lb": (*before, [])}))
    assert bool(c.success_moves) is moved
    if before[1]:
        [tested] = [m for m in c.compared if m.metric == "success"]
        assert (tested.n_before, tested.n_after) == (before[1], after[1])
        assert tested.significant is moved
    if moved:
        m = c.success_moves[0]
        assert (m.target, m.network, m.ok_before, m.ok_after) == ("lb", "direct", before[0], after[0])
        assert m.p_adjusted < 0.05


@pytest.mark.parametrize(
    ("before", "after", "moved"),
    [
        (FAST, [v + 600 for v in FAST], True),  # a mobile network in front: +600 ms
        (FAST, [v * 1.3 for v in FAST], False),  # under 20 ms: noise of a busy machine, not a change
        ([100.0 + i for i in range(8)], [160.0 + i for i in range(8)], True),  # +58 %, +60 ms
        ([100.0 + i for i in range(8)], [140.0 + i for i in range(8)], False),  # +40 %
        ([100.0, 400.0, 120.0, 380.0], [130.0, 390.0, 110.0, 420.0], False),  # spread, not a shift
        (FAST[:3], [v + 600 for v in FAST[:3]], False),  # too few samples to test: said, not called
    ],
)
def test_compare_calls_a_latency_change_only_beyond_sampling_noise(
    before: list[float], after: list[float], moved: bool
) -> None:
    c = compare(summary_of([], {"lb": (10, 10, after)}), summary_of([], {"lb": (10, 10, before)}))
    assert bool(c.latency_moves) is moved
    if len(before) < 4:
        assert c.untested == 1


def test_holm_keeps_many_noisy_cells_from_calling_a_change() -> None:
    # Twenty cells, each a little different: none is called, though a raw p < 0.05 could be.
    before = {f"t{i}": (6, 12, FAST) for i in range(20)}
    after = {f"t{i}": (6 + (i % 3) - 1, 12, [v + (i % 2) for v in FAST]) for i in range(20)}
    after["t0"] = (1, 12, FAST)  # p = 0.069 alone
    c = compare(summary_of([], after), summary_of([], before))
    assert len(c.compared) == 40 and not c.success_moves and not c.latency_moves and not c.has_changes
    assert "No significant change" in changes_section(c).markdown()


def test_compare_new_and_resolved_findings_and_targets() -> None:
    previous = summary_of(
        [FindingId.BACKEND_DOWN, FindingId.ROOT_REDIRECT], {"lb": (0, 12, FAST), "old": (1, 1, [])}
    )
    current = summary_of(
        [FindingId.ROOT_REDIRECT, FindingId.STICKY_SESSIONS_MISSING],
        {"lb": (12, 12, FAST), "new": (1, 1, [])},
    )
    c = compare(current, previous)
    assert not c.first_run and c.has_changes
    assert [f.id for f in c.new_findings] == [FindingId.STICKY_SESSIONS_MISSING]
    assert [f.id for f in c.resolved_findings] == [FindingId.BACKEND_DOWN]
    assert (c.status_before, c.status_after) == ("critical", "healthy")
    assert c.targets_added == ("new",) and c.targets_removed == ("old",)
    assert [(m.target, round(m.delta, 2)) for m in c.success_moves] == [("lb", 1.0)]
    md = changes_section(c).markdown()
    for text in (
        FindingId.STICKY_SESSIONS_MISSING,
        FindingId.BACKEND_DOWN,
        "critical → healthy",
        "+100 points",
        "0 % (0/12)",
        "100 % (12/12)",
        "previous",
        "Fisher's exact test",
        "Mann–Whitney U",
        "Holm",
    ):
        assert text in md.replace("\\_", "_"), text


def test_compare_identical_runs_and_first_run() -> None:
    s = summary_of([FindingId.ROOT_REDIRECT], {"lb": (8, 12, FAST)})
    c = compare(s, s)
    assert not c.has_changes and len(c.compared) == 2
    assert "No significant change" in changes_section(c).markdown()
    first = compare(s, None)
    assert first.first_run
    for section in (changes_section(first), changes_section(None)):
        assert "first run" in section.markdown() and "first run" in section.html()


def test_a_version_1_summary_compares_its_success_counts_and_says_latency_was_not_tested() -> None:
    old = summary_of([], {"lb": (12, 12, [])})
    del old["targets"]["lb"]["networks"]["direct"]["handshake_ms"]
    old["targets"]["lb"]["networks"]["direct"]["p50_handshake_ms"] = 5.0
    c = compare(summary_of([], {"lb": (0, 12, FAST)}), old)
    assert [m.metric for m in c.success_moves] == ["success"] and c.untested == 1
    assert "1 number(s) had too few samples to test" in changes_section(c).markdown()


@pytest.mark.parametrize(
    "previous",
    [{}, {"targets": []}, {"targets": {"lb": 3}}, {"findings": "x", "targets": {"lb": {"networks": [1]}}}],
)
def test_compare_tolerates_malformed_previous_summaries(previous: dict[str, Any]) -> None:
    c = compare(summary_of([FindingId.ROOT_REDIRECT], {"lb": (8, 12, FAST)}), previous)
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


def real_summary(scenario: str) -> dict[str, Any]:
    """The summary.json the findings notebook writes for a recorded lab's evidence."""
    results = fixture(scenario)
    findings = diagnose(results, "KILOSCRIBE_API_KEY")
    summary = summarize(results, findings, verdicts(results), meta={"title": f"scenario {scenario}"})
    loaded: dict[str, Any] = json.loads(json.dumps(summary))
    return loaded


def test_the_incident_lab_healthy_again_lists_backend_down_as_resolved() -> None:
    """Two real labs' summaries (the recorded incident, then healthy): inscribe-2 is back, so
    backend-down is resolved since the previous run, and the changes section says so."""
    c = compare(real_summary("healthy"), real_summary("incident"))
    assert FindingId.BACKEND_DOWN in [f.id for f in c.resolved_findings]
    assert FindingId.BACKEND_DOWN not in [f.id for f in c.new_findings]
    assert (c.status_before, c.status_after) == ("critical", "healthy")
    section = changes_section(c)
    for text in (section.markdown().replace("\\_", "_"), section.html()):
        resolved = text.split("Resolved findings", 1)[1]
        assert FindingId.BACKEND_DOWN in resolved, text
