"""The scenarios as data: seven entries whose ground truth matches DESIGN.md, their types, their
JSON, and the README's table rendered from them."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from kiloscribe_lab.errors import ConfigError, UsageError
from kiloscribe_lab.lab import scenarios
from kiloscribe_lab.lab.scenarios import (
    BACKENDS,
    DEFAULT_SCENARIO,
    IMPLEMENTED_BALANCERS,
    SCENARIOS,
    BackendBehaviour,
    BackendSpec,
    BackendState,
    BalancerKind,
    GroundTruth,
    LbPolicy,
    NetworkTruth,
    get_scenario,
    network_ground_truth,
)
from kiloscribe_lab.names import FindingId, NetworkName
from tests.unit.design import DESIGN_FINDING_IDS

README = Path(__file__).parents[3] / "README.md"

# DESIGN.md, "Lab scenarios and their ground truth".
DESIGN_TRUTH = {
    "healthy": {FindingId.PLAIN_WEBSOCKET_PROTOCOL_MISMATCH, FindingId.AUTH_PATH_HEALTHY},
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
    "all-down": {FindingId.ALL_BACKENDS_DOWN},
    "edge-blocks-websocket": {FindingId.WEBSOCKET_BLOCKED},
    "slow-backend": {FindingId.BACKEND_TIMEOUT},
    "auth-broken": {FindingId.AUTH_REJECTED},
}


def test_seven_scenarios_with_the_designs_names() -> None:
    assert len(SCENARIOS) == 7
    assert set(SCENARIOS) == set(DESIGN_TRUTH)
    assert all(name == s.name for name, s in SCENARIOS.items())


@pytest.mark.parametrize("name", sorted(DESIGN_TRUTH))
def test_ground_truth_matches_the_design(name: str) -> None:
    findings = SCENARIOS[name].expected_findings
    assert findings == SCENARIOS[name].truth.findings  # one fact, read two ways
    assert set(findings) == DESIGN_TRUTH[name]
    assert len(findings) == len(set(findings))  # no id twice
    assert set(findings) <= DESIGN_FINDING_IDS
    assert all(isinstance(f, FindingId) for f in findings)


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
    assert incident.balancer.policy is LbPolicy.ROUND_ROBIN
    assert all(incident.backends.behaviour(n).root_redirect for n in BACKENDS if n not in incident.down)
    assert not any(b.auth_broken for b in incident.backends.by_name().values())
    assert not incident.edge.blocks_websocket


def test_each_fault_belongs_to_its_scenario_only() -> None:
    assert SCENARIOS["all-down"].down == set(BACKENDS)
    assert SCENARIOS["slow-backend"].stalled == {"inscribe-3"}
    assert [s.name for s in SCENARIOS.values() if s.stalled] == ["slow-backend"]
    auth_broken = [
        s.name for s in SCENARIOS.values() if any(b.auth_broken for b in s.backends.by_name().values())
    ]
    assert auth_broken == ["auth-broken"]
    assert all(b.auth_broken for b in SCENARIOS["auth-broken"].backends.by_name().values())
    assert [s.name for s in SCENARIOS.values() if s.edge.blocks_websocket] == ["edge-blocks-websocket"]
    redirecting = [
        s.name for s in SCENARIOS.values() if any(b.root_redirect for b in s.backends.by_name().values())
    ]
    assert redirecting == ["incident"]
    assert SCENARIOS["cookie-sticky"].balancer.policy is LbPolicy.COOKIE
    assert SCENARIOS["healthy"].balancer.policy is LbPolicy.IP_HASH
    for scenario in SCENARIOS.values():
        assert scenario.down <= set(BACKENDS) and scenario.stalled <= set(BACKENDS)
        assert not scenario.down & scenario.stalled
        assert scenario.balancer.kind in IMPLEMENTED_BALANCERS


def test_every_balancer_kind_is_implemented() -> None:
    assert {str(k) for k in BalancerKind} == {"caddy", "nginx", "haproxy"}
    assert set(BalancerKind) == IMPLEMENTED_BALANCERS
    assert scenarios.Balancer().kind is BalancerKind.CADDY


# --- the balancer's settings ------------------------------------------------------------------

Balancer = scenarios.Balancer


@pytest.mark.parametrize(
    ("balancer", "match"),
    [
        (
            {"kind": BalancerKind.NGINX, "policy": LbPolicy.COOKIE},
            r"nginx balancer cannot do that: lb_policy cookie: nginx open source has no cookie stickiness",
        ),
        ({"kind": BalancerKind.HAPROXY, "forwards_upgrade": False}, "haproxy forwards WebSocket upgrades"),
        ({"kind": BalancerKind.CADDY, "forwards_upgrade": False}, "caddy forwards WebSocket upgrades"),
        ({"idle_timeout_s": 0.0}, r"idle_timeout_s must be in \(0, 86400\]"),
        ({"max_body_bytes": 0}, "max_body_bytes must be at least 1"),
    ],
)
def test_a_balancer_its_kind_cannot_express_is_refused_when_written(
    balancer: dict[str, object], match: str
) -> None:
    with pytest.raises(ConfigError, match=match):
        Balancer(**balancer)


def test_what_each_kind_can_express() -> None:
    for policy in LbPolicy:
        assert Balancer(kind=BalancerKind.HAPROXY, policy=policy).policy is policy
        assert Balancer(kind=BalancerKind.CADDY, policy=policy).policy is policy
    nginx = Balancer(BalancerKind.NGINX, LbPolicy.ROUND_ROBIN, False, 4.0, 65536)
    assert (nginx.forwards_upgrade, nginx.idle_timeout_s, nginx.max_body_bytes) == (False, 4.0, 65536)
    for kind in BalancerKind:
        assert Balancer(kind=kind, idle_timeout_s=4, max_body_bytes=1).max_body_bytes == 1


def test_on_balancer_swaps_the_kind_and_keeps_everything_else() -> None:
    incident = SCENARIOS["incident"]
    on_nginx = scenarios.on_balancer(incident, BalancerKind.NGINX)
    assert on_nginx.balancer == dataclasses.replace(incident.balancer, kind=BalancerKind.NGINX)
    assert dataclasses.replace(on_nginx, balancer=incident.balancer) == incident
    assert scenarios.on_balancer(incident, None) is incident
    assert scenarios.on_balancer(incident, BalancerKind.CADDY) is incident
    with pytest.raises(ConfigError, match="scenario cookie-sticky on nginx: the nginx balancer cannot"):
        scenarios.on_balancer(SCENARIOS["cookie-sticky"], BalancerKind.NGINX)


def test_balancer_json_walks_its_fields() -> None:
    balancer = Balancer(BalancerKind.NGINX, LbPolicy.FIRST, False, 2.5, 1024)
    assert json.loads(json.dumps(balancer.to_json())) == {
        "kind": "nginx",
        "policy": "first",
        "forwards_upgrade": False,
        "idle_timeout_s": 2.5,
        "max_body_bytes": 1024,
    }
    assert set(Balancer().to_json()) == {f.name for f in dataclasses.fields(Balancer)}


# --- TLS and the edge -------------------------------------------------------------------------


def test_tls_names_known_sites_once() -> None:
    assert ("edge", "lb", "api", *BACKENDS) == scenarios.SITES
    assert scenarios.Tls(("lb", "inscribe-1")).to_json() == {"incomplete_chain": ["lb", "inscribe-1"]}
    for bad in (("cdn",), ("edge", "edge")):
        with pytest.raises(ConfigError, match="at most once"):
            scenarios.Tls(bad)
    assert all(not s.tls.incomplete_chain for s in SCENARIOS.values())  # the seven have full chains


def test_edge_json_walks_its_fields() -> None:
    edge = scenarios.Edge(challenge=True, rate_limited=0.25)
    assert edge.to_json() == {"blocks_websocket": False, "challenge": True, "rate_limited": 0.25}
    assert all(not s.edge.challenge and not s.edge.rate_limited for s in SCENARIOS.values())


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_to_json_is_plain_json(name: str) -> None:
    scenario = SCENARIOS[name]
    data = json.loads(json.dumps(scenario.to_json()))
    assert data["name"] == name
    assert data["lb_policy"] == scenario.balancer.policy.value
    assert data["balancer"] == {
        "kind": "caddy",
        "policy": scenario.balancer.policy.value,
        "forwards_upgrade": True,
        "idle_timeout_s": None,
        "max_body_bytes": None,
    }
    assert data["expected_findings"] == list(scenario.expected_findings)
    assert data["down"] == sorted(scenario.down)
    assert data["stalled"] == sorted(scenario.stalled)
    assert data["description"]
    assert data["edge_blocks_websocket"] is scenario.edge.blocks_websocket
    assert data["edge"] == {
        "blocks_websocket": scenario.edge.blocks_websocket,
        "challenge": False,
        "rate_limited": 0.0,
    }
    assert data["tls"] == {"incomplete_chain": []}
    assert list(data["backends"]) == list(BACKENDS)
    for backend, behaviour in data["backends"].items():
        assert BackendBehaviour.from_json(behaviour) == scenario.backends.behaviour(backend)
    running = [b for b in data["backends"].values() if b["state"] != "down"]
    assert data["root_redirect"] is any(b["root_redirect"] for b in running)
    assert data["auth_broken"] is any(b["auth_broken"] for b in running)
    assert [t["network"] for t in data["networks"]] == [t.network for t in scenario.truth.networks]


# --- per-network ground truth -----------------------------------------------------------------


def test_network_ground_truth_is_read_from_the_entries() -> None:
    derived = network_ground_truth()
    assert set(derived) == {"incident", "healthy"}
    for name, truths in derived.items():
        assert truths is SCENARIOS[name].truth.networks
        assert all(isinstance(t.network, NetworkName) for t in truths)
        assert all(isinstance(f, FindingId) for t in truths for f in t.adds)
    assert all(not s.truth.networks for n, s in SCENARIOS.items() if n not in derived)


def test_ground_truth_is_checked_when_it_is_written() -> None:
    with pytest.raises(ConfigError, match="twice"):
        GroundTruth((FindingId.BACKEND_DOWN, FindingId.BACKEND_DOWN))
    with pytest.raises(ConfigError, match="already has"):
        GroundTruth(
            (FindingId.WEBSOCKET_BLOCKED,),
            networks=(NetworkTruth(NetworkName.CORPORATE_PROXY, (FindingId.WEBSOCKET_BLOCKED,)),),
        )


# --- backend behaviour ------------------------------------------------------------------------


def test_backend_spec_overrides_name_known_backends_once() -> None:
    spec = BackendSpec(BackendBehaviour(root_redirect=True), overrides=(("inscribe-2", scenarios.DOWN),))
    assert spec.behaviour("inscribe-1") == BackendBehaviour(root_redirect=True)
    assert spec.behaviour("inscribe-2").state is BackendState.DOWN
    assert spec.named(BackendState.DOWN) == {"inscribe-2"}
    assert spec.named(BackendState.UP) == {"inscribe-1", "inscribe-3"}
    with pytest.raises(ConfigError, match="at most once"):
        BackendSpec(overrides=(("inscribe-9", scenarios.DOWN),))
    with pytest.raises(ConfigError, match="at most once"):
        BackendSpec(overrides=(("inscribe-1", scenarios.DOWN), ("inscribe-1", scenarios.STALLED)))


def test_every_behaviour_field_survives_json() -> None:
    """A field added to BackendBehaviour reaches the backend with no other change: the JSON
    walks the fields. Each field set away from its default comes back as it went."""
    default = BackendBehaviour()
    for f in dataclasses.fields(BackendBehaviour):
        value = getattr(default, f.name)
        changed = BackendState.STALLED if isinstance(value, BackendState) else not value
        behaviour = dataclasses.replace(default, **{f.name: changed})
        wire = json.loads(json.dumps(behaviour.to_json()))
        assert set(wire) == {g.name for g in dataclasses.fields(BackendBehaviour)}
        assert BackendBehaviour.from_json(wire) == behaviour, f.name
    assert BackendBehaviour.from_json({}) == default  # a missing field takes its default


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ({"state": "asleep"}, "state: 'asleep' is not one of"),
        ({"root_redirect": "yes"}, "root_redirect: expected bool"),
        ({"auth_broken": 1}, "auth_broken: expected bool"),
        ({"transports": ["polling"]}, r"unknown field\(s\) transports"),
    ],
)
def test_behaviour_json_that_is_not_ours_is_a_config_error(data: dict[str, object], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        BackendBehaviour.from_json(data)


# --- the README's table -----------------------------------------------------------------------


def test_readme_holds_exactly_the_generated_table() -> None:
    text = README.read_text(encoding="utf-8")
    begin = text.index(scenarios.TABLE_BEGIN) + len(scenarios.TABLE_BEGIN) + 1
    end = text.index(scenarios.TABLE_END)
    assert text[begin:end] == scenarios.markdown_table(), "README is stale: run `make scenario-table`"
    assert scenarios.replace_table(text, scenarios.markdown_table()) == text


def test_markdown_table_has_a_row_per_scenario_from_its_entry() -> None:
    rows = scenarios.markdown_table().splitlines()[2:]
    assert len(rows) == len(SCENARIOS)
    for row, scenario in zip(rows, SCENARIOS.values(), strict=True):
        cells = [c.strip() for c in row.strip("|").split(" | ")]
        assert cells[0].startswith(f"`{scenario.name}`")
        assert cells[1] == f"{scenario.balancer.kind}, `{scenario.balancer.policy}`"
        assert cells[2] == scenario.description
        assert cells[3].startswith(", ".join(f"`{f}`" for f in scenario.expected_findings))
        for truth in scenario.truth.networks:
            assert all(f"`{f}`" in cells[3] for f in truth.adds)
    assert "`incident` (default)" in rows[list(SCENARIOS).index(DEFAULT_SCENARIO)]


def test_replace_table_rewrites_between_the_markers_only(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(f"before\n{scenarios.TABLE_BEGIN}\n| old |\n{scenarios.TABLE_END}\nafter\n")
    assert scenarios.main(["--readme", str(readme)]) == 0
    expected = f"before\n{scenarios.TABLE_BEGIN}\n{scenarios.markdown_table()}{scenarios.TABLE_END}\nafter\n"
    assert readme.read_text() == expected
    with pytest.raises(UsageError, match="markers"):
        scenarios.replace_table("no markers here", "x")


def test_main_prints_the_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert scenarios.main(["--markdown"]) == 0
    assert capsys.readouterr().out == scenarios.markdown_table()
