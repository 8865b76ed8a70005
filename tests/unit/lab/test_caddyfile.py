"""render_caddyfile: the text each scenario's Caddy runs, read site by site."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from kiloscribe_lab.errors import ConfigError
from kiloscribe_lab.lab.caddyfile import CHALLENGE_PAGE, READY_PATH, RETRY_AFTER_S, render_caddyfile
from kiloscribe_lab.lab.scenarios import (
    BACKENDS,
    SCENARIOS,
    SITES,
    Balancer,
    BalancerKind,
    Edge,
    LbPolicy,
    Scenario,
    Tls,
    on_balancer,
)
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
    "small-message-limit": "lb_policy ip_hash",
    "slow-heartbeat": "lb_policy first",
    "websocket-only": "lb_policy ip_hash",
    "inscription-stalls": "lb_policy ip_hash",
    "cors-restricted": "lb_policy ip_hash",
    "wrong-path": "lb_policy ip_hash",
    "tls-incomplete-chain": "lb_policy ip_hash",
    "edge-challenge": "lb_policy ip_hash",
    "edge-rate-limited": "lb_policy ip_hash",
}
# The scenarios whose ground truth holds with Caddy as the balancer, each rendered so.
ON_CADDY = {
    n: on_balancer(s, BalancerKind.CADDY) for n, s in SCENARIOS.items() if BalancerKind.CADDY in s.balancers
}
SITE_RE = re.compile(r"^https://127\.0\.0\.1:(\d+) \{\n(.*?)^\}\n", re.MULTILINE | re.DOTALL)


def split(text: str) -> tuple[str, dict[int, str]]:
    """The global options block and each site's body, keyed by port."""
    assert text.startswith("{\n")
    global_block = text[: text.index("\n}\n") + 3]
    sites = {int(m[1]): m[2] for m in SITE_RE.finditer(text)}
    return global_block, sites


def render(name: str, lab_dir: Path = LAB_DIR) -> tuple[str, dict[int, str]]:
    return split(render_caddyfile(ON_CADDY.get(name) or SCENARIOS[name], PORTS, lab_dir))


def lines(body: str) -> list[str]:
    return [line.strip() for line in body.splitlines()]


def test_policy_table_covers_every_scenario_caddy_balances() -> None:
    assert set(EXPECTED_POLICY) == set(ON_CADDY)
    assert set(SCENARIOS) - set(ON_CADDY) == {
        "nginx-no-upgrade",
        "nginx-round-robin",
        "nginx-naive",
        "haproxy-healthy",
        "proxy-idle-timeout",
        "body-limit-at-balancer",
    }


@pytest.mark.parametrize("name", sorted(ON_CADDY))
def test_lb_runs_the_scenarios_policy_over_every_backend(name: str) -> None:
    _, sites = render(name)
    lb = sites[PORTS.lb]
    assert [line for line in lines(lb) if line.startswith("lb_policy")] == [EXPECTED_POLICY[name]]
    # Down backends stay listed: Caddy answers 502 for them, as production did.
    upstreams = " ".join(f"127.0.0.1:{PORTS.backend[n]}" for n in BACKENDS)
    assert f"reverse_proxy {upstreams} {{" in lines(lb)


SITE_PORTS = {"edge": PORTS.edge, "lb": PORTS.lb, "api": PORTS.api, **PORTS.direct}


@pytest.mark.parametrize("name", sorted(ON_CADDY))
def test_every_site_serves_its_full_chain_of_the_lab_ca_and_the_ready_path(name: str) -> None:
    _, sites = render(name)
    assert set(sites) == {PORTS.edge, PORTS.lb, PORTS.api, *PORTS.direct.values()}
    assert set(SITE_PORTS) == set(SITES)
    leaf_only = {"lb"} if name == "tls-incomplete-chain" else set()  # its fault: the others serve theirs
    for site, port in SITE_PORTS.items():
        body = lines(sites[port])
        served = "crt" if site in leaf_only else "fullchain.crt"
        # The lab's own CA, not Caddy's: `tls internal` could not serve an incomplete chain.
        assert f'tls "{LAB_DIR}/pki/{site}.{served}" "{LAB_DIR}/pki/{site}.key"' in body, site
        assert "tls internal" not in body
        assert f"handle {READY_PATH} {{" in body, port


def test_a_site_with_an_incomplete_chain_serves_its_leaf_alone() -> None:
    scenario = dataclasses.replace(SCENARIOS["healthy"], tls=Tls(incomplete_chain=("edge", "inscribe-2")))
    _, sites = split(render_caddyfile(scenario, PORTS, LAB_DIR))
    for site, port in SITE_PORTS.items():
        served = "crt" if site in {"edge", "inscribe-2"} else "fullchain.crt"
        assert f'tls "{LAB_DIR}/pki/{site}.{served}" "{LAB_DIR}/pki/{site}.key"' in lines(sites[port]), site


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_edge_blocks_websocket_only_in_its_scenario(name: str) -> None:
    text = render_caddyfile(SCENARIOS[name], PORTS, LAB_DIR)
    _, sites = split(text)
    blocks = name == "edge-blocks-websocket"
    challenges = name == "edge-challenge"  # the challenge answers WebSockets too, with its page
    assert ("@websocket" in sites[PORTS.edge]) is (blocks or challenges)
    refusal = 'respond "WebSocket connections are disabled for this zone" 403'
    assert (refusal in lines(sites[PORTS.edge])) is blocks
    if not challenges:
        assert ("handle @websocket {" in lines(sites[PORTS.edge])) is blocks
        assert text.count("@websocket") == (2 if blocks else 0)  # matcher + handle, edge only
    # The edge always proxies on to the LB, and always wears the CDN's fingerprint.
    assert f"reverse_proxy https://127.0.0.1:{PORTS.lb} {{" in lines(sites[PORTS.edge])
    assert "Server cloudflare" in lines(sites[PORTS.edge])
    assert "-Via" in lines(sites[PORTS.edge])  # Cloudflare adds no Via: the edge is not a Caddy balancer
    assert all("cloudflare" not in body for port, body in sites.items() if port != PORTS.edge)


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_global_options_keep_caddy_inside_the_lab(name: str) -> None:
    global_block, _ = render(name)
    options = lines(global_block)
    assert "admin off" in options
    assert "skip_install_trust" in options
    assert "persist_config off" in options
    assert f'storage file_system "{LAB_DIR}/caddy"' in options
    assert "default_bind 127.0.0.1" in options  # loopback only, whatever the site addresses say
    assert "default_sni 127.0.0.1" in options  # each site its own leaf, though clients send no SNI


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
def test_another_balancer_takes_the_lb_site_and_the_edge_still_proxies_to_it(kind: BalancerKind) -> None:
    scenario = dataclasses.replace(SCENARIOS["healthy"], balancer=Balancer(kind=kind))
    _, sites = split(render_caddyfile(scenario, PORTS, LAB_DIR))
    assert set(sites) == {PORTS.edge, PORTS.api, *PORTS.direct.values()}  # nginx or HAProxy has lb
    assert f"reverse_proxy https://127.0.0.1:{PORTS.lb} {{" in lines(sites[PORTS.edge])
    assert all("lb_policy ip_hash" not in body for body in sites.values())


# --- the balancer's settings, when Caddy is the balancer ------------------------------------------


def lb_lines(balancer: Balancer) -> list[str]:
    scenario = dataclasses.replace(SCENARIOS["healthy"], balancer=balancer)
    _, sites = split(render_caddyfile(scenario, PORTS, LAB_DIR))
    return lines(sites[PORTS.lb])


def test_caddys_idle_cut_is_its_transports_read_and_write_timeout() -> None:
    body = lb_lines(Balancer(idle_timeout_s=4.5))
    transport = body[body.index("transport http {") :]
    assert transport[:4] == ["transport http {", "read_timeout 4500ms", "write_timeout 4500ms", "}"]
    assert not any("timeout" in line for line in lb_lines(Balancer()))


def test_caddys_body_limit_is_request_body_max_size() -> None:
    body = lb_lines(Balancer(max_body_bytes=65536))
    assert body[body.index("request_body {") + 1] == "max_size 65536"
    # before the proxy, in the same handle: the limit applies to what is proxied
    assert body.index("request_body {") < body.index(next(x for x in body if x.startswith("reverse_proxy")))
    assert "request_body {" not in lb_lines(Balancer())


def test_caddy_cannot_drop_upgrades() -> None:
    with pytest.raises(ConfigError, match="caddy forwards WebSocket upgrades by itself"):
        Balancer(forwards_upgrade=False)


# --- the edge's behaviours ---------------------------------------------------------------------


def edge_lines(edge: Edge) -> tuple[str, list[str]]:
    text = render_caddyfile(dataclasses.replace(SCENARIOS["healthy"], edge=edge), PORTS, LAB_DIR)
    return text, lines(split(text)[1][PORTS.edge])


def test_the_challenge_answers_engineio_and_websocket_requests_with_cloudflares_page() -> None:
    text, edge = edge_lines(Edge(challenge=True))
    assert "@engineio query EIO=*" in edge  # polling and WebSocket both carry EIO=
    assert "header_regexp Upgrade (?i)^websocket$" in edge  # any WebSocket, whatever its path
    handles = [i for i, line in enumerate(edge) if line in ("handle @websocket {", "handle @engineio {")]
    assert len(handles) == 2
    assert all(edge[i + 1] == "import cdn_challenge" for i in handles)
    # The answer, once, as a snippet: 403, cf-mitigated, the interstitial, never cached.
    snippet = lines(
        text[text.index("(cdn_challenge) {") : text.index("}\n", text.index("(cdn_challenge) {"))]
    )
    assert "header cf-mitigated challenge" in snippet
    assert f"respond `{CHALLENGE_PAGE}` 403" in snippet
    assert any(line.startswith("header Cache-Control") and "no-store" in line for line in snippet)
    # Before the proxy (other requests pass), and the CDN's fingerprint stays on every answer.
    assert max(handles) < edge.index("handle {")
    assert "Server cloudflare" in edge
    assert "cdn_challenge" not in render_caddyfile(SCENARIOS["healthy"], PORTS, LAB_DIR)


@pytest.mark.parametrize(("share", "digits"), [(1 / 16, "0"), (0.5, "01234567"), (1.0, "0123456789abcdef")])
def test_the_rate_limit_draws_its_share_of_polling_requests_from_the_request_uuid(
    share: float, digits: str
) -> None:
    _, edge = edge_lines(Edge(rate_limited=share))
    matcher = edge[edge.index("@rate_limited {") + 1 : edge.index("@rate_limited {") + 3]
    assert matcher == ["query transport=polling", f"vars_regexp {{http.request.uuid}} ^[{digits}]"]
    handle = edge[edge.index("handle @rate_limited {") :]
    assert handle[1] == f"Retry-After {RETRY_AFTER_S}".join(["header ", ""])
    assert any(line.startswith("respond `") and line.endswith("` 429") for line in handle[:5])
    assert edge.index("handle @rate_limited {") < edge.index("handle {")
    # A UUID's first hex digit is uniform: the matched digits are the share.
    assert len(digits) / 16 == share


def test_edge_settings_out_of_range_are_refused() -> None:
    for share in (-0.1, 1.5, 0.3):
        with pytest.raises(ConfigError, match="multiple of 1/16"):
            Edge(rate_limited=share)
