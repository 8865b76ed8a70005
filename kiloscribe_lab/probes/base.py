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

from kiloscribe_lab.credentials import read_key, worth_redacting
from kiloscribe_lab.endpoints import Endpoint
from kiloscribe_lab.names import Outcome
from kiloscribe_lab.networks import NetworkProfile, Proxy
from kiloscribe_lab.probes.wire import CertificateRejected, Clock, classify_exception
from kiloscribe_lab.results import ProbeResult, Timings, replace, utc_now
from kiloscribe_lab.settings import ProbeOptions
from kiloscribe_lab.untrusted import CAP, decoded, evidence

D = TypeVar("D", bound=Mapping[str, object])


@dataclass(frozen=True, slots=True)
class ProbeContext:
    endpoint: Endpoint
    options: ProbeOptions
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    # The network as this process travels it: the profile, with ``environ``'s proxy variables
    # when the profile names no proxy. Built once; an unusable variable raises ConfigError here,
    # before any traffic.
    route: NetworkProfile = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "route", self.options.network.in_environment(self.environ))

    @property
    def network(self) -> NetworkProfile:
        return self.route

    @property
    def proxy(self) -> Proxy | None:
        """The proxy this target's connections go through, if any."""
        return self.route.proxy_for(self.endpoint.host, tls=self.endpoint.tls)

    @property
    def timeout_s(self) -> float:
        return self.options.timeout_s

    def secrets(self) -> tuple[str, ...]:
        """Values that must never appear in a result: the key, and the network's header values."""
        found = list(self.options.network.headers.values())
        if self.proxy is not None:
            found += self.proxy.secrets()
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

    def __init__(
        self,
        probe: str,
        variant: str,
        target: str,
        network: str,
        label: str | None = None,
        proxy: Proxy | None = None,
    ) -> None:
        self.probe = probe
        self.variant = variant
        self.target = target
        self.network = network
        self.label = label
        self.proxy = proxy  # recorded without its credentials
        self.clock = Clock()
        self.started_at = utc_now()
        self.status: int | None = None
        self.headers: dict[str, str] = {}
        self.detail: dict[str, Any] = {}
        # When ``bounded`` will cancel the probe (a time.monotonic() value): a probe that runs
        # steps with budgets of their own fits them into it, so its own timeouts classify.
        self.deadline: float | None = None
        # What must never be recorded (``ProbeContext.secrets``), set by ``bounded``: an excerpt
        # is redacted before it is cut.
        self.secrets: tuple[str, ...] = ()

    def excerpt(self, data: bytes | str, limit: int = CAP) -> str:
        """A server's bytes or text quoted in a sentence of ours: decoded, redacted, then cut
        to ``limit`` (the order matters: a cut first could leave part of a key behind)."""
        text = decoded(data) if isinstance(data, bytes | bytearray) else data
        return evidence(text, self.secrets, limit)

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
            detail={
                **({"label": self.label} if self.label else {}),
                **({"proxy": self.proxy.to_json()} if self.proxy is not None else {}),
                **self.detail,
            },
            started_at=self.started_at,
        )


ProbeBody = Callable[[ProbeContext, Recorder], Awaitable[ProbeResult]]


async def bounded(
    body: ProbeBody, ctx: ProbeContext, rec: Recorder, deadline_s: float | None = None
) -> ProbeResult:
    """Run one probe under its hard deadline; transport failures become outcomes."""
    limit = ctx.timeout_s if deadline_s is None else deadline_s
    rec.deadline = time.monotonic() + limit
    rec.secrets = ctx.secrets()
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
            # Our words: a library's exception text is no explanation of what the server did.
            classified = (Outcome.MALFORMED, f"the probe could not handle the answer ({type(exc).__name__})")
        outcome, message = classified
        result = rec.result(outcome, message)
    return scrub(result, ctx.secrets())


def timed_out(rec: Recorder, limit_s: float) -> ProbeResult:
    rec.detail.setdefault("stalled_during", rec.clock.current)
    return rec.result(Outcome.TIMEOUT, f"no answer within {limit_s:.3g} s (while {rec.clock.current})")


def scrub(result: ProbeResult, secrets: tuple[str, ...]) -> ProbeResult:
    """The one boundary every server byte crosses before it is recorded (``untrusted.evidence``):
    decoded, redacted (a server may echo what we sent, whole, escaped or in part), control
    characters escaped, each string capped after redaction."""
    return replace(
        result,
        error=None if result.error is None else evidence(result.error, secrets),
        headers=evidence(dict(result.headers), secrets),
        detail=evidence(dict(result.detail), secrets),
    )
