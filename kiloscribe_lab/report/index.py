"""``reports/index.html``: every run in a reports folder, newest first, with its status and findings."""

from __future__ import annotations

import html
from collections.abc import Mapping
from pathlib import Path

from kiloscribe_lab.report.loose import as_items, read_json_object
from kiloscribe_lab.report.plan import run_dirs
from kiloscribe_lab.report.rundata import read_run


def write_index(out_root: Path) -> Path:
    """Rewrite out_root/index.html from the run directories there; return its path."""
    rows = []
    for run_dir in reversed(run_dirs(out_root)):
        run = read_run(run_dir)
        summary = read_json_object(run_dir / "summary.json")
        findings = ", ".join(
            str(f.get("id")) for f in as_items(summary.get("findings")) if isinstance(f, Mapping)
        )
        status = summary.get("status") or "incomplete"
        link = f'<a href="{html.escape(run_dir.name)}/findings.html">{html.escape(run_dir.name)}</a>'
        rows.append(
            "<tr>"
            + "".join(
                f"<td>{cell}</td>"
                for cell in (
                    link,
                    html.escape(run.started_at or ""),
                    html.escape(run.source or ""),
                    html.escape(str(status)),
                    html.escape(findings),
                    str(len(run.failed_runs)),
                )
            )
            + "</tr>"
        )
    page = (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>kiloscribe-lab reports</title>"
        "<style>body{font-family:sans-serif;margin:2em}td,th{padding:.3em .8em;text-align:left;"
        "border-bottom:1px solid #ddd}</style></head><body><h1>kiloscribe-lab reports</h1>"
        "<table><thead><tr><th>run</th><th>started</th><th>source</th><th>status</th>"
        "<th>findings</th><th>failed runs</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>"
        "</body></html>\n"
    )
    index = out_root / "index.html"
    index.write_text(page)
    return index
