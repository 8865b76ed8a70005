"""The balancer tier's process when it is not Caddy: nginx or HAProxy, found, configured, run.

Caddy serves the balancer's site itself when the scenario's balancer is Caddy (``caddyfile``);
otherwise ``lab up`` writes ``nginx.conf`` or ``haproxy.cfg`` into the lab directory (readable,
to diff against production) and runs that program in the foreground as one more supervised
component, named after it. Both are Debian packages (``nginx-light``, ``haproxy``): ``make
setup`` installs them when it runs as root.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from kiloscribe_lab.errors import LabStartError
from kiloscribe_lab.lab import caddyfile, haproxy_cfg, nginx_conf
from kiloscribe_lab.lab.ports import LabPorts
from kiloscribe_lab.lab.scenarios import BalancerKind, Scenario

INSTALL = "sudo apt-get install nginx-light haproxy (or `make setup` as root)"
# Debian installs both in /usr/sbin, which a normal user's PATH often lacks.
SYSTEM_DIRS = ("/usr/sbin", "/usr/local/sbin", "/sbin")
PROGRAM = {BalancerKind.NGINX: "nginx", BalancerKind.HAPROXY: "haproxy"}
CONFIG_FILE = {
    BalancerKind.CADDY: caddyfile.FILE,
    BalancerKind.NGINX: nginx_conf.FILE,
    BalancerKind.HAPROXY: haproxy_cfg.FILE,
}


def config_file(lab_dir: Path, kind: BalancerKind) -> Path:
    """The file that configures the balancer tier (the Caddyfile when Caddy is it)."""
    return lab_dir / CONFIG_FILE[kind]


def component(kind: BalancerKind) -> str:
    """The name of the process that serves the balancer's site."""
    return "caddy" if kind is BalancerKind.CADDY else PROGRAM[kind]


def binary(kind: BalancerKind, environ: Mapping[str, str] | None = None) -> str:
    """The nginx or HAProxy to run: on PATH, else in the system directories; LabStartError
    with the install command when neither has it."""
    program = PROGRAM[kind]
    env = os.environ if environ is None else environ
    found = shutil.which(program, path=env.get("PATH", os.defpath)) or shutil.which(
        program, path=os.pathsep.join(SYSTEM_DIRS)
    )
    if found is None:
        raise LabStartError(f"{program} not found (the {kind} balancer needs it): {INSTALL}")
    return found


@dataclass(frozen=True, slots=True)
class BalancerProcess:
    kind: BalancerKind
    config: Path
    argv: list[str]

    @property
    def name(self) -> str:
        return component(self.kind)


def render(scenario: Scenario, ports: LabPorts, lab_dir: Path) -> str:
    """The balancer's config text (pure) for a scenario whose balancer is nginx or HAProxy."""
    if scenario.balancer.kind is BalancerKind.NGINX:
        return nginx_conf.render_nginx_conf(scenario, ports, lab_dir)
    if scenario.balancer.kind is BalancerKind.HAPROXY:
        return haproxy_cfg.render_haproxy_cfg(scenario, ports, lab_dir)
    raise LabStartError(f"the {scenario.balancer.kind} balancer runs inside Caddy")


def prepare(scenario: Scenario, ports: LabPorts, lab_dir: Path, program: str) -> BalancerProcess:
    """Write the balancer's config (after the lab's PKI: it names the certificate files) and
    return how to run it."""
    kind = scenario.balancer.kind
    config = config_file(lab_dir, kind)
    config.write_text(render(scenario, ports, lab_dir))
    if kind is BalancerKind.NGINX:
        prefix = nginx_conf.prefix(lab_dir)
        shutil.rmtree(prefix, ignore_errors=True)  # a stale pid file or temp body
        prefix.mkdir(mode=0o700)
        argv = [program, "-e", "stderr", "-p", str(prefix), "-c", str(config)]
    else:
        haproxy_cfg.write_bundle(lab_dir, scenario)
        argv = [program, "-f", str(config), "-db"]
    return BalancerProcess(kind, config, argv)
