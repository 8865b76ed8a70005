"""The report's jobs beside the matrix: server discovery once per report (not per notebook),
and the published SDK's replay against the targets, in a thread while the matrix runs."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from kiloscribe_lab.names import NetworkName, ProbeName
from kiloscribe_lab.report.plan import ReportPlan, Target, slug
from kiloscribe_lab.results import write_jsonl

STOP_POLL_S = 0.1  # how often the SDK replay thread looks for a stop request


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
    ctx = ProbeContext(api, options, env)
    rec = Recorder(ProbeName.DISCOVERY, "", api.url, NetworkName.DIRECT, "api", ctx.proxy)
    result = asyncio.run(bounded(discovery, ctx, rec))
    (run_dir / "results").mkdir(parents=True, exist_ok=True)
    (run_dir / "results" / "00-discovery.jsonl").write_text(write_jsonl([result]))
    return [Target(str(s["url"])) for s in result.detail.get("servers", []) if s.get("url")]


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
            name = f"sdk-{i + 1:02d}-{slug(target.label or target.url)}.jsonl"
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
