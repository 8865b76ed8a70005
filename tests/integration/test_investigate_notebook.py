"""notebooks/investigate.ipynb, the on-call notebook, run top to bottom in a real kernel: it
starts the lab it is pointed at, probes a target, diagnoses every target, and shows the
scenario's ground truth."""

from __future__ import annotations

from pathlib import Path

import nbformat
import papermill as pm
import pytest

from kiloscribe_lab.lab import fleet
from kiloscribe_lab.lab.scenarios import SCENARIOS

pytestmark = pytest.mark.timeout(240)

NOTEBOOK = Path(__file__).parents[2] / "notebooks" / "investigate.ipynb"


def cell_text(cell: nbformat.NotebookNode) -> str:
    parts = []
    for out in cell.get("outputs", []):
        if "text" in out:
            parts.append(out["text"])
        for kind in ("text/plain", "text/html"):
            if kind in out.get("data", {}):
                parts.append(out["data"][kind])
    return "\n".join(parts)


def test_the_on_call_notebook_runs_against_the_lab_it_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lab_dir = tmp_path / "lab"
    monkeypatch.setenv("KILOSCRIBE_LAB_DIR", str(lab_dir))
    monkeypatch.delenv(fleet.API_KEY_ENV, raising=False)  # the lab makes its own key
    out = tmp_path / "investigate.ipynb"
    try:
        pm.execute_notebook(
            str(NOTEBOOK), str(out), cwd=str(NOTEBOOK.parent), kernel_name="python3", progress_bar=False
        )
        key = fleet.lab_environment(fleet.attach(lab_dir))[fleet.API_KEY_ENV]
    finally:
        fleet.down(lab_dir)
    nb = nbformat.read(out, as_version=4)
    text = "\n".join(cell_text(c) for c in nb.cells if c.cell_type == "code")
    assert "scenario incident" in text
    for finding in SCENARIOS["incident"].expected_findings:
        assert finding in text, finding
    assert len(key) >= 16 and key not in out.read_text()  # the lab's key stays out of the outputs
    assert not (lab_dir / fleet.STATE_FILE).exists()
