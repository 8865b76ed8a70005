"""Run every probe against every target, concurrently, under per-probe and run deadlines.

The suite per target is a table (``suite``). Discovery, when asked for, runs first and
adds the servers it lists to the targets. Every probe has its own deadline; the run has a
backstop deadline too, after which unfinished probes are cancelled and reported as
``timeout`` with what they had measured. Nothing measured is lost.
"""

from __future__ import annotations

import asyncio
import functools
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from kiloscribe_lab.endpoints import Endpoint, parse_endpoint, parse_target
from kiloscribe_lab.errors import UsageError
from kiloscribe_lab.names import (
    CookieMode,
    CorsCheck,
    Credential,
    HttpVersion,
    PlainPath,
    ProbeName,
    Transport,
    connect_variant,
)
from kiloscribe_lab.probes.base import (
    ProbeBody,
    ProbeContext,
    Recorder,
    bounded,
    scrub,
    timed_out,
)
from kiloscribe_lab.probes.cors import cors
from kiloscribe_lab.probes.discovery import discovery
from kiloscribe_lab.probes.http_upgrade import http_upgrade_h1, http_upgrade_h2
from kiloscribe_lab.probes.polling import engineio_handshake, sticky_session
from kiloscribe_lab.probes.sio import (
    BACKOFF_CAP_S,
    connect_stats,
    sdk_flow,
    socketio_connect,
)
from kiloscribe_lab.probes.websocket import engineio_upgrade, websocket_plain
from kiloscribe_lab.results import ProbeResult
from kiloscribe_lab.settings import ProbeOptions

RUN_SLACK_S = 0.25  # the backstop fires only if a probe's own deadline somehow did not
DEADLINE_TOLERANCE_S = 0.05  # within the run's slack: the run still ends by its deadline
MIN_DEADLINE_SHARE = 0.5  # of a probe's own deadline, whatever the run has left
Progress = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class ProbeSpec:
    probe: ProbeName
    variant: str
    body: ProbeBody
    deadline_s: float


def suite(options: ProbeOptions, *, tls: bool = True) -> list[ProbeSpec]:
    """The probes run against each target, in report order. HTTP/2 is negotiated by ALPN
    over TLS, so a plain-HTTP target gets no h2 probe (as curl would not speak h2 there)."""
    t = options.timeout_s
    specs = [
        ProbeSpec(ProbeName.HTTP_UPGRADE, HttpVersion.HTTP1, http_upgrade_h1, t),
        *([ProbeSpec(ProbeName.HTTP_UPGRADE, HttpVersion.H2, http_upgrade_h2, t)] if tls else []),
        ProbeSpec(
            ProbeName.WEBSOCKET_PLAIN,
            PlainPath.AS_GIVEN,
            functools.partial(websocket_plain, socketio_path=False),
            t,
        ),
        ProbeSpec(
            ProbeName.WEBSOCKET_PLAIN,
            PlainPath.SOCKETIO,
            functools.partial(websocket_plain, socketio_path=True),
            t,
        ),
        ProbeSpec(ProbeName.ENGINEIO_HANDSHAKE, "", engineio_handshake, t),
        ProbeSpec(ProbeName.ENGINEIO_UPGRADE, "", engineio_upgrade, t),
    ]
    credentials = list(Credential) if options.api_key_env else [Credential.INVALID, Credential.NONE]
    for transport in options.network.transports:
        for credential in credentials:
            specs.append(
                ProbeSpec(
                    ProbeName.SOCKETIO_CONNECT,
                    connect_variant(transport, credential),
                    functools.partial(socketio_connect, transport=transport, credential=credential),
                    t,
                )
            )
    specs += [
        ProbeSpec(
            ProbeName.STICKY_SESSION,
            CookieMode.COOKIES,
            functools.partial(sticky_session, keep_cookies=True),
            t,
        ),
        ProbeSpec(
            ProbeName.STICKY_SESSION,
            CookieMode.NO_COOKIES,
            functools.partial(sticky_session, keep_cookies=False),
            t,
        ),
    ]
    if options.api_key_env and options.network.allows(Transport.WEBSOCKET):
        specs.append(ProbeSpec(ProbeName.SDK_FLOW, "", sdk_flow, t))
    if options.origin is not None:
        # Only when asked: the SDK's Node client sends no Origin, so CORS is not its problem.
        specs += [
            ProbeSpec(ProbeName.CORS, check, functools.partial(cors, check=check), t) for check in CorsCheck
        ]
    if options.attempts > 1 and options.api_key_env:
        # Attempts run one after another, with backoff between failures.
        budget = options.attempts * t + (options.attempts - 1) * BACKOFF_CAP_S
        for transport in options.network.transports:
            specs.append(
                ProbeSpec(
                    ProbeName.CONNECT_STATS,
                    transport,
                    functools.partial(connect_stats, transport=transport),
                    budget,
                )
            )
    return specs


def run_deadline(options: ProbeOptions, *, discover: bool) -> float:
    """The longest a run may take: discovery, then the slowest probe, plus slack."""
    longest = max(spec.deadline_s for spec in suite(options))
    return (options.timeout_s if discover else 0.0) + longest + RUN_SLACK_S


def _dedupe(targets: Sequence[tuple[Endpoint, str | None]]) -> list[tuple[Endpoint, str | None]]:
    seen: set[str] = set()
    unique = []
    for ep, label in targets:
        key = ep.origin + ep.path
        if key not in seen:
            seen.add(key)
            unique.append((ep, label))
    return unique


def _deadline(own_s: float, remaining_s: float) -> float:
    """A probe's deadline: its own, unless the run has less left. The milliseconds spent between
    planning the run and starting its probes do not count: a 1 s probe is a 1 s probe (and says
    so), while a command whose clock started at process start still ends in time. Never less than
    half its own, though: on a machine so busy that start-up ate the deadline, probes cut to
    nothing would report healthy services as down; the command then ends late, not wrong."""
    if remaining_s >= own_s - DEADLINE_TOLERANCE_S:
        return own_s
    return max(own_s * MIN_DEADLINE_SHARE, remaining_s)


async def _run_all(
    jobs: list[tuple[ProbeSpec, ProbeContext, Recorder]], remaining_s: float, progress: Progress | None
) -> list[ProbeResult]:
    """Every job at once, each under min(its deadline, what is left of the run's)."""
    deadlines = [_deadline(spec.deadline_s, remaining_s) for spec, _, _ in jobs]
    tasks = [
        asyncio.ensure_future(bounded(spec.body, ctx, rec, limit))
        for (spec, ctx, rec), limit in zip(jobs, deadlines, strict=True)
    ]
    done_count = 0

    def tick(_: asyncio.Future[ProbeResult]) -> None:
        nonlocal done_count
        done_count += 1
        if progress is not None:
            progress(done_count, len(tasks))

    for task in tasks:
        task.add_done_callback(tick)
    if tasks:
        await asyncio.wait(tasks, timeout=max(deadlines) + RUN_SLACK_S)
    results = []
    for task, (_spec, _ctx, rec), limit in zip(tasks, jobs, deadlines, strict=True):
        if task.done() and not task.cancelled():
            results.append(task.result())  # a bug in a probe surfaces here, loudly
        else:
            task.cancel()
            results.append(scrub(timed_out(rec, limit), _ctx.secrets()))
    return results


async def investigate(
    targets: Sequence[str],
    options: ProbeOptions,
    *,
    discover: str | None = None,
    environ: Mapping[str, str] | None = None,
    progress: Progress | None = None,
    started: float | None = None,
) -> list[ProbeResult]:
    """Probe every target (and what discovery lists); return every ProbeResult.

    The run ends by ``started`` (a ``time.monotonic()`` value; default now) plus
    ``run_deadline``: the CLI passes its own start, so the whole command — interpreter and
    imports included — returns within the deadline it promises.
    """
    end = (
        (time.monotonic() if started is None else started)
        + run_deadline(options, discover=discover is not None)
        - RUN_SLACK_S
    )
    env = dict(os.environ if environ is None else environ)
    endpoints = [parse_target(t) for t in targets]
    if not endpoints and discover is None:
        raise UsageError("give at least one URL, or --discover API_BASE")
    network = options.network.name
    results: list[ProbeResult] = []
    if discover is not None:
        api = parse_endpoint(discover)
        ctx = ProbeContext(api, options, env)
        ctx.api_key()  # an unset key variable is a usage error, before any traffic
        rec = Recorder(ProbeName.DISCOVERY, "", api.url, network)
        found = await bounded(discovery, ctx, rec, _deadline(options.timeout_s, end - time.monotonic()))
        results.append(found)
        for server in found.detail.get("servers", []):
            try:
                endpoints.append((parse_endpoint(str(server.get("url"))), None))
            except UsageError:
                continue  # the discovery record already names the bad entry
    endpoints = _dedupe(endpoints)
    jobs = []
    for ep, label in endpoints:
        ctx = ProbeContext(ep, options, env)
        if options.api_key_env:
            ctx.api_key()
        for spec in suite(options, tls=ep.tls):
            jobs.append((spec, ctx, Recorder(spec.probe, spec.variant, ep.url, network, label)))
    results += await _run_all(jobs, end - time.monotonic(), progress)
    return results
