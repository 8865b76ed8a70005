"""Issue 6's bar: under the lab's ``mobile`` network, do the timings the probes report equal
the round trips each phase needs times the injected round trip (within ±10 %)?

    .venv/bin/python bench/mobile_timing.py [--runs N] [--rtt MS] [--jitter MS] [--json FILE]

Starts its own lab (scenario healthy) with the given mobile link, then probes one backend
site (inscribe-1) through ``mobile`` and, for a baseline, ``direct``:

* alone: each probe by itself, N times in a row, so nothing else competes for the CPU;
* in the suite: the whole probe suite at once, as ``kiloscribe-lab probe`` runs it.

Round trips per phase (TLS 1.3; the CONNECT exchange stands for the TCP connect a client on
that link would pay, so the proxy charges one round trip for it):

* raw-stream probes: ``connect`` = CONNECT (1); ``tls`` = ClientHello → server Finished (1);
  ``handshake`` / ``first_byte`` = the request → the response head (1);
  ``engineio_handshake`` total = CONNECT + TLS + GET EIO=4 + GET EIO=3 = 4;
  ``websocket_plain`` (socket.io) total = CONNECT + TLS + upgrade = 3 (the server's OPEN
  packet follows its 101 without waiting for the client);
* python-socketio over WebSocket: aiohttp's ``connect`` = CONNECT + TLS (2); ``first_byte``
  = upgrade request → 101 (1); ``handshake`` = CONNECT + TLS + upgrade + Socket.IO CONNECT
  → its answer (4).

Two ratios per phase: ``ratio`` = measured / (round trips × RTT), the bar as the issue
states it (it includes the lab's own server time, a few ms); ``net`` = (measured − the same
phase measured direct) / (round trips × RTT): how exactly the probes measure the delay the
link added. ``injected`` is that delay measured without any probe: a CONNECT and echoes of
small chunks through the proxy to an echo server of this script's own.

Never part of ``make test``: timings depend on the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from kiloscribe_lab.endpoints import parse_endpoint
from kiloscribe_lab.lab import fleet
from kiloscribe_lab.lab.lab_networks import MOBILE, MobileLink
from kiloscribe_lab.probes.base import ProbeContext, Recorder, bounded
from kiloscribe_lab.probes.runner import investigate, suite
from kiloscribe_lab.results import ProbeResult
from kiloscribe_lab.settings import ProbeOptions

ROUND_TRIPS: dict[tuple[str, str], dict[str, int]] = {
    ("engineio_handshake", ""): {"connect": 1, "tls": 1, "first_byte": 1, "handshake": 1, "total": 4},
    ("websocket_plain", "socket.io"): {"connect": 1, "tls": 1, "first_byte": 1, "handshake": 1, "total": 3},
    ("socketio_connect", "websocket:valid"): {"connect": 2, "first_byte": 1, "handshake": 4},
}
Medians = dict[tuple[str, str, str], float]


async def alone(url: str, options: ProbeOptions, env: dict[str, str], runs: int) -> list[ProbeResult]:
    specs = {(s.probe, s.variant): s for s in suite(options)}
    ctx = ProbeContext(parse_endpoint(url), options, env)
    results = []
    for _ in range(runs):
        for key in ROUND_TRIPS:
            spec = specs[key]
            rec = Recorder(spec.probe, spec.variant, url, options.network.name)
            results.append(await bounded(spec.body, ctx, rec, spec.deadline_s))
            await asyncio.sleep(0.05)
    return results


async def in_suite(url: str, options: ProbeOptions, env: dict[str, str], runs: int) -> list[ProbeResult]:
    results = []
    for _ in range(runs):
        results += await investigate([url], options, environ=env)
    return [r for r in results if (r.probe, r.variant) in ROUND_TRIPS]


async def injected(proxy_port: int, rounds: int) -> dict[str, float]:
    """The round trip the proxy adds, measured with no probe: a CONNECT to an echo server of
    ours, then one small chunk at a time, each waited for."""
    handlers: set[asyncio.Task[None]] = set()

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        handlers.add(task)
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    connects, echoes = [], []
    for _ in range(rounds):
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy_port)
        t = time.perf_counter()
        writer.write(f"CONNECT 127.0.0.1:{port} HTTP/1.1\r\n\r\n".encode())
        await reader.readuntil(b"\r\n\r\n")
        connects.append((time.perf_counter() - t) * 1000)
        for _ in range(3):
            t = time.perf_counter()
            writer.write(b"ping")
            await reader.readexactly(4)
            echoes.append((time.perf_counter() - t) * 1000)
        writer.close()
        await writer.wait_closed()
    server.close()
    await asyncio.wait(handlers, timeout=5)
    return {
        "connect_ms_median": round(statistics.median(connects), 1),
        "echo_ms_median": round(statistics.median(echoes), 1),
        "echo_ms_min": round(min(echoes), 1),
        "echo_ms_max": round(max(echoes), 1),
    }


def phase_values(results: list[ProbeResult], probe: str, variant: str, phase: str) -> list[float]:
    rs = [r for r in results if (r.probe, r.variant) == (probe, variant) and r.ok]
    return [v for r in rs if (v := getattr(r.timings, phase)) is not None]


def medians(results: list[ProbeResult]) -> Medians:
    out = {}
    for (probe, variant), phases in ROUND_TRIPS.items():
        for phase in phases:
            values = phase_values(results, probe, variant, phase)
            if values:
                out[(probe, variant, phase)] = statistics.median(values)
    return out


def table(title: str, results: list[ProbeResult], rtt_ms: float, direct: Medians) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    print(f"\n{title}  (RTT {rtt_ms:g} ms; times in ms)")
    print(
        f"{'probe':<34}{'phase':<11}{'RTs':>4}{'median':>9}{'expect':>8}{'ratio':>7}"
        f"{'min':>7}{'max':>7}{'direct':>8}{'net':>7}  n"
    )
    for (probe, variant), phases in ROUND_TRIPS.items():
        failed = [r for r in results if (r.probe, r.variant) == (probe, variant) and not r.ok]
        if failed:
            print(
                f"  {probe} {variant}: {len(failed)} runs failed: {failed[0].outcome.value} {failed[0].error}"
            )
        for phase, trips in phases.items():
            values = phase_values(results, probe, variant, phase)
            if not values:
                continue
            expected = trips * rtt_ms
            ratios = [v / expected for v in values]
            med = statistics.median(values)
            base = direct.get((probe, variant, phase), 0.0)
            row: dict[str, object] = {
                "probe": f"{probe} {variant}".strip(),
                "phase": phase,
                "round_trips": trips,
                "median_ms": round(med, 1),
                "expected_ms": expected,
                "ratio": round(med / expected, 3),
                "ratio_min": round(min(ratios), 3),
                "ratio_max": round(max(ratios), 3),
                "direct_ms": round(base, 1),
                "net_ratio": round((med - base) / expected, 3),
                "n": len(values),
            }
            rows.append(row)
            print(
                f"{row['probe']:<34}{phase:<11}{trips:>4}{med:>9.1f}{expected:>8.0f}"
                f"{med / expected:>7.3f}{min(ratios):>7.3f}{max(ratios):>7.3f}{base:>8.1f}"
                f"{(med - base) / expected:>7.3f}  {len(values)}"
            )
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--rtt", type=int, default=150)
    parser.add_argument("--jitter", type=int, default=10)
    parser.add_argument("--json", metavar="FILE", help="also write the rows as JSON")
    args = parser.parse_args()
    link = MobileLink(args.rtt, args.jitter)
    report: dict[str, object] = {"link": link.to_json(), "runs": args.runs}
    with tempfile.TemporaryDirectory(prefix="kiloscribe-mobile-bench-") as d:
        t = time.monotonic()
        info = fleet.up(Path(d), "healthy", mobile_link=link)
        report["lab_up_s"] = round(time.monotonic() - t, 3)
        try:
            env = fleet.lab_environment(info, dict(os.environ))
            profiles = info.network_profiles()
            mobile = ProbeOptions(
                timeout_s=10.0,
                ca_bundle=info.ca_bundle,
                api_key_env=info.api_key_env,
                network=profiles[MOBILE],
            )
            direct = dataclasses.replace(mobile, network=profiles["direct"])
            url = info.backend_url("inscribe-1")
            asyncio.run(alone(url, mobile, env, 1))  # warm-up: imports and TLS contexts are not the link's
            report["injected"] = asyncio.run(injected(info.proxy_ports()[MOBILE], 10))
            print(f"injected by the proxy, measured without a probe (ms): {report['injected']}")
            report["alone"] = table(
                "each probe alone",
                asyncio.run(alone(url, mobile, env, args.runs)),
                args.rtt,
                medians(asyncio.run(alone(url, direct, env, args.runs))),
            )
            suite_runs = max(3, args.runs // 3)
            report["suite"] = table(
                "the whole suite at once",
                asyncio.run(in_suite(url, mobile, env, suite_runs)),
                args.rtt,
                medians(asyncio.run(in_suite(url, direct, env, suite_runs))),
            )
        finally:
            fleet.down(Path(d))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
