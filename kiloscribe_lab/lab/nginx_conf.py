"""Render ``nginx.conf``: the balancer tier as nginx, when a scenario's balancer is nginx.

Pure: the scenario's entry, the ports and the lab directory in, config text out. nginx
terminates TLS on the balancer's port with the lab's certificate for ``lb`` and speaks plain
HTTP to the backends. The ``http`` block is what a production nginx in front of Socket.IO
servers has, so an engineer can diff it against theirs; the lines above it keep nginx in the
foreground with every file it writes inside the lab directory (``nginx -e stderr -p <lab>/nginx
-c <lab>/nginx.conf``: ``-e`` keeps even its start-up errors away from /var/log).
"""

from __future__ import annotations

from pathlib import Path

from kiloscribe_lab.lab import pki
from kiloscribe_lab.lab.caddyfile import READY_PATH
from kiloscribe_lab.lab.ports import LOOPBACK, LabPorts
from kiloscribe_lab.lab.scenarios import BACKENDS, Balancer, LbPolicy, Scenario

FILE = "nginx.conf"
FOLDER = "nginx"  # its prefix: pid file and temp paths
TEMP_PATHS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")


def prefix(lab_dir: Path) -> Path:
    return lab_dir / FOLDER


def _quoted(path: Path) -> str:
    return '"' + str(path).replace("\\", "\\\\").replace('"', '\\"') + '"'


def _duration(seconds: float) -> str:
    return f"{round(seconds * 1000)}ms"


def _indent(depth: int, lines: list[str]) -> list[str]:
    return [("    " * depth + line) if line else line for line in lines]


def _upstream(balancer: Balancer, ports: LabPorts) -> list[str]:
    lines = []
    if balancer.policy is LbPolicy.IP_HASH:
        lines.append("# Sticky: a client's polls and its upgrade land on the backend that holds its sid.")
        lines.append("hash $remote_addr consistent;")
    elif balancer.policy is LbPolicy.FIRST:
        lines.append("# The first server takes everything; the others only when it fails.")
    for i, name in enumerate(BACKENDS):
        backup = " backup" if balancer.policy is LbPolicy.FIRST and i else ""
        lines.append(f"server {LOOPBACK}:{ports.backend[name]}{backup};  # {name}")
    return ["upstream socketio {", *_indent(1, lines), "}"]


def _location(balancer: Balancer) -> list[str]:
    lines = ["proxy_pass http://socketio;"]
    if balancer.forwards_upgrade:
        lines += [
            "proxy_http_version 1.1;",
            "proxy_set_header Upgrade $http_upgrade;",
            "proxy_set_header Connection $connection_upgrade;",
        ]
    else:
        lines += [
            "# No proxy_http_version 1.1, no Upgrade/Connection headers: the WebSocket request",
            "# reaches the backend as a plain GET (HTTP/1.0, hop-by-hop headers dropped).",
        ]
    lines += [
        "proxy_set_header Host $host;",
        "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
        "proxy_set_header X-Forwarded-Proto $scheme;",
    ]
    if balancer.idle_timeout_s is None:
        lines.append("# nginx's default 60 s read/send timeouts exceed Socket.IO's 25 s heartbeat.")
    else:
        timeout = _duration(balancer.idle_timeout_s)
        lines += [
            "# A WebSocket silent this long is cut. A long-poll's GET is retried on the next server",
            "# (proxy_next_upstream error timeout, the default): 400 for a sid it does not know.",
            f"proxy_read_timeout {timeout};",
            f"proxy_send_timeout {timeout};",
        ]
    return ["location / {", *_indent(1, lines), "}"]


def render_nginx_conf(scenario: Scenario, ports: LabPorts, lab_dir: Path) -> str:
    balancer = scenario.balancer
    base = prefix(lab_dir)
    files = pki.site_files(lab_dir, "lb")
    cert = files.served("lb" in scenario.tls.incomplete_chain)
    server = [
        f"listen {LOOPBACK}:{ports.lb} ssl http2;",
        f"ssl_certificate {_quoted(cert)};",
        f"ssl_certificate_key {_quoted(files.key)};",
        "# client_max_body_size: nginx's default, 1m."
        if balancer.max_body_bytes is None
        else f"client_max_body_size {balancer.max_body_bytes};",
        f"location = {READY_PATH} {{",
        "    default_type text/plain;",
        '    return 200 "ready lb";',
        "}",
        *_location(balancer),
    ]
    http = [
        "access_log off;",
        *(f"{name}_temp_path {_quoted(base / name)};" for name in TEMP_PATHS),
    ]
    if balancer.forwards_upgrade:
        http += [
            '# "Connection: upgrade" only when the client asked for one; plain requests get "close".',
            "map $http_upgrade $connection_upgrade {",
            "    default upgrade;",
            "    ''      close;",
            "}",
        ]
    http += [*_upstream(balancer, ports), "server {", *_indent(1, server), "}"]
    lines = [
        f"# The load balancer of the kiloscribe-lab scenario {scenario.name!r} (nginx), written by",
        "# `kiloscribe-lab lab up`. The http block is the part to compare with production.",
        "daemon off;",
        # One process: a root master would run its worker as nobody, who cannot write the
        # lab's temp paths (the lab directory is 0700), and large request bodies would fail.
        "master_process off;",
        f"pid {_quoted(base / 'nginx.pid')};",
        "error_log stderr warn;",
        "events {",
        "    worker_connections 1024;",
        "}",
        "http {",
        *_indent(1, http),
        "}",
    ]
    return "\n".join(lines) + "\n"
