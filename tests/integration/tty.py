"""Run a command with stdout and/or stderr on a pseudo-terminal, as a user at a terminal would."""

from __future__ import annotations

import fcntl
import os
import select
import struct
import subprocess
import termios
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class TtyRun:
    returncode: int
    stdout: str  # what the command wrote to its stdout (the pty's, when ``tty_stdout``)
    stderr: str  # ... to its stderr (the pty's when ``tty_stderr``; with both, everything is in stdout)


def _open_pty(columns: int) -> tuple[int, int]:
    leader, follower = os.openpty()
    # The size a terminal reports: what the command wraps to.
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    attrs = termios.tcgetattr(follower)
    attrs[1] &= ~termios.ONLCR  # keep "\n" as written: no "\r\n" translation to undo
    termios.tcsetattr(follower, termios.TCSANOW, attrs)
    return leader, follower


def run_on_tty(
    argv: Sequence[str],
    env: Mapping[str, str],
    *,
    tty_stdout: bool,
    tty_stderr: bool,
    columns: int = 80,
    timeout_s: float = 60.0,
) -> TtyRun:
    """Run ``argv`` to its end (or kill it at ``timeout_s``) and return everything it wrote."""
    leader, follower = _open_pty(columns)
    pipe = subprocess.PIPE
    proc = subprocess.Popen(
        list(argv),
        stdin=subprocess.DEVNULL,
        stdout=follower if tty_stdout else pipe,
        stderr=follower if tty_stderr else pipe,
        env=dict(env),
        start_new_session=True,
    )
    os.close(follower)
    streams = {leader: bytearray()}
    if proc.stdout is not None:
        streams[proc.stdout.fileno()] = bytearray()
    if proc.stderr is not None:
        streams[proc.stderr.fileno()] = bytearray()
    deadline = time.monotonic() + timeout_s
    open_fds = set(streams)
    try:
        while open_fds and time.monotonic() < deadline:
            ready, _, _ = select.select(list(open_fds), [], [], 0.2)
            for fd in ready:
                try:
                    chunk = os.read(fd, 65536)
                except OSError:  # EIO: the pty's last writer closed it
                    chunk = b""
                if chunk:
                    streams[fd] += chunk
                else:
                    open_fds.discard(fd)
            if proc.poll() is not None and not ready:
                break
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
        os.close(leader)
    terminal = streams[leader].decode("utf-8", errors="replace")
    out = terminal if tty_stdout or proc.stdout is None else streams[proc.stdout.fileno()].decode()
    err = terminal if tty_stderr and not tty_stdout else ""
    if proc.stderr is not None:
        err = streams[proc.stderr.fileno()].decode()
    if proc.stdout is not None:
        proc.stdout.close()
    if proc.stderr is not None:
        proc.stderr.close()
    return TtyRun(proc.returncode, out, err)
