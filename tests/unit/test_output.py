"""Human output: the overall verdict first, every target, finding and verdict, from recorded
evidence; wrapping to a width; colour only when asked; nothing a terminal would obey but ours."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

from kiloscribe_lab.diagnosis import TargetVerdict, Verdict
from kiloscribe_lab.lab.scenarios import SCENARIOS
from kiloscribe_lab.names import FindingId, Outcome, ProbeName, Severity
from kiloscribe_lab.output import (
    PLAIN,
    ReportEnd,
    ReportProgress,
    Style,
    clean,
    probe_notices,
    progress_printer,
    render_overall,
    render_report_end,
    render_text,
    style_for,
    terminal_width,
    use_color,
)
from kiloscribe_lab.probes.command import ProbeReport, build_report
from kiloscribe_lab.results import Finding, ProbeResult, read_jsonl

FIXTURES = Path(__file__).parent / "fixtures"
KEY = "KILOSCRIBE_API_KEY"
WIDE = Style(width=1000, measure=1000)  # no wrapping: the content assertions read whole lines
SGR = re.compile(r"\x1b\[[0-9;]*m")
URL = re.compile(r"\S*[a-z]+://\S+")


def report_for(name: str) -> ProbeReport:
    results = [r for r in read_jsonl((FIXTURES / f"{name}.jsonl").read_text()) if isinstance(r, ProbeResult)]
    return build_report(results, KEY)


def controls(text: str) -> set[str]:
    """Every character a terminal would act on, bar the newline."""
    return {ch for ch in text if (ord(ch) < 0x20 and ch != "\n") or 0x7F <= ord(ch) < 0xA0}


@pytest.mark.parametrize("name", ["incident", "healthy", "all-down"])
def test_render_text_names_every_target_finding_and_verdict(name: str) -> None:
    report = report_for(name)
    text = render_text(report, WIDE)
    labels = {str(r.detail["label"]) for r in report.results if r.detail.get("label")}
    assert labels == {"edge", "lb", "inscribe-1", "inscribe-2", "inscribe-3"}
    for r in report.results:
        assert r.target in text
    for label in labels:
        assert f"{label}  https://" in text  # each target's table header: label, then URL
    for f in report.findings:
        assert f"{f.id}: {f.title}" in text
    assert set(SCENARIOS[name].expected_findings) <= {f.id for f in report.findings}
    for v in report.verdicts:
        assert f"{v.verdict.value:<9} {v.label} ({v.target})  {v.sentence}" in text
    assert text.startswith(f"Overall: {report.status}. {report.sentence}")
    assert "Findings" in text and "Verdicts" in text


@pytest.mark.parametrize("name", ["incident", "healthy", "all-down"])
def test_the_verdict_comes_first_then_the_findings_then_the_probes(name: str) -> None:
    report = report_for(name)
    lines = render_text(report).splitlines()
    assert lines[0].startswith(f"Overall: {report.status}.")
    headings = [line for line in lines if line in {"Verdicts", "Findings", "Probes"}]
    assert headings == ["Verdicts", "Findings", "Probes"]
    first_row = next(
        i for i, line in enumerate(lines) if line.lstrip().startswith(str(ProbeName.HTTP_UPGRADE))
    )
    assert lines.index("Findings") < first_row


def test_render_text_incident_specifics() -> None:
    report = report_for("incident")
    text = render_text(report, WIDE)
    assert report.status == "critical"
    assert "[CRITICAL] backend-down: Backend down: inscribe-2" in text
    assert "[info] root-redirect" in text
    down = [v for v in report.verdicts if v.verdict is Verdict.DOWN]
    assert [v.label for v in down] == ["inscribe-2"]
    assert f"down      inscribe-2 ({down[0].target})" in text
    assert "Overall: critical." in text


def test_render_text_without_findings_says_none() -> None:
    result = ProbeResult(
        ProbeName.SOCKETIO_CONNECT, "https://h.example", Outcome.OK, variant="polling:valid", status=200
    )
    report = ProbeReport(
        [result], [], [], "healthy", "Socket.IO works on every target; nothing needs fixing."
    )
    text = render_text(report)
    assert "Findings\n  none" in text
    assert "https://h.example  (network direct)" in text
    assert "socketio_connect polling:valid" in text
    assert text.startswith("Overall: healthy. Socket.IO works on every target; nothing needs fixing.")


def test_render_text_shortens_long_errors_to_one_line() -> None:
    result = ProbeResult(
        ProbeName.ENGINEIO_HANDSHAKE, "https://h.example", Outcome.MALFORMED, error="x\n" + "y" * 200
    )
    report = ProbeReport([result], [], [], "degraded", "s.")
    row = next(
        line for line in render_text(report, WIDE).splitlines() if line.startswith("  engineio_handshake")
    )
    assert "\n" not in row and row.endswith("…")
    assert len(row.split("  ")[-1]) <= 70


@pytest.mark.parametrize("width", [40, 60, 80, 100, 132])
@pytest.mark.parametrize("name", ["incident", "healthy", "all-down"])
def test_no_line_is_wider_than_the_width_but_an_unbreakable_token(name: str, width: int) -> None:
    text = render_text(
        report_for(name), Style(width=width), probe_notices(report_for(name), api_key_env=None)
    )
    for line in text.splitlines():
        if len(line) > width:
            # Only a URL (or an id glued to one) may pass the width, alone after the indent.
            words = line.split()
            if words[0].startswith("[") and words[0].endswith("]"):
                words = words[1:]  # a finding's mark, then its id: "[info] plain-websocket-…"
            assert len(words) == 1 or any(URL.fullmatch(w) for w in words), line
            assert all(len(w) <= width or URL.fullmatch(w) for w in words), line


def test_at_80_columns_notes_go_under_their_rows_and_wide_terminals_keep_them_beside() -> None:
    report = report_for("incident")
    narrow = render_text(report, Style(width=80)).splitlines()
    i = next(i for i, line in enumerate(narrow) if line.startswith("  websocket_plain as-given"))
    assert narrow[i + 1].startswith("      ") and narrow[i + 1].strip().startswith(
        "Unexpected server response"
    )
    wide = render_text(report, Style(width=160)).splitlines()
    row = next(line for line in wide if line.startswith("  websocket_plain as-given"))
    assert row.endswith("Unexpected server response: 308") or "Unexpected server response" in row


def test_wrapped_prose_keeps_every_word_and_never_breaks_an_id_or_url() -> None:
    report = report_for("incident")
    narrow, wide = render_text(report, Style(width=60)), render_text(report, WIDE)

    # The findings' text is the same once joined; the table (notes under rows) is laid out anew.
    def words(text: str) -> list[str]:
        return text.split("\nProbes\n")[0].split()

    assert words(narrow) == words(wide)
    for f in report.findings:
        assert f.id in narrow.split()[:] or f"{f.id}:" in narrow.split()


def test_no_color_leaves_no_escape_bytes() -> None:
    report = report_for("incident")
    notices = probe_notices(report, api_key_env=None, inscription=False)
    for style in (PLAIN, Style(width=60), WIDE):
        text = render_text(report, style, notices)
        assert "\x1b" not in text and not controls(text)


def test_color_always_paints_the_verdict_severities_and_headings() -> None:
    report = report_for("incident")
    text = render_text(report, Style(width=80, color=True))
    first = text.splitlines()[0]
    assert first.startswith("Overall: \x1b[1;31mcritical\x1b[0m.")
    assert "[\x1b[1;31mCRITICAL\x1b[0m] backend-down" in text
    assert "[\x1b[33mWARNING\x1b[0m]" in text
    assert "\x1b[1mFindings\x1b[0m" in text
    assert "\x1b[33mdegraded\x1b[0m" in text and "\x1b[32mhealthy\x1b[0m" in text
    # Colour changes no layout: stripped of it, the text is the plain text, line for line.
    assert SGR.sub("", text) == render_text(report, Style(width=80))
    assert not controls(SGR.sub("", text))


@pytest.mark.parametrize(
    ("mode", "isatty", "environ", "expected"),
    [
        ("auto", True, {}, True),
        ("auto", False, {}, False),
        ("auto", True, {"NO_COLOR": "1"}, False),
        ("auto", True, {"NO_COLOR": ""}, True),  # no-color.org: set and non-empty
        ("auto", True, {"TERM": "dumb"}, False),
        ("never", True, {}, False),
        ("always", False, {"NO_COLOR": "1"}, True),  # the flag is the user's own word
    ],
)
def test_when_to_colour(mode: str, isatty: bool, environ: dict[str, str], expected: bool) -> None:
    assert use_color(mode, isatty=isatty, environ=environ) is expected


def test_the_width_is_the_terminals_else_80() -> None:
    assert terminal_width(io.StringIO(), {}) == 80  # a capture, a pipe: no terminal
    assert terminal_width(io.StringIO(), {"COLUMNS": "120"}) == 120
    assert terminal_width(io.StringIO(), {"COLUMNS": "12"}) == 40  # a floor: tables stay tables
    assert terminal_width(io.StringIO(), {"COLUMNS": "wide"}) == 80
    assert style_for(io.StringIO(), "auto", {}) == Style(80, False)
    assert style_for(io.StringIO(), "always", {}) == Style(80, True)


def test_server_text_cannot_drive_the_terminal() -> None:
    hostile = "evil\x1b[2J\x1b]0;owned\x07\r\u202eback"
    result = ProbeResult(ProbeName.ENGINEIO_HANDSHAKE, "https://h.example", Outcome.MALFORMED, error=hostile)
    finding = Finding(FindingId.ROOT_REDIRECT, Severity.INFO, hostile, hostile, hostile)
    verdict = TargetVerdict("https://h.example", Verdict.DEGRADED, hostile, hostile)
    report = ProbeReport([result], [finding], [verdict], "degraded", hostile)
    for style in (PLAIN, WIDE):
        text = render_text(report, style)
        assert "\x1b" not in text and not controls(text) and "\u202e" not in text
        assert "evil\\x1b[2J" in text and "\\u202eback" in text  # shown, not obeyed
    assert clean("a\tb\nc") == "a b c"


def test_skipped_checks_are_said_before_the_verdicts() -> None:
    report = report_for("incident")
    no_key = probe_notices(report, api_key_env=None, attempts=3)
    assert len(no_key) == 1
    for word in ("--api-key-env", str(ProbeName.SOCKETIO_CONNECT), str(ProbeName.SDK_FLOW), "connect_stats"):
        assert word in no_key[0]
    assert probe_notices(report, api_key_env=KEY) == []
    no_inscription = probe_notices(report, api_key_env=KEY, inscription=False)
    assert len(no_inscription) == 1 and "--no-inscription" in no_inscription[0]
    assert "start-inscription" in no_inscription[0]
    lines = render_text(report, Style(width=80), no_key + no_inscription).splitlines()
    assert lines[0].startswith("Overall: ")
    notes = [i for i, line in enumerate(lines) if line.startswith("Not checked: ")]
    assert len(notes) == 2 and notes[-1] < lines.index("Verdicts")
    overall = render_overall(report, Style(80), no_key + no_inscription).splitlines()
    assert overall == lines[: len(overall)] and lines[len(overall)] == ""


def test_a_config_that_turned_the_inscription_off_is_read_from_the_evidence() -> None:
    flow = ProbeResult(
        ProbeName.SDK_FLOW,
        "https://h.example",
        Outcome.OK,
        detail={"steps": [{"step": "start-inscription", "skipped": "--no-inscription"}]},
    )
    report = ProbeReport([flow], [], [], "healthy", "s.")
    [notice] = probe_notices(report, api_key_env=KEY, inscription=True)
    assert "(the config)" in notice


def test_probing_counter_is_erased_when_done() -> None:
    out = io.StringIO()
    show = progress_printer(out)
    for done in range(1, 4):
        show(done, 3)
    text = out.getvalue()
    assert "probing 1/3" in text and text.endswith("\r" + " " * len("probing 3/3") + "\r")
    assert "\n" not in text


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_report_progress_in_a_log_is_one_line_per_notebook() -> None:
    out, clock = io.StringIO(), Clock()
    progress = ReportProgress(out, live=False, clock=clock)
    progress.note("starting the lab (scenario incident)")
    clock.now += 4
    progress.planned(3)
    for name in ("01-edge-direct: ok", "02-lb-direct: ok", "findings report: ok"):
        clock.now += 5
        progress.step(name)
    progress.close()
    assert out.getvalue().splitlines() == [
        "report: starting the lab (scenario incident)",
        "report: 3 notebooks to run",
        "report: [1/3] 01-edge-direct: ok (0:05)",
        "report: [2/3] 02-lb-direct: ok (0:10)",
        "report: [3/3] findings report: ok (0:15)",
    ]


def test_report_progress_on_a_terminal_counts_to_the_total_with_an_eta() -> None:
    out, clock = io.StringIO(), Clock()
    progress = ReportProgress(out, live=True, width=60, clock=clock)
    progress.planned(4)
    clock.now += 10
    progress.step("01-edge-direct: ok")
    frames = out.getvalue().split("\r")
    assert frames[-1].startswith("notebooks 1/4  0:10 elapsed, about 0:30 left")
    for _ in range(4):  # one more than planned: the count grows, never "5 of 4"
        clock.now += 10
        progress.step("next: ok")
    last = out.getvalue().split("\r")[-1]
    assert last.startswith("notebooks 5/5  0:50 elapsed ") and "left" not in last
    assert all(len(frame) < 60 for frame in out.getvalue().split("\r"))  # never wraps
    progress.close()
    assert out.getvalue().endswith("\r") and "\n" not in out.getvalue()
    assert not {ch for ch in out.getvalue() if ord(ch) < 0x20} - {"\r"}


def end(**changes: object) -> ReportEnd:
    base: dict[str, object] = {
        "status": "critical",
        "sentence": "2 critical finding(s): A; B.",
        "findings": [
            ("critical", "Backend down: inscribe-2"),
            ("warning", "No sticky sessions: polling sessions are lost (edge, lb)"),
            ("info", "The auth path works"),
            ("info", "/ answers 308"),
        ],
        "runs": 11,
        "failed": [],
        "files": [
            ("HTML", "reports/2026-12-01/findings.html"),
            ("Markdown", "reports/2026-12-01/findings.md"),
            ("index", "reports/index.html"),
        ],
        "timings": {"lab_up_s": 3.31, "matrix_s": 21.0},
    }
    base.update(changes)
    return ReportEnd(**base)  # type: ignore[arg-type]


def test_report_ends_with_the_headline_findings_and_the_paths() -> None:
    lines = render_report_end(end()).splitlines()
    assert lines == [
        "Overall: critical. 1 critical, 1 warning, 2 info finding(s)",
        "  [CRITICAL] Backend down: inscribe-2",
        "  [WARNING] No sticky sessions: polling sessions are lost (edge, lb)",
        "  and 2 info finding(s): see the report",
        "11 probe notebooks, 0 failed",
        "HTML      reports/2026-12-01/findings.html",
        "Markdown  reports/2026-12-01/findings.md",
        "index     reports/index.html",
    ]


def test_report_internals_only_with_verbose_and_failures_named() -> None:
    quiet = render_report_end(end(failed=[("99-broken-direct", "malformed URL")]))
    assert "lab_up_s" not in quiet and "time:" not in quiet
    assert "  failed: 99-broken-direct: malformed URL" in quiet and "11 probe notebooks, 1 failed" in quiet
    loud = render_report_end(end(), verbose=True)
    assert "time: lab_up_s 3.3s, matrix_s 21.0s" in loud
    assert loud.splitlines()[-1] == "index     reports/index.html"


def test_a_healthy_report_says_its_sentence() -> None:
    text = render_report_end(end(status="healthy", sentence="Socket.IO works on every target.", findings=[]))
    assert text.splitlines()[0] == "Overall: healthy. Socket.IO works on every target."
    painted = render_report_end(end(status="healthy", findings=[]), Style(color=True))
    assert painted.startswith("Overall: \x1b[32mhealthy\x1b[0m.")
