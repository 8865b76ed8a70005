"""Process groups: spawn, identify by start time, stop everything a component forked.

The one unit module that starts processes (short ``sh``/``sleep`` ones), as ``procs`` is
about nothing else.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kiloscribe_lab.errors import LabStartError, LabStateError
from kiloscribe_lab.lab import procs

pytestmark = pytest.mark.timeout(30)

ENV = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}


def gone(pid: int, ticks: int) -> bool:
    """The process with this pid and start time no longer runs (a zombie counts as gone)."""
    fields = procs._stat_fields(pid)
    return fields is None or fields[0] in {"Z", "X"} or int(fields[19]) != ticks


def wait_for_members(pgid: int, count: int, timeout_s: float = 5.0) -> list[int]:
    deadline = time.monotonic() + timeout_s
    while True:
        members = procs.group_members(pgid)
        if len(members) >= count or time.monotonic() > deadline:
            return members
        time.sleep(0.01)


@pytest.fixture
def spawned(tmp_path: Path) -> Iterator[list[procs.ProcessRecord]]:
    """Records of what a test spawned; stopped afterwards whatever the test did."""
    records: list[procs.ProcessRecord] = []
    yield records
    for record in records:
        procs.stop(record, grace_s=0.1)


def spawn_sh(tmp_path: Path, spawned: list[procs.ProcessRecord], script: str) -> procs.ProcessRecord:
    _, record = procs.spawn("sh", ["sh", "-c", script], log=tmp_path / "sh.log", env=ENV)
    spawned.append(record)
    return record


def test_spawn_starts_its_own_group_and_records_identity(
    tmp_path: Path, spawned: list[procs.ProcessRecord]
) -> None:
    record = spawn_sh(tmp_path, spawned, "sleep 30")
    assert record.start_ticks == procs.start_ticks(record.pid)
    assert procs.is_alive(record)
    assert os.getpgid(record.pid) == record.pid  # a group (and session) of its own
    assert os.getsid(record.pid) == record.pid
    assert os.getpgid(record.pid) != os.getpgid(0)
    assert record.argv == ("sh", "-c", "sleep 30")


def test_stop_kills_the_whole_group_including_the_grandchild(
    tmp_path: Path, spawned: list[procs.ProcessRecord]
) -> None:
    record = spawn_sh(tmp_path, spawned, "sleep 30 & sleep 30")
    members = wait_for_members(record.pid, 2)
    grandchildren = [pid for pid in members if pid != record.pid]
    assert grandchildren, members  # the background sleep runs in the leader's group
    identities = {pid: procs.start_ticks(pid) for pid in members}

    assert procs.stop(record, grace_s=2.0) is True

    assert procs.group_members(record.pid) == []
    assert not procs.is_alive(record)
    for pid, ticks in identities.items():
        assert ticks is not None and gone(pid, ticks), pid


def test_stop_escalates_to_sigkill_when_the_group_ignores_sigterm(
    tmp_path: Path, spawned: list[procs.ProcessRecord]
) -> None:
    # As the lab notes saw with uvicorn: SIGTERM is ignored, only SIGKILL ends it.
    record = spawn_sh(tmp_path, spawned, "trap '' TERM; sleep 30 & sleep 30")
    members = wait_for_members(record.pid, 2)
    assert len(members) >= 2
    os.killpg(record.pid, signal.SIGTERM)
    time.sleep(0.1)
    assert procs.group_members(record.pid), "the group should have ignored SIGTERM"

    assert procs.stop(record, grace_s=0.1) is True

    assert procs.group_members(record.pid) == []
    assert not procs.is_alive(record)


def test_a_recycled_pid_is_not_signalled(tmp_path: Path, spawned: list[procs.ProcessRecord]) -> None:
    _, real = procs.spawn("sleep", ["sleep", "30"], log=tmp_path / "sleep.log", env=ENV)
    spawned.append(real)
    # The same pid with another start time: what a record looks like once its pid is reused.
    stale = dataclasses.replace(real, start_ticks=real.start_ticks + 1)

    assert not procs.is_alive(stale)
    assert procs.stop(stale, grace_s=0.1) is True

    assert procs.is_alive(real), "stop() signalled a process that was not ours"
    assert procs.group_members(real.pid) == [real.pid]


def test_records_of_processes_that_are_gone(tmp_path: Path) -> None:
    missing = procs.ProcessRecord("ghost", 2**22 + 17, 1, str(tmp_path / "ghost.log"), ())
    assert not procs.is_alive(missing)
    assert procs.start_ticks(missing.pid) is None
    assert procs.group_members(missing.pid) == []
    assert procs.stop(missing) is True


def test_an_exited_child_is_reaped_not_left_a_zombie(
    tmp_path: Path, spawned: list[procs.ProcessRecord]
) -> None:
    proc, record = procs.spawn("sh", ["sh", "-c", "exit 0"], log=tmp_path / "x.log", env=ENV)
    spawned.append(record)
    deadline = time.monotonic() + 5
    while procs.is_alive(record) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not procs.is_alive(record)
    assert procs.stop(record) is True
    assert procs._stat_fields(record.pid) is None  # reaped: no zombie entry left
    del proc


def test_output_goes_to_the_log_and_the_environment_is_exactly_env(
    tmp_path: Path, spawned: list[procs.ProcessRecord]
) -> None:
    log = tmp_path / "logs" / "echo.log"
    proc, record = procs.spawn(
        "echo",
        ["sh", "-c", 'echo "one"; echo "probe=${LAB_PROBE:-unset} home=${HOME:-unset}" >&2'],
        log=log,
        env={**ENV, "LAB_PROBE": "set"},
    )
    spawned.append(record)
    assert proc.wait(timeout=5) == 0
    assert procs.tail(log, 1) == "probe=set home=unset"
    assert procs.tail(log) == "one\nprobe=set home=unset"
    assert procs.tail(tmp_path / "no-such.log") == ""


def test_record_json_round_trip() -> None:
    record = procs.ProcessRecord("caddy", 4242, 987654, "/lab/logs/caddy.log", ("caddy", "run"))
    assert procs.ProcessRecord.from_json(record.to_json()) == record


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ([], "not an object"),
        ({"name": "caddy", "pid": 1}, "without start_ticks, log"),
        ({"name": "caddy", "pid": "x", "start_ticks": 1, "log": "l"}, "pid 'x' is not a process id"),
        ({"name": "caddy", "pid": True, "start_ticks": 1, "log": "l"}, "is not a process id"),
        ({"name": "caddy", "pid": 7, "start_ticks": "soon", "log": "l"}, "start_ticks 'soon'"),
        (
            {"name": "caddy", "pid": 7, "start_ticks": 1, "log": "l", "argv": "caddy run"},
            "argv is not a list",
        ),
    ],
)
def test_a_record_that_is_not_one_is_a_state_error_saying_why(data: object, match: str) -> None:
    with pytest.raises(LabStateError, match=match):
        procs.ProcessRecord.from_json(data)


@pytest.mark.parametrize("kind", ["missing", "not-executable"])
def test_a_program_that_cannot_start_is_a_lab_start_error(tmp_path: Path, kind: str) -> None:
    program = tmp_path / "caddy"
    if kind == "not-executable":
        program.write_text("#!/bin/sh\n")
        program.chmod(0o644)
    with pytest.raises(LabStartError) as excinfo:
        procs.spawn("caddy", [str(program), "run"], log=tmp_path / "caddy.log", env=ENV)
    message = str(excinfo.value)
    assert message.startswith("cannot start caddy: ") and message.endswith(str(program))
    assert ("No such file" in message) is (kind == "missing")
    assert ("Permission denied" in message) is (kind == "not-executable")
    assert excinfo.value.exit_code == 3  # the lab failed; the command line was fine
