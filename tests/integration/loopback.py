"""Server processes for integration tests, on loopback: started in their own process group by
the lab's own ``procs``, ready when an HTTP answer (or a JSON "listening" line) says so, and
always stopped, whatever the test did. Also one lab backend alone (no Caddy), from an ad-hoc
behaviour: the cheapest way to see a backend's wire behaviour."""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

from kiloscribe_lab.lab import node_backend, ports, procs
from kiloscribe_lab.lab.backend_config import FILE, HEALTH_PATH, render_backends_json
from kiloscribe_lab.lab.keys import API_KEY_ENV
from kiloscribe_lab.lab.scenarios import BackendBehaviour, BackendKind, BackendSpec, GroundTruth, Scenario

START_TIMEOUT_S = 15.0
NAME = "inscribe-1"


@dataclass(frozen=True)
class Running:
    record: procs.ProcessRecord
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> str:
        return Path(self.record.log).read_text(errors="replace")


def listening_port(log: Path) -> int | None:
    """The port in a ``{"event": "listening", "port": P}`` line the process printed, if any."""
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return None
    for line in lines:
        with contextlib.suppress(ValueError, AttributeError):
            data = json.loads(line)
            if isinstance(data, dict) and data.get("event") == "listening":
                return int(data["port"])
    return None


@contextlib.contextmanager
def serving(
    name: str,
    argv: Sequence[str],
    *,
    log: Path,
    env: dict[str, str],
    ready: Callable[[], int | None],
    timeout_s: float = START_TIMEOUT_S,
    cwd: Path | None = None,
) -> Iterator[Running]:
    """Run ``argv`` until the block ends; ``ready()`` returns the port once it serves."""
    proc, record = procs.spawn(name, argv, log=log, env=env, cwd=cwd)
    try:
        deadline = time.monotonic() + timeout_s
        while (port := ready()) is None:
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {proc.returncode}: {procs.tail(log, 20)}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} not ready within {timeout_s:g} s: {procs.tail(log, 20)}")
            time.sleep(0.02)
        yield Running(record, port)
    finally:
        procs.stop(record)
        proc.wait(5)


def answers(url: str) -> bool:
    with contextlib.suppress(httpx.HTTPError):
        return httpx.get(url, timeout=0.5, trust_env=False).status_code == 200
    return False


def adhoc_scenario(behaviour: BackendBehaviour, kind: BackendKind | None = None) -> Scenario:
    return Scenario(
        name="adhoc",
        description="one behaviour, built by a test",
        truth=GroundTruth(()),
        backends=BackendSpec(behaviour, kind=kind),
    )


@contextlib.contextmanager
def lab_backend(
    kind: BackendKind, behaviour: BackendBehaviour, workdir: Path, key: str, name: str = NAME
) -> Iterator[Running]:
    """Backend ``name`` of ``kind`` alone, with ``behaviour``, the key in its environment only."""
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / FILE
    config.write_text(render_backends_json(adhoc_scenario(behaviour), "wss://127.0.0.1:9"))
    (port,) = ports.free_ports(1)
    env = {**os.environ, API_KEY_ENV: key, "PYTHONUNBUFFERED": "1"}
    if kind is BackendKind.NODE:
        argv = node_backend.prepare(workdir, env).argv(config, name, port, API_KEY_ENV)
    else:
        argv = [
            sys.executable, "-m", "kiloscribe_lab.lab.backend",
            "--config", str(config), "--name", name, "--port", str(port), "--api-key-env", API_KEY_ENV,
        ]  # fmt: skip
    health = f"http://127.0.0.1:{port}{HEALTH_PATH}"
    with serving(
        name, argv, log=workdir / f"{name}.log", env=env, ready=lambda: port if answers(health) else None
    ) as running:
        yield running
