"""render_caddyfile: the text each scenario's Caddy runs, read site by site."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from kiloscribe_lab.errors import LabStartError
from kiloscribe_lab.lab.caddyfile import READY_PATH, render_caddyfile
from kiloscribe_lab.lab.scenarios import BACKENDS, SCENARIOS, Balancer, BalancerKind, Edge, LbPolicy, Scenario
from tests.unit.lab.samples import PORTS

LAB_DIR = Path("/srv/labs/lab-7")
EXPECTED_POLICY = {
    "healthy": "lb_policy ip_hash",
    "cookie-sticky": "lb_policy cookie lb",
    "incident": "lb_policy round_robin",
    "all-down": "lb_policy round_robin",
    "edge-blocks-websocket": "lb_policy ip_hash",
    "slow-backend": "lb_policy first",
    "auth-broken": "lb_policy ip_hash",
}
SITE_RE = re.compile(r"^https://127\.0\.0\.1:(\d+) \{\n(.*?)^\}\n", re.MULTILINE | re.DOTALL)


def split(text: str) -> tuple[str, dict[int, str]]:
    """The global options block and each site's body, keyed by port."""
    assert text.startswith("{\n")
    global_block = text[: text.index("\n}\n") + 3]
    sites = {int(m[1]): m[2] for m in SITE_RE.finditer(text)}
    return global_block, sites


def render(name: str, lab_dir: Path = LAB_DIR) -> tuple[str, dict[int, str]]:
    return split(render_caddyfile(SCENARIOS[name], PORTS, lab_dir))


def lines(body: str) -> list[str]:
    return [line.strip() for line in body.splitlines()]


def test_policy_table_covers_every_scenario() -> None:
    assert set(EXPECTED_POLICY) == set(SCENARIOS)


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_lb_runs_the_scenarios_policy_over_every_backend(name: str) -> None:
    _, sites = render(name)
    lb = sites[PORTS.lb]
    assert [line for line in lines(lb) if line.startswith("lb_policy")] == [EXPECTED_POLICY[name]]
    # Down backends stay listed: Caddy answers 502 for them, as production did.
    upstreams = " ".join(f"127.0.0.1:{PORTS.backend[n]}" for n in BACKENDS)
    assert f"reverse_proxy {upstreams} {{" in lines(lb)


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_every_site_has_internal_tls_and_the_ready_path(name: str) -> None:
    _, sites = render(name)
    assert set(sites) == {PORTS.edge, PORTS.lb, PORTS.api, *PORTS.direct.values()}
    for port, body in sites.items():
        assert "tls internal" in lines(body), port
        assert f"handle {READY_PATH} {{" in lines(body), port


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_edge_blocks_websocket_only_in_its_scenario(name: str) -> None:
    text = render_caddyfile(SCENARIOS[name], PORTS, LAB_DIR)
    _, sites = split(text)
    blocks = name == "edge-blocks-websocket"
    assert ("@websocket" in sites[PORTS.edge]) is blocks
    assert ("handle @websocket {" in lines(sites[PORTS.edge])) is blocks
    assert text.count("@websocket") == (2 if blocks else 0)  # matcher + handle, edge only
    # The edge always proxies on to the LB, and always wears the CDN's fingerprint.
    assert f"reverse_proxy https://127.0.0.1:{PORTS.lb} {{" in lines(sites[PORTS.edge])
    assert "Server cloudflare" in lines(sites[PORTS.edge])
    assert all("cloudflare" not in body for port, body in sites.items() if port != PORTS.edge)


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_global_options_keep_caddy_inside_the_lab(name: str) -> None:
    global_block, _ = render(name)
    options = lines(global_block)
    assert "admin off" in options
    assert "skip_install_trust" in options
    assert "persist_config off" in options
    assert f'storage file_system "{LAB_DIR}/caddy"' in options


def test_storage_path_with_spaces_is_one_token() -> None:
    lab_dir = Path("/home/on call/lab dir")
    global_block, _ = render("healthy", lab_dir)
    assert 'storage file_system "/home/on call/lab dir/caddy"' in lines(global_block)


def test_each_direct_site_proxies_to_its_own_backend_only() -> None:
    _, sites = render("incident")
    for name in BACKENDS:
        body = lines(sites[PORTS.direct[name]])
        assert f"reverse_proxy 127.0.0.1:{PORTS.backend[name]}" in body
        others = [PORTS.backend[n] for n in BACKENDS if n != name]
        assert not any(str(port) in line for line in body for port in others)
        assert f'respond "ready {name}" 200' in body


def test_api_site_prefers_the_first_live_backend() -> None:
    _, sites = render("healthy")
    body = lines(sites[PORTS.api])
    assert "lb_policy first" in body
    assert any(line.startswith("lb_try_duration") for line in body)


def test_rendering_is_pure_and_deterministic() -> None:
    scenario: Scenario = SCENARIOS["incident"]
    first = render_caddyfile(scenario, PORTS, LAB_DIR)
    assert first == render_caddyfile(scenario, PORTS, LAB_DIR)
    assert not LAB_DIR.exists()  # nothing was written


def test_the_edge_matches_upgrades_whatever_their_case() -> None:
    """Caddy's ``header`` matcher is case-sensitive: ``Connection: upgrade`` (Node's built-in
    WebSocket) passed a ``*Upgrade*`` edge. The edge matches as a CDN does, ignoring case."""
    _, sites = render("edge-blocks-websocket")
    edge = lines(sites[PORTS.edge])
    matcher = edge[edge.index("@websocket {") + 1 : edge.index("handle @websocket {") - 1]
    assert matcher == [r"header_regexp Connection (?i)\bupgrade\b", "header_regexp Upgrade (?i)^websocket$"]
    pattern = re.compile(r"(?i)\bupgrade\b")  # Go's RE2 and Python agree on this much
    for value in ("Upgrade", "upgrade", "keep-alive, Upgrade", "UPGRADE"):
        assert pattern.search(value), value
    for value in ("keep-alive", "upgrades", "close"):
        assert not pattern.search(value), value


def test_what_differs_comes_from_the_entry_not_the_name() -> None:
    """Another scenario given the same data renders the same Caddyfile: nothing is keyed by name."""
    healthy = SCENARIOS["healthy"]
    blocking = dataclasses.replace(healthy, edge=Edge(blocks_websocket=True))
    assert render_caddyfile(blocking, PORTS, LAB_DIR) == render_caddyfile(
        SCENARIOS["edge-blocks-websocket"], PORTS, LAB_DIR
    )
    first = dataclasses.replace(healthy, balancer=Balancer(policy=LbPolicy.FIRST))
    _, sites = split(render_caddyfile(first, PORTS, LAB_DIR))
    assert "lb_policy first" in lines(sites[PORTS.lb])


@pytest.mark.parametrize("kind", [BalancerKind.NGINX, BalancerKind.HAPROXY])
def test_a_balancer_not_implemented_yet_fails_before_anything_starts(kind: BalancerKind) -> None:
    scenario = dataclasses.replace(SCENARIOS["healthy"], balancer=Balancer(kind=kind))
    with pytest.raises(LabStartError, match=f"the {kind} balancer is not implemented yet"):
        render_caddyfile(scenario, PORTS, LAB_DIR)
