"""kiloscribe_lab.notebook's on-call API, and investigate.ipynb as committed: parameters a
papermill run can set, safe defaults, public names only, and the outputs of a real lab run
(without any key) so a newcomer sees what a diagnosis looks like."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import nbformat
import pytest

from kiloscribe_lab import notebook
from kiloscribe_lab.errors import UsageError
from kiloscribe_lab.lab.scenarios import SCENARIOS
from kiloscribe_lab.notebook import Investigation, truth_table, verdicts_table
from kiloscribe_lab.probes.command import build_report
from kiloscribe_lab.results import ProbeResult, read_jsonl

NOTEBOOK = Path(__file__).parents[2] / "notebooks" / "investigate.ipynb"
FIXTURES = Path(__file__).parent / "fixtures"
# Keys as the lab generates them ("lab-" + 32 URL-safe characters) and as the tests make them.
KEY_SHAPES = re.compile(r"\blab-[A-Za-z0-9_-]{32}\b|\btest-[A-Za-z0-9_-]{22}\b")


@pytest.fixture(scope="module")
def nb() -> nbformat.NotebookNode:
    return nbformat.read(NOTEBOOK, as_version=4)


def code_cells(nb: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    return [c for c in nb.cells if c.cell_type == "code"]


def parse(source: str) -> ast.Module:
    """A cell's code: top-level ``await`` is a notebook's own."""
    tree = compile(source, "<cell>", "exec", flags=ast.PyCF_ONLY_AST | ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    assert isinstance(tree, ast.Module)
    return tree


def output_text(cell: nbformat.NotebookNode) -> str:
    parts = []
    for out in cell.get("outputs", []):
        parts.append(str(out.get("text", "")))
        parts += [str(v) for v in out.get("data", {}).values()]
    return "\n".join(parts)


def test_the_first_code_cell_is_the_parameters_with_safe_defaults(nb: nbformat.NotebookNode) -> None:
    first = code_cells(nb)[0]
    assert "parameters" in first.metadata.get("tags", [])
    values = {
        node.targets[0].id: ast.literal_eval(node.value)
        for node in ast.parse(first.source).body
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name)
    }
    assert values["INSCRIPTION"] is False  # a production server records a job for each one
    assert values["LAB"] is True and values["SCENARIO"] == "incident"
    assert values["TARGETS"] == {} and values["CA_BUNDLE"] == ""
    assert values["API_KEY_ENV"] == "KILOSCRIBE_API_KEY"  # a name, never a key
    assert set(values) >= {"LAB_DIR", "DISCOVER", "TARGET", "NETWORK", "TIMEOUT"}
    # Nothing after the parameters sets them again (papermill's values must hold).
    for cell in code_cells(nb)[1:]:
        tree = parse(cell.source)
        assigned = {
            t.id
            for n in ast.walk(tree)
            if isinstance(n, ast.Assign)
            for t in n.targets
            if isinstance(t, ast.Name)
        }
        assert not assigned & set(values), assigned & set(values)


def test_it_imports_only_public_names_of_the_notebook_api(nb: nbformat.NotebookNode) -> None:
    imported: list[tuple[str, str]] = []
    for cell in code_cells(nb):
        tree = parse(cell.source)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("kiloscribe_lab"):
                imported += [(node.module, alias.name) for alias in node.names]
            elif isinstance(node, ast.Import):
                assert all(not a.name.startswith("kiloscribe_lab") for a in node.names)
            elif isinstance(node, ast.Attribute):
                assert not node.attr.startswith("_"), node.attr  # no reaching into internals
    assert imported and {module for module, _ in imported} == {"kiloscribe_lab.notebook"}
    for _, name in imported:
        assert not name.startswith("_") and hasattr(notebook, name), name


def test_it_is_saved_with_the_outputs_of_a_lab_run_and_no_key(nb: nbformat.NotebookNode) -> None:
    cells = code_cells(nb)
    ran = [
        c
        for c in cells
        if not c.source.lstrip().startswith("#") or "parameters" in c.metadata.get("tags", [])
    ]
    assert all(c.get("execution_count") for c in ran)
    with_output = [c for c in cells[1:] if c.outputs]
    assert len(with_output) >= 6  # every cell that shows something shows what the lab gave
    text = "\n".join(output_text(c) for c in cells)
    assert not [o for c in cells for o in c.outputs if o.get("output_type") == "error"]
    assert "scenario incident" in text and text.count("Overall: critical.") >= 2
    for finding in SCENARIOS["incident"].expected_findings:
        assert finding in text, finding
    assert "MISSING" not in text
    raw = NOTEBOOK.read_text()
    assert not KEY_SHAPES.search(raw)  # no key, in any output or metadata
    assert not re.search(r"KILOSCRIBE_API_KEY=\S", raw)
    assert "\x1b" not in raw and "\\u001b" not in raw  # no terminal escapes in the outputs
    assert "papermill" not in nb.metadata  # no run metadata: paths and timestamps of one machine


def test_of_targets_starts_nothing_and_shows_the_key_by_name_only() -> None:
    inv = Investigation.of_targets(
        {"edge": "https://inscribe.example.com"},
        ca_bundle="corp-ca.pem",
        api_key_env="PROD_KEY",
        environ={"PROD_KEY": "sentinel-value-123"},
    )
    assert inv.lab is None and inv.expected_findings == ()
    assert inv.target("edge") == "edge=https://inscribe.example.com"
    assert inv.target("wss://other.example") == "wss://other.example"
    shown = repr(inv) + inv._repr_html_()
    assert "$PROD_KEY" in shown and "sentinel-value-123" not in shown and "corp-ca.pem" in shown
    listed = Investigation.of_targets(["https://a.example", "https://b.example"], api_key_env="")
    assert listed.targets == {
        "https://a.example": "https://a.example",
        "https://b.example": "https://b.example",
    }
    assert listed.api_key_env is None and "none: no valid-key checks" in repr(listed)
    with pytest.raises(UsageError, match="no targets"):
        Investigation.of_targets({})
    with pytest.raises(UsageError, match="no lab to stop"):
        listed.stop_lab()


def test_the_tables_name_each_verdict_and_the_ground_truth() -> None:
    results = [r for r in read_jsonl((FIXTURES / "incident.jsonl").read_text()) if isinstance(r, ProbeResult)]
    report = build_report(results, "KILOSCRIBE_API_KEY")
    verdicts = verdicts_table(report)
    assert [row[0] for row in verdicts.rows] == ["edge", "lb", "inscribe-1", "inscribe-2", "inscribe-3"]
    assert verdicts.rows[3][:2] == ["inscribe-2", "down"]
    away = Investigation.of_targets({"edge": "https://e.example"})
    assert all(row[1] == "not expected" for row in truth_table(report, away).rows)
