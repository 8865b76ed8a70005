"""render_haproxy_cfg: the HAProxy balancer each Balancer setting asks for, section by section."""

from __future__ import annotations

import dataclasses
import stat
from pathlib import Path

import pytest

from kiloscribe_lab.lab import haproxy_cfg, pki
from kiloscribe_lab.lab.caddyfile import READY_PATH
from kiloscribe_lab.lab.scenarios import BACKENDS, SCENARIOS, Balancer, BalancerKind, LbPolicy, Tls
from tests.unit.lab.samples import PORTS

LAB_DIR = Path("/srv/labs/on call")
HAPROXY = BalancerKind.HAPROXY


def render(balancer: Balancer | None = None) -> str:
    scenario = dataclasses.replace(SCENARIOS["healthy"], balancer=balancer or Balancer(kind=HAPROXY))
    return haproxy_cfg.render_haproxy_cfg(scenario, PORTS, LAB_DIR)


def sections(text: str) -> dict[str, list[str]]:
    """Each section's directives (comments left out), by its header line."""
    found: dict[str, list[str]] = {}
    current = ""
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        if not line.startswith(" "):
            current = line
            found[current] = []
        elif not line.strip().startswith("#"):
            found[current].append(line.strip())
    return found


def test_foreground_sections_and_nothing_outside_the_lab() -> None:
    s = sections(render())
    assert list(s) == ["global", "defaults", "frontend lb", "backend socketio"]
    # no chroot, user switch, daemon mode or stats socket: nothing outside the lab directory
    assert not [d for d in s["global"] if d.split()[0] in {"chroot", "user", "group", "daemon", "stats"}]
    assert "mode http" in s["defaults"]


def test_tls_on_the_balancers_port_from_one_bundle_and_the_ready_path() -> None:
    frontend = sections(render())["frontend lb"]
    bundle = f'"{LAB_DIR}/pki/lb.haproxy.pem"'
    assert frontend[0] == f"bind 127.0.0.1:{PORTS.lb} ssl crt {bundle} alpn h2,http/1.1"
    # ready once the health checks have settled: every backend that runs is UP
    assert frontend[1] == (
        'http-request return status 200 content-type text/plain string "ready lb" '
        f"if {{ path {READY_PATH} }} {{ nbsrv(socketio) eq 3 }}"
    )
    assert frontend[-1] == "default_backend socketio"
    incident = dataclasses.replace(SCENARIOS["incident"], balancer=Balancer(HAPROXY, LbPolicy.ROUND_ROBIN))
    frontend = sections(haproxy_cfg.render_haproxy_cfg(incident, PORTS, LAB_DIR))["frontend lb"]
    assert frontend[1].endswith("{ nbsrv(socketio) eq 2 }")  # inscribe-2 is down


@pytest.mark.parametrize(
    ("policy", "balance"),
    [
        (LbPolicy.ROUND_ROBIN, ["balance roundrobin"]),
        (LbPolicy.IP_HASH, ["balance source", "hash-type consistent"]),
        (LbPolicy.FIRST, ["balance first"]),
        (LbPolicy.COOKIE, ["balance roundrobin", "cookie lb insert indirect nocache"]),
    ],
)
def test_each_policy_is_haproxys_own(policy: LbPolicy, balance: list[str]) -> None:
    backend = sections(render(Balancer(HAPROXY, policy)))["backend socketio"]
    cookie = policy is LbPolicy.COOKIE
    servers = [
        f"server {n} 127.0.0.1:{PORTS.backend[n]}" + (f" cookie {n}" if cookie else "") for n in BACKENDS
    ]
    checks = [
        "option httpchk GET /api/health",
        "timeout check 3s",
        "default-server check inter 1s fall 1 rise 1",
    ]
    assert backend == [*balance, *checks, *servers]


def test_timeouts_of_a_working_deployment_and_an_idle_cut() -> None:
    default = sections(render())["defaults"]
    assert {"timeout client 60s", "timeout server 60s", "timeout tunnel 1h"} <= set(default)
    cut = sections(render(Balancer(HAPROXY, idle_timeout_s=4)))["defaults"]
    # FACTS.md 4.1: both, so a WebSocket tunnel and a waiting long-poll are cut at 4 s.
    assert {"timeout server 4000ms", "timeout tunnel 4000ms", "timeout client 60s"} <= set(cut)
    assert "timeout server 60s" not in cut


def test_body_limit_refuses_on_content_length() -> None:
    frontend = sections(render(Balancer(HAPROXY, max_body_bytes=65536)))["frontend lb"]
    deny = "http-request deny deny_status 413 if { req.hdr_val(content-length) gt 65536 }"
    assert deny in frontend
    assert frontend.index(deny) < frontend.index("default_backend socketio")
    assert not any("deny" in d for d in sections(render())["frontend lb"])


@pytest.mark.parametrize("incomplete", [False, True])
def test_the_bundle_is_the_served_chain_then_the_key(tmp_path: Path, incomplete: bool) -> None:
    pki.write_pki(tmp_path, ["lb"], tmp_path / "ca.pem")
    tls = Tls(incomplete_chain=("lb",) if incomplete else ())
    scenario = dataclasses.replace(SCENARIOS["healthy"], balancer=Balancer(kind=HAPROXY), tls=tls)
    path = haproxy_cfg.write_bundle(tmp_path, scenario)
    files = pki.site_files(tmp_path, "lb")
    served = files.leaf if incomplete else files.fullchain
    assert path == haproxy_cfg.bundle_path(tmp_path)
    assert path.read_bytes() == served.read_bytes() + files.key.read_bytes()
    assert path.read_bytes().count(b"BEGIN CERTIFICATE") == (1 if incomplete else 2)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # it holds the key
