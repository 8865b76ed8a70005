"""Vantages on a real Dask cluster on loopback: `kiloscribe-lab report --cluster` end to end.

One cluster for the module: ``dask scheduler`` and four ``dask worker`` subprocesses, named
vantages: eu-west (its own network: direct), corp-office (``HTTPS_PROXY`` pointing at the lab's
corporate proxy, which refuses WebSocket upgrades), doomed (killed while its cell runs), and
stale (another kiloscribe-lab version first on its path). One report over the first three (one
endpoint, one network); the faults that stop a run before it starts, each as one line and exit
2 (unknown vantage, unreachable scheduler, another version, a key missing on a worker); a cell
whose notebook hangs, stopped by its deadline on the worker.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import nbformat
import psutil
import pytest

from kiloscribe_lab.lab.keys import API_KEY_ENV
from kiloscribe_lab.lab.lab_networks import CORPORATE_CA_FILE
from kiloscribe_lab.lab.state import LabInfo
from kiloscribe_lab.names import FindingId, NetworkName, Outcome, ProbeName
from kiloscribe_lab.report.cluster import CellTask, run_cell
from kiloscribe_lab.report.jobs import RunStatus, WorkerStatus
from kiloscribe_lab.results import ProbeResult, read_jsonl
from tests.integration.conftest import LabGetter
from tests.integration.dask_cluster import DaskCluster, dask_cluster, other_version

pytestmark = pytest.mark.timeout(240)

CLI = [sys.executable, "-m", "kiloscribe_lab.cli"]
SCENARIO = "healthy"
RAN = ("eu-west", "corp-office")
DOOMED = "doomed"
STALE = "stale"
STALE_VERSION = "0.0.0+stale"
KILL_WAIT_S = 60.0
ONLY_HERE_KEY_ENV = "KILOSCRIBE_LAB_VANTAGE_TEST_KEY"
HANG_DEADLINE_S = 2
PROBE_TIMEOUT_S = 6.0


@pytest.fixture(scope="module")
def lab(labs: LabGetter) -> LabInfo:
    return labs(SCENARIO)


@pytest.fixture(scope="module")
def cluster(lab: LabInfo, lab_key: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaskCluster]:
    root = tmp_path_factory.mktemp("dask")
    proxy = lab.networks[NetworkName.CORPORATE_PROXY]
    assert proxy is not None
    workers = {
        "eu-west": {API_KEY_ENV: lab_key},
        "corp-office": {API_KEY_ENV: lab_key, "HTTPS_PROXY": proxy},
        DOOMED: {API_KEY_ENV: lab_key},
        STALE: {API_KEY_ENV: lab_key, "PYTHONPATH": str(other_version(root, STALE_VERSION))},
    }
    with dask_cluster(root, workers) as running:
        yield running


@pytest.fixture(scope="module")
def config(lab: LabInfo, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The balancer, two connect attempts (the per-backend rates), on the direct profile. The
    vantages trust the lab's corporate root as the office's machines do: the lab's bundle of
    it and the lab CA (what the lab's corporate-proxy profile passes as its ca_bundle). A 6 s
    deadline: the SDK flow makes two WebSocket attempts through mitmproxy within it, and on a
    busy two-core machine 3 s read as a timeout there; the fault under test is a 403, which
    comes back at once whatever the deadline."""
    path = tmp_path_factory.mktemp("vantage-config") / "investigation.toml"
    path.write_text(
        "[investigation]\n"
        f'endpoints = ["{lab.lb}"]\n'
        f'api_key_env = "{API_KEY_ENV}"\n'
        f'ca_bundle = "{lab.lab_dir / CORPORATE_CA_FILE}"\n'
        "attempts = 2\n"
        f"timeout = {PROBE_TIMEOUT_S}\n"
    )
    return path


def run_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args],
        capture_output=True,
        text=True,
        env=env or dict(os.environ),
        timeout=timeout,
        check=False,
    )


@dataclass
class VantageRun:
    proc: subprocess.CompletedProcess[str]
    run_dir: Path
    meta: dict[str, object]
    results: list[ProbeResult]
    findings: list[dict[str, object]]
    killed_after_s: float | None


def _kill_when_its_cell_runs(cluster: DaskCluster, report: subprocess.Popen[str], out: list[float]) -> None:
    """SIGKILL the doomed worker once its cell's notebook process runs: mid-run."""
    began = time.monotonic()
    worker = psutil.Process(cluster.pid(DOOMED))
    while time.monotonic() - began < KILL_WAIT_S and report.poll() is None:
        try:
            children = worker.children(recursive=True)
            running = any("kiloscribe_lab.report.worker" in " ".join(c.cmdline()) for c in children)
        except psutil.Error:  # a child that ended while we looked
            running = False
        if running:
            cluster.kill(DOOMED)
            out.append(round(time.monotonic() - began, 3))
            return
        time.sleep(0.05)


@pytest.fixture(scope="module")
def vantage_run(
    cluster: DaskCluster, config: Path, lab_key: str, tmp_path_factory: pytest.TempPathFactory
) -> VantageRun:
    out = tmp_path_factory.mktemp("vantage-reports")
    env = {**os.environ, API_KEY_ENV: lab_key}
    argv = [*CLI, "report", "--config", str(config), "--out", str(out), "--cluster", cluster.scheduler]
    for name in (*RAN, DOOMED):
        argv += ["--vantage", name]
    report = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    killed: list[float] = []
    killer = threading.Thread(target=_kill_when_its_cell_runs, args=(cluster, report, killed), daemon=True)
    killer.start()
    stdout, stderr = report.communicate(timeout=200)
    killer.join(5)
    [run_dir] = [p for p in out.iterdir() if p.is_dir()]
    results = [
        r
        for f in sorted((run_dir / "results").glob("*.jsonl"))
        for r in read_jsonl(f.read_text())
        if isinstance(r, ProbeResult)
    ]
    findings = [json.loads(line) for line in (run_dir / "findings.jsonl").read_text().splitlines()]
    proc = subprocess.CompletedProcess(argv, report.returncode, stdout, stderr)
    return VantageRun(
        proc,
        run_dir,
        json.loads((run_dir / "run.json").read_text()),
        results,
        findings,
        killed[0] if killed else None,
    )


def test_the_report_renders_with_results_from_both_vantages(vantage_run: VantageRun) -> None:
    assert vantage_run.proc.returncode == 0, vantage_run.proc.stderr
    matrix = {m["vantage"]: m for m in vantage_run.meta["matrix"]}  # type: ignore[union-attr,index]
    assert set(matrix) == {*RAN, DOOMED}
    probed = {r.vantage for r in vantage_run.results if r.probe != ProbeName.SDK_REPLAY}
    assert probed == set(RAN)  # doomed died before it had any
    for vantage in RAN:
        mine = [r for r in vantage_run.results if r.vantage == vantage]
        assert {r.probe for r in mine} >= {ProbeName.SOCKETIO_CONNECT, ProbeName.CONNECT_STATS}, vantage
    md = (vantage_run.run_dir / "findings.md").read_text()
    assert "## Vantage points" in md and "Each cell ran from 2 vantages" in md
    assert (vantage_run.run_dir / "findings_files" / "vantage-success.png").is_file()


def test_websocket_blocked_is_named_for_the_proxied_vantage_only(vantage_run: VantageRun) -> None:
    [blocked] = [f for f in vantage_run.findings if f["id"] == FindingId.WEBSOCKET_BLOCKED]
    assert blocked["title"] == "WebSocket is blocked only from vantage corp-office"
    assert blocked["severity"] == "warning"  # eu-west upgrades: the service is fine
    evidence = blocked["evidence"]
    assert isinstance(evidence, list) and evidence
    assert all(str(ref).endswith("#direct/corp-office") for ref in evidence)
    assert "WebSocket blocked by corporate policy" in str(blocked["summary"])
    eu_ws = [
        r
        for r in vantage_run.results
        if r.vantage == "eu-west" and r.probe == ProbeName.SOCKETIO_CONNECT and r.variant == "websocket:valid"
    ]
    assert eu_ws and all(r.outcome is Outcome.OK for r in eu_ws)


def test_each_cell_ran_on_its_vantages_worker_and_run_json_says_so(vantage_run: VantageRun) -> None:
    cluster = vantage_run.meta["cluster"]
    assert isinstance(cluster, dict)
    workers = {w["name"]: w for w in cluster["workers"]}
    assert set(workers) == {*RAN, DOOMED}
    assert all(w["version"] for w in workers.values())
    for m in vantage_run.meta["matrix"]:  # type: ignore[union-attr]
        assert isinstance(m, dict)
        if m["vantage"] == DOOMED:
            continue
        assert m["status"] == "ok", m
        assert m["worker"] == m["vantage"] and m["worker_address"] == workers[m["vantage"]]["address"]
        assert m["host"] and m["started_at"] < m["finished_at"]
        assert m["seconds"] > 0 and m["round_trip_s"] >= m["seconds"]
        assert (vantage_run.run_dir / m["notebook"]).is_file() and (
            vantage_run.run_dir / m["results"]
        ).is_file()


def test_each_vantages_probes_ran_under_the_configs_deadline(vantage_run: VantageRun) -> None:
    """The deadline travels with the cell and is enforced by the probes on the worker."""
    remote = [r for r in vantage_run.results if r.vantage in RAN]
    assert {r.vantage for r in remote} == set(RAN)
    for r in remote:
        deadline = r.detail.get("deadline_s")
        assert isinstance(deadline, float), (r.probe, r.variant)
        if r.probe != ProbeName.CONNECT_STATS:  # several attempts: a deadline of their own
            assert deadline == PROBE_TIMEOUT_S, (r.probe, r.variant, deadline)
        assert r.timings.total is not None and r.timings.total <= deadline * 1000, (r.probe, r.variant)


def test_the_proxy_each_vantage_used_is_recorded(vantage_run: VantageRun, lab: LabInfo) -> None:
    proxy = lab.networks[NetworkName.CORPORATE_PROXY]
    corp = [r for r in vantage_run.results if r.vantage == "corp-office"]
    assert corp and all(r.detail.get("proxy") == {"url": proxy, "source": "HTTPS_PROXY"} for r in corp)
    assert not any("proxy" in r.detail for r in vantage_run.results if r.vantage == "eu-west")


def test_a_worker_killed_mid_run_has_its_cell_failed_and_the_report_renders(vantage_run: VantageRun) -> None:
    assert vantage_run.killed_after_s is not None, "the doomed worker's cell never started"
    [doomed] = [m for m in vantage_run.meta["matrix"] if m["vantage"] == DOOMED]  # type: ignore[union-attr,index]
    assert doomed["status"] == "failed" and "worker doomed left the cluster" in doomed["error"]
    page = (vantage_run.run_dir / "findings.html").read_text()
    assert doomed["id"] in page and "left the cluster" in page
    assert f"failed: {doomed['id']}" in vantage_run.proc.stdout
    # Its notebook's process and kernel went with it: nothing of the cell is left running.
    time.sleep(1.0)
    leftovers = [
        p for p in psutil.process_iter(["cmdline"]) if doomed["id"] in " ".join(p.info["cmdline"] or [])
    ]
    assert leftovers == []


def test_an_unknown_vantage_is_one_line_and_exit_2(
    cluster: DaskCluster, config: Path, tmp_path: Path
) -> None:
    out = tmp_path / "reports"
    proc = run_cli(
        "report",
        "--config",
        str(config),
        "--out",
        str(out),
        "--cluster",
        cluster.scheduler,
        "--vantage",
        "eu-west",
        "--vantage",
        "ap-south",
    )
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith(
        "kiloscribe-lab: unknown vantage 'ap-south'"
    )
    assert "eu-west" in proc.stderr and proc.stdout == ""
    assert not out.exists()  # before anything ran


def test_an_unreachable_scheduler_is_one_line_and_exit_2(config: Path, tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = tmp_path / "reports"
    proc = run_cli(
        "report", "--config", str(config), "--out", str(out), "--cluster", f"tcp://127.0.0.1:{port}"
    )
    assert proc.returncode == 2
    assert (
        proc.stderr
        == f"kiloscribe-lab: cannot reach the Dask scheduler at tcp://127.0.0.1:{port}: Connection refused\n"
    )
    assert not out.exists()


def test_a_worker_of_another_version_is_named_before_the_run(
    cluster: DaskCluster, config: Path, tmp_path: Path
) -> None:
    """No --vantage: every worker of the cluster, stale among them."""
    out = tmp_path / "reports"
    proc = run_cli("report", "--config", str(config), "--out", str(out), "--cluster", cluster.scheduler)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1
    assert proc.stderr.startswith(f"kiloscribe-lab: worker {STALE} (")
    assert f"runs kiloscribe-lab {STALE_VERSION}, this command" in proc.stderr
    assert not out.exists()


def test_a_key_missing_on_a_worker_is_named_with_its_vantage(
    cluster: DaskCluster, lab: LabInfo, tmp_path: Path
) -> None:
    """The key variable is set where the command runs, not on the workers: each reads its own."""
    config = tmp_path / "investigation.toml"
    config.write_text(f'[investigation]\nendpoints = ["{lab.lb}"]\napi_key_env = "{ONLY_HERE_KEY_ENV}"\n')
    out = tmp_path / "reports"
    proc = run_cli(
        "report", "--config", str(config), "--out", str(out), "--cluster", cluster.scheduler,
        "--vantage", "eu-west",
        env={**os.environ, ONLY_HERE_KEY_ENV: "set-only-where-the-command-runs"},
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr == (
        f"kiloscribe-lab: vantage eu-west: environment variable {ONLY_HERE_KEY_ENV} is unset or empty "
        "in its worker's environment (each worker reads the key from its own; it is never sent)\n"
    )
    assert not out.exists()


def test_a_cell_runs_under_its_deadline_on_the_worker(cluster: DaskCluster) -> None:
    """A cell whose notebook hangs is stopped on its worker, by the worker's own deadline (the
    local matrix's, here 2 s of execution), and the worker says so: the client only hears it."""
    from distributed import Client

    hangs = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell("import time\ntime.sleep(600)")],
        metadata={"kernelspec": {"name": "python3", "language": "python", "display_name": "Python 3"}},
    )
    task = CellTask(
        run_id="hangs", vantage="eu-west", notebook=nbformat.writes(hangs), parameters={},
        execution_timeout_s=HANG_DEADLINE_S,
    )  # fmt: skip
    began = time.monotonic()
    with Client(cluster.scheduler, timeout=10, set_as_default=False) as client:
        future = client.submit(run_cell, task, workers=["eu-west"], allow_other_workers=False, pure=False)
        result = future.result(timeout=task.wall_s + 30)
    took = time.monotonic() - began
    status = WorkerStatus.from_json(dict(result.status))
    assert result.worker == "eu-west"
    assert status.status is not RunStatus.OK
    assert status.error and "2 seconds" in status.error, status.error
    assert took < task.start_timeout_s + HANG_DEADLINE_S  # never the notebook's 600 s
