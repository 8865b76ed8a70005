"""Child processes (node, npm) under our own deadline: own process group, killed as a group.

``run_bounded`` starts the child in a new session, so everything it forks shares its process
group; when the deadline passes (or the caller is cancelled) the whole group gets SIGTERM,
then SIGKILL. The group is signalled only while the leader is not yet reaped, so its id
cannot have been recycled by an unrelated process. Output read so far is kept: a killed
replay still hands back the steps it had finished.
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
from typing import Any, TypeVar

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


async def _drain(stream: asyncio.StreamReader | None, sink: bytearray) -> None:
    if stream is None:
        return
    while True:
        chunk = await stream.read(65536)
        if not chunk:
            return
        room = READ_LIMIT_BYTES - len(sink)
        if room > 0:
            sink += chunk[:room]


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


async def _stop_group(proc: asyncio.subprocess.Process) -> None:
    """SIGTERM the child's group, SIGKILL it after a grace period. The leader is unreaped here."""
    _signal_group(proc.pid, signal.SIGTERM)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.shield(proc.wait()), KILL_GRACE_S)
    # Members other than the leader may outlive a SIGTERM: always finish with SIGKILL.
    _signal_group(proc.pid, signal.SIGKILL)


async def _finish(proc: asyncio.subprocess.Process, readers: asyncio.Future[Any]) -> None:
    """Reap the (stopped or exited) child and read its pipes to EOF, both bounded: a grandchild
    that left the group could hold the pipes open."""
    with contextlib.suppress(Exception):
        await asyncio.wait_for(asyncio.shield(proc.wait()), KILL_GRACE_S)
    try:
        await asyncio.wait_for(readers, KILL_GRACE_S + 0.5)
    except TimeoutError:
        readers.cancel()


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
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=dict(env),
        cwd=cwd,
        start_new_session=True,
    )
    out, err = bytearray(), bytearray()
    readers = asyncio.gather(_drain(proc.stdout, out), _drain(proc.stderr, err))
    # On the cancel paths below nobody awaits the readers: retrieve their outcome here, or
    # asyncio prints "exception was never retrieved" over the user's Ctrl-C.
    readers.add_done_callback(lambda f: None if f.cancelled() else f.exception())
    returncode: int | None = None
    try:
        try:
            returncode = await asyncio.wait_for(asyncio.shield(proc.wait()), timeout_s)
        except TimeoutError:
            await _stop_group(proc)
    except BaseException:
        # Cancelled by our caller: leave nothing running, and let the transport close while
        # the loop still runs (else its __del__ fails later on a closed loop).
        if proc.returncode is None:
            await asyncio.shield(_stop_group(proc))
        await asyncio.shield(_finish(proc, readers))
        raise
    await _finish(proc, readers)
    return Completed(
        tuple(argv),
        returncode,
        out.decode("utf-8", "replace"),
        err.decode("utf-8", "replace"),
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
