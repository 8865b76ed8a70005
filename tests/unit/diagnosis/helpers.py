"""Shared by the diagnosis tests: synthetic ProbeResults, the recorded lab fixtures, and
``fire``/``quiet``, the two ways a rule test ends."""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Any

from kiloscribe_lab.diagnosis import Evidence, Rule
from kiloscribe_lab.lab.scenarios import SCENARIOS
from kiloscribe_lab.names import Outcome, ProbeName
from kiloscribe_lab.results import Finding, ProbeResult, Timings, read_jsonl
from tests.unit.design import DESIGN_FINDING_IDS

FIXTURES = Path(__file__).parents[1] / "fixtures"  # tests/unit/fixtures: the recorded lab runs
KEY_ENV = "KILOSCRIBE_API_KEY"

KEBAB = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")

A, B, C = "https://a.example", "https://b.example", "https://c.example"
LB = "https://lb.example"
EDGE = "https://edge.example"
API = "https://api.example/api"

# --- helpers ----------------------------------------------------------------------------


def pr(
    probe: str,
    variant: str,
    target: str,
    outcome: Outcome | str,
    status: int | None = None,
    *,
    network: str = "direct",
    headers: dict[str, str] | None = None,
    error: str | None = None,
    connect: float | None = None,
    **detail: Any,
) -> ProbeResult:
    """One synthetic ProbeResult; keyword arguments beyond the named ones become its detail."""
    return ProbeResult(
        probe=probe,
        variant=variant,
        target=target,
        outcome=Outcome(outcome),
        status=status,
        error=error,
        network=network,
        timings=Timings(connect=connect, total=10.0),
        headers=headers or {},
        detail=detail,
        started_at="2026-11-26T10:00:00.000Z",
    )


def working(
    target: str, *, network: str = "direct", label: str | None = None, **kw: Any
) -> list[ProbeResult]:
    """Every Socket.IO path works; an invalid key is refused in the server's words."""
    d: dict[str, Any] = {"label": label} if label else {}
    ok = Outcome.OK
    return [
        pr(ProbeName.WEBSOCKET_PLAIN, "socket.io", target, ok, 101, network=network, **d, **kw),
        pr(ProbeName.ENGINEIO_HANDSHAKE, "", target, ok, 200, network=network, engineio_version=4, **d, **kw),
        pr(ProbeName.ENGINEIO_UPGRADE, "", target, ok, 101, network=network, **d, **kw),
        pr(ProbeName.SOCKETIO_CONNECT, "websocket:valid", target, ok, 101, network=network, **d, **kw),
        pr(
            ProbeName.SOCKETIO_CONNECT,
            "websocket:invalid",
            target,
            Outcome.AUTH_REJECTED,
            101,
            network=network,
            error="Invalid API key",
            **d,
            **kw,
        ),
        pr(ProbeName.SOCKETIO_CONNECT, "polling:valid", target, ok, 200, network=network, **d, **kw),
    ]


def failing(
    target: str,
    outcome: Outcome,
    status: int | None = None,
    *,
    network: str = "direct",
    label: str | None = None,
    connect: float | None = None,
    **detail: Any,
) -> list[ProbeResult]:
    """The same Socket.IO-path probes as ``working``, every one failing with ``outcome``."""
    if label:
        detail["label"] = label
    return [
        pr(p, v, target, outcome, status, network=network, connect=connect, **detail)
        for p, v in (
            (ProbeName.WEBSOCKET_PLAIN, "socket.io"),
            (ProbeName.ENGINEIO_HANDSHAKE, ""),
            (ProbeName.ENGINEIO_UPGRADE, ""),
            (ProbeName.SOCKETIO_CONNECT, "websocket:valid"),
            (ProbeName.SOCKETIO_CONNECT, "websocket:invalid"),
            (ProbeName.SOCKETIO_CONNECT, "polling:valid"),
        )
    ]


def ev(results: Iterable[ProbeResult], key_env: str | None = KEY_ENV) -> Evidence:
    return Evidence.of(results, key_env)


def ids(findings: Iterable[Finding]) -> list[str]:
    return [f.id for f in findings]


def by_id(findings: Iterable[Finding]) -> dict[str, Finding]:
    return {f.id: f for f in findings}


def assert_well_formed(finding: Finding, results: Iterable[ProbeResult]) -> None:
    """Evidence points at real results; there is something to do and someone it is about."""
    results = list(results)
    refs = {r.ref for r in results}
    assert finding.id in DESIGN_FINDING_IDS
    assert finding.title.strip() and finding.summary.strip()
    assert finding.recommendation.strip()
    assert finding.evidence, f"{finding.id} has no evidence"
    assert set(finding.evidence) <= refs, f"{finding.id} cites unknown refs"
    assert len(finding.evidence) == len(set(finding.evidence))
    assert finding.targets, f"{finding.id} names no target"
    assert set(finding.targets) <= {r.target for r in results}


def fire(rule: Rule, results: list[ProbeResult], key_env: str | None = KEY_ENV) -> Finding:
    """The rule fires on ``results``, with a well-formed finding."""
    finding = rule(ev(results, key_env))
    assert finding is not None, f"{rule.name} did not fire"
    assert finding.id == rule.id
    assert_well_formed(finding, results)
    return finding


def quiet(rule: Rule, results: list[ProbeResult], key_env: str | None = KEY_ENV) -> None:
    """The rule stays quiet on ``results``."""
    finding = rule(ev(results, key_env))
    assert finding is None, f"{rule.name} fired: {finding}"


def ws_blocked(
    target: str, *, network: str = "direct", headers: dict[str, str] | None = None
) -> list[ProbeResult]:
    h = headers or {}
    return [
        pr(ProbeName.WEBSOCKET_PLAIN, "socket.io", target, "blocked", 403, network=network, headers=h),
        pr(ProbeName.ENGINEIO_UPGRADE, "", target, "blocked", 403, network=network, headers=h),
        pr(ProbeName.SOCKETIO_CONNECT, "websocket:valid", target, "blocked", 403, network=network, headers=h),
        pr(ProbeName.ENGINEIO_HANDSHAKE, "", target, "ok", 200, network=network, headers=h),
        pr(ProbeName.SOCKETIO_CONNECT, "polling:valid", target, "ok", 200, network=network, headers=h),
        pr(
            ProbeName.SOCKETIO_CONNECT,
            "polling:invalid",
            target,
            "auth_rejected",
            200,
            network=network,
            headers=h,
        ),
    ]


# --- the recorded lab fixtures ----------------------------------------------------------


@cache
def _fixture(name: str) -> tuple[ProbeResult, ...]:
    records = list(read_jsonl((FIXTURES / f"{name}.jsonl").read_text()))
    assert records and all(isinstance(r, ProbeResult) for r in records)
    return tuple(r for r in records if isinstance(r, ProbeResult))


def fixture(name: str) -> list[ProbeResult]:
    return list(_fixture(name))


def label_map(results: Iterable[ProbeResult]) -> dict[str, str]:
    """label -> target URL, as the lab's runs recorded them."""
    return {str(r.detail["label"]): r.target for r in results if r.detail.get("label")}


SCENARIO_NAMES = sorted(SCENARIOS)
