"""The scenario table: seven presets whose ground truth matches DESIGN.md."""

from __future__ import annotations

import json

import pytest

from kiloscribe_lab.errors import UsageError
from kiloscribe_lab.lab.scenarios import (
    BACKENDS,
    DEFAULT_SCENARIO,
    SCENARIOS,
    LbPolicy,
    get_scenario,
)
from kiloscribe_lab.names import FindingId
from tests.unit.design import DESIGN_FINDING_IDS

# DESIGN.md, "Lab scenarios and their ground truth".
DESIGN_TRUTH = {
    "healthy": {"plain-websocket-protocol-mismatch", FindingId.AUTH_PATH_HEALTHY},
    "cookie-sticky": {
        FindingId.PLAIN_WEBSOCKET_PROTOCOL_MISMATCH,
        FindingId.AUTH_PATH_HEALTHY,
        FindingId.STICKY_SESSIONS_COOKIE_ONLY,
    },
    "incident": {
        FindingId.BACKEND_DOWN,
        FindingId.STICKY_SESSIONS_MISSING,
        FindingId.PLAIN_WEBSOCKET_PROTOCOL_MISMATCH,
        FindingId.ROOT_REDIRECT,
        FindingId.AUTH_PATH_HEALTHY,
    },
    "all-down": {"all-backends-down"},
    "edge-blocks-websocket": {"websocket-blocked"},
    "slow-backend": {"backend-timeout"},
    "auth-broken": {"auth-rejected"},
}


def test_seven_scenarios_with_the_designs_names() -> None:
    assert len(SCENARIOS) == 7
    assert set(SCENARIOS) == set(DESIGN_TRUTH)
    assert all(name == s.name for name, s in SCENARIOS.items())


@pytest.mark.parametrize("name", sorted(DESIGN_TRUTH))
def test_ground_truth_matches_the_design(name: str) -> None:
    findings = SCENARIOS[name].expected_findings
    assert set(findings) == DESIGN_TRUTH[name]
    assert len(findings) == len(set(findings))  # no id twice
    assert set(findings) <= DESIGN_FINDING_IDS


def test_default_is_the_incident() -> None:
    assert DEFAULT_SCENARIO == "incident"
    assert get_scenario(DEFAULT_SCENARIO) is SCENARIOS["incident"]


def test_unknown_scenario_is_a_usage_error_naming_the_known_ones() -> None:
    with pytest.raises(UsageError) as excinfo:
        get_scenario("halthy")
    message = str(excinfo.value)
    assert "'halthy'" in message
    assert all(name in message for name in SCENARIOS)
    assert excinfo.value.exit_code == 2


def test_incident_is_the_seeds_topology() -> None:
    incident = SCENARIOS["incident"]
    assert incident.down == {"inscribe-2"}
    assert incident.lb_policy is LbPolicy.ROUND_ROBIN
    assert incident.root_redirect
    assert not incident.auth_broken and not incident.edge_blocks_websocket


def test_each_fault_belongs_to_its_scenario_only() -> None:
    assert SCENARIOS["all-down"].down == set(BACKENDS)
    assert SCENARIOS["slow-backend"].stalled == {"inscribe-3"}
    assert [s.name for s in SCENARIOS.values() if s.stalled] == ["slow-backend"]
    assert [s.name for s in SCENARIOS.values() if s.auth_broken] == ["auth-broken"]
    assert [s.name for s in SCENARIOS.values() if s.edge_blocks_websocket] == ["edge-blocks-websocket"]
    assert SCENARIOS["cookie-sticky"].lb_policy is LbPolicy.COOKIE
    assert SCENARIOS["healthy"].lb_policy is LbPolicy.IP_HASH
    for scenario in SCENARIOS.values():
        assert scenario.down <= set(BACKENDS) and scenario.stalled <= set(BACKENDS)
        assert not scenario.down & scenario.stalled


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_to_json_is_plain_json(name: str) -> None:
    scenario = SCENARIOS[name]
    data = json.loads(json.dumps(scenario.to_json()))
    assert data["name"] == name
    assert data["lb_policy"] == scenario.lb_policy.value
    assert data["expected_findings"] == list(scenario.expected_findings)
    assert data["down"] == sorted(scenario.down)
    assert data["description"]
