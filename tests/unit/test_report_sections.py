"""The findings report's content: loading a run directory, summary and comparison, every section
in HTML and Markdown, escaping of whatever a server sent, and the charts. Pure: a fake run
directory in tmp_path built from the recorded lab fixtures."""

from __future__ import annotations

import json
import re
import statistics
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import mistune
import pytest

from kiloscribe_lab import report_sections as rs
from kiloscribe_lab.diagnosis import TargetVerdict, Verdict, diagnose, verdicts
from kiloscribe_lab.lab.scenarios import SCENARIOS
from kiloscribe_lab.names import FindingId, Outcome, ProbeName, Severity
from kiloscribe_lab.results import Finding, ProbeResult, Timings, read_jsonl, write_jsonl

FIXTURES = Path(__file__).parent / "fixtures"
NOTEBOOK = Path(__file__).parents[2] / "notebooks" / "findings_report.ipynb"
KEY_ENV = "KILOSCRIBE_API_KEY"
PNG = b"\x89PNG"
FAILED_ERROR = "kernel died while probing: PapermillExecutionError <b>boom</b>"


def fixture(name: str) -> list[ProbeResult]:
    text = (FIXTURES / f"{name}.jsonl").read_text(encoding="utf-8")
    return [r for r in read_jsonl(text) if isinstance(r, ProbeResult)]


def make_run_dir(root: Path, results: list[ProbeResult], *, failed: bool = True, **meta: Any) -> Path:
    """A run directory as the pipeline writes it: one results file per endpoint, run.json."""
    (root / "results").mkdir(parents=True, exist_ok=True)
    groups: dict[str, list[ProbeResult]] = {}
    for r in results:
        groups.setdefault(str(r.detail.get("label") or "api"), []).append(r)
    matrix, endpoints = [], []
    for label, group in groups.items():
        run_id = re.sub(r"[^A-Za-z0-9-]", "_", label) + "-direct"
        (root / "results" / f"{run_id}.jsonl").write_text(write_jsonl(group), encoding="utf-8")
        url = group[0].target
        endpoints.append({"label": None if label == "api" else label, "url": url})
        matrix.append(
            {
                "id": run_id,
                "label": None if label == "api" else label,
                "endpoint": url,
                "network": "direct",
                "status": "ok",
                "error": None,
                "seconds": 1.5,
                "kernel_start_s": 0.7,
                "results": f"results/{run_id}.jsonl",
                "notebook": f"notebooks/{run_id}.ipynb",
            }
        )
    if failed:
        matrix.append(
            {
                "id": "inscribe-2-mobile",
                "label": "inscribe-2",
                "endpoint": groups.get("inscribe-2", results)[0].target,
                "network": "mobile",
                "status": "timeout",
                "error": FAILED_ERROR,
                "seconds": 60.0,
                "kernel_start_s": None,
                "results": "results/inscribe-2-mobile.jsonl",
                "notebook": "notebooks/inscribe-2-mobile.ipynb",
            }
        )
    run = {
        "title": "kiloscribe-lab report 2026-11-26",
        "started_at": "2026-11-26T05:51:00.000Z",
        "finished_at": "2026-11-26T05:52:10.000Z",
        "source": "lab:incident",
        "api_key_env": KEY_ENV,
        "networks": ["direct", "mobile"],
        "endpoints": endpoints,
        "matrix": matrix,
        "timings": {"total_s": 70.0},
        "compare_dir": None,
        "notes": ["lab started for this report"],
        **meta,
    }
    (root / "run.json").write_text(json.dumps(run), encoding="utf-8")
    return root


@pytest.fixture
def incident_run(tmp_path: Path) -> rs.RunData:
    return rs.load_run(make_run_dir(tmp_path / "run", fixture("incident")))


@pytest.fixture
def incident() -> tuple[list[ProbeResult], list[Finding], list[TargetVerdict]]:
    results = fixture("incident")
    return results, diagnose(results, KEY_ENV), verdicts(results)


def all_sections(run: rs.RunData) -> dict[str, rs.Section]:
    results = list(run.results)
    findings = diagnose(results, run.api_key_env)
    tv = verdicts(results)
    labels = run.labels
    summary = rs.summarize(results, findings, tv, labels=labels)
    return {
        "title": rs.title_section(run),
        "summary": rs.summary_section(findings, tv, run),
        "endpoints": rs.endpoints_section(run),
        "details": rs.test_details_section(results, labels=labels, api_key_env=run.api_key_env),
        "infrastructure": rs.infrastructure_section(results, labels=labels),
        "root_cause": rs.root_cause_section(findings, labels=labels),
        "recommendations": rs.recommendations_section(findings),
        "status": rs.status_section(findings, tv, run),
        "changes": rs.changes_section(rs.compare(summary, None)),
    }


# --- what rendered output may contain -----------------------------------------------------

ALLOWED_TAGS = {
    "div", "h1", "h2", "h3", "h4", "h5", "h6", "p", "ul", "ol", "li", "table", "thead", "tbody",
    "tr", "th", "td", "pre", "code", "strong", "em", "br",
}  # fmt: skip


class TagCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: set[str] = set()
        self.attrs: list[tuple[str, str | None]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.attrs += attrs

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse_html(markup: str) -> TagCollector:
    parser = TagCollector()
    parser.feed(markup)
    parser.close()
    return parser


def markdown_to_html(markdown: str) -> str:
    """A CommonMark renderer with GFM tables that passes raw HTML through, as Jupyter's does."""
    render = mistune.create_markdown(escape=False, plugins=["table", "strikethrough"])
    return str(render(markdown))


def assert_inert_html(markup: str) -> None:
    parsed = parse_html(markup)
    assert parsed.tags <= ALLOWED_TAGS, parsed.tags - ALLOWED_TAGS
    assert all(name == "class" for name, _ in parsed.attrs), parsed.attrs
    assert "<script" not in markup.lower()


def assert_inert_markdown(markdown: str) -> None:
    assert "<script" not in markdown.lower()
    # Preformatted blocks are HTML blocks: their content is not Markdown, only entities matter.
    pres = re.findall(r"^<pre><code>(.*?)</code></pre>$", markdown, flags=re.S | re.M)
    assert all("<" not in pre and ">" not in pre for pre in pres)
    outside = re.sub(r"^<pre><code>.*?</code></pre>$", "", markdown, flags=re.S | re.M)
    assert not re.search(r"(?<!\\)!\[", outside), "an image could be formed"
    assert not re.search(r"(?<!\\)\]\(", outside), "a link could be formed"
    assert not re.search(r"(?<!\\)`", outside), "a code span could be formed"
    # Every table row has exactly the header's cells: no "|" of a value splits a cell.
    for table in re.findall(r"(?:^\|.*\|$\n?)+", outside, flags=re.M):
        counts = {len(re.findall(r"(?<!\\)\|", line)) for line in table.splitlines()}
        assert len(counts) == 1, table
    # And what a Markdown renderer makes of it is inert too.
    assert_inert_html(markdown_to_html(markdown))


# --- load_run ---------------------------------------------------------------------------


def test_load_run_reads_metadata_and_every_results_file(incident_run: rs.RunData) -> None:
    run = incident_run
    assert len(run.results) == len(fixture("incident"))
    assert run.title == "kiloscribe-lab report 2026-11-26"
    assert run.source == "lab:incident"
    assert run.api_key_env == KEY_ENV
    assert run.networks == ("direct", "mobile")
    assert [m.id for m in run.failed_runs] == ["inscribe-2-mobile"]
    assert run.failed_runs[0].error == FAILED_ERROR
    assert run.failures == ()  # a failed run's missing results file is not a second failure
    assert {"edge", "lb", "inscribe-1", "inscribe-2", "inscribe-3"} <= set(run.labels.values())
    assert run.meta["title"] == run.title


def test_load_run_orders_results_as_the_matrix(incident_run: rs.RunData) -> None:
    order = list(dict.fromkeys(str(r.detail.get("label") or "api") for r in incident_run.results))
    assert order == ["api", "edge", "lb", "inscribe-1", "inscribe-2", "inscribe-3"]


def test_load_run_reports_a_broken_results_file_and_keeps_the_good_lines(tmp_path: Path) -> None:
    run_dir = make_run_dir(tmp_path, fixture("healthy"), failed=False)
    good = fixture("healthy")[:3]
    (run_dir / "results" / "zz-partial.jsonl").write_text(
        write_jsonl(good) + '{"kind": "probe", "probe": "x"\n' + "[1, 2]\n" + '{"kind": [1]}\n',
        encoding="utf-8",
    )
    (run_dir / "results" / "zz-garbage.jsonl").write_text("this is not json\n", encoding="utf-8")
    (run_dir / "results" / "zz-binary.jsonl").write_bytes(b"\xff\xfe\x00garbage")
    run = rs.load_run(run_dir)
    failed = {f.path: f.error for f in run.failures}
    assert set(failed) == {"results/zz-partial.jsonl", "results/zz-garbage.jsonl", "results/zz-binary.jsonl"}
    assert "line 4" in failed["results/zz-partial.jsonl"]
    assert "3 result(s) kept" in failed["results/zz-partial.jsonl"]
    assert len(run.results) == len(fixture("healthy")) + 3
    # The report names them.
    section = rs.endpoints_section(run)
    for path in failed:
        assert path in section.markdown().replace("\\_", "_")
        assert path in section.html()


def test_load_run_skips_findings_and_summaries_in_results_files(tmp_path: Path) -> None:
    results = fixture("healthy")
    run_dir = make_run_dir(tmp_path, results, failed=False)
    extra = write_jsonl(diagnose(results)) + json.dumps({"kind": "summary", "status": "healthy"}) + "\n"
    (run_dir / "results" / "findings.jsonl").write_text(extra, encoding="utf-8")
    run = rs.load_run(run_dir)
    assert run.failures == ()
    assert len(run.results) == len(results)


def test_load_run_survives_missing_and_malformed_metadata(tmp_path: Path) -> None:
    empty = rs.load_run(tmp_path / "nothing-here")
    assert empty.results == ()
    assert [f.path for f in empty.failures] == ["run.json"]

    run_dir = make_run_dir(tmp_path / "a", fixture("healthy"), failed=False)
    (run_dir / "run.json").write_text(json.dumps({"title": "only a title"}), encoding="utf-8")
    run = rs.load_run(run_dir)
    assert run.title == "only a title"
    assert len(run.results) == len(fixture("healthy"))  # the results directory is still read
    assert run.matrix == () and run.networks == () and run.finished_at is None

    (run_dir / "run.json").write_text(
        json.dumps({"title": None, "networks": "direct", "matrix": [3, {"status": "failed"}], "notes": {}}),
        encoding="utf-8",
    )
    run = rs.load_run(run_dir)
    assert run.title == run_dir.name
    assert [m.status for m in run.matrix] == ["failed"]
    (run_dir / "run.json").write_text("{not json", encoding="utf-8")
    assert [f.path for f in rs.load_run(run_dir).failures] == ["run.json"]
    for section in all_sections(rs.load_run(run_dir)).values():
        assert section.html() and section.markdown()


def test_load_run_names_a_missing_results_file_of_a_finished_run(tmp_path: Path) -> None:
    run_dir = make_run_dir(tmp_path, fixture("healthy"), failed=False)
    (run_dir / "results" / "lb-direct.jsonl").unlink()
    run = rs.load_run(run_dir)
    assert [f.path for f in run.failures] == ["results/lb-direct.jsonl"]


def test_load_run_reads_nothing_outside_the_run_directory(tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere.jsonl"
    outside.write_text(write_jsonl(fixture("healthy")[:2]), encoding="utf-8")
    run_dir = make_run_dir(tmp_path / "run", fixture("healthy"), failed=False)
    run_json = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    run_json["matrix"][0]["results"] = "../elsewhere.jsonl"
    (run_dir / "run.json").write_text(json.dumps(run_json), encoding="utf-8")
    run = rs.load_run(run_dir)
    assert [f.path for f in run.failures] == ["../elsewhere.jsonl"]
    assert len(run.results) == len(fixture("healthy"))  # every file under results/, once


# --- summarize ----------------------------------------------------------------------------


def test_summarize_keys_targets_by_label_and_is_json(incident: Any) -> None:
    results, findings, tv = incident
    summary = rs.summarize(results, findings, tv)
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
    targets = rs.summarize(results, findings, tv)["targets"]
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
    summary = rs.summarize(results, diagnose(results), verdicts(results))
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
    cell = rs.summarize([stats], [], [])["targets"]["a"]["networks"]["direct"]
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
    summary = rs.summarize(base + mobile + unlabelled, [], [])
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
    c = rs.compare(summary_of([], {"lb": (after, None)}), summary_of([], {"lb": (before, None)}))
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
    c = rs.compare(summary_of([], {"lb": (1.0, after)}), summary_of([], {"lb": (1.0, before)}))
    assert bool(c.latency_moves) is moved


def test_compare_new_and_resolved_findings_and_targets() -> None:
    previous = summary_of(
        [FindingId.BACKEND_DOWN, FindingId.ROOT_REDIRECT], {"lb": (0.5, 100.0), "old": (1.0, 1.0)}
    )
    current = summary_of(
        [FindingId.ROOT_REDIRECT, FindingId.STICKY_SESSIONS_MISSING], {"lb": (1.0, 100.0), "new": (1.0, 1.0)}
    )
    c = rs.compare(current, previous)
    assert not c.first_run and c.has_changes
    assert [f.id for f in c.new_findings] == [FindingId.STICKY_SESSIONS_MISSING]
    assert [f.id for f in c.resolved_findings] == [FindingId.BACKEND_DOWN]
    assert (c.status_before, c.status_after) == ("critical", "healthy")
    assert c.targets_added == ("new",) and c.targets_removed == ("old",)
    assert [(m.target, round(m.delta, 2)) for m in c.success_moves] == [("lb", 0.5)]
    md = rs.changes_section(c).markdown()
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
    c = rs.compare(s, s)
    assert not c.has_changes
    assert "No change" in rs.changes_section(c).markdown()
    first = rs.compare(s, None)
    assert first.first_run
    for section in (rs.changes_section(first), rs.changes_section(None)):
        assert "first run" in section.markdown() and "first run" in section.html()


@pytest.mark.parametrize(
    "previous",
    [{}, {"targets": []}, {"targets": {"lb": 3}}, {"findings": "x", "targets": {"lb": {"networks": [1]}}}],
)
def test_compare_tolerates_malformed_previous_summaries(previous: dict[str, Any]) -> None:
    c = rs.compare(summary_of([FindingId.ROOT_REDIRECT], {"lb": (1.0, 10.0)}), previous)
    assert [f.id for f in c.new_findings] == [FindingId.ROOT_REDIRECT]


def test_load_previous(tmp_path: Path, incident: Any) -> None:
    summary = rs.summarize(*incident)
    (tmp_path / "summary.json").write_text(json.dumps(summary), encoding="utf-8")
    assert rs.load_previous(tmp_path) == summary
    assert rs.load_previous(str(tmp_path / "summary.json")) == summary
    assert rs.load_previous(None) is None
    assert rs.load_previous("") is None
    assert rs.load_previous(tmp_path / "missing") is None
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "summary.json").write_text("[1, 2", encoding="utf-8")
    assert rs.load_previous(tmp_path / "bad") is None
    (tmp_path / "bad" / "summary.json").write_text("[1, 2]", encoding="utf-8")
    assert rs.load_previous(tmp_path / "bad") is None


# --- sections -------------------------------------------------------------------------------


def test_every_section_renders_html_and_markdown(incident_run: rs.RunData) -> None:
    for name, section in all_sections(incident_run).items():
        html, md = section._repr_html_(), section._repr_markdown_()
        assert html.strip() and md.strip(), name
        assert_inert_html(html)
        assert_inert_markdown(md)
        assert repr(section).startswith("<report section")


def plain(md: str) -> str:
    """Markdown with its backslash escapes undone, for 'contains' checks."""
    return re.sub(r"\\(.)", r"\1", md)


def both(section: rs.Section) -> list[str]:
    return [section.html(), plain(section.markdown())]


def test_summary_section(incident_run: rs.RunData) -> None:
    section = all_sections(incident_run)["summary"]
    for out in both(section):
        assert "CRITICAL" in out
        assert "Backend down: inscribe-2" in out
        for label in ("edge", "lb", "inscribe-1", "inscribe-2", "inscribe-3"):
            assert label in out
        assert "down" in out and "healthy" in out and "degraded" in out
        assert "expected behaviour, not a fault" in out
        assert "Incomplete evidence" in out


def test_endpoints_section_names_failed_runs_with_their_error(incident_run: rs.RunData) -> None:
    section = rs.endpoints_section(incident_run)
    html, md = section.html(), plain(section.markdown())
    assert "inscribe-2-mobile" in html and "inscribe-2-mobile" in md
    assert "timeout" in html and "timeout" in md
    assert "PapermillExecutionError &lt;b&gt;boom&lt;/b&gt;" in html
    assert "PapermillExecutionError &lt;b&gt;boom&lt;/b&gt;" in md
    assert "<b>" not in html and "<b>" not in md
    for label in ("edge", "lb", "inscribe-1", "inscribe-2", "inscribe-3"):
        assert label in md
    assert "mobile" in md  # the failed run's network is listed with its endpoint
    [found] = [r for r in incident_run.results if r.probe == ProbeName.DISCOVERY]
    assert "Server discovery" in md and found.detail["recommended"] in md
    assert 'curl -H "x-api-key: $KILOSCRIBE_API_KEY"' in md.replace("&#36;", "$")


def test_endpoints_section_when_every_run_finished(tmp_path: Path) -> None:
    run = rs.load_run(make_run_dir(tmp_path, fixture("healthy"), failed=False))
    md = rs.endpoints_section(run).markdown()
    assert "All 6 notebook runs finished." in md
    assert "did not finish" not in md


def test_test_details_section_has_tables_and_rerun_commands(incident_run: rs.RunData) -> None:
    section = rs.test_details_section(list(incident_run.results), api_key_env=KEY_ENV)
    for out in both(section):
        for kind in (
            ProbeName.HTTP_UPGRADE,
            ProbeName.WEBSOCKET_PLAIN,
            ProbeName.ENGINEIO_HANDSHAKE,
            ProbeName.SOCKETIO_CONNECT,
            ProbeName.STICKY_SESSION,
        ):
            assert kind in out
        assert "Rerun by hand" in out
        edge = next(r.target for r in incident_run.results if r.detail.get("label") == "edge")
        assert f"wscat -c {edge.replace('https://', 'wss://')}" in out
        assert "curl -i -N --http1.1 -H" in out
        assert "Session ID unknown" in out
        assert "(expected)" in out  # a refused invalid key and a redirect at / are not faults
    md = section.markdown()
    assert md.count("<pre><code>") >= 5
    # A table per probe kind, one row per result.
    assert len(re.findall(r"^\| (edge|lb|inscribe-\d) \|", md, flags=re.M)) == 75


def test_infrastructure_section_fingerprints(incident_run: rs.RunData) -> None:
    section = rs.infrastructure_section(list(incident_run.results), labels=incident_run.labels)
    for out in both(section):
        assert "cloudflare" in out and "cf-ray" in out and "BYPASS" in out
        assert "Caddy" in out
        assert "x-lab-backend" in out and "inscribe-1, inscribe-3" in out
        assert "ALPN" in out and "h2" in out
        assert "alt-svc" in out


def test_infrastructure_section_sees_cookies_and_alt_svc() -> None:
    r = ProbeResult(
        probe=ProbeName.ENGINEIO_HANDSHAKE,
        target="https://a.example",
        outcome=Outcome.OK,
        headers={"set-cookie-names": "lb_sticky, other", "alt-svc": 'h3=":443"', "server": "Caddy"},
    )
    md = plain(rs.infrastructure_section([r]).markdown())
    assert "lb_sticky" in md and 'h3=":443"' in md
    assert "no CDN fingerprint" in md


def test_root_cause_section(incident_run: rs.RunData, incident: Any) -> None:
    _, findings, _ = incident
    section = rs.root_cause_section(findings, labels=incident_run.labels)
    for out in both(section):
        assert FindingId.BACKEND_DOWN in out and "inscribe-2" in out
        assert FindingId.STICKY_SESSIONS_MISSING in out
        assert "Root causes" in out and "Expected behaviour, not faults" in out
        assert FindingId.PLAIN_WEBSOCKET_PROTOCOL_MISMATCH in out
        down = next(f for f in findings if f.id == FindingId.BACKEND_DOWN)
        assert down.evidence[0] in out
    # Faults before reassurances.
    md = plain(section.markdown())
    assert md.index(FindingId.BACKEND_DOWN) < md.index(FindingId.AUTH_PATH_HEALTHY)


def test_root_cause_section_without_faults() -> None:
    results = fixture("healthy")
    md = rs.root_cause_section(diagnose(results, KEY_ENV)).markdown()
    assert "No fault was found" in md
    assert "No finding" in rs.root_cause_section([]).markdown()


def test_recommendations_section(incident: Any) -> None:
    _, findings, _ = incident
    for out in both(rs.recommendations_section(findings)):
        assert "Immediate actions" in out and "Long-term" in out
        assert "Restart inscribe-2" in out
        assert "lb_policy ip_hash" in out
        assert "per backend" in out and "5xx" in out
        immediate, long_term = out.split("Long-term", 1)
        assert "Restart inscribe-2" in immediate
        assert "Nothing to fix" in long_term and "Nothing to fix" not in immediate
    assert "None: no critical or warning finding" in rs.recommendations_section([]).markdown()


def test_status_section(incident_run: rs.RunData, incident: Any) -> None:
    _, findings, tv = incident
    section = rs.status_section(findings, tv, incident_run)
    md = plain(section.markdown())
    assert "Next steps" in md
    steps = re.findall(r"^\d+\. (.*)$", md, flags=re.M)
    assert "inscribe-2-mobile" in steps[0]
    assert any("Restart inscribe-2" in s for s in steps)
    assert any("Make the balancer sticky." in s for s in steps)
    assert "Not a fault" in md and "2 healthy, 2 degraded, 1 down" in md
    healthy = fixture("healthy")
    md = rs.status_section(diagnose(healthy, KEY_ENV), verdicts(healthy)).markdown()
    assert "Nothing to fix now" in md


def test_sections_for_every_scenario(tmp_path: Path) -> None:
    for name in SCENARIOS:
        run = rs.load_run(make_run_dir(tmp_path / name, fixture(name)))
        for section in all_sections(run).values():
            assert_inert_html(section.html())
            assert_inert_markdown(section.markdown())


# --- escaping ------------------------------------------------------------------------------

HOSTILE = [
    "<script>alert(1)</script>",
    "</td><td>injected",
    "| ![img](http://x) |",
    "`code` and ``more``",
    "*bold* _it_ # head [link](javascript:alert(1)) <img src=x onerror=alert(1)>",
    "line one\nline two\r\n- list\n# heading",
    "$x^2$ and \\* and &amp; and &lt;",
    "</pre></code><script>",
]
EVIL = " ".join(HOSTILE)


def hostile_results() -> list[ProbeResult]:
    detail = {
        "label": "<script>lab</script>|`x` $\\frac{1}{$ $",
        "command": "curl '<script>' | `rm -rf` ![img](http://x)\n",
    }
    common = {
        "headers": {
            "server": "<script>alert(1)</script>",
            "via": "1.1 Caddy</td><td>x",
            "cf-ray": "| ![img](http://x) `tick`",
            "cf-cache-status": EVIL,
            "x-lab-backend": "<script>backend</script>",
            "set-cookie-names": "<script>c</script>",
            "alt-svc": EVIL,
        },
        "timings": Timings(handshake=12.0, total=20.0),
    }
    target = "https://evil.example/<script>?a=|b|&c=`d`"
    return [
        ProbeResult(
            probe=ProbeName.HTTP_UPGRADE,
            variant="http1.1<script>",
            target=target,
            outcome=Outcome.UPSTREAM_ERROR,
            status=502,
            error=EVIL,
            detail={**detail, "status_line": EVIL, "alpn": "<script>h2</script>"},
            **common,
        ),
        ProbeResult(
            probe=ProbeName.SOCKETIO_CONNECT,
            variant="websocket:valid",
            target=target,
            outcome=Outcome.OK,
            status=101,
            detail={**detail, "backend": "<script>b</script>"},
            **common,
        ),
        ProbeResult(
            probe=ProbeName.STICKY_SESSION,
            variant="cookies",
            target=target,
            outcome=Outcome.SESSION_UNKNOWN,
            error=EVIL,
            detail={**detail, "backends": ["<script>one</script>", "| two |"], "opener": "`x`"},
            **common,
        ),
        ProbeResult(
            probe=ProbeName.DISCOVERY,
            target=target + "/api",
            outcome=Outcome.OK,
            detail={
                "url": EVIL,
                "command": EVIL,
                "servers": [
                    {"url": EVIL, "region": "<script>", "status": "|", "priority": "`", "activeJobs": 1}
                ],
                "recommended": EVIL,
                "problems": [EVIL],
                "chosen": EVIL,
            },
        ),
        ProbeResult(probe="<script>new_probe</script>", target=target, outcome=Outcome.OK, error=EVIL),
    ]


def hostile_findings() -> list[Finding]:
    return [
        Finding(
            id=f"id-{i}-<script>",
            severity=severity,
            title=EVIL,
            summary=EVIL,
            recommendation=EVIL + ". Second sentence <script>.",
            evidence=(EVIL, "ref|with|pipes"),
            targets=("https://evil.example/<script>?a=|b|&c=`d`", EVIL),
        )
        for i, severity in enumerate(Severity)
    ]


def test_md_text_and_html_text_escape_everything() -> None:
    for text in [*HOSTILE, EVIL]:
        md = rs.md_text(text)
        html = rs.html_text(text)
        assert "<script" not in md and "<script" not in html
        assert "\n" not in md and "\r" not in md
        assert not re.search(r"(?<!\\)[`*_\[\]|#~]", md.replace("\\\\", "").replace("&#36;", "")), md
        assert "$" not in md
        assert_inert_html(html)
        # Rendered, the Markdown and the HTML show the text itself (newlines became <br>).
        for markup in (markdown_to_html(md), html):
            shown = "".join(parse_html(markup).text).strip()
            assert shown == re.sub(r"\r\n|\r|\n", "", text).strip()


def test_hostile_evidence_is_inert_in_every_section(tmp_path: Path) -> None:
    results = hostile_results()
    findings = hostile_findings()
    tv = [TargetVerdict(results[0].target, Verdict.DOWN, EVIL, label=EVIL)]
    run_dir = make_run_dir(tmp_path, results, title=EVIL, notes=[EVIL], source=EVIL)
    run_json = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    run_json["matrix"][-1]["error"] = EVIL
    run_json["matrix"][-1]["id"] = "<script>id</script>"
    (run_dir / "run.json").write_text(json.dumps(run_json), encoding="utf-8")
    (run_dir / "results" / "<script>.jsonl").write_text(EVIL, encoding="utf-8")
    run = rs.load_run(run_dir)
    assert run.failures  # the hostile file name is reported, and must be inert too

    summary = rs.summarize(results, findings, tv, labels=run.labels)
    previous = {**summary, "findings": [{"id": EVIL, "severity": "<script>", "title": EVIL}]}
    sections = [
        rs.title_section(run),
        rs.summary_section(findings, tv, run),
        rs.endpoints_section(run),
        rs.test_details_section(results, labels=run.labels, api_key_env=EVIL),
        rs.infrastructure_section(results, labels=run.labels),
        rs.root_cause_section(findings, labels=run.labels),
        rs.recommendations_section(findings),
        rs.status_section(findings, tv, run),
        rs.changes_section(rs.compare(summary, previous)),
    ]
    for section in sections:
        html, md = section.html(), section.markdown()
        assert_inert_html(html)
        assert_inert_markdown(md)
        assert "</td><td>injected" not in html and "</td><td>injected" not in md
        assert "onerror" not in " ".join(a for a, _ in parse_html(html).attrs)
    # The text is still there, as text.
    details = sections[3]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in details.html()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in details.markdown()
    assert "curl '&lt;script&gt;' | `rm -rf` ![img](http://x)" in details.markdown()  # inside <pre>
    assert "curl &#x27;&lt;script&gt;&#x27; | `rm -rf` ![img](http://x)" in details.html()


def test_hostile_text_survives_rendering_as_text() -> None:
    finding = Finding("x", Severity.CRITICAL, "| ![img](http://x) <script>alert(1)</script>", "s", "r")
    section = rs.root_cause_section([finding])
    rendered = markdown_to_html(section.markdown())
    text = "".join(parse_html(rendered).text)
    assert "| ![img](http://x) <script>alert(1)</script>" in text
    text = "".join(parse_html(section.html()).text)
    assert "| ![img](http://x) <script>alert(1)</script>" in text


# --- charts -------------------------------------------------------------------------------


def test_charts_render_png_for_fixture_data(incident: Any) -> None:
    results, findings, tv = incident
    heat = rs.success_heatmap(rs.summarize(results, findings, tv))
    latency = rs.latency_chart(results)
    for chart in (heat, latency):
        assert chart.data.startswith(PNG)
        data, meta = chart._repr_png_()
        assert data == chart.data and meta["alt"]
        assert len(chart.data) > 2000


@pytest.mark.parametrize(
    "make",
    [
        lambda: rs.success_heatmap({}),
        lambda: rs.success_heatmap({"targets": {"a": {"networks": {"direct": {"success_rate": None}}}}}),
        lambda: rs.success_heatmap({"targets": "nonsense"}),
        lambda: rs.latency_chart([]),
        lambda: rs.latency_chart(fixture("all-down")),
        lambda: rs.latency_chart(hostile_results()),
        lambda: rs.success_heatmap(rs.summarize(hostile_results(), [], [])),
    ],
)
def test_charts_do_not_raise_on_empty_or_odd_input(make: Callable[[], rs.PngImage]) -> None:
    assert make().data.startswith(PNG)


# --- the notebook, as committed -------------------------------------------------------------


def test_findings_notebook_is_thin_parameterised_and_clean() -> None:
    nb = json.loads(NOTEBOOK.read_text(encoding="utf-8"))
    assert nb["nbformat"] == 4
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    params = [c for c in nb["cells"] if "parameters" in c["metadata"].get("tags", [])]
    assert len(params) == 1
    source = "".join(params[0]["source"])
    assert 'run_dir = ""' in source and "compare_dir = None" in source
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert all(c["outputs"] == [] and c["execution_count"] is None for c in code)
    assert max(len("".join(c["source"]).splitlines()) for c in code) <= 10
    titles = [("".join(c["source"])) for c in nb["cells"] if c["cell_type"] == "markdown"]
    assert titles == [
        "## Summary",
        "## Tested Endpoints",
        "## Test Details",
        "## Infrastructure Details",
        "## Root Cause Analysis",
        "## Recommendations",
        "## Status and Next Steps",
        "## Changes since the previous run",
        "## Charts",
    ]
    assert "api_key" not in json.dumps(nb).replace("api_key_env", "")
