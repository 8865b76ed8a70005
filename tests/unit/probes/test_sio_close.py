"""sio._close: bounded cleanup that lets a cancellation (a deadline, Ctrl-C) through."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest

from kiloscribe_lab.probes import sio

pytestmark = pytest.mark.unit


class FakeEio:
    def __init__(self) -> None:
        self.read_loop_task: asyncio.Task[None] | None = None
        self.write_loop_task: asyncio.Task[None] | None = None


class FakeClient:
    """python-socketio's AsyncClient as _close uses it: disconnect() and the eio tasks."""

    def __init__(self, disconnect: Callable[[], Awaitable[None]]) -> None:
        self.disconnect = disconnect
        self.eio = FakeEio()


class FakeSession:
    def __init__(self) -> None:
        self.closed = False

    async def close(self) -> None:
        self.closed = True


def _done() -> asyncio.Future[Any]:
    future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    future.set_result(None)
    return future


async def _hang() -> None:
    await asyncio.sleep(3600)


async def _internal_cancel() -> None:
    # python-engineio's disconnect() awaits its read loop, which _close may have cancelled.
    task = asyncio.ensure_future(asyncio.sleep(3600))
    task.cancel()
    await task


async def _broken_pipe() -> None:
    raise aiohttp.ClientConnectionResetError("reset")


@pytest.mark.parametrize("disconnect", [_hang, _internal_cancel, _broken_pipe])
async def test_what_a_close_raises_is_not_raised_and_every_step_runs(
    disconnect: Callable[[], Awaitable[None]],
) -> None:
    client, session = FakeClient(disconnect), FakeSession()
    client.eio.read_loop_task = asyncio.ensure_future(_hang())
    async with asyncio.timeout(2):
        await sio._close(client, session, _done())  # type: ignore[arg-type]
    assert session.closed
    await asyncio.sleep(0)
    assert client.eio.read_loop_task.cancelled()


async def test_a_cancellation_during_the_close_finishes_the_cleanup_then_goes_through() -> None:
    started = asyncio.Event()

    async def slow_disconnect() -> None:
        started.set()
        await asyncio.sleep(3600)

    client, session = FakeClient(slow_disconnect), FakeSession()
    closing = asyncio.ensure_future(sio._close(client, session, _done()))  # type: ignore[arg-type]
    await started.wait()
    closing.cancel()  # what a probe deadline or Ctrl-C does
    with pytest.raises(asyncio.CancelledError):
        async with asyncio.timeout(2):
            await closing
    assert session.closed  # the remaining step still ran, bounded


async def test_a_bug_in_the_close_is_not_hidden() -> None:
    async def buggy() -> None:
        raise KeyError("a bug")

    with pytest.raises(KeyError):
        await sio._close(FakeClient(buggy), FakeSession(), _done())  # type: ignore[arg-type]
