"""Diagnosis: recorded lab evidence gives the scenarios' ground truth; every rule fires when it
should and stays quiet when it must; no input makes diagnose() raise."""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kiloscribe_lab import diagnosis
from kiloscribe_lab.diagnosis import (
    RULES,
    SUPERSEDES,
    Evidence,
    Health,
    Verdict,
    diagnose,
    overall,
    rule_all_backends_down,
    rule_auth_path_healthy,
    rule_auth_rejected,
    rule_backend_down,
    rule_backend_timeout,
    rule_discovery,
    rule_dns,
    rule_engineio_version,
    rule_network_timeouts,
    rule_not_socketio,
    rule_plain_websocket_mismatch,
    rule_root_redirect,
    rule_sticky,
    rule_tls,
    rule_websocket_blocked,
    verdicts,
)
from kiloscribe_lab.lab.scenarios import SCENARIOS
from kiloscribe_lab.names import FindingId, Outcome, ProbeName, Severity
from kiloscribe_lab.networks import NetworkProfile
from kiloscribe_lab.probes.runner import suite
from kiloscribe_lab.results import Finding, ProbeResult, Timings, read_jsonl
from kiloscribe_lab.settings import ProbeOptions
from tests.unit.design import DESIGN_FINDING_IDS

FIXTURES = Path(__file__).parent / "fixtures"
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


def fire(rule: Any, results: list[ProbeResult], key_env: str | None = KEY_ENV) -> Finding:
    finding = rule(ev(results, key_env))
    assert finding is not None, f"{rule.__name__} did not fire"
    assert_well_formed(finding, results)
    return finding


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


def test_every_scenario_has_a_fixture() -> None:
    assert {p.stem for p in FIXTURES.glob("*.jsonl")} == set(SCENARIOS)


@pytest.mark.parametrize("name", SCENARIO_NAMES)
def test_fixture_gives_the_ground_truth_and_nothing_worse(name: str) -> None:
    results = fixture(name)
    findings = diagnose(results, KEY_ENV)
    truth = set(SCENARIOS[name].expected_findings)
    found = ids(findings)
    assert len(found) == len(set(found)), "a finding id appears twice"
    assert truth <= set(found), f"missing {truth - set(found)}"
    extra_serious = [
        f.id for f in findings if f.id not in truth and f.severity in {Severity.WARNING, Severity.CRITICAL}
    ]
    assert extra_serious == []
    for f in findings:
        assert_well_formed(f, results)
    ranks = [f.severity.rank for f in findings]
    assert ranks == sorted(ranks, reverse=True), "most severe first"


def test_healthy_fixture_has_nothing_serious() -> None:
    findings = diagnose(fixture("healthy"), KEY_ENV)
    assert [f for f in findings if f.severity is Severity.CRITICAL] == []
    assert {f.severity for f in findings} == {Severity.INFO}


def test_incident_names_inscribe_2_and_only_it_as_down() -> None:
    results = fixture("incident")
    labels = label_map(results)
    findings = by_id(diagnose(results, KEY_ENV))
    down = findings[FindingId.BACKEND_DOWN]
    assert down.severity is Severity.CRITICAL
    assert "inscribe-2" in down.title
    assert labels["inscribe-2"] in down.targets
    for healthy in ("inscribe-1", "inscribe-3"):
        assert healthy not in down.title
        assert labels[healthy] not in down.targets
    assert FindingId.ALL_BACKENDS_DOWN not in findings


def test_incident_expected_answers_are_not_outages() -> None:
    """The seed's false conclusions: a protocol mismatch or a 308 is not a broken server."""
    findings = by_id(diagnose(fixture("incident"), KEY_ENV))
    for fid in (
        FindingId.ROOT_REDIRECT,
        FindingId.PLAIN_WEBSOCKET_PROTOCOL_MISMATCH,
        FindingId.AUTH_PATH_HEALTHY,
    ):
        assert findings[fid].severity is Severity.INFO, fid
    assert "308" in findings[FindingId.ROOT_REDIRECT].title
    assert "expected" in findings[FindingId.PLAIN_WEBSOCKET_PROTOCOL_MISMATCH].title.lower()


def test_incident_sticky_sessions_missing_is_a_warning_on_the_balancers() -> None:
    results = fixture("incident")
    labels = label_map(results)
    sticky = by_id(diagnose(results, KEY_ENV))[FindingId.STICKY_SESSIONS_MISSING]
    assert sticky.severity is Severity.WARNING  # WebSocket works, so polling is not the only way
    assert set(sticky.targets) == {labels["edge"], labels["lb"]}


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
}
EXPECTED_OVERALL = {
    "healthy": "healthy",
    "cookie-sticky": "degraded",
    "incident": "critical",
    "all-down": "down",
    "edge-blocks-websocket": "critical",
    "slow-backend": "critical",
    "auth-broken": "down",
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


# --- SUPERSEDES ---------------------------------------------------------------------------


def test_supersedes_table_shape() -> None:
    rule_ids = DESIGN_FINDING_IDS
    assert set(SUPERSEDES) <= rule_ids
    assert all(dropped <= rule_ids for dropped in SUPERSEDES.values())
    assert {
        "backend-down",
        FindingId.STICKY_SESSIONS_MISSING,
        FindingId.STICKY_SESSIONS_COOKIE_ONLY,
    } <= SUPERSEDES[FindingId.ALL_BACKENDS_DOWN]
    assert FindingId.AUTH_PATH_HEALTHY in SUPERSEDES[FindingId.AUTH_REJECTED]
    assert all(cause not in dropped for cause, dropped in SUPERSEDES.items())


def _stub(fid: str, severity: Severity) -> Any:
    finding = Finding(fid, severity, fid, fid, "do", ("x@y#direct",), ("y",))
    return lambda _ev: finding


def test_all_backends_down_drops_backend_down_and_sticky_findings(monkeypatch: pytest.MonkeyPatch) -> None:
    stubs = (
        _stub(FindingId.STICKY_SESSIONS_MISSING, Severity.WARNING),
        _stub(FindingId.BACKEND_DOWN, Severity.CRITICAL),
        _stub(FindingId.WEBSOCKET_BLOCKED, Severity.CRITICAL),
        _stub(FindingId.STICKY_SESSIONS_COOKIE_ONLY, Severity.WARNING),
        _stub(FindingId.ALL_BACKENDS_DOWN, Severity.CRITICAL),
        _stub(FindingId.ROOT_REDIRECT, Severity.INFO),
    )
    monkeypatch.setattr(diagnosis, "RULES", stubs)
    found = ids(diagnose([pr(ProbeName.SOCKETIO_CONNECT, "polling:valid", A, "ok", 200)]))
    assert sorted(found) == [FindingId.ALL_BACKENDS_DOWN, FindingId.WEBSOCKET_BLOCKED]


def test_auth_rejected_drops_only_auth_path_healthy(monkeypatch: pytest.MonkeyPatch) -> None:
    stubs = (
        _stub(FindingId.AUTH_PATH_HEALTHY, Severity.INFO),
        _stub(FindingId.ROOT_REDIRECT, Severity.INFO),
        _stub(FindingId.AUTH_REJECTED, Severity.CRITICAL),
    )
    monkeypatch.setattr(diagnosis, "RULES", stubs)
    found = ids(diagnose([pr(ProbeName.SOCKETIO_CONNECT, "polling:valid", A, "ok", 200)]))
    assert found == [FindingId.AUTH_REJECTED, FindingId.ROOT_REDIRECT]  # and most severe first


def test_all_down_fixture_backend_down_fires_but_is_superseded() -> None:
    results = fixture("all-down")
    assert rule_backend_down(ev(results)) is not None
    found = ids(diagnose(results, KEY_ENV))
    assert found == [FindingId.ALL_BACKENDS_DOWN]


# --- rule tables: one case where each fires, one where it must not ------------------------


def test_rules_table_covers_the_rules_tested_here() -> None:
    names = {r.__name__ for r in RULES}
    assert names == {
        "rule_all_backends_down",
        "rule_backend_down",
        "rule_backend_timeout",
        "rule_tls",
        "rule_dns",
        "rule_not_socketio",
        "rule_engineio_version",
        "rule_auth_rejected",
        "rule_websocket_blocked",
        "rule_network_timeouts",
        "rule_sticky",
        "rule_discovery",
        "rule_plain_websocket_mismatch",
        "rule_root_redirect",
        "rule_auth_path_healthy",
        # tested in tests/unit/sdk/test_rules.py
        "rule_sdk_runtime_missing_websocket",
        "rule_sdk_fallback_not_effective",
    }


# all-backends-down


def test_all_backends_down_fires_when_every_target_is_down() -> None:
    results = failing(A, Outcome.UPSTREAM_ERROR, 502) + failing(B, Outcome.REFUSED)
    f = fire(rule_all_backends_down, results)
    assert f.severity is Severity.CRITICAL
    assert set(f.targets) == {A, B}
    assert "502" in f.summary
    assert ids(diagnose(results)) == [FindingId.ALL_BACKENDS_DOWN]


def test_all_backends_down_quiet_when_one_target_works() -> None:
    results = failing(A, Outcome.UPSTREAM_ERROR, 502) + working(B)
    assert rule_all_backends_down(ev(results)) is None


def test_all_backends_down_quiet_without_targets() -> None:
    results = [pr(ProbeName.DISCOVERY, "", API, "upstream_error", 502)]
    assert rule_all_backends_down(ev(results)) is None


# backend-down


@pytest.mark.parametrize(
    ("outcome", "status"),
    [
        (Outcome.UPSTREAM_ERROR, 502),
        (Outcome.UPSTREAM_ERROR, 503),
        (Outcome.REFUSED, None),
        (Outcome.RESET, None),
    ],
)
def test_backend_down_names_the_dead_target(outcome: Outcome, status: int | None) -> None:
    results = working(A, label="inscribe-1") + failing(B, outcome, status, label="inscribe-2") + working(C)
    f = fire(rule_backend_down, results)
    assert f.severity is Severity.CRITICAL
    assert f.targets == (B,)
    assert "inscribe-2" in f.title and B in f.title
    assert "inscribe-1" not in f.title
    assert "inscribe-2" in f.recommendation
    assert all(ref.endswith(f"@{B}#direct") for ref in f.evidence)
    assert FindingId.BACKEND_DOWN in ids(diagnose(results))
    assert FindingId.ALL_BACKENDS_DOWN not in ids(diagnose(results))


def test_backend_down_quiet_when_all_targets_work() -> None:
    assert rule_backend_down(ev(working(A) + working(B) + working(C))) is None


def test_backend_down_on_a_balancer_gives_the_share_and_who_answered() -> None:
    results = [
        pr(ProbeName.SOCKETIO_CONNECT, "websocket:valid", LB, "ok", 101, backend="inscribe-1"),
        pr(ProbeName.SOCKETIO_CONNECT, "polling:valid", LB, "upstream_error", 502),
        pr(ProbeName.ENGINEIO_HANDSHAKE, "", LB, "ok", 200, headers={"x-lab-backend": "inscribe-3"}),
        pr(ProbeName.ENGINEIO_UPGRADE, "", LB, "upstream_error", 502),
    ]
    f = fire(rule_backend_down, results)
    assert f.title == "A backend behind the balancer is down"
    assert f.targets == (LB,)
    assert "50 %" in f.summary and "(2 of 4)" in f.summary
    assert "inscribe-1, inscribe-3" in f.summary
    assert set(f.evidence) == {r.ref for r in results if r.outcome is Outcome.UPSTREAM_ERROR}


def test_backend_down_share_counts_every_sticky_exchange() -> None:
    results = [
        pr(ProbeName.SOCKETIO_CONNECT, "websocket:valid", LB, "ok", 101),
        pr(
            ProbeName.STICKY_SESSION,
            "no-cookies",
            LB,
            "upstream_error",
            200,
            open_attempts=[{"status": 200}],
            answers=[{"status": 502}, {"status": 200}, {"status": 502}],
            answered=1,
        ),
        pr(
            ProbeName.STICKY_SESSION,
            "cookies",
            LB,
            "ok",
            200,
            open_attempts=[{"status": 200}],
            answers=[{"status": 200}, {"status": 200}, {"status": 200}],
            answered=3,
        ),
    ]
    f = fire(rule_backend_down, results)
    # 1 connect + 4 + 4 sticky exchanges; 2 of them 502
    assert "(2 of 9)" in f.summary and "22 %" in f.summary


def test_backend_down_cites_a_probe_that_succeeded_after_a_502() -> None:
    """Found by the property test: a sticky probe that opened on its second try (the first
    open met the dead upstream) ends OK, yet it is the only evidence of the 502."""
    sticky = pr(
        ProbeName.STICKY_SESSION,
        "cookies",
        LB,
        "ok",
        200,
        open_attempts=[{"status": 502}, {"status": 200}],
        answers=[{"status": 200}] * 3,
        answered=3,
    )
    results = [pr(ProbeName.SOCKETIO_CONNECT, "websocket:valid", LB, "ok", 101), sticky]
    f = fire(rule_backend_down, results)
    assert f.evidence == (sticky.ref,)
    assert "(1 of 6)" in f.summary


def test_backend_down_quiet_for_tls_failures() -> None:
    results = working(A) + failing(B, Outcome.TLS_ERROR)
    assert rule_backend_down(ev(results)) is None


# backend-timeout


def test_backend_timeout_fires_when_accepted_connections_stall_on_every_network() -> None:
    results = []
    for net in ("direct", "corp"):
        results += working(A, network=net)
        results += failing(
            C,
            Outcome.TIMEOUT,
            network=net,
            connect=1.5,
            label="inscribe-3",
            stalled_during="waiting for response",
        )
    f = fire(rule_backend_timeout, results)
    assert f.severity is Severity.CRITICAL
    assert f.targets == (C,)
    assert "inscribe-3" in f.title
    assert "waiting for response" in f.summary
    found = ids(diagnose(results))
    assert FindingId.BACKEND_TIMEOUT in found and FindingId.NETWORK_TIMEOUTS not in found


def test_backend_timeout_needs_the_connection_accepted() -> None:
    """Timeouts without a connect phase: nobody accepted, so this is not a stalled backend."""
    results = working(A) + failing(C, Outcome.TIMEOUT, stalled_during="connect")
    e = ev(results)
    assert e.health(C).health is not Health.STALLED
    assert rule_backend_timeout(e) is None


def test_backend_timeout_stall_during_tls_counts_as_accepted() -> None:
    results = working(A) + failing(C, Outcome.TIMEOUT, stalled_during="tls")
    assert ev(results).health(C).health is Health.STALLED
    assert fire(rule_backend_timeout, results).targets == (C,)


def test_backend_timeout_quiet_when_another_network_works() -> None:
    results = working(C, network="direct") + failing(C, Outcome.TIMEOUT, network="vpn", connect=2.0)
    assert rule_backend_timeout(ev(results)) is None
    assert FindingId.NETWORK_TIMEOUTS in ids(diagnose(results))


# sticky sessions


def _sticky(
    target: str, cookies: Outcome, no_cookies: Outcome, *, network: str = "direct", **detail: Any
) -> list[ProbeResult]:
    # The no-cookie jar loses more sessions (3 of 6) than the one that returns cookies (2 of 6).
    return [
        pr(
            ProbeName.STICKY_SESSION,
            variant,
            target,
            outcome,
            200,
            network=network,
            follow_ups=6,
            session_unknown=lost if outcome is Outcome.SESSION_UNKNOWN else 0,
            moved=lost if outcome is Outcome.SESSION_UNKNOWN else 0,
            answered=6,
            **detail,
        )
        for variant, outcome, lost in (("cookies", cookies, 2), ("no-cookies", no_cookies, 3))
    ]


def test_sticky_missing_when_the_cookie_client_loses_its_session() -> None:
    results = working(LB, label="lb") + _sticky(LB, Outcome.SESSION_UNKNOWN, Outcome.SESSION_UNKNOWN)
    f = fire(rule_sticky, results)
    assert f.id == FindingId.STICKY_SESSIONS_MISSING
    assert f.severity is Severity.WARNING  # WebSocket still works here
    assert f.targets == (LB,)
    assert "lb" in f.title
    assert "5 of 12" in f.summary
    assert "ip_hash" in f.recommendation


def test_sticky_missing_is_critical_when_websocket_fails_everywhere_and_polling_works() -> None:
    results = [
        pr(ProbeName.WEBSOCKET_PLAIN, "socket.io", LB, "blocked", 403),
        pr(ProbeName.ENGINEIO_UPGRADE, "", LB, "blocked", 403),
        pr(ProbeName.SOCKETIO_CONNECT, "websocket:valid", LB, "blocked", 403),
        pr(ProbeName.ENGINEIO_HANDSHAKE, "", LB, "ok", 200),
        pr(ProbeName.SOCKETIO_CONNECT, "polling:valid", LB, "ok", 200),
        *_sticky(LB, Outcome.SESSION_UNKNOWN, Outcome.OK),
    ]
    f = fire(rule_sticky, results)
    assert f.id == FindingId.STICKY_SESSIONS_MISSING
    assert f.severity is Severity.CRITICAL
    assert "only transport" in f.summary


def test_sticky_cookie_only_when_only_the_cookieless_client_loses_it() -> None:
    results = working(LB) + _sticky(LB, Outcome.OK, Outcome.SESSION_UNKNOWN, cookie_names=["lb_sticky"])
    f = fire(rule_sticky, results)
    assert f.id == FindingId.STICKY_SESSIONS_COOKIE_ONLY
    assert f.severity is Severity.WARNING
    assert f.targets == (LB,)
    assert "lb_sticky" in f.summary


def test_sticky_quiet_when_both_clients_keep_their_session() -> None:
    assert rule_sticky(ev(working(LB) + _sticky(LB, Outcome.OK, Outcome.OK))) is None


def test_sticky_missing_when_the_cookieless_client_loses_it_and_cookies_do_not_help() -> None:
    """Cookie-only stickiness needs proof that the cookie helps: a failing cookie client is none."""
    results = working(LB) + _sticky(LB, Outcome.UPSTREAM_ERROR, Outcome.SESSION_UNKNOWN)
    f = fire(rule_sticky, results)
    assert f.id == FindingId.STICKY_SESSIONS_MISSING


def test_sticky_moved_counts_even_without_session_unknown() -> None:
    """A follow-up answered by another backend (or a dead one's 502) is a lost session too."""
    results = [
        *working(LB),
        pr(ProbeName.STICKY_SESSION, "cookies", LB, "upstream_error", 200, follow_ups=6, moved=2, answered=4),
        pr(
            ProbeName.STICKY_SESSION,
            "no-cookies",
            LB,
            "upstream_error",
            200,
            follow_ups=6,
            moved=4,
            answered=2,
        ),
    ]
    f = fire(rule_sticky, results)
    assert f.id == FindingId.STICKY_SESSIONS_MISSING
    assert "6 of 12" in f.summary


# websocket-blocked


def _ws_blocked(
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


def test_websocket_blocked_at_the_cdn_edge_is_critical() -> None:
    results = _ws_blocked(EDGE, headers={"cf-ray": "8f-AMS", "server": "cloudflare"}) + working(A)
    f = fire(rule_websocket_blocked, results)
    assert f.severity is Severity.CRITICAL
    assert f.targets == (EDGE,)
    assert "CDN edge" in f.title
    assert "403" in f.summary
    assert "Cloudflare" in f.recommendation
    assert all(EDGE in ref for ref in f.evidence)


def test_websocket_blocked_by_a_plain_proxy() -> None:
    f = fire(rule_websocket_blocked, _ws_blocked(EDGE))
    assert "a proxy in front of" in f.title
    assert "Upgrade/Connection" in f.recommendation


def test_websocket_blocked_on_one_network_only_is_a_warning() -> None:
    results = working(A, network="direct") + _ws_blocked(A, network="corp")
    f = fire(rule_websocket_blocked, results)
    assert f.severity is Severity.WARNING
    assert "only on network(s) corp" in f.title
    assert all(ref.endswith("#corp") for ref in f.evidence)


def test_websocket_blocked_quiet_when_websocket_fails_for_another_reason() -> None:
    results = [
        pr(ProbeName.ENGINEIO_UPGRADE, "", LB, "upstream_error", 502),
        pr(ProbeName.SOCKETIO_CONNECT, "websocket:valid", LB, "upstream_error", 502),
        pr(ProbeName.SOCKETIO_CONNECT, "polling:valid", LB, "ok", 200),
    ]
    assert rule_websocket_blocked(ev(results)) is None


def test_websocket_blocked_quiet_when_polling_fails_too() -> None:
    results = [
        pr(ProbeName.ENGINEIO_UPGRADE, "", LB, "blocked", 403),
        pr(ProbeName.SOCKETIO_CONNECT, "polling:valid", LB, "timeout"),
        pr(ProbeName.ENGINEIO_HANDSHAKE, "", LB, "ok", 200),
    ]
    assert rule_websocket_blocked(ev(results)) is None


# network-timeouts


def test_network_timeouts_when_one_network_times_out_and_another_works() -> None:
    results = working(A) + working(B) + failing(A, Outcome.TIMEOUT, network="vpn") + working(B, network="vpn")
    f = fire(rule_network_timeouts, results)
    assert f.severity is Severity.WARNING
    assert "vpn" in f.title and "direct" not in f.title
    assert f.targets == (A,)
    assert all(ref.endswith("#vpn") for ref in f.evidence)


def test_network_timeouts_needs_two_networks() -> None:
    results = working(A)[:3] + failing(A, Outcome.TIMEOUT)[3:]
    assert rule_network_timeouts(ev(results)) is None


def test_network_timeouts_quiet_when_every_network_times_out() -> None:
    results = failing(A, Outcome.TIMEOUT) + failing(A, Outcome.TIMEOUT, network="vpn")
    assert rule_network_timeouts(ev(results)) is None


# not-socketio


def test_not_socketio_when_the_handshake_is_something_else_and_nothing_connects() -> None:
    results = [
        pr(
            ProbeName.ENGINEIO_HANDSHAKE,
            "",
            A,
            "protocol_mismatch",
            200,
            not_engineio="an HTML page (text/html)",
        ),
        pr(ProbeName.SOCKETIO_CONNECT, "polling:valid", A, "protocol_mismatch", 200),
        pr(ProbeName.SOCKETIO_CONNECT, "websocket:valid", A, "http_error", 404),
    ]
    f = fire(rule_not_socketio, results)
    assert f.severity is Severity.CRITICAL
    assert f.targets == (A,)
    assert "an HTML page (text/html)" in f.summary


def test_not_socketio_quiet_when_socketio_connects_anyway() -> None:
    results = [
        pr(ProbeName.ENGINEIO_HANDSHAKE, "", A, "protocol_mismatch", 200, not_engineio="an HTML page"),
        pr(ProbeName.SOCKETIO_CONNECT, "websocket:valid", A, "ok", 101),
    ]
    assert rule_not_socketio(ev(results)) is None


def test_not_socketio_quiet_for_a_502_without_engineio_body() -> None:
    """A dead backend's empty 502 is backend-down, not 'this is not Socket.IO'."""
    results = failing(B, Outcome.UPSTREAM_ERROR, 502, not_engineio="HTTP 502, empty body")
    assert rule_not_socketio(ev(results)) is None
    assert FindingId.NOT_SOCKETIO not in ids(diagnose(results))


# engineio-version-mismatch


@pytest.mark.parametrize(
    "detail",
    [
        {"engineio_version": 3},
        {"engineio_error": {"code": 5, "message": "Unsupported protocol version"}},
    ],
)
def test_engineio_version_mismatch_fires(detail: dict[str, Any]) -> None:
    results = [pr(ProbeName.ENGINEIO_HANDSHAKE, "", A, "protocol_mismatch", 400, **detail)]
    f = fire(rule_engineio_version, results)
    assert f.severity is Severity.CRITICAL
    assert f.targets == (A,)


@pytest.mark.parametrize(
    ("probe", "detail"),
    [
        (ProbeName.ENGINEIO_HANDSHAKE, {"engineio_version": 4}),
        (ProbeName.ENGINEIO_HANDSHAKE, {"engineio_error": {"code": 1, "message": "Session ID unknown"}}),
        (ProbeName.ENGINEIO_HANDSHAKE, {}),
        (ProbeName.SOCKETIO_CONNECT, {"engineio_version": 3}),  # only the handshake probe tells
    ],
)
def test_engineio_version_mismatch_quiet(probe: str, detail: dict[str, Any]) -> None:
    results = [pr(probe, "", A, "ok", 200, **detail)]
    assert rule_engineio_version(ev(results)) is None


# discovery-problem


def test_discovery_problem_when_the_call_fails() -> None:
    results = [
        pr(ProbeName.DISCOVERY, "", API, "upstream_error", 502, error="HTTP/1.1 502 Bad Gateway"),
        *working(A),
    ]
    f = fire(rule_discovery, results)
    assert f.severity is Severity.WARNING
    assert f.targets == (API,)
    assert "the discovery call failed: HTTP/1.1 502 Bad Gateway" in f.summary


def test_discovery_problem_lists_the_documents_problems() -> None:
    results = [
        pr(ProbeName.DISCOVERY, "", API, "ok", 200, problems=["no server has status 'active'"], chosen=None),
        *working(A),
    ]
    f = fire(rule_discovery, results)
    assert "no server has status 'active'" in f.summary


def test_discovery_problem_when_the_chosen_server_is_down() -> None:
    results = [
        pr(ProbeName.DISCOVERY, "", API, "ok", 200, problems=[], chosen=B),
        *working(A),
        *failing(B, Outcome.UPSTREAM_ERROR, 502),
    ]
    f = fire(rule_discovery, results)
    assert f"the server the SDK would choose ({B}) is down" in f.summary


def test_discovery_quiet_when_the_chosen_server_works() -> None:
    results = [
        pr(ProbeName.DISCOVERY, "", API, "ok", 200, problems=[], chosen=A),
        *working(A),
        *failing(B, "refused"),
    ]
    assert rule_discovery(ev(results)) is None


def test_discovery_refused_key_is_auth_rejected_not_a_discovery_problem() -> None:
    results = [pr(ProbeName.DISCOVERY, "", API, "auth_rejected", 401, error="Invalid API key"), *working(A)]
    assert rule_discovery(ev(results)) is None
    f = fire(rule_auth_rejected, results)
    assert API in f.targets


def test_discovery_quiet_without_a_discovery_call() -> None:
    assert rule_discovery(ev(working(A))) is None


# tls-problem


def test_tls_problem_fires_with_the_error() -> None:
    message = "certificate not trusted: self-signed certificate"
    results = [
        pr(ProbeName.SOCKETIO_CONNECT, "websocket:valid", A, "tls_error", error=message),
        pr(ProbeName.ENGINEIO_HANDSHAKE, "", A, "tls_error", error=message),
    ]
    f = fire(rule_tls, results)
    assert f.severity is Severity.CRITICAL
    assert f.targets == (A,)
    assert "self-signed certificate" in f.summary
    assert "--ca-bundle" in f.recommendation


def test_tls_problem_quiet_without_tls_errors() -> None:
    assert rule_tls(ev(working(A) + failing(B, Outcome.UPSTREAM_ERROR, 502))) is None


def test_tls_problem_does_not_hide_a_dead_backend_elsewhere() -> None:
    # One TLS failure somewhere must not make a 502-answering backend disappear.
    results = [
        pr(ProbeName.HTTP_UPGRADE, "http1.1", A, "tls_error", error="TLS failed: WRONG_VERSION_NUMBER")
    ]
    results += failing(A, Outcome.UPSTREAM_ERROR, 502) + failing(B, Outcome.UPSTREAM_ERROR, 502)
    found = ids(diagnose(results))
    assert FindingId.TLS_PROBLEM in found
    assert FindingId.ALL_BACKENDS_DOWN in found


def test_dns_problem_names_the_names_that_do_not_resolve() -> None:
    results = failing(A, Outcome.DNS_ERROR, None) + failing(B, Outcome.UPSTREAM_ERROR, 502)
    finding = rule_dns(ev(results))
    assert finding is not None and finding.severity is Severity.CRITICAL
    assert finding.targets == (A,)
    assert rule_dns(ev(failing(B, Outcome.UPSTREAM_ERROR, 502))) is None


# auth-rejected vs auth-path-healthy


def _auth(target: str, valid: Outcome) -> list[ProbeResult]:
    return [
        pr(
            ProbeName.SOCKETIO_CONNECT,
            "websocket:valid",
            target,
            valid,
            101,
            error="Invalid API key" if valid is Outcome.AUTH_REJECTED else None,
        ),
        pr(
            ProbeName.SOCKETIO_CONNECT,
            "websocket:invalid",
            target,
            "auth_rejected",
            101,
            error="Invalid API key",
        ),
        pr(
            ProbeName.SOCKETIO_CONNECT, "polling:none", target, "auth_rejected", 200, error="API key required"
        ),
        pr(ProbeName.ENGINEIO_HANDSHAKE, "", target, "ok", 200),
    ]


def test_auth_rejected_when_the_configured_key_is_refused() -> None:
    results = _auth(A, Outcome.AUTH_REJECTED) + _auth(B, Outcome.AUTH_REJECTED)
    f = fire(rule_auth_rejected, results)
    assert f.severity is Severity.CRITICAL
    assert f"${KEY_ENV}" in f.title
    assert "'Invalid API key'" in f.summary and "2 target(s)" in f.summary
    assert set(f.targets) == {A, B}
    found = ids(diagnose(results, KEY_ENV))
    assert FindingId.AUTH_REJECTED in found
    # the invalid key was refused too, but "the auth path is healthy" would mislead
    assert rule_auth_path_healthy(ev(results)) is not None
    assert FindingId.AUTH_PATH_HEALTHY not in found
    assert {v.verdict for v in verdicts(results)} == {Verdict.DOWN}


def test_auth_rejected_without_a_key_name_says_the_configured_key() -> None:
    f = fire(rule_auth_rejected, _auth(A, Outcome.AUTH_REJECTED), key_env=None)
    assert "the configured key" in f.title
    assert "$" not in f.title


def test_auth_path_healthy_when_only_the_invalid_key_is_refused() -> None:
    results = _auth(A, Outcome.OK)
    assert rule_auth_rejected(ev(results)) is None
    f = fire(rule_auth_path_healthy, results)
    assert f.severity is Severity.INFO
    assert "'Invalid API key'" in f.summary
    assert f.evidence == (f"socketio_connect:websocket:invalid@{A}#direct",)
    found = by_id(diagnose(results, KEY_ENV))
    assert found[FindingId.AUTH_PATH_HEALTHY].severity is Severity.INFO
    assert [v.verdict for v in verdicts(results)] == [Verdict.HEALTHY]


def test_auth_path_healthy_quiet_when_no_invalid_key_was_refused() -> None:
    results = [pr(ProbeName.SOCKETIO_CONNECT, "websocket:invalid", A, "upstream_error", 502)]
    assert rule_auth_path_healthy(ev(results)) is None


# plain-websocket-protocol-mismatch


def test_plain_websocket_mismatch_when_socketio_works() -> None:
    results = [pr(ProbeName.WEBSOCKET_PLAIN, "as-given", A, "http_error", 400), *working(A)]
    f = fire(rule_plain_websocket_mismatch, results)
    assert f.severity is Severity.INFO
    assert f.targets == (A,)
    assert "400" in f.summary
    assert f"websocket_plain:as-given@{A}#direct" in f.evidence


def test_plain_websocket_mismatch_quiet_when_socketio_fails_too() -> None:
    results = [
        pr(ProbeName.WEBSOCKET_PLAIN, "as-given", A, "upstream_error", 502),
        *failing(A, Outcome.UPSTREAM_ERROR, 502),
    ]
    assert rule_plain_websocket_mismatch(ev(results)) is None


def test_plain_websocket_mismatch_quiet_when_plain_websocket_works() -> None:
    results = [pr(ProbeName.WEBSOCKET_PLAIN, "as-given", A, "ok", 101), *working(A)]
    assert rule_plain_websocket_mismatch(ev(results)) is None


# root-redirect


def test_root_redirect_is_info_and_names_the_location() -> None:
    results = [
        pr(ProbeName.HTTP_UPGRADE, "http1.1", A, "redirect", 308, headers={"location": "/api/health"}),
        *working(A),
    ]
    f = fire(rule_root_redirect, results)
    assert f.severity is Severity.INFO
    assert "308" in f.title
    assert "/api/health" in f.summary
    assert FindingId.ROOT_REDIRECT in ids(diagnose(results))
    assert [v.verdict for v in verdicts(results)] == [Verdict.HEALTHY]


@pytest.mark.parametrize(
    ("probe", "variant", "outcome"),
    [
        (ProbeName.WEBSOCKET_PLAIN, "socket.io", "redirect"),  # the socket path redirecting is another story
        (ProbeName.HTTP_UPGRADE, "http1.1", "upstream_error"),
        (ProbeName.ENGINEIO_HANDSHAKE, "", "redirect"),
    ],
)
def test_root_redirect_quiet(probe: str, variant: str, outcome: str) -> None:
    assert rule_root_redirect(ev([pr(probe, variant, A, outcome, 308)])) is None


# --- verdicts on synthetic evidence -------------------------------------------------------


def test_verdicts_for_each_kind_of_health() -> None:
    results = (
        working(A, label="inscribe-1")
        + failing(B, Outcome.TIMEOUT, connect=1.0)
        + failing(C, Outcome.TLS_ERROR)
        + _ws_blocked(EDGE)
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


# --- property: diagnose() takes anything the probes can produce ----------------------------


def _suite_pairs() -> list[tuple[str, str]]:
    pairs: dict[tuple[str, str], None] = {(ProbeName.DISCOVERY, ""): None}
    for options in (
        ProbeOptions(api_key_env=KEY_ENV, attempts=3),
        ProbeOptions(network=NetworkProfile("corp", transports=("polling",))),
    ):
        for spec in suite(options):
            pairs.setdefault((spec.probe, spec.variant), None)
    return list(pairs)


PAIRS = _suite_pairs()
TARGETS = [A, B, "wss://c.example:8443/socket.io/", API]
STATUSES = [None, 101, 200, 204, 308, 400, 401, 403, 404, 500, 502, 503, 504]
exchange = st.fixed_dictionaries(
    {"status": st.sampled_from(STATUSES)},
    optional={
        "backend": st.sampled_from([None, "inscribe-1", "inscribe-2"]),
        "session_unknown": st.booleans(),
    },
)
small_int = st.integers(min_value=0, max_value=8)
detail = st.fixed_dictionaries(
    {},
    optional={
        "label": st.sampled_from(["edge", "lb", "inscribe-1", "inscribe-2", ""]),
        "answered": small_int,
        "successes": small_int,
        "attempts": small_int,
        "outcomes": st.dictionaries(st.sampled_from([o.value for o in Outcome]), small_int, max_size=3),
        "stalled_during": st.sampled_from(["start", "dns", "connect", "tls", "waiting for response"]),
        "open_attempts": st.lists(exchange, max_size=3),
        "answers": st.lists(exchange, max_size=3),
        "session_unknown": small_int,
        "moved": small_int,
        "follow_ups": small_int,
        "cookie_names": st.lists(st.sampled_from(["lb", "io", "AWSALB"]), max_size=2),
        "not_engineio": st.text(max_size=20),
        "engineio_version": st.sampled_from([3, 4]),
        "engineio_error": st.fixed_dictionaries({"code": st.integers(0, 6), "message": st.text(max_size=10)}),
        "problems": st.lists(st.text(max_size=20), max_size=2),
        "chosen": st.sampled_from([None, *TARGETS]),
        "backend": st.sampled_from([None, "inscribe-1", "inscribe-3"]),
        "unrelated": st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(max_size=5),
            lambda inner: (
                st.lists(inner, max_size=2) | st.dictionaries(st.text(max_size=3), inner, max_size=2)
            ),
            max_leaves=4,
        ),
    },
)
timings = st.builds(
    Timings,
    connect=st.none() | st.floats(0, 1e4),
    tls=st.none() | st.floats(0, 1e4),
    total=st.none() | st.floats(0, 1e4),
)
headers = st.fixed_dictionaries(
    {},
    optional={
        "cf-ray": st.just("8f-AMS"),
        "server": st.sampled_from(["cloudflare", "Caddy"]),
        "location": st.just("/api/health"),
        "x-lab-backend": st.sampled_from(["inscribe-1", "inscribe-2"]),
    },
)


@st.composite
def probe_results(draw: st.DrawFn) -> ProbeResult:
    probe, variant = draw(st.sampled_from(PAIRS))
    return ProbeResult(
        probe=probe,
        variant=variant,
        target=draw(st.sampled_from(TARGETS)),
        network=draw(st.sampled_from(["direct", "corp"])),
        outcome=draw(st.sampled_from(list(Outcome))),
        status=draw(st.sampled_from(STATUSES)),
        error=draw(st.none() | st.text(max_size=20)),
        timings=draw(timings),
        headers=draw(headers),
        detail=draw(detail),
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(probe_results(), max_size=30), st.sampled_from([None, KEY_ENV]))
def test_diagnose_never_raises_and_ids_are_known(results: list[ProbeResult], key_env: str | None) -> None:
    findings = diagnose(results, key_env)
    found = ids(findings)
    assert len(found) == len(set(found))
    for f in findings:
        assert KEBAB.match(f.id), f.id
        assert f.id in DESIGN_FINDING_IDS
        assert f.recommendation and f.targets and f.evidence
        assert set(f.evidence) <= {r.ref for r in results}
    dropped = set().union(*(SUPERSEDES.get(i, frozenset()) for i in found))
    assert not dropped & set(found)
    ranks = [f.severity.rank for f in findings]
    assert ranks == sorted(ranks, reverse=True)
    vs = verdicts(results)
    assert {v.target for v in vs} == {r.target for r in results if r.probe != ProbeName.DISCOVERY}
    status, _ = overall(findings, vs)
    assert status in {"healthy", "degraded", "critical", "down"}
