"""The report's pure steps: plan from config → matrix → papermill parameters, and run directories."""

from __future__ import annotations

import ast
import dataclasses
import json
from datetime import date
from pathlib import Path

from kiloscribe_lab import report
from kiloscribe_lab.config import parse_config
from kiloscribe_lab.report.packaged import PROBE_NOTEBOOK, REPORT_NOTEBOOK, notebook
from kiloscribe_lab.report.plan import next_run_dir, previous_run, report_parameters, run_dirs
from kiloscribe_lab.settings import ProbeSettings, settings_from_parameters


def plan_for(**investigation: object) -> report.ReportPlan:
    inv = {"endpoints": ["https://h.example", "https://b.example"], **investigation}
    return report.plan_from_config(parse_config({"investigation": inv}))


def test_parameters_name_the_key_variable_and_carry_the_inscription_switch(tmp_path: Path) -> None:
    plan = plan_for(api_key_env="KILOSCRIBE_API_KEY", inscription=False, attempts=3, timeout=2.5)
    runs = report.build_matrix(plan)
    assert [r.id for r in runs] == ["01-h-example-direct", "02-b-example-direct"]
    params = report.probe_parameters(runs[0], plan, tmp_path)
    assert params["endpoint"] == "https://h.example"
    settings = params["settings"]
    assert isinstance(settings, dict)
    assert settings["api_key_env"] == "KILOSCRIBE_API_KEY"
    assert (settings["attempts"], settings["timeout_s"], settings["inscription"]) == (3, 2.5, False)
    assert params["results_path"] == str(tmp_path / "results" / "01-h-example-direct.jsonl")
    default = report.probe_parameters(runs[0], plan_for(), tmp_path)["settings"]
    assert isinstance(default, dict) and default["inscription"] is True


def test_every_setting_reaches_the_probe_notebook(tmp_path: Path) -> None:
    """origin, deep and file_size from a config used to stop at the plan (review 1, #8): the
    notebook gets every field of ProbeSettings, and reads back the plan's own settings."""
    (tmp_path / "ca.pem").write_text("")
    plan = plan_for(
        origin="https://app.example", deep=False, file_size=65536, ca_bundle=str(tmp_path / "ca.pem")
    )
    params = report.probe_parameters(report.build_matrix(plan)[0], plan, tmp_path)
    settings = params["settings"]
    assert isinstance(settings, dict)
    assert set(settings) == {f.name for f in dataclasses.fields(ProbeSettings)}
    assert (settings["origin"], settings["deep"], settings["file_size"]) == (
        "https://app.example",
        False,
        65536,
    )
    assert json.loads(json.dumps(settings)) == settings  # what the worker's spec file carries
    assert settings_from_parameters(settings) == plan.settings
    assert report.plan_from_config(
        parse_config({"investigation": {"endpoints": ["https://a.example"]}})
    ).settings.deep


def notebook_parameters(name: str) -> set[str]:
    """The names the packaged notebook's ``parameters`` cell assigns: what papermill may set."""
    nb = json.loads(notebook(name).read_text(encoding="utf-8"))
    [cell] = [c for c in nb["cells"] if "parameters" in c["metadata"].get("tags", [])]
    tree = ast.parse("".join(cell["source"]))
    return {
        t.id
        for node in tree.body
        if isinstance(node, ast.Assign)
        for t in node.targets
        if isinstance(t, ast.Name)
    }


def test_the_parameters_sent_are_the_ones_each_notebook_declares(tmp_path: Path) -> None:
    # papermill injects an unknown name without complaint: a renamed parameter would be lost.
    plan = plan_for()
    assert set(report.probe_parameters(report.build_matrix(plan)[0], plan, tmp_path)) == notebook_parameters(
        PROBE_NOTEBOOK
    )
    assert set(report_parameters(tmp_path, None)) == notebook_parameters(REPORT_NOTEBOOK)


def test_a_target_limited_to_some_networks_is_probed_only_there() -> None:
    plan = report.ReportPlan(
        "t",
        "test",
        (report.Target("https://a.example", "a"), report.Target("https://b.example", "b", ("direct",))),
        networks=("direct", "mobile"),
    )
    assert [r.id for r in report.build_matrix(plan)] == ["01-a-direct", "01-a-mobile", "02-b-direct"]


def test_run_directories_are_dated_never_overwritten_and_ordered(tmp_path: Path) -> None:
    day = date(2026, 11, 26)
    first = next_run_dir(tmp_path, day)
    assert first.name == "2026-11-26"
    first.mkdir()
    names = ["2026-11-26-2", "2026-11-26-10", "2026-11-25", "2026-11-27", "not-a-run"]
    for name in names:
        (tmp_path / name).mkdir()
    assert next_run_dir(tmp_path, day).name == "2026-11-26-3"
    assert [p.name for p in run_dirs(tmp_path)] == [
        "2026-11-25",
        "2026-11-26",
        "2026-11-26-2",
        "2026-11-26-10",
        "2026-11-27",
    ]
    # The previous run is the latest one with a summary, never the current one.
    assert previous_run(tmp_path, tmp_path / "2026-11-27") is None
    for name in ("2026-11-26-2", "2026-11-26-10", "2026-11-27"):
        (tmp_path / name / "summary.json").write_text("{}")
    assert previous_run(tmp_path, tmp_path / "2026-11-27") == tmp_path / "2026-11-26-10"
    assert run_dirs(tmp_path / "missing") == []
