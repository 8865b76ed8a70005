"""Verdicts per target and the overall status: on the recorded lab fixtures, and on synthetic
evidence for each kind of health."""

from __future__ import annotations

import pytest

from kiloscribe_lab.diagnosis import Verdict, diagnose, overall, verdicts
from kiloscribe_lab.names import FindingId, Outcome, ProbeName, Severity
from kiloscribe_lab.results import Finding
from tests.unit.diagnosis.helpers import (
    EDGE,
    KEY_ENV,
    LB,
    SCENARIO_NAMES,
    A,
    B,
    C,
    failing,
    fixture,
    pr,
    working,
    ws_blocked,
)

_TARGETS = ("edge", "lb", "inscribe-1", "inscribe-2", "inscribe-3")


def _only(unhealthy: dict[str, Verdict]) -> dict[str, Verdict]:
    """Every target healthy but ``unhealthy``'s."""
    return {t: unhealthy.get(t, Verdict.HEALTHY) for t in _TARGETS}


EXPECTED_VERDICTS: dict[str, dict[str, Verdict]] = {
    "healthy": dict.fromkeys(("edge", "lb", "inscribe-1", "inscribe-2", "inscribe-3"), Verdict.HEALTHY),
    "cookie-sticky": {
        "edge": Verdict.DEGRADED,
        "lb": Verdict.DEGRADED,
        "inscribe-1": Verdict.HEALTHY,
        "inscribe-2": Verdict.HEALTHY,
        "inscribe-3": Verdict.HEALTHY,
    },
    "incident": {
        "edge": Verdict.DEGRADED,
        "lb": Verdict.DEGRADED,
        "inscribe-1": Verdict.HEALTHY,
        "inscribe-2": Verdict.DOWN,
        "inscribe-3": Verdict.HEALTHY,
    },
    "all-down": dict.fromkeys(("edge", "lb", "inscribe-1", "inscribe-2", "inscribe-3"), Verdict.DOWN),
    "edge-blocks-websocket": {
        "edge": Verdict.DEGRADED,
        "lb": Verdict.HEALTHY,
        "inscribe-1": Verdict.HEALTHY,
        "inscribe-2": Verdict.HEALTHY,
        "inscribe-3": Verdict.HEALTHY,
    },
    "slow-backend": {
        "edge": Verdict.HEALTHY,
        "lb": Verdict.HEALTHY,
        "inscribe-1": Verdict.HEALTHY,
        "inscribe-2": Verdict.HEALTHY,
        "inscribe-3": Verdict.DOWN,
    },
    "auth-broken": dict.fromkeys(("edge", "lb", "inscribe-1", "inscribe-2", "inscribe-3"), Verdict.DOWN),
    # issue 11's: what fails there is not every target's Socket.IO connect
    "nginx-no-upgrade": _only({"edge": Verdict.DEGRADED, "lb": Verdict.DEGRADED}),
    "nginx-round-robin": _only({"edge": Verdict.DEGRADED, "lb": Verdict.DEGRADED}),
    "nginx-naive": _only({"edge": Verdict.DEGRADED, "lb": Verdict.DEGRADED}),
    "haproxy-healthy": _only({}),
    "websocket-only": dict.fromkeys(_TARGETS, Verdict.DEGRADED),  # connects over WebSocket only
    "inscription-stalls": _only({}),  # the connect works; the application never answers
    "cors-restricted": _only({}),  # a browser's concern: the probes connect
    "wrong-path": dict.fromkeys(_TARGETS, Verdict.DOWN),
    "tls-incomplete-chain": _only({"lb": Verdict.DOWN}),
    "edge-challenge": _only({"edge": Verdict.DOWN}),
    "edge-rate-limited": _only({"edge": Verdict.DEGRADED}),
    # Issue 12's: every target connects; what is wrong shows only in held sessions and large
    # messages, so the findings (not the verdicts) carry it.
    **{
        name: dict.fromkeys(("edge", "lb", "inscribe-1", "inscribe-2", "inscribe-3"), Verdict.HEALTHY)
        for name in ("proxy-idle-timeout", "small-message-limit", "body-limit-at-balancer", "slow-heartbeat")
    },
}
EXPECTED_OVERALL = {
    "healthy": "healthy",
    "cookie-sticky": "degraded",
    "incident": "critical",
    "all-down": "down",
    "edge-blocks-websocket": "critical",
    "slow-backend": "critical",
    "auth-broken": "down",
    "nginx-no-upgrade": "critical",
    "nginx-round-robin": "degraded",
    "nginx-naive": "critical",
    "haproxy-healthy": "healthy",
    "websocket-only": "degraded",
    "inscription-stalls": "critical",
    "cors-restricted": "critical",
    "wrong-path": "down",
    "tls-incomplete-chain": "critical",
    "edge-challenge": "critical",
    "edge-rate-limited": "degraded",
    "proxy-idle-timeout": "critical",  # every idle session through HAProxy is cut
    "small-message-limit": "critical",  # no transport passes a 512 KiB file
    "body-limit-at-balancer": "degraded",  # WebSocket passes it; polling gets nginx's 413
    "slow-heartbeat": "degraded",
}


@pytest.mark.parametrize("name", SCENARIO_NAMES)
def test_fixture_verdicts_per_target(name: str) -> None:
    results = fixture(name)
    got = {v.label: v.verdict for v in verdicts(results)}
    assert got == EXPECTED_VERDICTS[name]
    targets = {v.target for v in verdicts(results)}
    assert not any(t.endswith("/api") for t in targets), "discovery's API is not a target"
    assert all(v.sentence for v in verdicts(results))


@pytest.mark.parametrize("name", SCENARIO_NAMES)
def test_fixture_overall_status(name: str) -> None:
    results = fixture(name)
    status, sentence = overall(diagnose(results, KEY_ENV), verdicts(results))
    assert status == EXPECTED_OVERALL[name]
    assert sentence.endswith(".")


def test_overall_down_names_the_critical_causes() -> None:
    results = fixture("all-down")
    status, sentence = overall(diagnose(results, KEY_ENV), verdicts(results))
    assert status == "down"
    assert "Every backend is down" in sentence


# --- verdicts on synthetic evidence -------------------------------------------------------


def test_verdicts_for_each_kind_of_health() -> None:
    results = (
        working(A, label="inscribe-1")
        + failing(B, Outcome.TIMEOUT, connect=1.0)
        + failing(C, Outcome.TLS_ERROR)
        + ws_blocked(EDGE)
        + [pr(ProbeName.HTTP_UPGRADE, "http1.1", LB, "ok", 101)]  # no Socket.IO evidence at all
    )
    got = {v.target: v for v in verdicts(results)}
    assert got[A].verdict is Verdict.HEALTHY and got[A].label == "inscribe-1"
    assert got[B].verdict is Verdict.DOWN and "never answers" in got[B].sentence
    assert got[C].verdict is Verdict.DOWN and "no Socket.IO handshake" in got[C].sentence
    assert got[EDGE].verdict is Verdict.DEGRADED and "blocked" in got[EDGE].sentence
    assert got[LB].verdict is Verdict.DEGRADED and "No Socket.IO evidence" in got[LB].sentence
    assert got[LB].label is None
    assert got[A].to_json()["kind"] == "verdict"


def test_overall_table() -> None:
    crit = Finding(FindingId.BACKEND_DOWN, Severity.CRITICAL, "B down", "s", "r", ("e",), ("t",))
    warn = Finding(
        FindingId.STICKY_SESSIONS_MISSING, Severity.WARNING, "not sticky", "s", "r", ("e",), ("t",)
    )
    info = Finding(FindingId.ROOT_REDIRECT, Severity.INFO, "redirect", "s", "r", ("e",), ("t",))
    healthy = verdicts(working(A))
    down = verdicts(failing(A, Outcome.REFUSED))
    assert overall([info], healthy)[0] == "healthy"
    assert overall([warn, info], healthy) == ("degraded", "The service works for some clients: not sticky.")
    assert overall([crit, warn], healthy)[0] == "critical"
    assert overall([crit], down) == ("down", "Every target is down: B down.")
    assert overall([], down) == ("down", "Every target is down.")
