"""A raw Engine.IO v4 / Socket.IO v5 WebSocket session for wire-level tests: the frames as
they are, nothing a client library would hide (acks that never come, pings that come late,
the close code of an over-size message)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

CHECK_NAMESPACE = "/kiloscribe-lab-check"


@dataclass
class EioSocket:
    ws: ClientConnection
    handshake: dict[str, Any]
    opened_at: float
    pings: list[float] = field(default_factory=list)  # seconds after the open packet

    async def recv(self, timeout_s: float) -> str:
        """The next packet that is not a ping (pings are answered and timed)."""
        deadline = time.monotonic() + timeout_s
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            frame = await asyncio.wait_for(self.ws.recv(), left)
            text = frame if isinstance(frame, str) else frame.decode()
            if text == "2":
                self.pings.append(time.monotonic() - self.opened_at)
                await self.ws.send("3")
                continue
            return text

    async def quiet_for(self, seconds: float) -> list[str]:
        """Every non-ping packet within ``seconds`` (answering pings meanwhile)."""
        got: list[str] = []
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                got.append(await self.recv(left))
            except TimeoutError:
                break
        return got

    async def connect_namespace(self, auth: dict[str, Any] | None) -> str:
        await self.ws.send("40" + (json.dumps(auth) if auth is not None else ""))
        return await self.recv(5)

    async def emit(self, event: str, data: Any, ack_id: int | None = None) -> None:
        ack = "" if ack_id is None else str(ack_id)
        await self.ws.send(f"42{ack}{json.dumps([event, data])}")

    async def alive(self) -> bool:
        """Whether the server still answers: a CONNECT to a namespace that does not exist is
        refused by every Socket.IO server itself (socket.io: Invalid namespace; python-socketio:
        Unable to connect), no application code involved."""
        await self.ws.send(f"40{CHECK_NAMESPACE},")
        try:
            return (await self.recv(3)).startswith(f"44{CHECK_NAMESPACE},")
        except TimeoutError:
            return False


@asynccontextmanager
async def eio_websocket(
    base: str, *, path: str = "/socket.io", origin: str | None = None
) -> AsyncIterator[EioSocket]:
    """An Engine.IO WebSocket session on ``base`` (http://host:port), its open packet read."""
    url = base.replace("http://", "ws://", 1) + f"{path}/?EIO=4&transport=websocket"
    headers = {"Origin": origin} if origin else {}
    async with connect(url, proxy=None, open_timeout=5, max_size=None, additional_headers=headers) as ws:
        first = await asyncio.wait_for(ws.recv(), 5)
        text = first if isinstance(first, str) else first.decode()
        if not text.startswith("0{"):
            raise AssertionError(f"not an Engine.IO open packet: {text[:80]!r}")
        yield EioSocket(ws, json.loads(text[1:]), time.monotonic())
