"""The notebooks as committed, and as the package finds them (importlib.resources)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kiloscribe_lab.errors import ReportError
from kiloscribe_lab.report.packaged import NOTEBOOKS, REPORT_NOTEBOOK, notebook

REPOSITORY_NOTEBOOKS = Path(__file__).parents[3] / "notebooks"
NOTEBOOK = REPOSITORY_NOTEBOOKS / REPORT_NOTEBOOK


def test_the_package_finds_the_repository_notebooks() -> None:
    # This checkout is installed editable: the package's notebooks are the committed files.
    assert sorted(NOTEBOOKS) == sorted(p.name for p in REPOSITORY_NOTEBOOKS.glob("*.ipynb"))
    for name in NOTEBOOKS:
        assert notebook(name).read_bytes() == (REPOSITORY_NOTEBOOKS / name).read_bytes(), name


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
    # One cell per section, in the report's order (each section opens with its own heading,
    # which the contents link to): no Markdown cell to repeat a heading.
    assert [c for c in nb["cells"] if c["cell_type"] == "markdown"] == []
    shown = [src for c in code if "\n" not in (src := "".join(c["source"]).strip())]
    assert shown == [
        "sections.title_section(run)",
        "sections.summary_section(findings, target_verdicts, run, summary, labels=labels)",
        "sections.contents_section(findings, results)",
        "sections.targets_section(target_verdicts, summary, labels=labels)",
        "sections.root_cause_section(findings, results, labels=labels)",
        "sections.recommendations_section(findings, run)",
        "sections.changes_section(comparison)",
        "lifetime_part",
        "charts_part",
        "vantages_part",
        "sections.endpoints_section(run)",
        "sections.infrastructure_section(results, labels=labels)",
        "sections.test_details_section(results, labels=labels, ca_bundle=run.ca_bundle)",
    ]
    assert "api_key" not in json.dumps(nb).replace("api_key_env", "")


def test_a_notebook_that_is_not_installed_is_a_report_error() -> None:
    with pytest.raises(ReportError, match=r"no-such\.ipynb is not installed"):
        notebook("no-such.ipynb")
