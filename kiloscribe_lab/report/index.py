"""``reports/index.html``: every run in a reports folder, newest first: when, what was
investigated, its status (a coloured word), and its findings by title, the faults before the
expected answers. Rendered with the report's document model and stylesheet: the same escaping,
no script, readable on a phone."""

from __future__ import annotations

import html
from collections.abc import Mapping
from pathlib import Path

from kiloscribe_lab.names import OverallStatus, Severity
from kiloscribe_lab.report.document import Badge, Inline, Table, Text, Tone, render_html
from kiloscribe_lab.report.loose import as_items, read_json_object
from kiloscribe_lab.report.plan import run_dirs
from kiloscribe_lab.report.rundata import read_run
from kiloscribe_lab.report.sections import SEVERITY_TONES, STATUS_TONES, short_title
from kiloscribe_lab.report.style import CSS

INDEX_TITLE = "kiloscribe-lab reports"
# The findings column reads as lines, not as a word a line: on a phone the table scrolls instead.
INDEX_CSS = (
    "main.index td:nth-child(3) { min-width: 17rem; } main.index td:nth-child(4) { min-width: 11rem; }"
)
_RANK = {s.value: s.rank for s in Severity}


def _findings(summary: Mapping[str, object]) -> Text:
    """Critical and warning findings by title; the expected answers (info) counted after them."""
    found = [f for f in as_items(summary.get("findings")) if isinstance(f, Mapping)]
    found.sort(key=lambda f: -_RANK.get(str(f.get("severity")), -1))
    faults = [f for f in found if str(f.get("severity")) != Severity.INFO]
    fine = len(found) - len(faults)
    out: list[Inline] = []
    for f in faults:
        severity = str(f.get("severity") or "")
        if out:
            out.append("\n")
        title = short_title(str(f.get("title") or f.get("id") or "?"))
        out += [
            Badge(severity.capitalize() or "Finding", SEVERITY_TONES.get(severity, "neutral")),
            " ",
            title,
        ]
    if fine:
        out += ["\n" if out else "", f"and {fine} expected answer{'s' if fine > 1 else ''} (not faults)"]
    return tuple(out) if out else "no finding"


def _status(summary: Mapping[str, object]) -> Badge:
    status = str(summary.get("status") or OverallStatus.INCOMPLETE)
    tone: Tone = STATUS_TONES.get(status, "incomplete")
    return Badge(status, tone)


def write_index(out_root: Path) -> Path:
    """Rewrite out_root/index.html from the run directories there; return its path."""
    rows: list[tuple[Text, ...]] = []
    for run_dir in reversed(run_dirs(out_root)):
        run = read_run(run_dir)
        summary = read_json_object(run_dir / "summary.json")
        rows.append(
            (
                run_dir.name,
                _status(summary),
                _findings(summary),
                run.title if run.title != run_dir.name else (run.source or "—"),
                str(len(run.failed_runs)),
            )
        )
    # What a reader scans for first on the left: a phone scrolls the table for the rest.
    table = Table(["Run", "Status", "Findings", "What was investigated", "Failed runs"], rows)
    body = render_html([table]) if rows else "<p>No report has run here yet.</p>"
    # Each run's name links to its report: the document model links only inside a page.
    for run_dir in run_dirs(out_root):
        name = html.escape(run_dir.name)
        link = f'<td class="nowrap"><a href="{name}/findings.html">{name}</a></td>'
        body = body.replace(f"<td>{name}</td>", link, 1)
    page = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{INDEX_TITLE}</title><style>{CSS}{INDEX_CSS}</style></head>\n"
        f'<body><main class="report index"><h1>{INDEX_TITLE}</h1>'
        f'<p class="meta">{len(rows)} run{"s" if len(rows) != 1 else ""}, newest first.</p>\n'
        f"{body}\n</main></body></html>\n"
    )
    index = out_root / "index.html"
    index.write_text(page)
    return index
