"""What every probe shares: its context, a recorder of partial evidence, a hard deadline.

A probe is ``async def probe(ctx, rec) -> ProbeResult``. ``bounded`` runs it under a
deadline enforced with ``asyncio.timeout`` (our code, not a library's good will); when
the deadline passes, the Recorder still holds what was measured so far, so a timeout
result carries the phases that did happen and the phase that did not finish.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from kiloscribe_lab.credentials import read_key, redact, worth_redacting
from kiloscribe_lab.endpoints import Endpoint
from kiloscribe_lab.names import Outcome
from kiloscribe_lab.networks import NetworkProfile
from kiloscribe_lab.probes.wire import CertificateRejected, Clock, classify_exception
from kiloscribe_lab.results import ProbeResult, Timings, replace, utc_now
from kiloscribe_lab.settings import ProbeOptions

D = TypeVar("D", bound=Mapping[str, object])


@dataclass(frozen=True, slots=True)
class ProbeContext:
    endpoint: Endpoint
    options: ProbeOptions
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))

    @property
    def network(self) -> NetworkProfile:
        return self.options.network

    @property
    def timeout_s(self) -> float:
        return self.options.timeout_s

    def secrets(self) -> tuple[str, ...]:
        """Values that must never appear in a result: the key, and the network's header values."""
        found = list(self.options.network.headers.values())
        name = self.options.api_key_env
        if name and self.environ.get(name):
            found.append(self.environ[name])
        return worth_redacting(found)

    def api_key(self) -> str | None:
        """The configured key, read from the named variable; never stored in a result."""
        name = self.options.api_key_env
        return None if not name else read_key(name, self.environ)


class Recorder:
    """Collects evidence while a probe runs; builds its ProbeResult on any path."""

    def __init__(self, probe: str, variant: str, target: str, network: str, label: str | None = None) -> None:
        self.probe = probe
        self.variant = variant
        self.target = target
        self.network = network
        self.label = label
        self.clock = Clock()
        self.started_at = utc_now()
        self.status: int | None = None
        self.headers: dict[str, str] = {}
        self.detail: dict[str, Any] = {}
        # When ``bounded`` will cancel the probe (a time.monotonic() value): a probe that runs
        # steps with budgets of their own fits them into it, so its own timeouts classify.
        self.deadline: float | None = None

    def time_left(self, fallback_s: float) -> float:
        """Seconds until ``deadline``; ``fallback_s`` when the probe runs unbounded (tests)."""
        return fallback_s if self.deadline is None else max(0.0, self.deadline - time.monotonic())

    def detail_as(self, shape: type[D]) -> D:
        """``detail`` itself, typed as the probe's shape (a ``kiloscribe_lab.details`` TypedDict),
        so mypy checks every key a probe writes; writes still land in ``detail`` as they happen."""
        return cast(D, self.detail)

    def timings(self, *, handshake_ms: float | None = None) -> Timings:
        p = self.clock.phases
        return Timings(
            dns=p.get("dns"),
            connect=p.get("connect"),
            tls=p.get("tls"),
            first_byte=p.get("first_byte"),
            handshake=handshake_ms if handshake_ms is not None else p.get("handshake"),
            total=self.clock.now_ms(),
        )

    def result(self, outcome: Outcome, error: str | None = None) -> ProbeResult:
        return ProbeResult(
            probe=self.probe,
            variant=self.variant,
            target=self.target,
            network=self.network,
            outcome=outcome,
            status=self.status,
            error=error,
            timings=self.timings(),
            headers=dict(self.headers),
            detail={**({"label": self.label} if self.label else {}), **self.detail},
            started_at=self.started_at,
        )


ProbeBody = Callable[[ProbeContext, Recorder], Awaitable[ProbeResult]]


async def bounded(
    body: ProbeBody, ctx: ProbeContext, rec: Recorder, deadline_s: float | None = None
) -> ProbeResult:
    """Run one probe under its hard deadline; transport failures become outcomes."""
    limit = ctx.timeout_s if deadline_s is None else deadline_s
    rec.deadline = time.monotonic() + limit
    rec.detail["deadline_s"] = round(limit, 3)  # the rules read it, not the words of the error
    try:
        async with asyncio.timeout(limit):
            result = await body(ctx, rec)
    except TimeoutError:
        result = timed_out(rec, limit)
    except Exception as exc:
        if isinstance(exc, CertificateRejected):
            rec.detail["tls"] = exc.evidence()  # what the server presented: the diagnosis reads it
        classified = classify_exception(exc)
        if classified is None:
            if ctx.options.strict:
                raise  # tests: a bug in a probe must surface, not hide as evidence
            # A server can drive a probe somewhere we did not foresee; one probe's failure
            # must not end the run and lose what the others measured.
            classified = (Outcome.MALFORMED, f"probe failed: {type(exc).__name__}: {exc}")
        outcome, message = classified
        result = rec.result(outcome, message)
    return scrub(result, ctx.secrets())


def timed_out(rec: Recorder, limit_s: float) -> ProbeResult:
    rec.detail.setdefault("stalled_during", rec.clock.current)
    return rec.result(Outcome.TIMEOUT, f"no answer within {limit_s:.3g} s (while {rec.clock.current})")


def scrub(result: ProbeResult, secrets: tuple[str, ...]) -> ProbeResult:
    """A server may echo what we sent (an error quoting the key): redact before recording."""
    if not secrets:
        return result
    return replace(
        result,
        error=redact(result.error, secrets),
        headers=redact(dict(result.headers), secrets),
        detail=redact(dict(result.detail), secrets),
    )
