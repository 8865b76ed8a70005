"""The balancer tier's process: its program found (or the install command said), its config
file and command line, all inside the lab directory."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from kiloscribe_lab.errors import LabStartError
from kiloscribe_lab.lab import balancer, pki
from kiloscribe_lab.lab.scenarios import SCENARIOS, SITES, Balancer, BalancerKind
from tests.unit.lab.samples import PORTS


def test_config_files_and_components_by_kind(tmp_path: Path) -> None:
    assert balancer.config_file(tmp_path, BalancerKind.CADDY) == tmp_path / "Caddyfile"
    assert balancer.config_file(tmp_path, BalancerKind.NGINX) == tmp_path / "nginx.conf"
    assert balancer.config_file(tmp_path, BalancerKind.HAPROXY) == tmp_path / "haproxy.cfg"
    assert [balancer.component(k) for k in BalancerKind] == ["caddy", "nginx", "haproxy"]


@pytest.mark.parametrize("kind", [BalancerKind.NGINX, BalancerKind.HAPROXY])
def test_a_missing_program_says_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: BalancerKind
) -> None:
    monkeypatch.setattr(balancer, "SYSTEM_DIRS", (str(tmp_path / "nowhere"),))
    with pytest.raises(LabStartError, match=f"{kind} not found .*apt-get install nginx-light haproxy"):
        balancer.binary(kind, {"PATH": str(tmp_path)})


@pytest.mark.parametrize("kind", [BalancerKind.NGINX, BalancerKind.HAPROXY])
def test_the_program_is_found_on_path_then_in_the_system_dirs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: BalancerKind
) -> None:
    on_path = tmp_path / "bin" / str(kind)
    system = tmp_path / "sbin" / str(kind)
    for program in (on_path, system):
        program.parent.mkdir()
        program.write_text("#!/bin/sh\n")
        program.chmod(0o755)
    monkeypatch.setattr(balancer, "SYSTEM_DIRS", (str(system.parent),))
    assert balancer.binary(kind, {"PATH": str(on_path.parent)}) == str(on_path)
    assert balancer.binary(kind, {"PATH": str(tmp_path / "empty")}) == str(system)  # /usr/sbin off PATH


@pytest.mark.parametrize("kind", [BalancerKind.NGINX, BalancerKind.HAPROXY])
def test_prepare_writes_the_config_and_runs_it_in_the_foreground(tmp_path: Path, kind: BalancerKind) -> None:
    pki.write_pki(tmp_path, SITES, tmp_path / "ca.pem")
    scenario = dataclasses.replace(SCENARIOS["healthy"], balancer=Balancer(kind=kind))
    run = balancer.prepare(scenario, PORTS, tmp_path, f"/usr/sbin/{kind}")
    assert run.name == str(kind)
    assert run.config == balancer.config_file(tmp_path, kind)
    assert run.config.read_text() == balancer.render(scenario, PORTS, tmp_path)
    if kind is BalancerKind.NGINX:
        # -e: even nginx's start-up errors go to its stderr (the lab's log), never /var/log
        assert run.argv == [
            "/usr/sbin/nginx",
            "-e",
            "stderr",
            "-p",
            str(tmp_path / "nginx"),
            "-c",
            str(run.config),
        ]
        assert (tmp_path / "nginx").is_dir()
    else:
        assert run.argv == ["/usr/sbin/haproxy", "-f", str(run.config), "-db"]  # -db: foreground
        assert (tmp_path / "pki" / "lb.haproxy.pem").is_file()


def test_caddy_runs_no_balancer_process(tmp_path: Path) -> None:
    with pytest.raises(LabStartError, match="runs inside Caddy"):
        balancer.render(SCENARIOS["healthy"], PORTS, tmp_path)
