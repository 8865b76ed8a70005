"""nbconvert's side of the report: HTML and Markdown from an executed notebook, and one
ReportError (never a library's exception) when the notebook cannot be rendered."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from kiloscribe_lab.errors import EXIT_REPORT, ReportError
from kiloscribe_lab.report.render import render


def executed_notebook(path: Path) -> Path:
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("section()", execution_count=1)
    cell.outputs = [
        nbformat.v4.new_output(
            "display_data", data={"text/html": "<p>the finding</p>", "text/markdown": "the finding"}
        )
    ]
    nb.cells = [nbformat.v4.new_markdown_cell("## Summary"), cell]
    nbformat.write(nb, path)
    return path


def test_render_writes_html_and_markdown_without_inputs(tmp_path: Path) -> None:
    written = render(tmp_path, executed_notebook(tmp_path / "findings_report.ipynb"))
    assert written[:2] == [tmp_path / "findings.html", tmp_path / "findings.md"]
    page, md = written[0].read_text(), written[1].read_text()
    assert "<title>Kiloscribe findings report</title>" in page
    assert "<p>the finding</p>" in page and "the finding" in md and "## Summary" in md
    assert "section()" not in page and "section()" not in md  # inputs hidden
    assert "<script src=" not in page
    assert not (tmp_path / ".nbconvert").exists()


@pytest.mark.parametrize(
    "text",
    [
        "not json at all",
        '{"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [{"cell_type": "code"}]}',
        '{"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [{"cell_type": "code", "id": "c1", '
        '"metadata": {}, "source": "", "outputs": [{"output_type": "stream"}]}]}',
    ],
)
def test_a_notebook_that_cannot_be_rendered_is_one_report_error(tmp_path: Path, text: str) -> None:
    run_dir = tmp_path / "2026-11-26"
    (run_dir / "results").mkdir(parents=True)
    (run_dir / "results" / "01-lb-direct.jsonl").write_text("{}\n")
    notebook = run_dir / "findings_report.ipynb"
    notebook.write_text(text)
    with pytest.raises(ReportError) as caught:
        render(run_dir, notebook)
    message = str(caught.value)
    assert len(message.splitlines()) == 1
    assert message.startswith("cannot render findings_report.ipynb: ") and str(run_dir) in message
    assert caught.value.exit_code == EXIT_REPORT and caught.value.__cause__ is not None
    # What was measured is left alone; nothing half-rendered, no template folder left behind.
    assert sorted(p.name for p in run_dir.iterdir()) == ["findings_report.ipynb", "results"]


def test_the_page_has_the_runs_dated_title_our_stylesheet_and_no_script(tmp_path: Path) -> None:
    from kiloscribe_lab.report.rundata import RunData

    RunData(
        tmp_path, title="Lab investigation: scenario incident", started_at="2026-12-01T09:55:00.000Z"
    ).write()
    written = render(tmp_path, executed_notebook(tmp_path / "findings_report.ipynb"))
    page = written[0].read_text()
    assert "<title>Lab investigation: scenario incident — 2026-12-01</title>" in page
    assert 'name="viewport"' in page and "th.num, td.num { text-align: right;" in page
    assert "<script" not in page and "jp-RenderedHTMLCommon {" not in page  # not Jupyter's CSS


def test_a_notebook_that_failed_part_way_renders_with_a_notice_saying_where_and_why(tmp_path: Path) -> None:
    notebook = executed_notebook(tmp_path / "findings_report.ipynb")
    nb = nbformat.read(notebook, as_version=4)
    failing = nbformat.v4.new_code_cell("sections.charts_section()", execution_count=2)
    failing.outputs = [
        nbformat.v4.new_output("error", ename="KeyError", evalue="'targets'", traceback=["KeyError"])
    ]
    nb.cells.append(failing)
    nb.cells.append(nbformat.v4.new_markdown_cell("\n\n\n\nafter\n\n\n\n"))
    nbformat.write(nb, notebook)
    page, md = (p.read_text() for p in render(tmp_path, notebook)[:2])
    for out in (page, md):
        assert "INCOMPLETE REPORT" in out and "cell 3: KeyError: &#x27;targets&#x27;" in out.replace(
            "'targets'", "&#x27;targets&#x27;"
        )
        assert "the finding" in out  # what came before the failure
    assert page.index("INCOMPLETE REPORT") < page.index("the finding")
    assert "\n\n\n" not in md
