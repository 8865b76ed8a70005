"""Execute one notebook with papermill in its own process.

Run as ``python -m kiloscribe_lab.report.worker SPEC``.

Its own process because papermill changes process-wide state and kernels started from one
process race for ports. SPEC is a JSON file, a ``jobs.WorkerSpec``; the outcome goes to the
spec's ``status`` path as a ``jobs.WorkerStatus``. A kernel that fails to start is retried
once; a failing cell is not (the notebook is the evidence).

jupyter_client starts every kernel in a session of its own (``start_new_session=True``,
forced by ``launch_kernel``), so killing this worker's process group does not reach it. With
``kernel_pids`` in the spec, each kernel's pid (its own process group) is appended to that file
the moment it is launched, so whoever kills the worker can kill the kernel's group too. A
kernel whose worker dies also exits by itself within about a second (ipykernel's parent
poller), unless it is stuck holding the GIL.

A worker whose own parent dies (the report, or the Dask worker of a vantage, killed mid-run)
kills its kernels and exits within ``PARENT_POLL_S``: nothing it started outlives the run.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kiloscribe_lab.report.imports import decline_slow_optional_imports
from kiloscribe_lab.report.jobs import RunStatus, WorkerSpec, WorkerStatus

if TYPE_CHECKING:
    from jupyter_client.manager import AsyncKernelManager

KERNEL_START_RETRIES = 1
PARENT_POLL_S = 0.5
EXIT_ORPHANED = 3


def _kernel_failed_to_start(exc: BaseException) -> bool:
    text = f"{type(exc).__name__}: {exc}".lower()
    return any(
        marker in text
        for marker in (
            "kernel didn't respond",
            "kernel died before replying",
            "timed out waiting for kernel",
            "deadkernelerror",
            "kernel failed to start",
            "zmq",
        )
    )


def _phases(output: Path) -> tuple[float | None, float | None]:
    """(kernel start, cell execution) seconds, from papermill's timestamps in the notebook."""
    try:
        nb = json.loads(output.read_text())
        started = nb["metadata"]["papermill"]["start_time"]
        cells = [c["metadata"]["papermill"] for c in nb["cells"] if c["metadata"].get("papermill")]
        first = min(c["start_time"] for c in cells if c.get("start_time"))
        last = max(c["end_time"] for c in cells if c.get("end_time"))
    except (OSError, KeyError, ValueError, TypeError):
        return None, None

    def t(value: str) -> float:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()

    return round(t(first) - t(started), 3), round(t(last) - t(first), 3)


def run(spec: WorkerSpec) -> WorkerStatus:
    decline_slow_optional_imports()
    import papermill

    kernel_manager = _kernel_manager(spec.kernel_pids)
    attempts = 0
    error: str | None = None
    began = time.monotonic()
    while True:
        attempts += 1
        try:
            papermill.execute_notebook(
                str(spec.input),
                str(spec.output),
                parameters=dict(spec.parameters),
                kernel_name="python3",
                start_timeout=spec.start_timeout_s,
                execution_timeout=spec.execution_timeout_s,
                progress_bar=False,
                log_output=False,
                request_save_on_cell_execute=False,
                kernel_manager_class=kernel_manager,
            )
            error = None
            break
        except Exception as exc:  # the boundary: papermill/nbclient/kernel errors become a status
            error = _describe(exc)
            if attempts > KERNEL_START_RETRIES or not _kernel_failed_to_start(exc):
                break
    kernel_s, cells_s = _phases(spec.output)
    return WorkerStatus(
        status=RunStatus.OK if error is None else RunStatus.FAILED,
        error=error,
        attempts=attempts,
        seconds=round(time.monotonic() - began, 3),
        kernel_start_s=kernel_s,
        cells_s=cells_s,
    )


def _kernel_manager(pid_file: Path | None) -> type[AsyncKernelManager]:
    """nbclient's kernel manager; with ``pid_file``, one that writes each kernel's pid there
    once launched."""
    from jupyter_client.manager import AsyncKernelManager

    if pid_file is None:
        return AsyncKernelManager
    pids = pid_file

    class RecordingKernelManager(AsyncKernelManager):
        async def _async_launch_kernel(self, kernel_cmd: list[str], **kw: Any) -> None:
            await super()._async_launch_kernel(kernel_cmd, **kw)
            pid = getattr(self.provisioner, "pid", None)
            if isinstance(pid, int):
                with pids.open("a") as f:
                    f.write(f"{pid}\n")

    return RecordingKernelManager


def _describe(exc: BaseException) -> str:
    """One readable line: papermill's error names the failing cell's exception."""
    ename = getattr(exc, "ename", None)
    evalue = getattr(exc, "evalue", None)
    if ename:
        return f"{ename}: {evalue}".strip()
    return f"{type(exc).__name__}: {exc}".splitlines()[0][:500]


def _exit_with_parent(kernel_pids: Path | None) -> None:
    """Watch the process that started us; once it is gone (we were handed to init), kill the
    kernels we launched and exit: a killed report or Dask worker leaves no notebook running."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_POLL_S)
        with contextlib.suppress(OSError):
            for pid in (
                int(p) for p in (kernel_pids.read_text().split() if kernel_pids else ()) if p.isdigit()
            ):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pid, signal.SIGKILL)  # each kernel leads a process group of its own
        os._exit(EXIT_ORPHANED)

    threading.Thread(target=watch, name="parent watch", daemon=True).start()


def main(argv: list[str]) -> int:
    spec = WorkerSpec.from_json(json.loads(Path(argv[1]).read_text()))
    _exit_with_parent(spec.kernel_pids)
    status = run(spec)
    spec.status.write_text(json.dumps(status.to_json()))
    return 0 if status.ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
