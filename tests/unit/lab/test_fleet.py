"""The fleet's entry points without a lab: what attach, status and down do when none runs,
or when its state cannot be read; and the names callers import from ``fleet``."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kiloscribe_lab.errors import LabStateError
from kiloscribe_lab.lab import fleet, procs, state
from tests.unit.lab.samples import lab_info


def test_attach_reads_the_state_file(tmp_path: Path) -> None:
    info = lab_info(tmp_path, tmp_path / "lab.env")
    state.write_state(tmp_path, info, [procs.ProcessRecord("caddy", 102, 5002, "/l/c.log", ())], "running")
    assert fleet.attach(tmp_path) == info


def test_running_is_a_lab_with_a_live_process(tmp_path: Path) -> None:
    """``up`` refuses to replace a lab only while one of its processes still runs: the
    record of a lab whose processes are all gone (a reboot, a kill -9) is not in the way."""
    assert fleet.running(tmp_path) is None
    info = lab_info(tmp_path)
    gone = procs.ProcessRecord("caddy", 2**22 + 7, 1, "/l/c.log", ())  # no such pid
    state.write_state(tmp_path, info, [gone], "running")
    assert fleet.running(tmp_path) is None
    me = procs.ProcessRecord("self", os.getpid(), procs.start_ticks(os.getpid()) or 0, "/l/s.log", ())
    state.write_state(tmp_path, info, [gone, me], "running")
    assert fleet.running(tmp_path) == info


def test_no_lab_is_a_state_error_and_down_is_a_no_op(tmp_path: Path) -> None:
    with pytest.raises(LabStateError, match="no lab in"):
        fleet.attach(tmp_path)
    with pytest.raises(LabStateError):
        fleet.status(tmp_path)
    assert fleet.down(tmp_path) == []


@pytest.mark.parametrize("content", ["{not json", "{}", '{"scenario": "healthy", "ports": 3}'])
def test_unreadable_state_is_a_state_error_not_a_traceback(tmp_path: Path, content: str) -> None:
    (tmp_path / fleet.STATE_FILE).write_text(content)
    with pytest.raises(LabStateError, match="unreadable lab state"):
        fleet.attach(tmp_path)
    with pytest.raises(LabStateError):
        fleet.down(tmp_path)  # never silently forget processes it cannot read


def test_fleet_re_exports_what_callers_use() -> None:
    """cli, report, notebooks and bench import the lab's API from ``fleet``; each name is
    the one defined where it lives, not a copy."""
    from kiloscribe_lab.lab import keys

    assert set(fleet.__all__) <= set(dir(fleet))
    assert fleet.LabInfo is state.LabInfo and fleet.known_networks is state.known_networks
    assert fleet.lab_environment is keys.lab_environment and fleet.API_KEY_ENV == keys.API_KEY_ENV
    names = (
        "up",
        "down",
        "status",
        "attach",
        "running",
        "default_lab_dir",
        "lab_environment",
        "known_networks",
    )
    for name in names:
        assert callable(getattr(fleet, name)), name
    assert not hasattr(fleet, "allocate_ports") and not hasattr(fleet, "running_lab")  # dead code, gone


def test_one_lab_command_at_a_time_per_directory(tmp_path: Path) -> None:
    """While one `lab up` issues certificates or installs npm packages, a second `up` or a
    `down` in the same directory is refused at once, before it starts or stops anything."""
    info = lab_info(tmp_path)
    me = procs.ProcessRecord("self", os.getpid(), procs.start_ticks(os.getpid()) or 0, "/l/s.log", ())
    state.write_state(tmp_path, info, [me], "running")
    with fleet._locked(tmp_path):
        with pytest.raises(LabStateError, match=rf"another lab command \(pid {os.getpid()}\)"):
            fleet.down(tmp_path)
        with pytest.raises(LabStateError, match="another lab command"):
            fleet.up(tmp_path, "healthy", replace=True)
    assert fleet.running(tmp_path) == info  # nothing was stopped: our own process still runs


def test_info_and_restart_know_a_lab_whose_processes_are_gone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from kiloscribe_lab import cli

    info = lab_info(tmp_path)
    gone = procs.ProcessRecord("caddy", 2**22 + 7, 1, "/l/c.log", ())
    state.write_state(tmp_path, info, [gone], "running")
    assert cli.main(["lab", "info", "--dir", str(tmp_path)]) == 3
    err = capsys.readouterr().err
    assert "no lab in" in err and "is running" in err and f"scenario {info.scenario}" in err
    assert fleet.recorded(tmp_path) == info  # what `lab restart` restarts after a crash
