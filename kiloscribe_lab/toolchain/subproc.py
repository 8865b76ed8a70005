"""Child processes (node, npm) under our own deadline: own process group, killed as a group.

``run_bounded`` starts the child in a new session, so everything it forks shares its process
group; when the deadline passes (or the caller is cancelled) the whole group gets SIGTERM,
then SIGKILL. The group's id cannot have been recycled by an unrelated process meanwhile: the
kernel keeps it reserved while the leader is unreaped or any member lives. A run is complete
when the child has exited and its pipes are at EOF (a grandchild may hold them open), as
``Process.wait`` had it. Output read so far is kept: a killed replay still hands back the steps
it had finished. The transport is closed before we return, while the loop still runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import threading
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

KILL_GRACE_S = 0.5
READ_LIMIT_BYTES = 4 * 1024 * 1024  # per stream; a child that floods is cut, not buffered forever


@dataclass(frozen=True, slots=True)
class Completed:
    argv: tuple[str, ...]
    returncode: int | None  # None: it did not exit by itself; we killed it at the deadline
    stdout: str
    stderr: str
    elapsed_s: float

    @property
    def timed_out(self) -> bool:
        return self.returncode is None

    def stderr_tail(self, lines: int = 3) -> str:
        kept = [line.strip() for line in self.stderr.splitlines() if line.strip()]
        return " | ".join(kept[-lines:])


class _Collector(asyncio.SubprocessProtocol):
    """The child's output, kept up to the limit, and when it exited and closed its pipes."""

    def __init__(self) -> None:
        loop = asyncio.get_running_loop()
        self.streams = {1: bytearray(), 2: bytearray()}
        self.exited: asyncio.Future[None] = loop.create_future()
        self.closed: asyncio.Future[None] = loop.create_future()  # exited, and every pipe at EOF

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        sink = self.streams[fd]
        room = READ_LIMIT_BYTES - len(sink)
        if room > 0:
            sink += data[:room]

    def process_exited(self) -> None:
        if not self.exited.done():
            self.exited.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


async def _settle(future: asyncio.Future[None], within_s: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.shield(future), within_s)


async def _stop_group(pid: int, child: _Collector) -> None:
    """SIGTERM the child's group, SIGKILL it after a grace period (cut short when the leader has
    exited and the pipes are at EOF)."""
    _signal_group(pid, signal.SIGTERM)
    await _settle(child.closed, KILL_GRACE_S)
    # Members other than the leader may outlive a SIGTERM: always finish with SIGKILL.
    _signal_group(pid, signal.SIGKILL)


async def _finish(child: _Collector) -> None:
    """Wait for the (stopped or exited) child to be reaped and its pipes to reach EOF, both
    bounded: a grandchild that left the group could hold the pipes open."""
    await _settle(child.exited, KILL_GRACE_S)
    await _settle(child.closed, KILL_GRACE_S + 0.5)


async def run_bounded(
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    timeout_s: float,
    cwd: Path | None = None,
) -> Completed:
    """Run ``argv`` to completion or to ``timeout_s``, whichever is first. Never raises for
    what the child does; raises OSError when it cannot be started at all."""
    started = time.monotonic()
    transport, child = await asyncio.get_running_loop().subprocess_exec(
        _Collector,
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=dict(env),
        cwd=cwd,
        start_new_session=True,
    )
    pid = transport.get_pid()
    timed_out = False
    try:
        try:
            await asyncio.wait_for(asyncio.shield(child.closed), timeout_s)
        except TimeoutError:
            timed_out = True
            await _stop_group(pid, child)
        await _finish(child)
    except BaseException:
        # Cancelled by our caller: leave nothing running (a grandchild holding the pipes too).
        if not child.closed.done():
            await asyncio.shield(_stop_group(pid, child))
        await asyncio.shield(_finish(child))
        raise
    finally:
        # Our ends of the pipes are closed here, while the loop runs, also when a grandchild
        # still holds its ends open: left to the transport's __del__, they would be closed
        # after the loop had ended ("Event loop is closed", an unraisable exception).
        transport.close()
    return Completed(
        tuple(argv),
        None if timed_out else transport.get_returncode(),
        child.streams[1].decode("utf-8", "replace"),
        child.streams[2].decode("utf-8", "replace"),
        time.monotonic() - started,
    )


def blocking(factory: Callable[[], Awaitable[T]]) -> T:
    """Run the coroutine ``factory()`` makes to completion from synchronous code (``lab up``).

    Where this thread already runs an event loop (a notebook's kernel), the coroutine runs in a
    thread of its own with its own loop, joined here: ``asyncio.run`` cannot nest."""

    async def main() -> T:
        return await factory()

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(main())
    outcome: list[T] = []
    failure: list[BaseException] = []

    def work() -> None:
        try:
            outcome.append(asyncio.run(main()))
        except BaseException as exc:  # handed to the caller's thread, re-raised there
            failure.append(exc)

    worker = threading.Thread(target=work, name="kiloscribe-lab-toolchain", daemon=True)
    worker.start()
    worker.join()
    if failure:
        raise failure[0]
    return outcome[0]
