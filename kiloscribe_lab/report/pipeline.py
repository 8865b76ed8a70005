"""The whole report job, and the plans it starts from (a TOML config, or a lab started for it).

``run_report``: discovery once, the probe matrix (with the SDK replay beside it), the findings
notebook, nbconvert, ``reports/index.html``. ``run.json`` is written when the run directory
is made, after the matrix (the findings notebook reads it) and at the end, also when rendering
failed, so a failed report still says what it did.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

from kiloscribe_lab.config import load_config
from kiloscribe_lab.errors import ConfigError, LabError, ReportError
from kiloscribe_lab.names import NetworkName, OverallStatus
from kiloscribe_lab.report.index import write_index
from kiloscribe_lab.report.jobs import WorkerSpec
from kiloscribe_lab.report.loose import read_json_object
from kiloscribe_lab.report.matrix import Progress, execute, run_matrix
from kiloscribe_lab.report.packaged import PROBE_NOTEBOOK, REPORT_NOTEBOOK, notebook
from kiloscribe_lab.report.plan import (
    MatrixRun,
    ReportPlan,
    Target,
    build_matrix,
    next_run_dir,
    plan_from_config,
    previous_run,
    report_parameters,
)
from kiloscribe_lab.report.render import render
from kiloscribe_lab.report.rundata import EndpointInfo, RunData, RunRecord
from kiloscribe_lab.report.side import merge_targets, run_discovery, run_sdk_checks
from kiloscribe_lab.results import utc_now
from kiloscribe_lab.settings import ProbeSettings

NO_INSCRIPTION_NOTE = (
    "start-inscription was not sent (inscription = false): connects and auth were tested, "
    "the inscription path was not"
)


@dataclass
class ReportOutcome:
    run_dir: Path
    files: list[Path]
    records: list[RunRecord]
    status: str
    timings: dict[str, float]


def _endpoints(targets: Sequence[Target]) -> tuple[EndpointInfo, ...]:
    return tuple(EndpointInfo(t.url, t.label) for t in targets)


def run_report(
    plan: ReportPlan,
    env: Mapping[str, str],
    *,
    out_root: Path,
    jobs: int,
    compare_dir: Path | None = None,
    today: date | None = None,
    progress: Progress | None = None,
    planned: Callable[[int], None] | None = None,
    extra_timings: Mapping[str, float] | None = None,
    runs_override: Sequence[MatrixRun] | None = None,
    sdk_check: bool = True,
) -> ReportOutcome:
    """Run the report into a new run directory under ``out_root``.

    ``progress`` hears of each notebook that finished (the matrix's, then the findings
    notebook); ``planned`` first hears how many there will be, once discovery has run.
    Raises ReportError when the findings notebook cannot be rendered; run.json, the results,
    the executed notebooks and reports/index.html are written first."""
    t0 = time.monotonic()
    probe_nb, report_source = notebook(PROBE_NOTEBOOK), notebook(REPORT_NOTEBOOK)
    out_root.mkdir(parents=True, exist_ok=True)
    run_dir = next_run_dir(out_root, today or datetime.now(UTC).date())
    run_dir.mkdir(parents=True)
    if compare_dir is None:
        compare_dir = previous_run(out_root, run_dir)
    meta = RunData(
        run_dir=run_dir,
        title=plan.title,
        started_at=utc_now(),
        source=plan.source,
        api_key_env=plan.settings.api_key_env,
        networks=plan.networks,
        endpoints=_endpoints(plan.targets),
        compare_dir=None if compare_dir is None else str(compare_dir),
        inscription=plan.settings.inscription,
        notes=() if plan.settings.inscription else (NO_INSCRIPTION_NOTE,),
        ca_bundle=None if plan.settings.ca_bundle is None else str(plan.settings.ca_bundle),
        config_path=None if plan.config_path is None else str(plan.config_path),
        lab_dir=None if plan.lab_dir is None else str(plan.lab_dir),
    )
    meta.write()
    timings: dict[str, float] = dict(extra_timings or {})
    notes = list(meta.notes)

    t = time.monotonic()
    discovered = run_discovery(plan, run_dir, env)
    timings["discovery_s"] = round(time.monotonic() - t, 3)
    targets = merge_targets(plan.targets, discovered)
    if len(targets) > len(plan.targets):
        notes.append(f"discovery added {len(targets) - len(plan.targets)} server(s)")
        meta = dataclasses.replace(meta, endpoints=_endpoints(targets))
    matrix_plan = dataclasses.replace(plan, targets=targets)
    runs = list(runs_override) if runs_override is not None else build_matrix(matrix_plan)
    if planned is not None:
        planned(len(runs) + 1)  # and the findings notebook

    t = time.monotonic()
    stop_sdk = threading.Event()
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as side:
        # The SDK replay waits mostly on its own 10 s timer: it runs beside the matrix.
        sdk = side.submit(run_sdk_checks, plan, plan.targets, run_dir, env, stop_sdk) if sdk_check else None
        try:
            records = run_matrix(
                matrix_plan, runs, run_dir, env, jobs=jobs, probe_notebook=probe_nb, progress=progress
            )
            if sdk is not None:
                sdk_notes, timings["sdk_check_s"] = sdk.result()
                notes.extend(sdk_notes)
        except BaseException:
            stop_sdk.set()  # else leaving this block waits for the replay's own timers
            raise
    timings["matrix_s"] = round(time.monotonic() - t, 3)
    timings["kernel_start_s_sum"] = round(sum(r.kernel_start_s or 0 for r in records), 3)
    timings["probe_cells_s_sum"] = round(sum(r.cells_s or 0 for r in records), 3)
    meta = dataclasses.replace(meta, matrix=tuple(records), notes=tuple(notes))
    meta.write()

    t = time.monotonic()
    report_nb = run_dir / REPORT_NOTEBOOK
    status = execute(
        WorkerSpec(
            input=report_source,
            output=report_nb,
            status=run_dir / "report.status.json",
            parameters=report_parameters(run_dir, compare_dir),
        ),
        env,
    )
    timings["report_notebook_s"] = round(time.monotonic() - t, 3)
    timings["report_kernel_start_s"] = status.kernel_start_s or 0.0
    if not status.ok:
        notes.append(f"the findings notebook failed: {status.error}")
    if progress is not None:
        progress(f"findings report: {status.status}")

    t = time.monotonic()
    failure: ReportError | None = None
    try:
        files = render(run_dir, report_nb) if report_nb.exists() else []
    except ReportError as exc:
        failure, files = exc, []
        notes.append(str(exc))
    timings["render_s"] = round(time.monotonic() - t, 3)
    timings["total_s"] = round(time.monotonic() - t0 + sum((extra_timings or {}).values()), 3)
    meta = dataclasses.replace(meta, timings=timings, finished_at=utc_now(), notes=tuple(notes))
    meta.write()
    write_index(out_root)
    if failure is not None:
        raise failure
    summary = read_json_object(run_dir / "summary.json")
    return ReportOutcome(
        run_dir, files, records, str(summary.get("status") or OverallStatus.INCOMPLETE), timings
    )


@contextlib.contextmanager
def lab_plan(
    scenario: str, lab_dir: Path, *, attempts: int = 4, timeout_s: float = 5.0
) -> Iterator[tuple[ReportPlan, dict[str, str], float]]:
    """Start a lab, yield the plan that investigates it and the environment with its key,
    always stop it. Four connect attempts per transport give the success rates and latency
    percentiles of the charts more than one sample each."""
    from kiloscribe_lab.lab import fleet
    from kiloscribe_lab.lab.scenarios import BACKENDS

    t = time.monotonic()
    info = fleet.up(lab_dir, scenario)
    started = round(time.monotonic() - t, 3)
    try:
        # Users reach the edge and the balancer from their networks; the per-backend sites
        # are the on-call engineer's view from the inside: direct only. It keeps the default
        # matrix at 2 x 4 + 3 notebooks rather than 5 x 4.
        targets = (
            Target(info.edge, "edge"),
            Target(info.lb, "lb"),
            *(Target(info.backend_url(b), b, (NetworkName.DIRECT,)) for b in BACKENDS),
        )
        plan = ReportPlan(
            title=f"Lab investigation: scenario {scenario}",
            source=f"lab:{scenario}",
            targets=targets,
            networks=tuple(info.networks) or (NetworkName.DIRECT,),
            api_base=info.api,
            settings=ProbeSettings(
                timeout_s=timeout_s, attempts=attempts, ca_bundle=info.ca_bundle, api_key_env=info.api_key_env
            ),
            config_path=None,
            lab_dir=lab_dir,
        )
        yield plan, fleet.lab_environment(info), started
    finally:
        stubborn = fleet.down(lab_dir)
        if stubborn:  # the caller's temporary lab directory goes next: say what outlives it
            raise LabError(f"the report's lab would not stop: {', '.join(stubborn)} still run")


def load_plan(config: Path) -> ReportPlan:
    """An invalid config is rejected here, before anything runs."""
    cfg = load_config(config)
    if not cfg.endpoints and not cfg.api_base:
        raise ConfigError(f"{config}: nothing to investigate")
    return plan_from_config(cfg)
