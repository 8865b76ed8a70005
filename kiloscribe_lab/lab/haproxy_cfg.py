"""Render ``haproxy.cfg``: the balancer tier as HAProxy, when a scenario's balancer is HAProxy.

Pure (``write_bundle`` aside): the scenario's entry, the ports and the lab directory in, config
text out. HAProxy terminates TLS on the balancer's port with the lab's certificate for ``lb``
(one PEM file holding the chain it serves and the key, HAProxy's format: ``write_bundle``) and
speaks plain HTTP to the backends. Run in the foreground, ``haproxy -f <lab>/haproxy.cfg -db``:
no chroot, no user switch, no stats socket, nothing written outside the lab directory.
"""

from __future__ import annotations

import os
from pathlib import Path

from kiloscribe_lab.lab import pki
from kiloscribe_lab.lab.backend_config import HEALTH_PATH
from kiloscribe_lab.lab.caddyfile import READY_PATH
from kiloscribe_lab.lab.ports import LOOPBACK, LabPorts
from kiloscribe_lab.lab.scenarios import BACKENDS, Balancer, LbPolicy, Scenario

FILE = "haproxy.cfg"
COOKIE = "lb"  # the stickiness cookie, named as Caddy's is (tests look for it)
BUNDLE = "lb.haproxy.pem"

_BALANCE = {
    LbPolicy.ROUND_ROBIN: ["balance roundrobin"],
    LbPolicy.IP_HASH: ["balance source", "hash-type consistent"],
    LbPolicy.FIRST: ["balance first"],
    LbPolicy.COOKIE: ["balance roundrobin", f"cookie {COOKIE} insert indirect nocache"],
}


def bundle_path(lab_dir: Path) -> Path:
    return pki.folder(lab_dir) / BUNDLE


def _quoted(path: Path) -> str:
    return '"' + str(path).replace("\\", "\\\\").replace('"', '\\"') + '"'


def _duration(seconds: float) -> str:
    return f"{round(seconds * 1000)}ms"


def _timeouts(balancer: Balancer) -> list[str]:
    if balancer.idle_timeout_s is None:
        return [
            # client/server bound the HTTP phase: a long-poll is held up to pingInterval (25 s).
            "timeout client 60s",
            "timeout server 60s",
            # After the 101 only "timeout tunnel" applies: it must exceed pingInterval + pingTimeout.
            "timeout tunnel 1h",
        ]
    timeout = _duration(balancer.idle_timeout_s)
    return [
        "timeout client 60s",
        "# A long-poll waiting longer than this gets HAProxy's 504; a silent WebSocket tunnel is closed.",
        f"timeout server {timeout}",
        f"timeout tunnel {timeout}",
    ]


def _frontend(scenario: Scenario, ports: LabPorts, lab_dir: Path) -> list[str]:
    balancer = scenario.balancer
    up = len(BACKENDS) - len(scenario.down)
    ready = f"{{ path {READY_PATH} }} {{ nbsrv(socketio) eq {up} }}"
    lines = [
        f"bind {LOOPBACK}:{ports.lb} ssl crt {_quoted(bundle_path(lab_dir))} alpn h2,http/1.1",
        "# Ready once the health checks have settled: every backend that runs UP, the others DOWN.",
        f'http-request return status 200 content-type text/plain string "ready lb" if {ready}',
    ]
    if balancer.max_body_bytes is not None:
        too_large = f"{{ req.hdr_val(content-length) gt {balancer.max_body_bytes} }}"
        lines += [
            "# HAProxy has no body-size setting: refuse on the declared length (a chunked body passes).",
            f"http-request deny deny_status 413 if {too_large}",
        ]
    return [*lines, "default_backend socketio"]


# A production HAProxy checks its servers: without checks it keeps sending requests to a dead
# one and retries each (`retries 3`, 1 s apart for a refused connection): a 503 after 3 s. The
# lab checks every second and takes a server out at its first failure, so a lab is ready at once.
# A failure is a refused connection or an error, not a slow answer: without `timeout check` the
# whole check must finish within `inter` (1 s), and on a busy machine every live server failed it
# at once (503 "No server is available"). A dead server still refuses at once.
HEALTH_CHECK = [
    f"option httpchk GET {HEALTH_PATH}",
    "timeout check 3s",
    "default-server check inter 1s fall 1 rise 1",
]


def _backend(balancer: Balancer, ports: LabPorts) -> list[str]:
    cookie = balancer.policy is LbPolicy.COOKIE
    servers = [
        f"server {name} {LOOPBACK}:{ports.backend[name]}" + (f" cookie {name}" if cookie else "")
        for name in BACKENDS
    ]
    return [*_BALANCE[balancer.policy], *HEALTH_CHECK, *servers]


def render_haproxy_cfg(scenario: Scenario, ports: LabPorts, lab_dir: Path) -> str:
    balancer = scenario.balancer
    sections = [
        ("global", ["maxconn 1024", "log stderr format raw local0 warning"]),
        ("defaults", ["mode http", "log global", "timeout connect 5s", *_timeouts(balancer)]),
        ("frontend lb", _frontend(scenario, ports, lab_dir)),
        ("backend socketio", _backend(balancer, ports)),
    ]
    lines = [
        f"# The load balancer of the kiloscribe-lab scenario {scenario.name!r} (HAProxy), written by",
        "# `kiloscribe-lab lab up`. Everything after global is the part to compare with production.",
    ]
    for header, body in sections:
        lines += [header, *(f"    {line}" for line in body)]
    return "\n".join(lines) + "\n"


def write_bundle(lab_dir: Path, scenario: Scenario) -> Path:
    """HAProxy's certificate file: the chain ``lb`` serves, then its key (0600)."""
    files = pki.site_files(lab_dir, "lb")
    served = files.served("lb" in scenario.tls.incomplete_chain)
    path = bundle_path(lab_dir)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(served.read_bytes() + files.key.read_bytes())
    return path
