"""The report's pure steps: plan from config → matrix → papermill parameters."""

from __future__ import annotations

from pathlib import Path

from kiloscribe_lab import report
from kiloscribe_lab.config import parse_config


def plan_for(**investigation: object) -> report.ReportPlan:
    inv = {"endpoints": ["https://h.example", "https://b.example"], **investigation}
    return report.plan_from_config(parse_config({"investigation": inv}))


def test_parameters_name_the_key_variable_and_carry_the_inscription_switch(tmp_path: Path) -> None:
    plan = plan_for(api_key_env="KILOSCRIBE_API_KEY", inscription=False, attempts=3, timeout=2.5)
    runs = report.build_matrix(plan)
    assert [r.id for r in runs] == ["01-h-example-direct", "02-b-example-direct"]
    params = report.probe_parameters(runs[0], plan, tmp_path)
    assert params["endpoint"] == "https://h.example"
    assert params["api_key_env"] == "KILOSCRIBE_API_KEY"
    assert (params["attempts"], params["timeout"], params["inscription"]) == (3, 2.5, False)
    assert params["results_path"] == str(tmp_path / "results" / "01-h-example-direct.jsonl")
    assert report.probe_parameters(runs[0], plan_for(), tmp_path)["inscription"] is True
