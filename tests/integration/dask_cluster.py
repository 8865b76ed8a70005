"""A real Dask cluster on loopback for the vantage tests and the bench: ``dask scheduler`` and
one ``dask worker`` per vantage, each a subprocess in a process group of its own, each with an
environment of its own (a proxy, a key, another kiloscribe-lab on its path); always stopped."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import kiloscribe_lab

START_TIMEOUT_S = 30.0
STOP_GRACE_S = 3.0
DASK = str(Path(sys.executable).with_name("dask"))


@dataclass
class DaskCluster:
    scheduler: str
    root: Path
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def pid(self, name: str) -> int:
        return self.procs[name].pid

    def kill(self, name: str) -> None:
        """SIGKILL a worker's whole process group, as a machine that dies would."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.procs[name].pid, signal.SIGKILL)
        self.procs[name].wait(timeout=10)

    def log(self, name: str) -> str:
        return (self.root / f"{name}.log").read_text(errors="replace")


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM them all at once, then wait (SIGKILL past the grace): one grace, not one each."""
    for proc in procs:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_S
    for proc in procs:
        try:
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def _spawn(argv: list[str], log: Path, env: Mapping[str, str]) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=dict(env),
            start_new_session=True,
        )


def other_version(root: Path, version: str) -> Path:
    """A copy of this kiloscribe-lab that says it is ``version``: put first on a worker's
    PYTHONPATH, it is what that worker imports, as another install would be."""
    site = root / "other-version"
    package = Path(kiloscribe_lab.__file__).parent
    shutil.copytree(
        package, site / "kiloscribe_lab", ignore=shutil.ignore_patterns("__pycache__"), symlinks=True
    )
    init = site / "kiloscribe_lab" / "__init__.py"
    text = init.read_text()
    init.write_text(
        text.replace(f'__version__ = "{kiloscribe_lab.__version__}"', f'__version__ = "{version}"')
    )
    return site


@contextlib.contextmanager
def dask_cluster(root: Path, workers: Mapping[str, Mapping[str, str]]) -> Iterator[DaskCluster]:
    """A scheduler and a worker per name (each with ``os.environ`` and its own variables),
    yielded once every worker has registered. One thread each: a vantage runs a cell at a time."""
    root.mkdir(parents=True, exist_ok=True)
    scheduler_file = root / "scheduler.json"
    base = dict(os.environ)
    procs: dict[str, subprocess.Popen[bytes]] = {}
    try:
        procs["scheduler"] = _spawn(
            [DASK, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard", "--scheduler-file",
             str(scheduler_file)],
            root / "scheduler.log",
            base,
        )  # fmt: skip
        deadline = time.monotonic() + START_TIMEOUT_S
        while not scheduler_file.is_file() or not scheduler_file.read_text().strip():
            if time.monotonic() > deadline or procs["scheduler"].poll() is not None:
                raise RuntimeError(
                    "dask scheduler did not start: " + (root / "scheduler.log").read_text()[-2000:]
                )
            time.sleep(0.05)
        address = json.loads(scheduler_file.read_text())["address"]
        for name, extra in workers.items():
            local = root / f"worker-{name}"
            local.mkdir(exist_ok=True)
            procs[name] = _spawn(
                [DASK, "worker", address, "--name", name, "--no-dashboard", "--no-nanny", "--nthreads", "1",
                 "--local-directory", str(local), "--death-timeout", "30"],
                root / f"{name}.log",
                {**base, **extra},
            )  # fmt: skip
        from distributed import Client

        with Client(address, timeout=10, set_as_default=False) as client:
            while True:
                names = {str(w.get("name")) for w in client.scheduler_info()["workers"].values()}
                if names >= set(workers):
                    break
                dead = [n for n in workers if procs[n].poll() is not None]
                if dead or time.monotonic() > deadline:
                    log = (root / f"{(dead or list(workers))[0]}.log").read_text(errors="replace")[-2000:]
                    raise RuntimeError(f"dask workers {sorted(set(workers) - names)} did not register: {log}")
                time.sleep(0.1)
        yield DaskCluster(address, root, procs)
    finally:
        # The workers first (a scheduler gone first has them retrying to reach it), then it.
        scheduler = procs.pop("scheduler", None)
        _stop([p for p in procs.values() if p.poll() is None])
        if scheduler is not None and scheduler.poll() is None:
            _stop([scheduler])
