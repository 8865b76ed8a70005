"""Human output: every target, finding, verdict and the overall line, from recorded evidence."""

from __future__ import annotations

from pathlib import Path

import pytest

from kiloscribe_lab.diagnosis import Verdict
from kiloscribe_lab.lab.scenarios import SCENARIOS
from kiloscribe_lab.names import Outcome, ProbeName
from kiloscribe_lab.output import render_text
from kiloscribe_lab.probes.command import ProbeReport, build_report
from kiloscribe_lab.results import ProbeResult, read_jsonl

FIXTURES = Path(__file__).parent / "fixtures"
KEY = "KILOSCRIBE_API_KEY"


def report_for(name: str) -> ProbeReport:
    results = [r for r in read_jsonl((FIXTURES / f"{name}.jsonl").read_text()) if isinstance(r, ProbeResult)]
    return build_report(results, KEY)


@pytest.mark.parametrize("name", ["incident", "healthy", "all-down"])
def test_render_text_names_every_target_finding_and_verdict(name: str) -> None:
    report = report_for(name)
    text = render_text(report)
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
    assert text.rstrip().endswith(f"Overall: {report.status}. {report.sentence}")
    assert "Findings" in text and "Verdicts" in text


def test_render_text_incident_specifics() -> None:
    report = report_for("incident")
    text = render_text(report)
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
    assert text.endswith("Overall: healthy. Socket.IO works on every target; nothing needs fixing.")


def test_render_text_shortens_long_errors_to_one_line() -> None:
    result = ProbeResult(
        ProbeName.ENGINEIO_HANDSHAKE, "https://h.example", Outcome.MALFORMED, error="x\n" + "y" * 200
    )
    report = ProbeReport([result], [], [], "degraded", "s.")
    row = next(line for line in render_text(report).splitlines() if line.startswith("  engineio_handshake"))
    assert "\n" not in row and row.endswith("…")
    assert len(row.split("  ")[-1]) <= 70
