"""diagnose(): recorded lab evidence gives the scenarios' ground truth; a present cause drops
what it supersedes; no input makes it raise, and every id it gives is known."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kiloscribe_lab.diagnosis import REGISTRY, SUPERSEDES, diagnose, overall, verdicts
from kiloscribe_lab.diagnosis.registry import Draft, Registry, Rule
from kiloscribe_lab.diagnosis.rules.availability import backend_down
from kiloscribe_lab.lab.scenarios import SCENARIOS
from kiloscribe_lab.names import FindingId, Outcome, ProbeName, Severity
from kiloscribe_lab.networks import NetworkProfile
from kiloscribe_lab.probes.runner import suite
from kiloscribe_lab.results import ProbeResult, Timings
from kiloscribe_lab.settings import ProbeOptions
from tests.unit.design import DESIGN_FINDING_IDS
from tests.unit.diagnosis.helpers import (
    API,
    FIXTURES,
    KEBAB,
    KEY_ENV,
    SCENARIO_NAMES,
    A,
    B,
    assert_well_formed,
    by_id,
    ev,
    fire,
    fixture,
    ids,
    label_map,
    pr,
)

# --- the recorded lab fixtures ----------------------------------------------------------


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


# --- SUPERSEDES ---------------------------------------------------------------------------


def test_supersedes_table_shape() -> None:
    rule_ids = DESIGN_FINDING_IDS
    assert set(SUPERSEDES) <= rule_ids
    assert all(dropped <= rule_ids for dropped in SUPERSEDES.values())
    assert {
        FindingId.BACKEND_DOWN,
        FindingId.STICKY_SESSIONS_MISSING,
        FindingId.STICKY_SESSIONS_COOKIE_ONLY,
    } <= SUPERSEDES[FindingId.ALL_BACKENDS_DOWN]
    assert FindingId.AUTH_PATH_HEALTHY in SUPERSEDES[FindingId.AUTH_REJECTED]
    assert all(cause not in dropped for cause, dropped in SUPERSEDES.items())


def _stub(fid: FindingId, severity: Severity) -> Rule:
    """The real rule's declaration (its supersedes) over a body that always finds."""
    draft = Draft(severity, fid, fid, "do", ("x@y#direct",), ("y",))
    return dataclasses.replace(REGISTRY[fid], body=lambda _ev: draft)


ONE_RESULT = [pr(ProbeName.SOCKETIO_CONNECT, "polling:valid", A, "ok", 200)]


def test_all_backends_down_drops_backend_down_and_sticky_findings() -> None:
    stubs = (
        _stub(FindingId.STICKY_SESSIONS_MISSING, Severity.WARNING),
        _stub(FindingId.BACKEND_DOWN, Severity.CRITICAL),
        _stub(FindingId.WEBSOCKET_BLOCKED, Severity.CRITICAL),
        _stub(FindingId.STICKY_SESSIONS_COOKIE_ONLY, Severity.WARNING),
        _stub(FindingId.ALL_BACKENDS_DOWN, Severity.CRITICAL),
        _stub(FindingId.ROOT_REDIRECT, Severity.INFO),
    )
    found = ids(Registry(stubs).run(ev(ONE_RESULT)))
    assert sorted(found) == [FindingId.ALL_BACKENDS_DOWN, FindingId.WEBSOCKET_BLOCKED]


def test_auth_rejected_drops_only_auth_path_healthy() -> None:
    stubs = (
        _stub(FindingId.AUTH_PATH_HEALTHY, Severity.INFO),
        _stub(FindingId.ROOT_REDIRECT, Severity.INFO),
        _stub(FindingId.AUTH_REJECTED, Severity.CRITICAL),
    )
    found = ids(Registry(stubs).run(ev(ONE_RESULT)))
    assert found == [FindingId.AUTH_REJECTED, FindingId.ROOT_REDIRECT]  # and most severe first


def test_all_down_fixture_backend_down_fires_but_is_superseded() -> None:
    results = fixture("all-down")
    fire(backend_down, results)
    found = ids(diagnose(results, KEY_ENV))
    assert found == [FindingId.ALL_BACKENDS_DOWN]


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
    dropped = set().union(*(SUPERSEDES.get(FindingId(i), frozenset()) for i in found))
    assert not dropped & set(found)
    ranks = [f.severity.rank for f in findings]
    assert ranks == sorted(ranks, reverse=True)
    vs = verdicts(results)
    assert {v.target for v in vs} == {r.target for r in results if r.probe != ProbeName.DISCOVERY}
    status, _ = overall(findings, vs)
    assert status in {"healthy", "degraded", "critical", "down"}
