"""reports/index.html: every run directory, newest first, read loosely; titles, not ids."""

from __future__ import annotations

import json
import re
from pathlib import Path

from kiloscribe_lab.names import FindingId
from kiloscribe_lab.report.index import write_index
from kiloscribe_lab.report.jobs import RunStatus
from kiloscribe_lab.report.rundata import RunData, RunRecord
from tests.unit.report.helpers import assert_inert_html, parse_html


def cells(row: str) -> list[str]:
    return ["".join(parse_html(c).text) for c in re.findall(r"<td[^>]*>(.*?)</td>", row, flags=re.S)]


def test_the_index_lists_every_run_newest_first_with_status_titles_and_failures(tmp_path: Path) -> None:
    older = tmp_path / "2026-11-26"
    newer = tmp_path / "2026-11-26-2"
    broken = tmp_path / "2026-11-27"
    for run_dir in (older, newer, broken, tmp_path / "not-a-run"):
        run_dir.mkdir()
    matrix = (
        RunRecord("01-lb-direct", "https://lb.example", "direct", RunStatus.OK),
        RunRecord("02-lb-mobile", "https://lb.example", "mobile", RunStatus.TIMEOUT),
    )
    RunData(
        older,
        title="<b>Lab investigation</b>",
        started_at="2026-11-26T05:00:00Z",
        source="lab:incident",
        matrix=matrix,
    ).write()
    findings = [
        {"id": FindingId.AUTH_PATH_HEALTHY, "severity": "info", "title": "The auth path works"},
        {
            "id": FindingId.BACKEND_DOWN,
            "severity": "critical",
            "title": "Backend down: inscribe-2 (https://127.0.0.1:1)",
        },
        "junk",
        {"id": FindingId.STICKY_SESSIONS_MISSING, "severity": "warning", "title": "No sticky sessions"},
    ]
    (older / "summary.json").write_text(json.dumps({"status": "critical", "findings": findings}))
    RunData(newer, title="Lab investigation: scenario healthy", source="lab:healthy").write()
    (newer / "summary.json").write_text(json.dumps({"status": "healthy", "findings": []}))
    (broken / "run.json").write_text("{not json")

    page = write_index(tmp_path).read_text()
    # The table is the document model's (the run links aside: they are the run directories').
    table = page.split('<p class="meta">', 1)[1].split("</main>")[0].split("</p>", 1)[1]
    assert_inert_html(re.sub(r'href="\d{4}-\d{2}-\d{2}(-\d+)?/findings\.html"', 'href="#run"', table))
    rows = re.findall(r"<tr>(.*?)</tr>", page.split("<tbody>", 1)[1], flags=re.S)
    assert [cells(r)[0] for r in rows] == ["2026-11-27", "2026-11-26-2", "2026-11-26"]
    assert '<a href="2026-11-26/findings.html">2026-11-26</a>' in page
    _, status, found, what, failed = cells(rows[2])
    assert status == "critical" and '<span class="badge badge-critical">critical</span>' in rows[2]
    assert what == "<b>Lab investigation</b>" and "&lt;b&gt;Lab investigation" in rows[2]
    # Titles, not ids; critical, then warnings, then the expected answers counted.
    assert (
        found.index("Backend down: inscribe-2")
        < found.index("No sticky sessions")
        < found.index("1 expected answer")
    )
    assert FindingId.BACKEND_DOWN not in found and "https://" not in found
    assert failed == "1" and '<td class="num">1</td>' in rows[2]
    assert cells(rows[1])[1:3] == ["healthy", "no finding"] and "badge-healthy" in rows[1]
    assert cells(rows[0])[1] == "incomplete"  # no summary: it did not finish
    assert "not-a-run" not in page
    assert "<script" not in page
