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
    LAB_PING_INTERVAL_MS,
    SCENARIOS,
    BackendBehaviour,
    BackendKind,
    BackendSpec,
    BackendState,
    BalancerKind,
    ClientTruth,
    GroundTruth,
    LbPolicy,
    NetworkTruth,
    get_scenario,
    network_ground_truth,
)
from kiloscribe_lab.names import ClientKind, FindingId, NetworkName, Transport, TransportOrder
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


# Issue 11's table: the faults users hit, on the balancers and servers they run (warning/critical).
ISSUE_11_TRUTH = {
    "nginx-no-upgrade": {FindingId.UPGRADE_HEADERS_DROPPED},
    "nginx-round-robin": {FindingId.STICKY_SESSIONS_MISSING},
    "nginx-naive": {FindingId.UPGRADE_HEADERS_DROPPED, FindingId.STICKY_SESSIONS_MISSING},
    "haproxy-healthy": DESIGN_TRUTH["healthy"],  # none above info: as healthy
    "websocket-only": {FindingId.POLLING_DISABLED},
    "inscription-stalls": {FindingId.INSCRIPTION_NOT_ACKNOWLEDGED},
    "cors-restricted": {FindingId.CORS_ORIGIN_REJECTED},
    "wrong-path": {FindingId.NOT_SOCKETIO},
    "tls-incomplete-chain": {FindingId.TLS_PROBLEM},
    "edge-challenge": {FindingId.CDN_CHALLENGE},
    "edge-rate-limited": {FindingId.RATE_LIMITED},
}
# Issue 11: "every scenario, on every balancer it is defined for"; Node where engine.io and
# python-engineio answer differently.
ISSUE_11_BALANCERS = {
    "nginx-no-upgrade": {BalancerKind.NGINX},
    "nginx-round-robin": {BalancerKind.NGINX},
    "nginx-naive": {BalancerKind.NGINX},
    "haproxy-healthy": {BalancerKind.HAPROXY},
    "websocket-only": set(BalancerKind),
    "tls-incomplete-chain": set(BalancerKind),
    "incident": set(BalancerKind),
    "all-down": set(BalancerKind),
}
ON_NODE_TOO = {
    "nginx-no-upgrade",
    "nginx-round-robin",
    "nginx-naive",
    "haproxy-healthy",
    "websocket-only",
    "inscription-stalls",
    "cors-restricted",
    "wrong-path",
}


# Issue 12's: the slow faults, which only --deep's held sessions and large messages show.
ISSUE_12_TRUTH = {
    "proxy-idle-timeout": {FindingId.IDLE_TIMEOUT},
    "small-message-limit": {FindingId.PAYLOAD_TOO_LARGE},
    "body-limit-at-balancer": {FindingId.PAYLOAD_TOO_LARGE},
    "slow-heartbeat": {FindingId.HEARTBEAT_LATE},
}


def test_the_designs_seven_then_issue_11s_and_12s_scenarios() -> None:
    assert list(SCENARIOS)[:7] == list(DESIGN_TRUTH)
    assert set(SCENARIOS) >= set(DESIGN_TRUTH) | set(ISSUE_11_TRUTH) | set(ISSUE_12_TRUTH)
    assert all(name == s.name for name, s in SCENARIOS.items())


@pytest.mark.parametrize("name", sorted(DESIGN_TRUTH) + sorted(ISSUE_11_TRUTH) + sorted(ISSUE_12_TRUTH))
def test_ground_truth_matches_the_design(name: str) -> None:
    findings = SCENARIOS[name].expected_findings
    assert findings == SCENARIOS[name].truth.findings  # one fact, read two ways
    assert set(findings) == {**DESIGN_TRUTH, **ISSUE_11_TRUTH, **ISSUE_12_TRUTH}[name]
    assert len(findings) == len(set(findings))  # no id twice
    assert set(findings) <= DESIGN_FINDING_IDS
    assert all(isinstance(f, FindingId) for f in findings)


@pytest.mark.parametrize("name", sorted(DESIGN_TRUTH) + sorted(ISSUE_11_TRUTH))
def test_the_matrix_each_truth_holds_on(name: str) -> None:
    scenario = SCENARIOS[name]
    assert set(scenario.balancers) == ISSUE_11_BALANCERS.get(name, {scenario.balancer.kind})
    assert scenario.balancers[0] is scenario.balancer.kind  # its own first: what `lab up` runs
    kinds = {BackendKind.PYTHON, BackendKind.NODE} if name in ON_NODE_TOO else {BackendKind.PYTHON}
    assert set(scenario.servers) == kinds
    assert scenario.matrix() == [(b, k) for b in scenario.balancers for k in scenario.servers]
    for balancer in scenario.balancers:  # every kind can run it
        assert scenarios.on_balancer(scenario, balancer).balancer.kind is balancer


def test_a_matrix_that_cannot_be_run_is_refused_when_written() -> None:
    naive = Balancer(BalancerKind.NGINX, forwards_upgrade=False)
    with pytest.raises(ConfigError, match="scenario x on caddy: the caddy balancer cannot do that"):
        scenarios.Scenario("x", "x", GroundTruth(()), balancer=naive, also_on=(BalancerKind.CADDY,))
    with pytest.raises(ConfigError, match="names a kind twice"):
        scenarios.Scenario("x", "x", GroundTruth(()), backend_kinds=(BackendKind.NODE, BackendKind.NODE))
    needs_node = scenarios.Scenario("x", "x", GroundTruth(()), backends=BackendSpec(kind=BackendKind.NODE))
    assert needs_node.servers == (BackendKind.NODE,)


def test_cors_restricted_names_the_origin_it_is_probed_from() -> None:
    cors = SCENARIOS["cors-restricted"]
    allowed = cors.backends.default.cors_origins
    assert allowed == (scenarios.APP_ORIGIN,) and cors.truth.origin == scenarios.FOREIGN_ORIGIN
    assert cors.truth.origin not in allowed
    assert json.loads(json.dumps(cors.to_json()))["origin"] == scenarios.FOREIGN_ORIGIN
    assert all(s.truth.origin is None for n, s in SCENARIOS.items() if n != "cors-restricted")
    with pytest.raises(ConfigError, match="origin must look like"):
        GroundTruth((), origin="evil.example")


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
    # the seven have full chains; tls-incomplete-chain's balancer serves its leaf alone
    assert {n: s.tls.incomplete_chain for n, s in SCENARIOS.items() if s.tls.incomplete_chain} == {
        "tls-incomplete-chain": ("lb",)
    }


def test_edge_json_walks_its_fields() -> None:
    edge = scenarios.Edge(challenge=True, rate_limited=0.25)
    assert edge.to_json() == {"blocks_websocket": False, "challenge": True, "rate_limited": 0.25}
    assert [n for n, s in SCENARIOS.items() if s.edge.challenge] == ["edge-challenge"]
    assert {n: s.edge.rate_limited for n, s in SCENARIOS.items() if s.edge.rate_limited} == {
        "edge-rate-limited": 0.5
    }


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_to_json_is_plain_json(name: str) -> None:
    scenario = SCENARIOS[name]
    data = json.loads(json.dumps(scenario.to_json()))
    assert data["name"] == name
    assert data["lb_policy"] == scenario.balancer.policy.value
    assert data["balancer"] == {
        "kind": scenario.balancer.kind.value,
        "policy": scenario.balancer.policy.value,
        "forwards_upgrade": scenario.balancer.forwards_upgrade,
        "idle_timeout_s": scenario.balancer.idle_timeout_s,
        "max_body_bytes": scenario.balancer.max_body_bytes,
    }
    if name in DESIGN_TRUTH:  # the seven run on Caddy, upgrades forwarded, no idle cut or body limit
        assert (data["balancer"]["kind"], data["balancer"]["forwards_upgrade"]) == ("caddy", True)
        assert (data["balancer"]["idle_timeout_s"], data["balancer"]["max_body_bytes"]) == (None, None)
    assert data["balancers"] == [str(k) for k in scenario.balancers]
    assert data["backend_kinds"] == [str(k) for k in scenario.servers]
    assert data["expected_findings"] == list(scenario.expected_findings)
    assert data["down"] == sorted(scenario.down)
    assert data["stalled"] == sorted(scenario.stalled)
    assert data["description"]
    assert data["edge_blocks_websocket"] is scenario.edge.blocks_websocket
    assert data["edge"] == {
        "blocks_websocket": scenario.edge.blocks_websocket,
        "challenge": scenario.edge.challenge,
        "rate_limited": scenario.edge.rate_limited,
    }
    assert data["tls"] == {"incomplete_chain": list(scenario.tls.incomplete_chain)}
    if name in DESIGN_TRUTH:
        assert data["edge"]["challenge"] is False and data["edge"]["rate_limited"] == 0.0
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


# --- how real clients fare -------------------------------------------------------------------


def test_client_truth_per_transport_order_and_the_sdks_own() -> None:
    ws_first = ClientTruth(TransportOrder.WEBSOCKET_FIRST, connects=True, acked=True)
    polling_first = ClientTruth(TransportOrder.POLLING_FIRST, connects=False)
    assert ws_first.transports == (Transport.WEBSOCKET, Transport.POLLING)
    assert polling_first.transports == (Transport.POLLING, Transport.WEBSOCKET)
    assert ws_first.applies_to(ClientKind.SDK) and not polling_first.applies_to(ClientKind.SDK)
    assert polling_first.applies_to(ClientKind.SOCKETIO_CLIENT)
    only = ClientTruth(TransportOrder.POLLING_FIRST, connects=True, clients=(ClientKind.PYTHON_SOCKETIO,))
    assert not only.applies_to(ClientKind.SOCKETIO_CLIENT)


def test_client_truth_names_each_disagreement() -> None:
    acked = ClientTruth(TransportOrder.WEBSOCKET_FIRST, connects=True, acked=True)
    node = ClientKind.SOCKETIO_CLIENT
    assert acked.disagreements(node, connected=True, acked=True, disconnect=None) == []
    assert acked.disagreements(node, connected=False, acked=None, disconnect=None) == [
        "socket.io-client websocket-first: did not connect"
    ]
    assert acked.disagreements(node, connected=True, acked=False, disconnect=None) == [
        "socket.io-client websocket-first: start-inscription not acked"
    ]
    refused = ClientTruth(TransportOrder.POLLING_FIRST, connects=False)
    assert refused.disagreements(node, connected=True, acked=None, disconnect=None) == [
        "socket.io-client polling-first: connected"
    ]
    cut = ClientTruth(TransportOrder.WEBSOCKET_FIRST, connects=True, disconnect="transport close", hold_s=6)
    assert cut.disagreements(node, connected=True, acked=None, disconnect="transport close") == []
    assert cut.disagreements(node, connected=True, acked=None, disconnect="ping timeout") == [
        "socket.io-client websocket-first: disconnect 'ping timeout', not 'transport close'"
    ]
    # python-socketio words it its own way: any end counts.
    assert cut.disagreements(ClientKind.PYTHON_SOCKETIO, connected=True, acked=None, disconnect="x") == []
    assert cut.disagreements(node, connected=True, acked=None, disconnect=None) == [
        "socket.io-client websocket-first: still connected after 6 s"
    ]
    held = ClientTruth(TransportOrder.WEBSOCKET_FIRST, connects=True, hold_s=6)
    assert held.disagreements(node, connected=True, acked=None, disconnect="transport close") == [
        "socket.io-client websocket-first: disconnected (transport close) within 6 s"
    ]


def test_client_truth_per_backend_origin_and_site() -> None:
    """cors-restricted: a foreign Origin is refused by python-socketio itself, never by engine.io;
    the SDK sends no Origin, so a truth with one is not about it."""
    foreign = ClientTruth(
        TransportOrder.WEBSOCKET_FIRST,
        connects=False,
        origin="https://evil.example",
        backends=(BackendKind.PYTHON,),
    )
    assert foreign.applies_to(ClientKind.SOCKETIO_CLIENT, BackendKind.PYTHON)
    assert not foreign.applies_to(ClientKind.SOCKETIO_CLIENT, BackendKind.NODE)
    assert foreign.applies_to(ClientKind.SOCKETIO_CLIENT)  # any kind
    assert not foreign.applies_to(ClientKind.SDK, BackendKind.PYTHON)
    assert ClientTruth(TransportOrder.POLLING_FIRST, connects=False).site == "edge"
    assert ClientTruth(TransportOrder.POLLING_FIRST, connects=False, site="lb").to_json()["site"] == "lb"
    for bad in ({"site": "api"}, {"site": "cdn"}, {"backends": ()}):
        with pytest.raises(ConfigError, match=r"Socket\.IO sites"):
            ClientTruth(TransportOrder.POLLING_FIRST, connects=False, **bad)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="origin must look like"):
        ClientTruth(TransportOrder.POLLING_FIRST, connects=False, origin="evil")
    cors = SCENARIOS["cors-restricted"].truth.clients
    by_backend = {
        k: [(t.origin, t.connects) for t in cors if t.applies_to(ClientKind.PYTHON_SOCKETIO, k)]
        for k in BackendKind
    }
    # python-socketio's WebSocket sends an Origin of its own (the server's URL): refused there too
    evil = "https://evil.example"
    assert set(by_backend[BackendKind.PYTHON]) == {(None, True), (None, False), (evil, False)}
    assert set(by_backend[BackendKind.NODE]) == {(None, True), ("https://evil.example", True)}


def test_client_truth_is_checked_when_it_is_written() -> None:
    with pytest.raises(ConfigError, match="does not connect"):
        ClientTruth(TransportOrder.WEBSOCKET_FIRST, connects=False, acked=False)
    with pytest.raises(ConfigError, match="give hold_s"):
        ClientTruth(TransportOrder.WEBSOCKET_FIRST, connects=True, disconnect="transport close")


def test_healthy_says_every_client_works_and_the_json_carries_it() -> None:
    truths = SCENARIOS["healthy"].truth.clients
    assert {t.order for t in truths} == set(TransportOrder)
    assert all(t.connects and t.acked for t in truths)
    data = json.loads(json.dumps(SCENARIOS["healthy"].to_json()))
    assert [c["order"] for c in data["clients"]] == [str(t.order) for t in truths]
    assert data["clients"][0]["clients"] == [str(k) for k in ClientKind]
    assert json.loads(json.dumps(SCENARIOS["incident"].to_json()))["clients"] == []


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


# One value away from the default per field that is not a bool (those are flipped).
CHANGED: dict[str, object] = {
    "state": BackendState.STALLED,
    "transports": (Transport.WEBSOCKET,),
    "cors_origins": ("https://app.kiloscribe.test", "http://127.0.0.1:8080"),
    "path": "/ws",
    "ping_interval_ms": 5_000,
    "ping_timeout_ms": 1_000,
    "max_http_buffer_size": 65_536,
    "stall_event_loop_ms": 3_000,
}


def test_every_behaviour_field_survives_json() -> None:
    """A field added to BackendBehaviour reaches the backend with no other change: the JSON
    walks the fields. Each field set away from its default comes back as it went."""
    default = BackendBehaviour()
    for f in dataclasses.fields(BackendBehaviour):
        value = getattr(default, f.name)
        changed = CHANGED.get(f.name, not value)
        assert isinstance(changed, bool) is isinstance(value, bool), f"add {f.name} to CHANGED"
        behaviour = dataclasses.replace(default, **{f.name: changed})
        assert behaviour != default, f.name
        wire = json.loads(json.dumps(behaviour.to_json()))
        assert set(wire) == {g.name for g in dataclasses.fields(BackendBehaviour)}
        assert BackendBehaviour.from_json(wire) == behaviour, f.name
    assert BackendBehaviour.from_json({}) == default  # a missing field takes its default
    everything = dataclasses.replace(default, **CHANGED)  # all at once, too
    assert BackendBehaviour.from_json(json.loads(json.dumps(everything.to_json()))) == everything


def test_the_defaults_are_engineios_but_a_two_second_heartbeat() -> None:
    default = BackendBehaviour()
    assert default.transports == (Transport.POLLING, Transport.WEBSOCKET)
    # The lab beats every 2 s (a --deep hold sees a heartbeat in 2.5 s); engine.io's 25 s is kept.
    assert (scenarios.PING_INTERVAL_MS, LAB_PING_INTERVAL_MS) == (25_000, 2_000)
    assert (default.path, default.ping_interval_ms, default.ping_timeout_ms) == ("/socket.io", 2_000, 20_000)
    assert default.max_http_buffer_size == 1_000_000 and default.acks_inscription is True
    assert default.cors_origins is None and default.stall_event_loop_ms == 0


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ({"state": "asleep"}, "state: 'asleep' is not one of"),
        ({"root_redirect": "yes"}, "root_redirect: expected bool"),
        ({"auth_broken": 1}, "auth_broken: expected bool"),
        ({"websocket_only": True}, r"unknown field\(s\) websocket_only"),
        ({"transports": ["carrier-pigeon"]}, "transports: 'carrier-pigeon' is not one of"),
        ({"transports": "websocket"}, "transports: expected"),
        ({"transports": []}, "each transport at most once"),
        ({"transports": ["websocket", "websocket"]}, "each transport at most once"),
        ({"acks_inscription": None}, "acks_inscription: expected bool"),
        ({"cors_origins": []}, "cors_origins must be origins"),
        ({"cors_origins": ["https://app.example/path"]}, "cors_origins must be origins"),
        ({"cors_origins": "https://app.example"}, "cors_origins: expected"),
        ({"path": "ws"}, "path must look like /socket.io"),
        ({"path": "/ws/"}, "path must look like /socket.io"),
        ({"path": "/ws?x=1"}, "path must look like /socket.io"),
        ({"path": "/"}, "path must look like /socket.io"),
        ({"ping_interval_ms": 2500}, "whole number of seconds"),
        ({"ping_timeout_ms": 0}, "whole number of seconds"),
        ({"ping_interval_ms": 2.0}, "ping_interval_ms: expected int"),
        ({"max_http_buffer_size": 0}, "max_http_buffer_size must be positive"),
        ({"stall_event_loop_ms": -1}, "stall_event_loop_ms must be 0 or more"),
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
        diagnosis = cells[3]
        if scenario.truth.origin is not None:  # the truth holds for a probe on that origin only
            prefix = f"probed with `--origin {scenario.truth.origin}`: "
            assert diagnosis.startswith(prefix)
            diagnosis = diagnosis.removeprefix(prefix)
        assert diagnosis.startswith(", ".join(f"`{f}`" for f in scenario.expected_findings))
        for truth in scenario.truth.networks:
            assert all(f"`{f}`" in cells[3] for f in truth.adds)
        balancers, servers = cells[4].split(" × ")
        assert balancers.split(", ") == [str(k) for k in scenario.balancers]
        assert servers.split(", ") == [str(k) for k in scenario.servers]
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
