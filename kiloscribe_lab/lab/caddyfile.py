"""Render the lab's Caddyfile: edge (CDN stand-in), load balancer, API and one site per backend.

Pure: a Scenario's entry, the ports and the lab directory in, Caddyfile text out; what differs
between scenarios is read from the entry (``scenario.edge``, ``scenario.balancer``,
``scenario.tls``), never from its name. The file is written into the lab directory so an
engineer can read it, compare it with production and try a fix. When the balancer tier is
nginx or HAProxy, Caddy serves every site but the balancer's (``nginx_conf``, ``haproxy_cfg``).

Every site serves a certificate of the lab's own CA (``pki``): Caddy's ``tls internal`` would
leave no way to serve an incomplete chain.
"""

from __future__ import annotations

from pathlib import Path

from kiloscribe_lab.lab import pki
from kiloscribe_lab.lab.ports import LOOPBACK, LabPorts
from kiloscribe_lab.lab.scenarios import (
    BACKENDS,
    RATE_LIMIT_STEPS,
    Balancer,
    BalancerKind,
    Edge,
    LbPolicy,
    Scenario,
)

READY_PATH = "/.well-known/kiloscribe-lab/ready"
FILE = "Caddyfile"
CHALLENGE_SNIPPET = "cdn_challenge"
RETRY_AFTER_S = 1  # what the edge's 429s ask a client to wait
# Cloudflare's managed-challenge interstitial, as a client that runs no JavaScript receives it.
CHALLENGE_PAGE = (
    '<!DOCTYPE html><html lang="en-US"><head><title>Just a moment...</title></head>'
    "<body><noscript>Enable JavaScript and cookies to continue</noscript></body></html>"
)
RATE_LIMIT_PAGE = (
    "<!DOCTYPE html><html><head><title>Error 1015: You are being rate limited</title></head>"
    "<body><h1>Error 1015</h1><p>You are being rate limited.</p></body></html>"
)


def _site(port: int, role: str, body: str, scenario: Scenario, lab_dir: Path) -> str:
    files = pki.site_files(lab_dir, role)
    cert = files.served(role in scenario.tls.incomplete_chain)
    return (
        f"https://{LOOPBACK}:{port} {{\n"
        f"\ttls {_quoted(cert)} {_quoted(files.key)}\n"
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


def _raw(text: str) -> str:
    """``text`` as one Caddyfile token that keeps its quotes (backticks delimit it)."""
    return f"`{text}`"


# Upgrade requests, as a CDN sees them. Header values are matched without regard to case, as a
# CDN does: Node's built-in WebSocket sends ``Connection: upgrade``, Firefox ``keep-alive, Upgrade``.
_WEBSOCKET_MATCHER = (
    "\t@websocket {\n"
    "\t\theader_regexp Connection (?i)\\bupgrade\\b\n"
    "\t\theader_regexp Upgrade (?i)^websocket$\n"
    "\t}\n"
)


def _edge_blocks(edge: Edge) -> str:
    """The edge's refusals, in the order a CDN applies them: WebSockets off for the zone, a
    challenge for Socket.IO requests, then the rate limit on polling."""
    blocks = []
    if edge.blocks_websocket or edge.challenge:
        blocks.append(_WEBSOCKET_MATCHER)
    if edge.blocks_websocket:
        blocks.append(
            '\thandle @websocket {\n\t\trespond "WebSocket connections are disabled for this zone" 403\n\t}\n'
        )
    if edge.challenge:
        # Every Engine.IO request (both transports carry EIO=) and every WebSocket upgrade.
        blocks.append("\t@engineio query EIO=*\n")
        for matcher in ("@websocket", "@engineio"):
            blocks.append(f"\thandle {matcher} {{\n\t\timport {CHALLENGE_SNIPPET}\n\t}}\n")
    if edge.rate_limited:
        # Caddy keeps no counter: the request's random UUID draws the share (its first hex digit).
        digits = "0123456789abcdef"[: round(edge.rate_limited * RATE_LIMIT_STEPS)]
        blocks.append(
            "\t@rate_limited {\n"
            "\t\tquery transport=polling\n"
            f"\t\tvars_regexp {{http.request.uuid}} ^[{digits}]\n"
            "\t}\n"
            "\thandle @rate_limited {\n"
            f"\t\theader Retry-After {RETRY_AFTER_S}\n"
            '\t\theader Content-Type "text/html; charset=UTF-8"\n'
            f"\t\trespond {_raw(RATE_LIMIT_PAGE)} 429\n"
            "\t}\n"
        )
    return "".join(blocks)


def _challenge_snippet(edge: Edge) -> str:
    """The challenge answer, once, for the edge's two challenged kinds of request."""
    if not edge.challenge:
        return ""
    return (
        f"({CHALLENGE_SNIPPET}) {{\n"
        "\theader cf-mitigated challenge\n"
        '\theader Cache-Control "private, max-age=0, no-store, no-cache, must-revalidate"\n'
        '\theader Content-Type "text/html; charset=UTF-8"\n'
        f"\trespond {_raw(CHALLENGE_PAGE)} 403\n"
        "}\n"
    )


def _lb_handle(balancer: Balancer, upstreams: str) -> str:
    """The balancer's proxy: its policy, and the idle cut and body limit when it has them."""
    lines = []
    if balancer.max_body_bytes is not None:
        # Caddy answers a body over max_size with 413 once the proxy reads past it.
        lines += ["\t\trequest_body {", f"\t\t\tmax_size {balancer.max_body_bytes}", "\t\t}"]
    lines += [f"\t\treverse_proxy {upstreams} {{", f"\t\t\t{_lb_policy(balancer.policy)}"]
    if balancer.idle_timeout_s is not None:
        # A read or write to the backend that waits this long fails: an idle WebSocket is cut
        # (no close frame); a waiting long-poll gets an empty 504, after twice this (measured,
        # Caddy 2.11.7). Caddy has no idle setting of its own; stream_timeout is a lifetime.
        timeout = f"{round(balancer.idle_timeout_s * 1000)}ms"
        lines += [
            "\t\t\ttransport http {",
            f"\t\t\t\tread_timeout {timeout}",
            f"\t\t\t\twrite_timeout {timeout}",
            "\t\t\t}",
        ]
    lines += ["\t\t}"]
    return "\thandle {\n" + "".join(line + "\n" for line in lines) + "\t}\n"


def render_caddyfile(scenario: Scenario, ports: LabPorts, lab_dir: Path) -> str:
    storage = lab_dir / "caddy"
    global_options = (
        "{\n"
        "\tadmin off\n"
        "\tpersist_config off\n"
        "\tskip_install_trust\n"
        "\tlocal_certs\n"
        "\tauto_https disable_redirects\n"
        # Sites named https://127.0.0.1:P still listen on every interface unless told.
        f"\tdefault_bind {LOOPBACK}\n"
        # Clients send no SNI to an IP address: without this, every site would present
        # whichever of the lab's leaves (all for 127.0.0.1) Caddy cached last, not its own.
        f"\tdefault_sni {LOOPBACK}\n"
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
        "\t# The CDN's fingerprint: Cloudflare answers with these on every response, and with no\n"
        "\t# Via of Caddy's (the one its reverse_proxy adds would make the edge read as a Caddy\n"
        "\t# balancer; the balancer's own Via goes too, as Caddy cannot tell the two apart).\n"
        "\theader {\n"
        "\t\tServer cloudflare\n"
        '\t\tcf-ray "{http.request.uuid}"\n'
        "\t\tcf-cache-status BYPASS\n"
        "\t\t-Via\n"
        "\t\tdefer\n"
        "\t}\n"
        f"{_edge_blocks(scenario.edge)}"
        "\thandle {\n"
        f"\t\treverse_proxy https://{LOOPBACK}:{ports.lb} {{\n"
        "\t\t\ttransport http {\n"
        # Like a CDN in "Full" (not strict) TLS mode: it encrypts to the origin but does
        # not verify the origin's certificate.
        "\t\t\t\ttls_insecure_skip_verify\n"
        "\t\t\t}\n"
        "\t\t}\n"
        "\t}\n",
        scenario,
        lab_dir,
    )
    # The balancer tier, when Caddy is it; otherwise nginx or HAProxy listens on ports.lb.
    lb = (
        [_site(ports.lb, "lb", _lb_handle(scenario.balancer, _upstreams(ports)), scenario, lab_dir)]
        if scenario.balancer.kind is BalancerKind.CADDY
        else []
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
        scenario,
        lab_dir,
    )
    direct = [
        _site(
            ports.direct[name],
            name,
            f"\thandle {{\n\t\treverse_proxy {_upstreams(ports, (name,))}\n\t}}\n",
            scenario,
            lab_dir,
        )
        for name in BACKENDS
    ]
    snippets = [_challenge_snippet(scenario.edge)] if scenario.edge.challenge else []
    return "\n".join([global_options, *snippets, edge, *lb, api, *direct])
