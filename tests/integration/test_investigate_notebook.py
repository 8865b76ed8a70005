"""notebooks/investigate.ipynb, the on-call notebook, run top to bottom in a real kernel.

As saved (``LAB = True``) it starts the lab it is pointed at, probes a target, diagnoses every
target and shows the scenario's ground truth. With ``LAB = False`` (the production path) it
probes the targets it is given, trusting the CA it is given, with the key named by the variable
it is given: it starts and attaches to no lab, even when one runs.
"""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import papermill as pm
import pytest

from kiloscribe_lab.lab import fleet
from kiloscribe_lab.lab.scenarios import SCENARIOS
from kiloscribe_lab.names import FindingId
from tests.integration.clients import jobs_started
from tests.integration.conftest import LabGetter

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


def outputs(path: Path) -> str:
    nb = nbformat.read(path, as_version=4)
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors, errors
    return "\n".join(cell_text(c) for c in nb.cells if c.cell_type == "code")


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
        lab = fleet.attach(lab_dir)
        key = fleet.lab_environment(lab)[fleet.API_KEY_ENV]
        jobs = jobs_started(lab)
    finally:
        fleet.down(lab_dir)
    text = outputs(out)
    assert f"started the lab in {lab_dir}: scenario incident" in text
    assert "scenario incident" in text
    for finding in SCENARIOS["incident"].expected_findings:
        assert finding in text, finding
    assert "MISSING" not in text  # the ground-truth table: every expected finding found
    assert len(key) >= 16 and key not in out.read_text()  # the lab's key stays out of the outputs
    assert jobs == 0  # INSCRIPTION = False as saved: no start-inscription reached the backends
    assert "Not checked: no start-inscription was sent (INSCRIPTION = False)" in text
    assert not (lab_dir / fleet.STATE_FILE).exists()


def test_the_production_path_probes_your_targets_and_starts_no_lab(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, labs: LabGetter, lab_key: str
) -> None:
    """A loopback target that is not a lab to the notebook: the incident lab's edge, given as a
    plain target with LAB off, its CA as CA_BUNDLE and its key under a name of ours."""
    lab = labs("incident")
    state_before = (lab.lab_dir / fleet.STATE_FILE).read_text()
    jobs_before = jobs_started(lab)
    nowhere = tmp_path / "no-lab-here"
    nowhere.mkdir()
    monkeypatch.setenv("KILOSCRIBE_LAB_DIR", str(nowhere))  # where a lab would be looked for
    monkeypatch.setenv("ONCALL_TEST_KEY", lab_key)
    monkeypatch.delenv(fleet.API_KEY_ENV, raising=False)
    out = tmp_path / "production.ipynb"
    pm.execute_notebook(
        str(NOTEBOOK),
        str(out),
        cwd=str(NOTEBOOK.parent),
        kernel_name="python3",
        progress_bar=False,
        parameters={
            "LAB": False,
            "TARGETS": {"prod-edge": lab.edge},
            "CA_BUNDLE": str(lab.ca_bundle),
            "API_KEY_ENV": "ONCALL_TEST_KEY",
        },
    )
    text = outputs(out)
    assert list(nowhere.iterdir()) == []  # no lab started where one would go
    assert (lab.lab_dir / fleet.STATE_FILE).read_text() == state_before  # the running one untouched
    assert jobs_started(lab) == jobs_before  # INSCRIPTION = False
    assert f"prod-edge  {lab.edge}" in text  # the target as given, named as given
    assert "$ONCALL_TEST_KEY" in text and lab_key not in out.read_text()
    assert "no lab: there is no ground truth to compare with" in text
    assert "started the lab" not in text and "attached to the lab" not in text
    # The key was used: the valid-key connects ran (no "Not checked: no --api-key-env" line).
    assert "no --api-key-env" not in text and "websocket:valid" in text
    # Probed as any endpoint is: the incident behind that edge is diagnosed.
    assert FindingId.BACKEND_DOWN in text and FindingId.STICKY_SESSIONS_MISSING in text
    injected = [
        c
        for c in nbformat.read(out, as_version=4).cells
        if "injected-parameters" in c.metadata.get("tags", [])
    ]
    assert injected and json.dumps({"prod-edge": lab.edge}) in "".join(injected[0].source).replace("'", '"')
