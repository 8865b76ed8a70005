"""The probe matrix: each notebook run in a worker process of its own, ``jobs`` at a time, under
a hard wall deadline of ours; killed with its kernel when it overruns or when we are interrupted.
A run that fails is recorded with why; the matrix goes on."""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from kiloscribe_lab.report.jobs import RunStatus, WorkerSpec, WorkerStatus
from kiloscribe_lab.report.packaged import PROBE_NOTEBOOK, notebook
from kiloscribe_lab.report.plan import MatrixRun, ReportPlan, probe_parameters
from kiloscribe_lab.report.rundata import RunRecord
from kiloscribe_lab.results import utc_now

WORKER_MODULE = "kiloscribe_lab.report.worker"
Progress = Callable[[str], None]


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


class Workers:
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


def execute(
    spec: WorkerSpec, env: Mapping[str, str], wall_s: float | None = None, workers: Workers | None = None
) -> WorkerStatus:
    """One worker process under a hard wall deadline (``spec.wall_s`` unless given); killed
    with its kernel if it overruns or if we are interrupted (``workers``: the matrix's registry
    of live workers). A worker that leaves no readable status has failed."""
    wall = spec.wall_s if wall_s is None else wall_s
    spec_path = spec.status.with_suffix(".spec.json")
    kernel_pids = spec.status.with_suffix(".kernels")  # the worker appends each kernel's pid
    stderr_path = spec.status.with_suffix(".stderr")
    kernel_pids.unlink(missing_ok=True)
    spec_path.write_text(json.dumps(dataclasses.replace(spec, kernel_pids=kernel_pids).to_json()))
    began = time.monotonic()
    try:
        with stderr_path.open("w+b") as stderr:
            proc = subprocess.Popen(
                [sys.executable, "-m", WORKER_MODULE, str(spec_path)],
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
                proc.wait(timeout=wall)
            except subprocess.TimeoutExpired:
                _kill(proc, kernel_pids)
                return WorkerStatus(
                    RunStatus.TIMEOUT,
                    error=f"no result within {wall:.0f} s (killed)",
                    seconds=round(time.monotonic() - began, 3),
                )
            except BaseException:  # Ctrl-C while this thread waits (the findings notebook)
                _kill(proc, kernel_pids)
                raise
            finally:
                if workers is not None:
                    workers.discard(proc)
            stderr.seek(max(0, stderr_path.stat().st_size - 4096))
            err_tail = stderr.read()
        try:
            return WorkerStatus.from_json(json.loads(spec.status.read_text()))
        except (OSError, ValueError):
            _kill_kernels(kernel_pids)  # a worker that died cannot have shut its kernel down
            tail = err_tail.decode(errors="replace").strip().splitlines()[-1:] or [f"exit {proc.returncode}"]
            return WorkerStatus(
                RunStatus.FAILED,
                error=f"worker died: {tail[0][:300]}",
                seconds=round(time.monotonic() - began, 3),
            )
    finally:
        for leftover in (spec_path, spec.status, kernel_pids, stderr_path):
            leftover.unlink(missing_ok=True)


def run_matrix(
    plan: ReportPlan,
    runs: Sequence[MatrixRun],
    run_dir: Path,
    env: Mapping[str, str],
    *,
    jobs: int,
    probe_notebook: Path | None = None,
    progress: Progress | None = None,
) -> list[RunRecord]:
    """Every run of ``runs``; ``probe_notebook`` defaults to the packaged probe_endpoint.ipynb."""
    source = notebook(PROBE_NOTEBOOK) if probe_notebook is None else probe_notebook
    (run_dir / "notebooks").mkdir(parents=True, exist_ok=True)
    (run_dir / "results").mkdir(parents=True, exist_ok=True)
    workers = Workers()

    def one(run: MatrixRun) -> RunRecord:
        spec = WorkerSpec(
            input=source,
            output=run_dir / "notebooks" / f"{run.id}.ipynb",
            status=run_dir / "notebooks" / f"{run.id}.status.json",
            parameters=probe_parameters(run, plan, run_dir),
        )
        started_at = utc_now()
        status = execute(spec, env, workers=workers)
        return RunRecord(
            id=run.id,
            label=run.target.label,
            endpoint=run.target.url,
            network=run.network,
            status=status.status,
            error=status.error,
            seconds=status.seconds,
            kernel_start_s=status.kernel_start_s,
            cells_s=status.cells_s,
            results=f"results/{run.id}.jsonl",
            notebook=f"notebooks/{run.id}.ipynb",
            vantage=run.vantage,
            host=socket.gethostname(),  # run.json says which machine ran each notebook
            started_at=started_at,
            finished_at=utc_now(),
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
