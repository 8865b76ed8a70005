"""The report: plan -> probe matrix (papermill) -> findings notebook -> nbconvert.

1. **Plan** (``plan``, pure): endpoints × networks from a TOML config, or from a lab we start
   (``pipeline.lab_plan``).
2. **Matrix** (``matrix``): ``probe_endpoint.ipynb`` once per endpoint × network, each in its
   own process (``worker``; ``jobs`` is what they exchange), ``--jobs`` at a time, each with a
   start timeout, an execution timeout, a hard wall deadline of ours, and one retry when its
   kernel fails to start. A run that fails is recorded with why; the report goes on. Beside
   it (``side``): discovery once, and the SDK replay. With ``--cluster`` (``cluster``), each
   cell runs once per vantage, pinned to that Dask worker, which runs it the same way.
3. **Aggregate**: ``findings_report.ipynb`` loads the run directory (``rundata``), diagnoses
   every result, writes ``summary.json`` (``summary``) and displays the report's sections
   (``sections``, ``charts``), built of ``document`` blocks.
4. **Render** (``render``): nbconvert writes ``findings.html`` (inputs hidden, images embedded,
   no CDN script) and ``findings.md`` into ``reports/YYYY-MM-DD[-N]/``; ``reports/index.html``
   lists the runs (``index``).

The notebooks ship in the package (``packaged``). Only the *name* of the key variable reaches
papermill parameters, notebooks and files; the value travels in the environment of the worker
processes.

What the CLI and the tests use is re-exported here.
"""

from __future__ import annotations

from kiloscribe_lab.report.cluster import Cluster
from kiloscribe_lab.report.jobs import RunStatus, WorkerSpec, WorkerStatus
from kiloscribe_lab.report.matrix import execute, run_matrix
from kiloscribe_lab.report.packaged import PROBE_NOTEBOOK, REPORT_NOTEBOOK, notebook
from kiloscribe_lab.report.pipeline import ReportOutcome, lab_plan, load_plan, run_report
from kiloscribe_lab.report.plan import (
    MatrixRun,
    ReportPlan,
    Target,
    build_matrix,
    next_run_dir,
    plan_from_config,
    previous_run,
    probe_parameters,
    with_deep,
)
from kiloscribe_lab.report.render import render
from kiloscribe_lab.report.rundata import RunRecord
from kiloscribe_lab.report.side import merge_targets, run_discovery, run_sdk_checks

__all__ = [
    "PROBE_NOTEBOOK",
    "REPORT_NOTEBOOK",
    "Cluster",
    "MatrixRun",
    "ReportOutcome",
    "ReportPlan",
    "RunRecord",
    "RunStatus",
    "Target",
    "WorkerSpec",
    "WorkerStatus",
    "build_matrix",
    "execute",
    "lab_plan",
    "load_plan",
    "merge_targets",
    "next_run_dir",
    "notebook",
    "plan_from_config",
    "previous_run",
    "probe_parameters",
    "render",
    "run_discovery",
    "run_matrix",
    "run_report",
    "run_sdk_checks",
    "with_deep",
]
