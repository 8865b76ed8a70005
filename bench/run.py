"""Benchmarks for the issues' bars, as ratios against baselines measured in the same run.

    .venv/bin/python bench/run.py [lab|probe|deep|silent|overhead|report|cluster ...]

Never part of `make test`: timings depend on the machine; the bars are read here and
written into closing notes. Everything runs on loopback against labs this script starts.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from kiloscribe_lab.lab import fleet
from kiloscribe_lab.lab.state import LabInfo
from kiloscribe_lab.probes.runner import investigate
from kiloscribe_lab.settings import ProbeOptions

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script: find tests/
from tests.integration.dask_cluster import dask_cluster
from tests.integration.servers import silent_server

CLI = [sys.executable, "-m", "kiloscribe_lab.cli"]
ROUNDS = 5


def median_of(fn: Callable[[], float], rounds: int = ROUNDS) -> tuple[float, list[float]]:
    samples = [fn() for _ in range(rounds)]
    return statistics.median(samples), samples


def timed(argv: list[str], env: dict[str, str] | None = None) -> float:
    t = time.perf_counter()
    subprocess.run(argv, capture_output=True, env=env, check=False, timeout=120)
    return time.perf_counter() - t


def bench_lab() -> dict[str, object]:
    """Issue 2: `lab up` ready in under 5 s; `lab down` leaves nothing."""
    ups, downs = [], []
    for _ in range(ROUNDS):
        with tempfile.TemporaryDirectory() as d:
            ups.append(timed([*CLI, "lab", "up", "--dir", d, "--scenario", "incident"]))
            downs.append(timed([*CLI, "lab", "down", "--dir", d]))
    baseline = statistics.median(timed([sys.executable, "-c", "pass"]) for _ in range(ROUNDS))
    return {
        "lab_up_s_median": round(statistics.median(ups), 3),
        "lab_up_s_samples": [round(x, 3) for x in ups],
        "lab_down_s_median": round(statistics.median(downs), 3),
        "python_start_s_baseline": round(baseline, 3),
    }


def lab_probe_argv(info: LabInfo) -> list[str]:
    """``kiloscribe-lab probe`` of a lab's balancer, with its CA and key variable."""
    return [*CLI, "probe", info.lb, "--ca-bundle", str(info.ca_bundle), "--api-key-env", info.api_key_env]


def bench_probe() -> dict[str, object]:
    """Issue 3: all probes against one healthy lab endpoint, as a whole process: ~1 s, ≤ 1.5 s."""
    with tempfile.TemporaryDirectory() as d:
        info = fleet.up(Path(d), "healthy")
        try:
            env = fleet.lab_environment(info)
            argv = [*lab_probe_argv(info), "--json"]
            wall, samples = median_of(lambda: timed(argv, env))
            import_only, _ = median_of(
                lambda: timed([sys.executable, "-c", "import kiloscribe_lab.probes.runner"], env)
            )
        finally:
            fleet.down(Path(d))
    return {
        "probe_one_endpoint_s_median": round(wall, 3),
        "samples": [round(x, 3) for x in samples],
        "import_baseline_s": round(import_only, 3),
        "probing_share": round((wall - import_only) / wall, 3),
    }


def bench_deep() -> dict[str, object]:
    """Issue 12: `probe --deep` against one healthy lab endpoint returns within the hold + 1 s.
    The hold is pingInterval + its margin (the lab beats every 2 s); the probing phase is the
    process's wall minus the same process importing the probes (what start-up costs anyway)."""
    with tempfile.TemporaryDirectory() as d:
        info = fleet.up(Path(d), "healthy")
        try:
            env = fleet.lab_environment(info)
            base = lab_probe_argv(info)
            argv = [*base, "--deep", "--json"]
            wall, samples = median_of(lambda: timed(argv, env))
            shallow, _ = median_of(lambda: timed([*base, "--json"], env))
            import_only, _ = median_of(
                lambda: timed([sys.executable, "-c", "import kiloscribe_lab.probes.runner"], env)
            )
            out = subprocess.run(argv, capture_output=True, env=env, check=False, timeout=120, text=True)
            # The probing alone, in this process: what the deadlines govern, start-up aside.
            options = ProbeOptions(ca_bundle=info.ca_bundle, api_key_env=info.api_key_env, deep=True)

            def in_process() -> float:
                t = time.perf_counter()
                asyncio.run(investigate([info.lb], options, environ=env))
                return time.perf_counter() - t

            probing, probing_samples = median_of(in_process)
        finally:
            fleet.down(Path(d))
    records = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    holds = [r for r in records if r.get("probe") == "hold"]
    hold_s = max((float(r["detail"].get("planned_s", 0.0)) for r in holds), default=0.0)
    return {
        "probe_deep_s_median": round(wall, 3),
        "samples": [round(x, 3) for x in samples],
        "probe_shallow_s_median": round(shallow, 3),
        "import_baseline_s": round(import_only, 3),
        "hold_planned_s": hold_s,
        "probing_s_in_process_median": round(probing, 3),
        "probing_s_in_process_samples": [round(x, 3) for x in probing_samples],
        "within_hold_plus_1s": probing <= hold_s + 1.0,
        "deep_outcomes": sorted(
            {
                f"{r['probe']}:{r['variant']}:{r['outcome']}"
                for r in records
                if r.get("probe") in ("hold", "payload")
            }
        ),
    }


def bench_silent() -> dict[str, object]:
    """Issue 3: against a listener that never answers, the process returns within deadline + 10 %."""
    deadline = 2.0
    env = {**os.environ, "BENCH_KEY": "x"}
    with silent_server() as port:
        argv = [
            *CLI,
            "probe",
            f"https://127.0.0.1:{port}",
            "--timeout",
            str(deadline),
            "--json",
            "--api-key-env",
            "BENCH_KEY",
        ]
        wall, samples = median_of(lambda: timed(argv, env), 3)
    return {
        "deadline_s": deadline,
        "process_s_median": round(wall, 3),
        "ratio_to_deadline": round(wall / deadline, 3),
        "samples": [round(x, 3) for x in samples],
    }


def bench_overhead() -> dict[str, object]:
    """Timing overhead of a probe vs the round trips it needs: the engineio_handshake probe's
    recorded total against a bare ssl-socket GET of the same URL, both in this process."""
    from kiloscribe_lab.endpoints import parse_endpoint
    from kiloscribe_lab.probes.base import ProbeContext, Recorder, bounded
    from kiloscribe_lab.probes.polling import engineio_handshake
    from kiloscribe_lab.settings import ProbeOptions

    with tempfile.TemporaryDirectory() as d:
        info = fleet.up(Path(d), "healthy")
        try:
            ctx = ssl.create_default_context(cafile=str(info.ca_bundle))
            port = info.ports.direct["inscribe-1"]

            def bare() -> float:
                # The same round trips, with nothing of ours: TCP, TLS, one GET, its body.
                t = time.perf_counter()
                conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx)
                conn.request("GET", "/socket.io/?EIO=4&transport=polling")
                conn.getresponse().read()
                elapsed = (time.perf_counter() - t) * 1000
                conn.close()
                return elapsed

            opts = ProbeOptions(ca_bundle=info.ca_bundle)
            ep = parse_endpoint(info.backend_url("inscribe-1"))

            async def probe_once() -> float:
                rec = Recorder("engineio_handshake", "", ep.url, "direct")
                r = await bounded(engineio_handshake, ProbeContext(ep, opts), rec)
                # the probe also asks EIO=3 on the same connection: count its first exchange only
                return (r.timings.connect or 0) + (r.timings.tls or 0) + (r.timings.handshake or 0)

            async def bare_async() -> float:
                # The same round trips through asyncio streams: the I/O our probes stand on.
                t = time.perf_counter()
                reader, writer = await asyncio.open_connection(
                    "127.0.0.1", port, ssl=ctx, server_hostname="127.0.0.1"
                )
                writer.write(b"GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                head = await reader.readuntil(b"\r\n\r\n")
                if b"content-length:" in head.lower():
                    length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
                    await reader.readexactly(length)
                else:  # chunked
                    await reader.readuntil(b"0\r\n\r\n")
                elapsed = (time.perf_counter() - t) * 1000
                writer.transport.abort()
                return elapsed

            async def series() -> tuple[list[float], list[float]]:
                for _ in range(3):  # warm both paths
                    await bare_async()
                    await probe_once()
                a, p = [], []
                for _ in range(30):  # interleaved, so drift hits both alike
                    a.append(await bare_async())
                    p.append(await probe_once())
                return a, p

            for _ in range(3):
                bare()
            bares = [bare() for _ in range(30)]
            async_bares, probes = asyncio.run(series())
        finally:
            fleet.down(Path(d))
    b, a, p = statistics.median(bares), statistics.median(async_bares), statistics.median(probes)
    return {
        "sync_bare_ms_median": round(b, 3),
        "asyncio_bare_ms_median": round(a, 3),
        "probe_ms_median": round(p, 3),
        "ratio_vs_asyncio_bare": round(p / a, 3),
        "ratio_vs_sync_bare": round(p / b, 3),
    }


def bench_report() -> dict[str, object]:
    """Issue 5: the whole default report, setup done: under 60 s; breakdown from run.json.
    Issue 12: with the deep probes (the report's default), under 45 s on 2 cores."""
    with tempfile.TemporaryDirectory() as out:
        wall = timed([*CLI, "report", "--out", out])
        runs = [p for p in Path(out).iterdir() if p.is_dir()]
        meta = json.loads((runs[0] / "run.json").read_text()) if runs else {}
        holds = sum(
            1
            for run in runs
            for f in (run / "results").glob("*.jsonl")
            for line in f.read_text().splitlines()
            if '"probe":"hold"' in line.replace(" ", "")
        )
    return {
        "report_s": round(wall, 3),
        "timings": meta.get("timings", {}),
        "failed_runs": [m["id"] for m in meta.get("matrix", []) if m.get("status") != "ok"],
        "hold_results": holds,  # the deep probes ran
        "under_45_s": wall < 45.0,
    }


def _report_s(argv: list[str], env: dict[str, str]) -> float:
    """A report's wall time; a report that failed is no sample."""
    t = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, check=False, timeout=180)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[2:])}: exit {proc.returncode}: {proc.stderr.strip()[-500:]}")
    return time.perf_counter() - t


def bench_cluster(rounds: int = 3) -> dict[str, object]:
    """Issue 15: the same matrix (the healthy lab's balancer, direct) as a local report and on a
    loopback Dask cluster of one worker (one vantage): the cluster adds at most 2 s. Rounds
    alternate, so a machine getting busier weighs on both."""
    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        info = fleet.up(root / "lab", "healthy")
        try:
            env = fleet.lab_environment(info)
            config = root / "investigation.toml"
            config.write_text(
                f'[investigation]\nendpoints = ["{info.lb}"]\napi_key_env = "{info.api_key_env}"\n'
                f'ca_bundle = "{info.ca_bundle}"\n'
            )
            worker_env = {info.api_key_env: env[info.api_key_env]}
            with dask_cluster(root / "dask", {"bench": worker_env}) as cluster:
                base = [*CLI, "report", "--config", str(config)]
                on_cluster = ["--cluster", cluster.scheduler, "--vantage", "bench"]
                local, remote = [], []
                for i in range(rounds):
                    local.append(_report_s([*base, "--out", str(root / f"local-{i}")], env))
                    remote.append(_report_s([*base, "--out", str(root / f"cluster-{i}"), *on_cluster], env))
        finally:
            fleet.down(root / "lab")
    added = statistics.median(remote) - statistics.median(local)
    return {
        "local_report_s_median": round(statistics.median(local), 3),
        "cluster_report_s_median": round(statistics.median(remote), 3),
        "cluster_adds_s": round(added, 3),
        "bar_s": 2.0,
        "local_samples": [round(x, 3) for x in local],
        "cluster_samples": [round(x, 3) for x in remote],
    }


BENCHES = {
    "lab": bench_lab,
    "probe": bench_probe,
    "deep": bench_deep,
    "silent": bench_silent,
    "overhead": bench_overhead,
    "report": bench_report,
    "cluster": bench_cluster,
}


def main(argv: list[str]) -> int:
    chosen = argv or list(BENCHES)
    results = {}
    for name in chosen:
        results[name] = BENCHES[name]()
        print(f"{name}: {json.dumps(results[name])}", flush=True)
    Path(__file__).with_name("last-run.json").write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
