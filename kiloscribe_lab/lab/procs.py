"""Process control for lab components: spawn in their own group, identify, stop, reap.

Every component runs in a new session (so its process group id equals its pid), which lets
``stop`` signal the whole group: nothing a component forks is left behind. A pid alone is
not proof of identity once the lab's CLI has exited, so each record also keeps the
process's start time (``/proc/<pid>/stat`` field 22): a recycled pid never matches it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from kiloscribe_lab.errors import LabStartError, LabStateError

PROC = Path("/proc")


@dataclass(frozen=True, slots=True)
class ProcessRecord:
    name: str
    pid: int
    start_ticks: int
    log: str
    argv: tuple[str, ...]

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "pid": self.pid,
            "start_ticks": self.start_ticks,
            "log": self.log,
            "argv": list(self.argv),
        }

    @classmethod
    def from_json(cls, data: object) -> ProcessRecord:
        """What ``to_json`` wrote, from a lab's state file; LabStateError saying what is wrong."""
        if not isinstance(data, Mapping):
            raise LabStateError(f"a process record is not an object: {data!r}")
        missing = [k for k in ("name", "pid", "start_ticks", "log") if k not in data]
        if missing:
            raise LabStateError(f"process record without {', '.join(missing)}: {dict(data)!r}")
        argv = data.get("argv") or []
        pid, ticks = data["pid"], data["start_ticks"]
        if not isinstance(argv, list) or not all(isinstance(a, str) for a in argv):
            raise LabStateError(f"process record {data['name']!r}: argv is not a list of strings")
        if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
            raise LabStateError(f"process record {data['name']!r}: pid {pid!r} is not a process id")
        if not isinstance(ticks, int) or isinstance(ticks, bool):
            raise LabStateError(f"process record {data['name']!r}: start_ticks {ticks!r} is not a number")
        return cls(name=str(data["name"]), pid=pid, start_ticks=ticks, log=str(data["log"]), argv=tuple(argv))


def _stat_fields(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name (which may contain spaces)."""
    try:
        raw = (PROC / str(pid) / "stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # "pid (comm) state ppid pgrp ..." -> ["state", "ppid", "pgrp", ...]
    return raw[raw.rfind(")") + 2 :].split()


def start_ticks(pid: int) -> int | None:
    fields = _stat_fields(pid)
    return int(fields[19]) if fields else None


def is_alive(record: ProcessRecord) -> bool:
    """True when the very process we started still runs (zombies count as gone)."""
    fields = _stat_fields(record.pid)
    if fields is None or fields[0] in {"Z", "X"}:
        return False
    return int(fields[19]) == record.start_ticks


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes whose process group is ``pgid``."""
    members = []
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(int(entry.name))
        if fields and fields[0] not in {"Z", "X"} and int(fields[2]) == pgid:
            members.append(int(entry.name))
    return members


def spawn(
    name: str,
    argv: Sequence[str],
    *,
    log: Path,
    env: Mapping[str, str],
    cwd: Path | None = None,
    pass_fds: Sequence[int] = (),
) -> tuple[subprocess.Popen[bytes], ProcessRecord]:
    """Start one lab component in its own session, its output appended to ``log``.

    A program that cannot be started (missing, not executable) is a LabStartError: the lab
    could not come up, which is not the user's command line being wrong."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        try:
            proc = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=dict(env),
                cwd=cwd,
                pass_fds=tuple(pass_fds),
                start_new_session=True,  # own group: stop() signals everything it forks
            )
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise LabStartError(f"cannot start {name}: {reason}: {argv[0]}") from exc
    ticks = start_ticks(proc.pid)
    record = ProcessRecord(name, proc.pid, ticks or 0, str(log), tuple(argv))
    return proc, record


def _reap(pid: int) -> None:
    """Collect the exit status where we are the parent, so no zombie lingers."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def stop(record: ProcessRecord, *, grace_s: float = 2.0, poll_s: float = 0.02) -> bool:
    """Stop the component's process group: SIGTERM, then SIGKILL after ``grace_s``.

    Returns True when the group is gone. A record whose pid now belongs to another
    process (start time differs) is left alone.
    """
    leader = _stat_fields(record.pid)
    if leader and leader[0] not in {"Z", "X"} and int(leader[19]) != record.start_ticks:
        return True  # the pid was recycled: that process is not ours to stop
    if not is_alive(record) and not group_members(record.pid):
        _reap(record.pid)
        return True
    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 2.0)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(record.pid, sig)
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            _reap(record.pid)
            if not group_members(record.pid):
                return True
            time.sleep(poll_s)
    _reap(record.pid)
    return not group_members(record.pid)


def stop_all(records: Sequence[ProcessRecord], *, grace_s: float = 2.0) -> list[str]:
    """Stop many components at once: SIGTERM to every group, one shared grace period, then
    SIGKILL what is left. Returns the names that would not stop."""
    ours = []
    for record in records:
        leader = _stat_fields(record.pid)
        if leader and leader[0] not in {"Z", "X"} and int(leader[19]) != record.start_ticks:
            continue  # recycled pid: not ours
        ours.append(record)
    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 2.0)):
        for record in ours:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(record.pid, sig)
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            for record in ours:
                _reap(record.pid)
            if not any(group_members(r.pid) for r in ours):
                return []
            time.sleep(0.02)
    for record in ours:
        _reap(record.pid)
    return [r.name for r in ours if group_members(r.pid)]


TAIL_BYTES = 64 * 1024  # enough for the last lines of any log; a proxy's log grows large


def tail(path: str | Path, lines: int = 8) -> str:
    """The last ``lines`` of a log, read from its last 64 KiB only."""
    try:
        with Path(path).open("rb") as log:
            log.seek(0, 2)
            log.seek(max(0, log.tell() - TAIL_BYTES))
            text = log.read().decode(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.strip().splitlines()[-lines:])
