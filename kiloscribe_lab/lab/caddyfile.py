"""Render the lab's Caddyfile: edge (CDN stand-in), load balancer, API and one site per backend.

Pure: a Scenario's entry and the ports in, Caddyfile text out; what differs between scenarios
is read from the entry (``scenario.edge``, ``scenario.balancer``), never from its name. The
file is written into the lab directory so an engineer can read it, compare it with
production and try a fix.
"""

from __future__ import annotations

from pathlib import Path

from kiloscribe_lab.errors import LabStartError
from kiloscribe_lab.lab.ports import LOOPBACK, LabPorts
from kiloscribe_lab.lab.scenarios import BACKENDS, BalancerKind, Edge, LbPolicy, Scenario

READY_PATH = "/.well-known/kiloscribe-lab/ready"
FILE = "Caddyfile"


def _site(port: int, role: str, body: str) -> str:
    return (
        f"https://{LOOPBACK}:{port} {{\n"
        f"\ttls internal\n"
        f"\thandle {READY_PATH} {{\n"
        f'\t\trespond "ready {role}" 200\n'
        f"\t}}\n"
        f"{body}"
        f"}}\n"
    )


def _upstreams(ports: LabPorts, names: tuple[str, ...] = BACKENDS) -> str:
    return " ".join(f"{LOOPBACK}:{ports.backend[n]}" for n in names)


def _lb_policy(policy: LbPolicy) -> str:
    if policy is LbPolicy.COOKIE:
        # Caddy signs nothing without a secret; a fixed name lets tests look for it.
        return "lb_policy cookie lb"
    return f"lb_policy {policy.value}"


def _quoted(path: Path) -> str:
    """A path as one Caddyfile token, whatever spaces it holds."""
    return '"' + str(path).replace('"', '\\"') + '"'


def _websocket_block(edge: Edge) -> str:
    """Upgrade requests, as a CDN with WebSockets switched off sees them. Header values are
    matched without regard to case, as a CDN does: Node's built-in WebSocket sends
    ``Connection: upgrade``, Firefox ``Connection: keep-alive, Upgrade``."""
    if not edge.blocks_websocket:
        return ""
    return (
        "\t@websocket {\n"
        "\t\theader_regexp Connection (?i)\\bupgrade\\b\n"
        "\t\theader_regexp Upgrade (?i)^websocket$\n"
        "\t}\n"
        "\thandle @websocket {\n"
        '\t\trespond "WebSocket connections are disabled for this zone" 403\n'
        "\t}\n"
    )


def render_caddyfile(scenario: Scenario, ports: LabPorts, lab_dir: Path) -> str:
    if scenario.balancer.kind is not BalancerKind.CADDY:
        # nginx and HAProxy are modelled, not yet run (issue 11): say so before anything starts.
        raise LabStartError(
            f"scenario {scenario.name}: the {scenario.balancer.kind} balancer is not implemented yet"
        )
    storage = lab_dir / "caddy"
    global_options = (
        "{\n"
        "\tadmin off\n"
        "\tpersist_config off\n"
        "\tskip_install_trust\n"
        "\tlocal_certs\n"
        "\tauto_https disable_redirects\n"
        # SIGTERM would otherwise wait for every open long-poll and WebSocket to finish.
        "\tgrace_period 250ms\n"
        f"\tstorage file_system {_quoted(storage)}\n"
        "\tservers {\n"
        # No HTTP/3: it would bind UDP ports we did not reserve; h1 and h2 are what we test.
        "\t\tprotocols h1 h2\n"
        "\t}\n"
        "\tlog default {\n"
        "\t\tlevel WARN\n"
        # Caddy's error log records the request's headers: never the key or a session.
        "\t\tformat filter {\n"
        "\t\t\trequest>headers>X-Api-Key replace REDACTED\n"
        "\t\t\trequest>headers>Cookie replace REDACTED\n"
        "\t\t\trequest>headers>Authorization replace REDACTED\n"
        "\t\t}\n"
        "\t}\n"
        "}\n"
    )

    edge = _site(
        ports.edge,
        "edge",
        "\t# The CDN's fingerprint: Cloudflare answers with these on every response.\n"
        "\theader {\n"
        "\t\tServer cloudflare\n"
        '\t\tcf-ray "{http.request.uuid}"\n'
        "\t\tcf-cache-status BYPASS\n"
        "\t\tdefer\n"
        "\t}\n"
        f"{_websocket_block(scenario.edge)}"
        "\thandle {\n"
        f"\t\treverse_proxy https://{LOOPBACK}:{ports.lb} {{\n"
        "\t\t\ttransport http {\n"
        # Like a CDN in "Full" (not strict) TLS mode: it encrypts to the origin but does
        # not verify the origin's certificate.
        "\t\t\t\ttls_insecure_skip_verify\n"
        "\t\t\t}\n"
        "\t\t}\n"
        "\t}\n",
    )
    lb = _site(
        ports.lb,
        "lb",
        "\thandle {\n"
        f"\t\treverse_proxy {_upstreams(ports)} {{\n"
        f"\t\t\t{_lb_policy(scenario.balancer.policy)}\n"
        "\t\t}\n"
        "\t}\n",
    )
    # The REST API host: always served by the first backend that answers, as a separate
    # API fleet would be; dial failures move on to the next backend.
    api = _site(
        ports.api,
        "api",
        "\thandle {\n"
        f"\t\treverse_proxy {_upstreams(ports)} {{\n"
        "\t\t\tlb_policy first\n"
        "\t\t\tlb_try_duration 2s\n"
        "\t\t\tfail_duration 30s\n"
        "\t\t}\n"
        "\t}\n",
    )
    direct = [
        _site(
            ports.direct[name],
            name,
            f"\thandle {{\n\t\treverse_proxy {_upstreams(ports, (name,))}\n\t}}\n",
        )
        for name in BACKENDS
    ]
    return "\n".join([global_options, edge, lb, api, *direct])
