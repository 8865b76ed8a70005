"""The report pipeline: plan -> probe matrix (papermill) -> findings notebook -> nbconvert.

1. **Plan** (pure): endpoints × networks from a TOML config, or from a lab we start.
2. **Matrix**: ``notebooks/probe_endpoint.ipynb`` once per endpoint × network, each in its
   own process (``papermill_worker``), ``--jobs`` at a time, each with a start timeout, an
   execution timeout, a hard wall deadline of ours, and one retry when its kernel fails to
   start. A run that fails is recorded with why; the report goes on.
3. **Aggregate**: ``notebooks/findings_report.ipynb`` diagnoses every result of the run.
4. **Render**: nbconvert writes ``findings.html`` (inputs hidden, images embedded, no CDN
   script) and ``findings.md`` into ``reports/YYYY-MM-DD[-N]/``; ``reports/index.html``
   lists the runs.

Only the *name* of the key variable reaches papermill parameters, notebooks and files; the
value travels in the environment of the worker processes.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import html
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from kiloscribe_lab.config import InvestigationConfig, load_config
from kiloscribe_lab.errors import ConfigError
from kiloscribe_lab.names import NetworkName, ProbeName
from kiloscribe_lab.networks import NetworkProfile
from kiloscribe_lab.results import utc_now, write_jsonl
from kiloscribe_lab.settings import ProbeSettings

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
PROBE_NOTEBOOK = "probe_endpoint.ipynb"
REPORT_NOTEBOOK = "findings_report.ipynb"
START_TIMEOUT_S = 60
EXECUTION_TIMEOUT_S = 120
WALL_SLACK_S = 30
STOP_POLL_S = 0.1  # how often the SDK replay thread looks for a stop request
RUN_DIR_RE = re.compile(r"^\d{4}-\d{2}-\d{2}(-\d+)?$")
Progress = Callable[[str], None]


# --- 1. plan (pure) -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Target:
    url: str
    label: str | None = None
    # The networks to probe it from; None: every network of the plan.
    networks: tuple[str, ...] | None = None

    @property
    def arg(self) -> str:
        return f"{self.label}={self.url}" if self.label else self.url


@dataclass(frozen=True, slots=True)
class ReportPlan:
    title: str
    source: str
    targets: tuple[Target, ...]
    networks: tuple[str, ...] = (NetworkName.DIRECT,)
    api_base: str | None = None
    settings: ProbeSettings = field(default_factory=ProbeSettings)
    config_path: Path | None = None  # where the network profiles are defined
    profiles: Mapping[str, NetworkProfile] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class MatrixRun:
    id: str
    target: Target
    network: str


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower()[:48] or "target"


def build_matrix(plan: ReportPlan) -> list[MatrixRun]:
    runs = []
    for i, target in enumerate(plan.targets, 1):
        name = target.label or target.url.split("://", 1)[-1]
        for network in plan.networks:
            if target.networks is not None and network not in target.networks:
                continue
            runs.append(MatrixRun(f"{i:02d}-{_slug(name)}-{_slug(network)}", target, network))
    return runs


def probe_parameters(run: MatrixRun, plan: ReportPlan, run_dir: Path) -> dict[str, Any]:
    """Papermill parameters for one run: names and paths only, never a secret's value."""
    return {
        "endpoint": run.target.arg,
        "network": run.network,
        "api_key_env": plan.settings.api_key_env,
        "attempts": plan.settings.attempts,
        "timeout": plan.settings.timeout_s,
        "ca_bundle": None if plan.settings.ca_bundle is None else str(plan.settings.ca_bundle),
        "results_path": str(run_dir / "results" / f"{run.id}.jsonl"),
        "config_path": None if plan.config_path is None else str(plan.config_path),
        "inscription": plan.settings.inscription,
    }


def plan_from_config(cfg: InvestigationConfig) -> ReportPlan:
    return ReportPlan(
        title="Socket.IO endpoint investigation",
        source=f"config:{cfg.source}",
        targets=tuple(_target(u) for u in cfg.endpoints),
        networks=cfg.run_networks,
        api_base=cfg.api_base,
        settings=cfg.settings,
        config_path=cfg.source,
        profiles=dict(cfg.networks),
    )


def _target(arg: str) -> Target:
    from kiloscribe_lab.endpoints import split_label

    return Target(*split_label(arg))


def next_run_dir(out_root: Path, today: date) -> Path:
    """``YYYY-MM-DD``, or ``YYYY-MM-DD-N`` for the N-th run that day: never overwrite."""
    base = today.isoformat()
    candidate = out_root / base
    n = 1
    while candidate.exists():
        n += 1
        candidate = out_root / f"{base}-{n}"
    return candidate


def previous_run(out_root: Path, current: Path) -> Path | None:
    """The latest earlier run in ``out_root`` that finished with a summary."""
    runs = (
        [
            p
            for p in out_root.iterdir()
            if p.is_dir() and RUN_DIR_RE.match(p.name) and p != current and (p / "summary.json").exists()
        ]
        if out_root.exists()
        else []
    )

    return max(runs, key=_run_order, default=None)


def _run_order(p: Path) -> tuple[str, int]:
    """2026-11-26 < 2026-11-26-2 < 2026-11-26-10 < 2026-11-27."""
    suffix = p.name[11:]
    return p.name[:10], int(suffix) if suffix.isdigit() else 1


# --- 2. matrix ------------------------------------------------------------------------------


@dataclass
class RunRecord:
    id: str
    label: str | None
    endpoint: str
    network: str
    status: str  # ok | failed | timeout
    error: str | None
    seconds: float
    kernel_start_s: float | None
    cells_s: float | None
    results: str
    notebook: str

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _kill_kernels(kernel_pids: Path) -> None:
    """SIGKILL the process group of every kernel the worker recorded (each has its own)."""
    try:
        pids = [int(p) for p in kernel_pids.read_text().split() if p.isdigit()]
    except OSError:
        return
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)


def _kill(proc: subprocess.Popen[bytes], kernel_pids: Path) -> None:
    """SIGKILL a worker's process group, then its kernels'; reap it, boundedly."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    _kill_kernels(kernel_pids)  # after the worker: it cannot start another one now
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5)


class _Workers:
    """The live worker processes of a matrix (thread-safe), so an interrupt can kill them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._live: dict[subprocess.Popen[bytes], Path] = {}
        self._closed = False

    def add(self, proc: subprocess.Popen[bytes], kernel_pids: Path) -> None:
        """Track ``proc``; kill it at once when the matrix is already being torn down."""
        with self._lock:
            if not self._closed:
                self._live[proc] = kernel_pids
                return
        _kill(proc, kernel_pids)

    def discard(self, proc: subprocess.Popen[bytes]) -> None:
        with self._lock:
            self._live.pop(proc, None)

    def kill_all(self) -> None:
        with self._lock:
            self._closed = True
            live = list(self._live.items())
        for proc, kernel_pids in live:
            _kill(proc, kernel_pids)


def _execute(
    spec: dict[str, Any], env: Mapping[str, str], wall_s: float, workers: _Workers | None = None
) -> dict[str, Any]:
    """One worker process under a hard wall deadline; killed with its kernel if it overruns
    or if we are interrupted (``workers``: the matrix's registry of live workers)."""
    status_path = Path(spec["status"])
    spec_path = status_path.with_suffix(".spec.json")
    kernel_pids = status_path.with_suffix(".kernels")  # the worker appends each kernel's pid
    stderr_path = status_path.with_suffix(".stderr")
    kernel_pids.unlink(missing_ok=True)
    spec_path.write_text(json.dumps({**spec, "kernel_pids": str(kernel_pids)}))
    began = time.monotonic()
    try:
        with stderr_path.open("w+b") as stderr:
            proc = subprocess.Popen(
                [sys.executable, "-m", "kiloscribe_lab.papermill_worker", str(spec_path)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                # A file, not a pipe: the kernel inherits it, and a pipe held open by a kernel
                # that outlives its worker would keep us waiting past the worker's end.
                stderr=stderr,
                env=dict(env),
                # Its own group, so we can kill it whole, and away from our terminal's Ctrl-C
                # (run_matrix kills it instead). Not its kernels: jupyter_client starts each in
                # a session of its own, so they are killed by the pids in `kernel_pids`.
                start_new_session=True,
            )
            if workers is not None:
                workers.add(proc, kernel_pids)
            try:
                proc.wait(timeout=wall_s)
            except subprocess.TimeoutExpired:
                _kill(proc, kernel_pids)
                return {
                    "status": "timeout",
                    "error": f"no result within {wall_s:.0f} s (killed)",
                    "seconds": round(time.monotonic() - began, 3),
                    "kernel_start_s": None,
                    "cells_s": None,
                }
            except BaseException:  # Ctrl-C while this thread waits (the findings notebook)
                _kill(proc, kernel_pids)
                raise
            finally:
                if workers is not None:
                    workers.discard(proc)
            stderr.seek(max(0, stderr_path.stat().st_size - 4096))
            err_tail = stderr.read()
        try:
            status: dict[str, Any] = json.loads(status_path.read_text())
        except (OSError, ValueError):
            _kill_kernels(kernel_pids)  # a worker that died cannot have shut its kernel down
            tail = err_tail.decode(errors="replace").strip().splitlines()[-1:] or [f"exit {proc.returncode}"]
            status = {
                "status": "failed",
                "error": f"worker died: {tail[0][:300]}",
                "seconds": round(time.monotonic() - began, 3),
                "kernel_start_s": None,
                "cells_s": None,
            }
        return status
    finally:
        for leftover in (spec_path, status_path, kernel_pids, stderr_path):
            leftover.unlink(missing_ok=True)


def run_matrix(
    plan: ReportPlan,
    runs: Sequence[MatrixRun],
    run_dir: Path,
    env: Mapping[str, str],
    *,
    jobs: int,
    notebooks: Path = NOTEBOOKS,
    progress: Progress | None = None,
) -> list[RunRecord]:
    (run_dir / "notebooks").mkdir(parents=True, exist_ok=True)
    (run_dir / "results").mkdir(parents=True, exist_ok=True)
    wall = START_TIMEOUT_S + EXECUTION_TIMEOUT_S + WALL_SLACK_S
    workers = _Workers()

    def one(run: MatrixRun) -> RunRecord:
        spec = {
            "input": str(notebooks / PROBE_NOTEBOOK),
            "output": str(run_dir / "notebooks" / f"{run.id}.ipynb"),
            "parameters": probe_parameters(run, plan, run_dir),
            "start_timeout": START_TIMEOUT_S,
            "execution_timeout": EXECUTION_TIMEOUT_S,
            "status": str(run_dir / "notebooks" / f"{run.id}.status.json"),
        }
        status = _execute(spec, env, wall, workers)
        return RunRecord(
            id=run.id,
            label=run.target.label,
            endpoint=run.target.url,
            network=run.network,
            status=status["status"],
            error=status.get("error"),
            seconds=status.get("seconds", 0.0),
            kernel_start_s=status.get("kernel_start_s"),
            cells_s=status.get("cells_s"),
            results=f"results/{run.id}.jsonl",
            notebook=f"notebooks/{run.id}.ipynb",
        )

    records: dict[str, RunRecord] = {}
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=max(1, jobs))
    try:
        futures = {pool.submit(one, run): run for run in runs}
        for future in concurrent.futures.as_completed(futures):
            record = future.result()
            records[record.id] = record
            if progress is not None:
                progress(f"{record.id}: {record.status}")
    except BaseException:
        # Ctrl-C (or an error): the workers are in sessions of their own and never see the
        # SIGINT, and leaving a `with ThreadPoolExecutor` would still run every queued
        # notebook. Kill the live ones (their threads then return at once), drop the rest.
        workers.kill_all()
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    return [records[run.id] for run in runs]


def run_discovery(plan: ReportPlan, run_dir: Path, env: Mapping[str, str]) -> list[Target]:
    """Discovery once per report (not per notebook); returns the servers it lists."""
    if plan.api_base is None:
        return []
    from kiloscribe_lab.endpoints import parse_endpoint
    from kiloscribe_lab.probes.base import ProbeContext, Recorder, bounded
    from kiloscribe_lab.probes.discovery import discovery
    from kiloscribe_lab.settings import ProbeOptions

    options = ProbeOptions.of(plan.settings)
    api = parse_endpoint(plan.api_base)
    result = asyncio.run(
        bounded(
            discovery,
            ProbeContext(api, options, env),
            Recorder(ProbeName.DISCOVERY, "", api.url, "direct", "api"),
        )
    )
    (run_dir / "results").mkdir(parents=True, exist_ok=True)
    (run_dir / "results" / "00-discovery.jsonl").write_text(write_jsonl([result]))
    return [Target(str(s["url"])) for s in result.detail.get("servers", []) if s.get("url")]


def run_sdk_checks(
    plan: ReportPlan,
    targets: Sequence[Target],
    run_dir: Path,
    env: Mapping[str, str],
    stop: threading.Event | None = None,
) -> tuple[list[str], float]:
    """The published SDK against every target, in the runtime as the user has it once (its
    10 s timeout is a property of the runtime, not of the endpoint) and with a WebSocket
    global everywhere. Returns notes for the report; node or npm missing is one line.

    Runs in a thread beside the matrix: ``stop`` set (Ctrl-C in the main thread) cancels it,
    and cancelling kills the node and npm processes it started."""
    from kiloscribe_lab.errors import KiloscribeLabError, ToolchainMissingError
    from kiloscribe_lab.sdk import sdk_check

    began = time.monotonic()
    (run_dir / "results").mkdir(parents=True, exist_ok=True)

    async def all_targets() -> list[str]:
        async def one(i: int, target: Target) -> str | None:
            runtimes = ("plain", "websocket") if i == 0 else ("websocket",)
            try:
                results = await sdk_check(
                    target.url,
                    label=target.label,
                    api_base=plan.api_base,
                    api_key_env=plan.settings.api_key_env,
                    ca_bundle=plan.settings.ca_bundle,
                    environ=env,
                    runtimes=runtimes,
                    inscription=plan.settings.inscription,
                )
            except ToolchainMissingError as exc:
                return f"sdk-check skipped: {exc}"
            except KiloscribeLabError as exc:
                return f"sdk-check failed for {target.label or target.url}: {exc}"
            name = f"sdk-{i + 1:02d}-{_slug(target.label or target.url)}.jsonl"
            (run_dir / "results" / name).write_text(write_jsonl(results))
            return None

        # One first: it installs the SDK into the cache when needed; the rest share it.
        notes = [await one(0, targets[0])] if targets else []
        notes += await asyncio.gather(*(one(i, t) for i, t in enumerate(targets) if i > 0))
        return list(dict.fromkeys(n for n in notes if n))

    async def until_stopped() -> list[str]:
        work = asyncio.ensure_future(all_targets())
        while not work.done():
            if stop is not None and stop.is_set():
                # Once: a second cancel would cut short the SIGTERM → SIGKILL cleanup it runs.
                work.cancel()
                await asyncio.wait({work})
                break
            await asyncio.wait({work}, timeout=STOP_POLL_S)
        return work.result()

    notes = asyncio.run(until_stopped())
    return notes, round(time.monotonic() - began, 3)


def merge_targets(given: Sequence[Target], discovered: Sequence[Target]) -> tuple[Target, ...]:
    """Given targets first; a discovered server already given (ws/wss = http/https) is not
    probed twice."""

    def key(url: str) -> str:
        return url.split("://", 1)[-1].rstrip("/")

    seen = {key(t.url) for t in given}
    merged = list(given)
    for target in discovered:
        if key(target.url) not in seen:
            seen.add(key(target.url))
            merged.append(target)
    return tuple(merged)


# --- 3 + 4. aggregate and render -----------------------------------------------------------


OFFLINE_TEMPLATE = """{%- extends 'lab/index.html.j2' -%}
{#- No CDN scripts: the report must read offline, from a mail attachment or a ticket. -#}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{%- block jupyter_widgets -%}{%- endblock jupyter_widgets -%}
"""


def _offline_template_dir(run_dir: Path) -> Path:
    folder = run_dir / ".nbconvert" / "offline"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "index.html.j2").write_text(OFFLINE_TEMPLATE)
    (folder / "conf.json").write_text(json.dumps({"base_template": "lab", "mimetypes": {"text/html": True}}))
    return folder.parent


def render(run_dir: Path, notebook: Path) -> list[Path]:
    """findings.html (inputs hidden, images embedded, no CDN scripts) and findings.md."""
    import nbformat
    from nbconvert import HTMLExporter, MarkdownExporter
    from traitlets.config import Config

    nb = nbformat.read(notebook, as_version=4)  # type: ignore[no-untyped-call]
    templates = _offline_template_dir(run_dir)
    try:
        html_exporter = HTMLExporter(  # type: ignore[no-untyped-call]
            config=Config(
                {
                    "HTMLExporter": {
                        "exclude_input": True,
                        "exclude_input_prompt": True,
                        "exclude_output_prompt": True,
                        "embed_images": True,
                    },
                    "TemplateExporter": {"extra_template_basedirs": [str(templates)]},
                }
            ),
            template_name="offline",
        )
        body, _ = html_exporter.from_notebook_node(nb)
        body = body.replace("<title>Notebook</title>", "<title>Kiloscribe findings report</title>")
        md_exporter = MarkdownExporter(  # type: ignore[no-untyped-call]
            config=Config(
                {
                    "MarkdownExporter": {"exclude_input": True},
                    "NbConvertBase": {
                        "display_data_priority": ["text/markdown", "image/png", "image/svg+xml", "text/plain"]
                    },
                }
            ),
        )
        md, resources = md_exporter.from_notebook_node(nb, resources={"output_files_dir": "findings_files"})
    finally:
        import shutil

        shutil.rmtree(run_dir / ".nbconvert", ignore_errors=True)
    written = [run_dir / "findings.html", run_dir / "findings.md"]
    written[0].write_text(body)
    written[1].write_text(md)
    for name, data in (resources.get("outputs") or {}).items():
        path = run_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        written.append(path)
    return written


def write_index(out_root: Path) -> Path:
    """reports/index.html: every run, newest first, with its status and findings."""
    rows = []
    runs = sorted(
        (p for p in out_root.iterdir() if p.is_dir() and RUN_DIR_RE.match(p.name)),
        key=_run_order,
        reverse=True,
    )
    for run in runs:
        meta = _read_json(run / "run.json")
        summary = _read_json(run / "summary.json")
        listed = summary.get("findings") or []
        findings = ", ".join(str(f.get("id")) for f in listed if isinstance(f, dict))
        status = (summary.get("status") if summary else None) or "incomplete"
        failed = sum(1 for m in meta.get("matrix", []) if m.get("status") != "ok")
        link = f'<a href="{html.escape(run.name)}/findings.html">{html.escape(run.name)}</a>'
        rows.append(
            "<tr>"
            + "".join(
                f"<td>{cell}</td>"
                for cell in (
                    link,
                    html.escape(str(meta.get("started_at", ""))),
                    html.escape(str(meta.get("source", ""))),
                    html.escape(str(status)),
                    html.escape(findings),
                    str(failed),
                )
            )
            + "</tr>"
        )
    page = (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>kiloscribe-lab reports</title>"
        "<style>body{font-family:sans-serif;margin:2em}td,th{padding:.3em .8em;text-align:left;"
        "border-bottom:1px solid #ddd}</style></head><body><h1>kiloscribe-lab reports</h1>"
        "<table><thead><tr><th>run</th><th>started</th><th>source</th><th>status</th>"
        "<th>findings</th><th>failed runs</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>"
        "</body></html>\n"
    )
    index = out_root / "index.html"
    index.write_text(page)
    return index


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


# --- the whole job ---------------------------------------------------------------------------


@dataclass
class ReportOutcome:
    run_dir: Path
    files: list[Path]
    records: list[RunRecord]
    status: str
    timings: dict[str, float]


def _write_meta(run_dir: Path, meta: dict[str, Any]) -> None:
    (run_dir / "run.json").write_text(json.dumps(meta, indent=2))


def run_report(
    plan: ReportPlan,
    env: Mapping[str, str],
    *,
    out_root: Path,
    jobs: int,
    compare_dir: Path | None = None,
    today: date | None = None,
    progress: Progress | None = None,
    extra_timings: Mapping[str, float] | None = None,
    runs_override: Sequence[MatrixRun] | None = None,
    sdk_check: bool = True,
) -> ReportOutcome:
    t0 = time.monotonic()
    out_root.mkdir(parents=True, exist_ok=True)
    run_dir = next_run_dir(out_root, today or datetime.now(UTC).date())
    run_dir.mkdir(parents=True)
    if compare_dir is None:
        compare_dir = previous_run(out_root, run_dir)
    meta: dict[str, Any] = {
        "title": plan.title,
        "started_at": utc_now(),
        "finished_at": None,
        "source": plan.source,
        "api_key_env": plan.settings.api_key_env,
        "networks": list(plan.networks),
        "endpoints": [{"label": t.label, "url": t.url} for t in plan.targets],
        "matrix": [],
        "timings": {},
        "compare_dir": None if compare_dir is None else str(compare_dir),
        "inscription": plan.settings.inscription,
        "notes": []
        if plan.settings.inscription
        else [
            "start-inscription was not sent (inscription = false): connects and auth were tested, "
            "the inscription path was not"
        ],
    }
    _write_meta(run_dir, meta)
    timings: dict[str, float] = dict(extra_timings or {})

    t = time.monotonic()
    discovered = run_discovery(plan, run_dir, env)
    timings["discovery_s"] = round(time.monotonic() - t, 3)
    targets = merge_targets(plan.targets, discovered)
    if len(targets) > len(plan.targets):
        meta["notes"].append(f"discovery added {len(targets) - len(plan.targets)} server(s)")
        meta["endpoints"] = [{"label": x.label, "url": x.url} for x in targets]
    matrix_plan = dataclasses.replace(plan, targets=targets)
    runs = list(runs_override) if runs_override is not None else build_matrix(matrix_plan)

    t = time.monotonic()
    stop_sdk = threading.Event()
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as side:
        # The SDK replay waits mostly on its own 10 s timer: it runs beside the matrix.
        sdk = side.submit(run_sdk_checks, plan, plan.targets, run_dir, env, stop_sdk) if sdk_check else None
        try:
            records = run_matrix(matrix_plan, runs, run_dir, env, jobs=jobs, progress=progress)
            if sdk is not None:
                sdk_notes, timings["sdk_check_s"] = sdk.result()
                meta["notes"].extend(sdk_notes)
        except BaseException:
            stop_sdk.set()  # else leaving this block waits for the replay's own timers
            raise
    timings["matrix_s"] = round(time.monotonic() - t, 3)
    timings["kernel_start_s_sum"] = round(sum(r.kernel_start_s or 0 for r in records), 3)
    timings["probe_cells_s_sum"] = round(sum(r.cells_s or 0 for r in records), 3)
    meta["matrix"] = [r.to_json() for r in records]
    _write_meta(run_dir, meta)

    t = time.monotonic()
    report_nb = run_dir / REPORT_NOTEBOOK
    status = _execute(
        {
            "input": str(NOTEBOOKS / REPORT_NOTEBOOK),
            "output": str(report_nb),
            "parameters": {
                "run_dir": str(run_dir),
                "compare_dir": None if compare_dir is None else str(compare_dir),
            },
            "start_timeout": START_TIMEOUT_S,
            "execution_timeout": EXECUTION_TIMEOUT_S,
            "status": str(run_dir / "report.status.json"),
        },
        env,
        START_TIMEOUT_S + EXECUTION_TIMEOUT_S + WALL_SLACK_S,
    )
    timings["report_notebook_s"] = round(time.monotonic() - t, 3)
    timings["report_kernel_start_s"] = status.get("kernel_start_s") or 0.0
    if status["status"] != "ok":
        meta["notes"].append(f"the findings notebook failed: {status.get('error')}")
    if progress is not None:
        progress(f"findings report: {status['status']}")

    t = time.monotonic()
    files = render(run_dir, report_nb) if report_nb.exists() else []
    timings["render_s"] = round(time.monotonic() - t, 3)
    timings["total_s"] = round(time.monotonic() - t0 + sum((extra_timings or {}).values()), 3)
    meta["timings"] = timings
    meta["finished_at"] = utc_now()
    _write_meta(run_dir, meta)
    write_index(out_root)
    summary = _read_json(run_dir / "summary.json")
    return ReportOutcome(run_dir, files, records, str(summary.get("status") or "incomplete"), timings)


# --- entry points -----------------------------------------------------------------------------


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
            *(Target(info.backend_url(b), b, ("direct",)) for b in BACKENDS),
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
        )
        yield plan, fleet.lab_environment(info), started
    finally:
        fleet.down(lab_dir)


def load_plan(config: Path) -> ReportPlan:
    """An invalid config is rejected here, before anything runs."""
    cfg = load_config(config)
    if not cfg.endpoints and not cfg.api_base:
        raise ConfigError(f"{config}: nothing to investigate")
    return plan_from_config(cfg)
