"""notebooks/findings_report.ipynb, executed by papermill in a real kernel, against a run directory
built from the recorded incident evidence: it writes findings.jsonl and summary.json with the
scenario's ground truth, displays every section, and compares with a previous run."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import nbformat
import papermill as pm
import pytest

from kiloscribe_lab.lab.scenarios import SCENARIOS
from kiloscribe_lab.names import FindingId
from kiloscribe_lab.report.document import github_slug
from kiloscribe_lab.report.sections import PARTS
from kiloscribe_lab.results import Finding, ProbeResult, read_jsonl, write_jsonl

pytestmark = pytest.mark.timeout(180)

ROOT = Path(__file__).parents[2]
NOTEBOOK = ROOT / "notebooks" / "findings_report.ipynb"
FIXTURES = ROOT / "tests" / "unit" / "fixtures"
FAILED_ERROR = "kernel did not start within 60 s <script>alert(1)</script>"


def make_run_dir(root: Path, scenario: str) -> Path:
    """A run directory as the pipeline writes it: one results file per endpoint, and run.json."""
    text = (FIXTURES / f"{scenario}.jsonl").read_text(encoding="utf-8")
    results = [r for r in read_jsonl(text) if isinstance(r, ProbeResult)]
    (root / "results").mkdir(parents=True)
    groups: dict[str, list[ProbeResult]] = {}
    for r in results:
        groups.setdefault(str(r.detail.get("label") or "api"), []).append(r)
    matrix: list[dict[str, Any]] = []
    for label, group in groups.items():
        run_id = re.sub(r"[^A-Za-z0-9-]", "_", label) + "-direct"
        (root / "results" / f"{run_id}.jsonl").write_text(write_jsonl(group), encoding="utf-8")
        matrix.append(
            {
                "id": run_id,
                "label": label,
                "endpoint": group[0].target,
                "network": "direct",
                "status": "ok",
                "error": None,
                "seconds": 1.0,
                "kernel_start_s": 0.5,
                "results": f"results/{run_id}.jsonl",
                "notebook": f"notebooks/{run_id}.ipynb",
            }
        )
    matrix.append({**matrix[1], "id": "edge-mobile", "network": "mobile", "status": "failed",
                   "error": FAILED_ERROR, "results": "results/edge-mobile.jsonl"})  # fmt: skip
    run = {
        "title": f"kiloscribe-lab report ({scenario})",
        "started_at": "2026-11-26T05:51:00.000Z",
        "finished_at": None,
        "source": f"lab:{scenario}",
        "api_key_env": "KILOSCRIBE_API_KEY",
        "networks": ["direct", "mobile"],
        "endpoints": [{"label": m["label"], "url": m["endpoint"]} for m in matrix[:-1]],
        "matrix": matrix,
        "timings": {},
        "compare_dir": None,
        "notes": [],
    }
    (root / "run.json").write_text(json.dumps(run), encoding="utf-8")
    return root


def execute(run_dir: Path, compare_dir: Path | None = None) -> Any:
    output = run_dir / "findings_report.ipynb"
    pm.execute_notebook(
        str(NOTEBOOK),
        str(output),
        parameters={
            "run_dir": str(run_dir),
            "compare_dir": None if compare_dir is None else str(compare_dir),
        },
        kernel_name="python3",
        start_timeout=60,
        execution_timeout=120,
        progress_bar=False,
        cwd=str(run_dir),
    )
    return nbformat.read(str(output), as_version=4)


def outputs_of(nb: Any, mime: str) -> list[str]:
    texts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            if mime in data:
                value = data[mime]
                texts.append(value if isinstance(value, str) else "".join(value))
    return texts


def test_findings_notebook_writes_the_ground_truth_and_renders_every_section(tmp_path: Path) -> None:
    expected = set(SCENARIOS["incident"].expected_findings)
    first = make_run_dir(tmp_path / "first", "incident")
    nb = execute(first)

    findings = [
        r
        for r in read_jsonl((first / "findings.jsonl").read_text(encoding="utf-8"))
        if isinstance(r, Finding)
    ]
    assert {f.id for f in findings} == expected
    summary = json.loads((first / "summary.json").read_text(encoding="utf-8"))
    assert {f["id"] for f in summary["findings"]} == expected
    assert set(summary["targets"]) == {"edge", "lb", "inscribe-1", "inscribe-2", "inscribe-3"}
    assert summary["status"] == "critical"

    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert errors == []
    html = "\n".join(outputs_of(nb, "text/html"))
    markdown = "\n".join(outputs_of(nb, "text/markdown"))
    # One output per section (Connection lifetime among them, from the fixture's --deep sessions;
    # Vantage points too: "local" alone).
    assert len(outputs_of(nb, "text/html")) == len(outputs_of(nb, "text/markdown")) == 13
    assert "| Target | Network | Transport | Lived | Ended |" in "\n".join(outputs_of(nb, "text/markdown"))
    # The charts: embedded in the HTML, files beside the Markdown (written by the notebook): the
    # latency and success charts, and how long the held sessions lived.
    assert html.count("<figure") == 3 and "data:image/png;base64," in html
    for image in re.findall(r"\]\((findings_files/[a-z0-9-]+\.png)\)", markdown):
        assert (first / image).read_bytes().startswith(b"\x89PNG"), image
    assert len(re.findall(r"\]\((findings_files/[a-z0-9-]+\.png)\)", markdown)) == 3
    # The sections in the report's order, each opening with the heading the contents link to.
    ids = re.findall(r'<h2 id="([a-z0-9-]+)"', html)
    assert ids == ["contents", *[github_slug(p) for p in PARTS[1:]]]
    for out in (html, markdown):
        assert FindingId.BACKEND_DOWN in out and "inscribe-2" in out
        assert "edge-mobile" in out and "&lt;script&gt;alert(1)&lt;/script&gt;" in out
        assert "cloudflare" in out
        assert "wscat -c wss://127.0.0.1:" in out
        assert "first run" in out
        assert "<script" not in out
    # Nothing else leaks into the report: no stray return values, no secrets.
    plain = outputs_of(nb, "text/plain")
    assert all(p.startswith(("<report section", "<PNG chart")) for p in plain), plain

    # A second run compares itself with the first: same evidence, no change.
    second = make_run_dir(tmp_path / "second", "incident")
    nb = execute(second, compare_dir=first)
    markdown = "\n".join(outputs_of(nb, "text/markdown"))
    assert "Compared with the previous run" in markdown
    assert "No significant change" in markdown
