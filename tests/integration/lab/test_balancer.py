"""nginx and HAProxy as the balancer tier, run for real: every setting renders a config the
program accepts, each server serves the chain the scenario says (an incomplete one fails real
clients with the errors FACTS.md recorded), and the balancer is a supervised lab component."""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import signal
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kiloscribe_lab.errors import ConfigError
from kiloscribe_lab.lab import balancer, caddyfile, fleet, pki, ports, procs
from kiloscribe_lab.lab.scenarios import SCENARIOS, SITES, Balancer, BalancerKind, LbPolicy, Scenario, Tls
from tests.integration.lab.test_fleet import recorded, refuses_connections, wait_until_dead

pytestmark = pytest.mark.timeout(90)

NGINX, HAPROXY = BalancerKind.NGINX, BalancerKind.HAPROXY


def with_balancer(b: Balancer, tls: Tls | None = None) -> Scenario:
    return dataclasses.replace(SCENARIOS["healthy"], balancer=b, tls=tls or Tls())


def settings(kind: BalancerKind) -> Iterator[Balancer]:
    """Every combination of the settings a kind can express."""
    upgrade = (True, False) if kind is NGINX else (True,)
    for policy, forwards, idle, body in itertools.product(LbPolicy, upgrade, (None, 4.5), (None, 65536)):
        if kind is NGINX and policy is LbPolicy.COOKIE:
            continue
        yield Balancer(kind, policy, forwards, idle, body)


@pytest.mark.parametrize("kind", [NGINX, HAPROXY])
def test_every_setting_renders_a_config_the_program_accepts(tmp_path: Path, kind: BalancerKind) -> None:
    lab_ports, _ = ports.allocate(0)
    pki.write_pki(tmp_path, SITES, tmp_path / "ca.pem")
    program = balancer.binary(kind)
    checked = 0
    for b in settings(kind):
        run = balancer.prepare(with_balancer(b), lab_ports, tmp_path, program)
        check = [program, "-t", *run.argv[1:]] if kind is NGINX else [program, "-c", "-f", str(run.config)]
        result = subprocess.run(check, capture_output=True, text=True, timeout=10)
        assert result.returncode == 0, (b, result.stderr)
        assert "warn" not in result.stderr.lower().replace("[warning]", ""), (b, result.stderr)
        checked += 1
    assert checked == (24 if kind is NGINX else 16)


# --- TLS: each server, alone, serving a full or an incomplete chain -------------------------------


def wait_listening(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.02)
    raise AssertionError(f"nothing listens on {port}: {log.read_text()}")


@pytest.fixture(params=["caddy", "nginx", "haproxy"])
def lone_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[int, Path, Path]]:
    """The server that serves the balancer's site (Caddy, nginx or HAProxy), alone, with the
    balancer's chain incomplete: (its port, the lab's root, the intermediate)."""
    kind = BalancerKind(request.param)
    lab_ports, _ = ports.allocate(0)
    scenario = with_balancer(Balancer(kind=kind), Tls(incomplete_chain=("lb", "edge")))
    pki.write_pki(tmp_path, SITES, tmp_path / "ca.pem")
    log = tmp_path / "logs" / f"{kind}.log"
    env = {
        **os.environ,
        "HOME": str(tmp_path),
        "XDG_DATA_HOME": str(tmp_path),
        "XDG_CONFIG_HOME": str(tmp_path),
    }
    if kind is BalancerKind.CADDY:
        config = tmp_path / caddyfile.FILE
        config.write_text(caddyfile.render_caddyfile(scenario, lab_ports, tmp_path))
        argv = [fleet.caddy_binary(), "run", "--config", str(config), "--adapter", "caddyfile"]
    else:
        argv = balancer.prepare(scenario, lab_ports, tmp_path, balancer.binary(kind)).argv
    proc, record = procs.spawn(str(kind), argv, log=log, env=env)
    try:
        wait_listening(lab_ports.lb, proc, log)
        yield lab_ports.lb, tmp_path / "ca.pem", pki.intermediate_file(tmp_path)
    finally:
        procs.stop(record)


def python_verify(port: int, cafiles: list[Path]) -> tuple[str, int | None]:
    context = ssl.create_default_context()
    for cafile in cafiles:
        context.load_verify_locations(cafile=str(cafile))
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        try:
            with context.wrap_socket(raw, server_hostname="127.0.0.1"):
                return "ok", None
        except ssl.SSLCertVerificationError as exc:
            return str(exc), exc.verify_code


def curl(port: int, cafile: Path) -> subprocess.CompletedProcess[str]:
    url = f"https://127.0.0.1:{port}{caddyfile.READY_PATH}"
    return subprocess.run(
        ["curl", "-sS", "--max-time", "5", "--cacert", str(cafile), url],
        capture_output=True,
        text=True,
        timeout=10,
    )


NODE_GET = """
const https = require("https"), fs = require("fs");
const [port, ca] = process.argv.slice(1);
https.get({host: "127.0.0.1", port: Number(port), path: "/.well-known/kiloscribe-lab/ready",
           ca: fs.readFileSync(ca), timeout: 5000}, (res) => {
  let body = ""; res.on("data", (c) => (body += c));
  res.on("end", () => console.log(JSON.stringify({status: res.statusCode, body})));
}).on("error", (e) => console.log(JSON.stringify({code: e.code, message: e.message})));
"""


def node_get(port: int, cafile: Path) -> dict[str, object]:
    out = subprocess.run(
        ["node", "-e", NODE_GET, str(port), str(cafile)],
        capture_output=True,
        text=True,
        timeout=20,
        check=True,
    )
    result: dict[str, object] = json.loads(out.stdout)
    return result


def test_an_incomplete_chain_fails_python_curl_and_node_as_facts_recorded(
    lone_server: tuple[int, Path, Path],
) -> None:
    """FACTS.md 3.8, on each server the lab runs: clients that trust the root alone cannot
    build the chain; given the intermediate, the same site verifies (so only the chain is wrong)."""
    port, root, intermediate = lone_server
    message, code = python_verify(port, [root])
    assert (
        "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: unable to get local issuer certificate"
        in message
    )
    assert code == 20
    result = curl(port, root)
    assert result.returncode == 60, result
    assert "SSL certificate problem: unable to get local issuer certificate" in result.stderr
    assert node_get(port, root) == {
        "code": "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
        "message": "unable to verify the first certificate",
    }
    assert python_verify(port, [root, intermediate]) == ("ok", None)


@pytest.mark.parametrize("kind", ["caddy", "nginx", "haproxy"])
def test_a_full_chain_verifies_with_the_root_alone(tmp_path: Path, kind: str) -> None:
    lab_ports, _ = ports.allocate(0)
    scenario = with_balancer(Balancer(kind=BalancerKind(kind)))
    pki.write_pki(tmp_path, SITES, tmp_path / "ca.pem")
    env = {
        **os.environ,
        "HOME": str(tmp_path),
        "XDG_DATA_HOME": str(tmp_path),
        "XDG_CONFIG_HOME": str(tmp_path),
    }
    if kind == "caddy":
        config = tmp_path / caddyfile.FILE
        config.write_text(caddyfile.render_caddyfile(scenario, lab_ports, tmp_path))
        argv = [fleet.caddy_binary(), "run", "--config", str(config), "--adapter", "caddyfile"]
    else:
        argv = balancer.prepare(scenario, lab_ports, tmp_path, balancer.binary(BalancerKind(kind))).argv
    log = tmp_path / f"{kind}.log"
    proc, record = procs.spawn(kind, argv, log=log, env=env)
    try:
        wait_listening(lab_ports.lb, proc, log)
        root = tmp_path / "ca.pem"
        assert python_verify(lab_ports.lb, [root]) == ("ok", None)
        result = curl(lab_ports.lb, root)
        # HAProxy is ready only once its health checks see every backend, and none runs here:
        # its own 503 is the answer then, over the same verified TLS.
        if kind == "haproxy":
            assert result.returncode == 0 and "503 Service Unavailable" in result.stdout, result
            assert node_get(lab_ports.lb, root)["status"] == 503
        else:
            assert (result.returncode, result.stdout) == (0, "ready lb"), result
            assert node_get(lab_ports.lb, root) == {"status": 200, "body": "ready lb"}
    finally:
        procs.stop(record)


def served_leaf(port: int, root: Path) -> str:
    """The common name of the leaf a site presents to a client that sends no SNI (an IP URL)."""
    context = ssl.create_default_context(cafile=str(root))
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        subject = dict(item[0] for item in tls.getpeercert()["subject"])
    return str(subject["commonName"])


def test_each_caddy_site_presents_its_own_leaf(tmp_path: Path) -> None:
    """Every leaf names 127.0.0.1 and no client sends SNI to an IP: Caddy must still pick the
    site's own (it would otherwise serve one site's incomplete chain on every site)."""
    lab_ports, _ = ports.allocate(0)
    pki.write_pki(tmp_path, SITES, tmp_path / "ca.pem")
    config = tmp_path / caddyfile.FILE
    config.write_text(caddyfile.render_caddyfile(SCENARIOS["healthy"], lab_ports, tmp_path))
    env = {
        **os.environ,
        "HOME": str(tmp_path),
        "XDG_DATA_HOME": str(tmp_path),
        "XDG_CONFIG_HOME": str(tmp_path),
    }
    argv = [fleet.caddy_binary(), "run", "--config", str(config), "--adapter", "caddyfile"]
    log = tmp_path / "caddy.log"
    proc, record = procs.spawn("caddy", argv, log=log, env=env)
    site_ports = {"edge": lab_ports.edge, "lb": lab_ports.lb, "api": lab_ports.api, **lab_ports.direct}
    try:
        for port in site_ports.values():
            wait_listening(port, proc, log)
        served = {site: served_leaf(port, tmp_path / "ca.pem") for site, port in site_ports.items()}
        assert served == {site: f"kiloscribe-lab {site}" for site in site_ports}
    finally:
        procs.stop(record)


# --- a supervised component ---------------------------------------------------------------------


@pytest.fixture
def own_lab(tmp_path: Path) -> Iterator[Path]:
    lab_dir = tmp_path / "on call lab"
    try:
        yield lab_dir
    finally:
        fleet.down(lab_dir)


@pytest.mark.parametrize("kind", [NGINX, HAPROXY])
def test_the_balancer_is_recorded_checked_and_stopped_with_the_lab(
    own_lab: Path, lab_key: str, kind: BalancerKind
) -> None:
    info = fleet.up(own_lab, "healthy", balancer=kind, environ={**os.environ, fleet.API_KEY_ENV: lab_key})
    assert info.balancer is kind and fleet.attach(own_lab) == info
    assert info.to_json()["balancer_config"] == str(own_lab / balancer.CONFIG_FILE[kind])
    record = next(r for r in recorded(own_lab) if r.name == str(kind))
    states = {c.name: c for c in fleet.status(own_lab).components}
    assert states[str(kind)].state == "running" and states[str(kind)].pid == record.pid
    assert states["lb"].state == "running" and states["lb"].pid == record.pid
    assert states["edge"].pid == states["caddy"].pid  # Caddy still serves the edge

    os.killpg(record.pid, signal.SIGKILL)
    wait_until_dead(record)
    after = fleet.status(own_lab)
    states = {c.name: c for c in after.components}
    assert not after.healthy
    assert states[str(kind)].state == "crashed"
    assert states["lb"].state == f"down ({kind})"
    assert states["edge"].state == "running"  # the CDN still answers; only what it proxies to is gone

    assert fleet.down(own_lab) == []
    assert refuses_connections(info.ports.lb)
    assert not (own_lab / fleet.STATE_FILE).exists()


@pytest.mark.parametrize("kind", [NGINX, HAPROXY])
def test_a_taken_balancer_port_is_retried_on_fresh_ports(
    own_lab: Path, lab_key: str, monkeypatch: pytest.MonkeyPatch, kind: BalancerKind
) -> None:
    squatter = socket.socket()
    squatter.bind(("127.0.0.1", 0))
    squatter.listen()
    taken = squatter.getsockname()[1]
    real = ports.free_ports
    calls: list[list[int]] = []

    def lb_clashes_once(count: int) -> list[int]:
        picked = real(count)
        if not calls:
            picked[1] = taken  # the balancer's port (edge, lb, api, ...)
        calls.append(picked)
        return picked

    monkeypatch.setattr(ports, "free_ports", lb_clashes_once)
    with squatter:
        info = fleet.up(own_lab, "healthy", balancer=kind, environ={**os.environ, fleet.API_KEY_ENV: lab_key})
        assert len(calls) == 2 and info.ports.lb != taken
        assert fleet.status(own_lab).healthy
        clash = (own_lab / "logs" / "port-clash" / f"{kind}.log").read_text().lower()
        assert "address already in use" in clash
    assert fleet.down(own_lab) == []


def test_an_unknown_combination_starts_nothing(own_lab: Path) -> None:
    with pytest.raises(ConfigError, match="nginx open source has no cookie stickiness"):
        fleet.up(own_lab, "cookie-sticky", balancer=NGINX)
    assert not own_lab.exists()
