"""reports/index.html: every run directory, newest first, read loosely."""

from __future__ import annotations

import json
import re
from pathlib import Path

from kiloscribe_lab.names import FindingId
from kiloscribe_lab.report.index import write_index
from kiloscribe_lab.report.jobs import RunStatus
from kiloscribe_lab.report.rundata import RunData, RunRecord


def test_the_index_lists_every_run_newest_first_with_status_findings_and_failures(tmp_path: Path) -> None:
    older = tmp_path / "2026-11-26"
    newer = tmp_path / "2026-11-26-2"
    broken = tmp_path / "2026-11-27"
    for run_dir in (older, newer, broken, tmp_path / "not-a-run"):
        run_dir.mkdir()
    matrix = (
        RunRecord("01-lb-direct", "https://lb.example", "direct", RunStatus.OK),
        RunRecord("02-lb-mobile", "https://lb.example", "mobile", RunStatus.TIMEOUT),
    )
    RunData(older, started_at="2026-11-26T05:00:00Z", source="<b>lab:incident</b>", matrix=matrix).write()
    (older / "summary.json").write_text(
        json.dumps({"status": "critical", "findings": [{"id": FindingId.BACKEND_DOWN}, "junk"]})
    )
    RunData(newer, source="lab:healthy").write()
    (broken / "run.json").write_text("{not json")

    page = write_index(tmp_path).read_text()
    rows = re.findall(r"<tr><td>(.*?)</td></tr>", page)
    assert [re.search(r">(\d{4}-[\d-]+)<", row).group(1) for row in rows] == [  # type: ignore[union-attr]
        "2026-11-27",
        "2026-11-26-2",
        "2026-11-26",
    ]
    cells = rows[2].split("</td><td>")
    assert cells[1:] == [
        "2026-11-26T05:00:00Z",
        "&lt;b&gt;lab:incident&lt;/b&gt;",
        "critical",
        FindingId.BACKEND_DOWN,
        "1",
    ]
    assert rows[0].split("</td><td>")[3] == "incomplete"  # no summary: it did not finish
    assert "not-a-run" not in page
