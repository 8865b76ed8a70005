"""Real clients the lab tests use: python-socketio over TLS with the lab's CA, and httpx."""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import httpx
import socketio

from kiloscribe_lab.lab import fleet

INSCRIPTION_REQUEST: dict[str, Any] = {
    "holderId": "0.0.1234",
    "mode": "file",
    "network": "testnet",
    "onlyJSONCollection": 0,
    "creator": "lab",
    "description": "integration test",
    "fileStandard": "1",
    "metadataObject": {},
    "jsonFileURL": "",
    "fileURL": "https://example.invalid/cat.png",
}


@dataclass
class SioOutcome:
    connected: bool
    transport: str | None = None
    error: str | None = None
    connect_error: Any = None
    ack: Any = None
    events: list[tuple[str, Any]] = field(default_factory=list)


async def sio_session(
    url: str,
    ca_bundle: str,
    key: str | None,
    transport: str,
    *,
    start_inscription: bool = False,
    deadline_s: float = 5.0,
) -> SioOutcome:
    """Connect as the SDK does; our own deadline bounds everything (see the contract's quirks)."""
    ctx = ssl.create_default_context(cafile=ca_bundle)
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ctx))
    client = socketio.AsyncClient(reconnection=False, http_session=session)
    outcome = SioOutcome(connected=False)
    refused = asyncio.Event()
    complete = asyncio.Event()

    @client.event  # type: ignore[untyped-decorator]
    async def connect_error(data: Any) -> None:
        outcome.connect_error = data
        refused.set()

    @client.on("inscription-progress")  # type: ignore[untyped-decorator]
    async def progress(data: Any) -> None:
        outcome.events.append(("inscription-progress", data))

    @client.on("inscription-complete")  # type: ignore[untyped-decorator]
    async def done(data: Any) -> None:
        outcome.events.append(("inscription-complete", data))
        complete.set()

    async def run() -> None:
        auth = None if key is None else {"apiKey": key}
        connect = asyncio.create_task(
            client.connect(url, auth=auth, transports=[transport], wait_timeout=deadline_s)
        )
        refused_wait = asyncio.create_task(refused.wait())
        await asyncio.wait({connect, refused_wait}, return_when=asyncio.FIRST_COMPLETED)
        refused_wait.cancel()
        if not connect.done():
            connect.cancel()
            outcome.error = "connect_error"
            return
        try:
            connect.result()
        except socketio.exceptions.ConnectionError as exc:
            outcome.error = str(exc)
            return
        outcome.connected = True
        outcome.transport = client.transport()
        if start_inscription:
            outcome.ack = await client.call("start-inscription", INSCRIPTION_REQUEST, timeout=3)
            await complete.wait()

    try:
        await asyncio.wait_for(run(), deadline_s)
    except TimeoutError:
        outcome.error = outcome.error or "timeout"
    finally:
        # python-engineio's polling disconnect waits for the pending long-poll GET (up to
        # pingInterval, 25 s); bound it, then closing the HTTP session aborts that GET.
        with contextlib.suppress(TimeoutError, socketio.exceptions.SocketIOError):
            await asyncio.wait_for(client.disconnect(), 1)
        await session.close()
    return outcome


def http(info: fleet.LabInfo, *, http2: bool = False, timeout: float = 3.0) -> httpx.Client:
    return httpx.Client(
        verify=ssl.create_default_context(cafile=str(info.ca_bundle)),
        http1=not http2,
        http2=http2,
        timeout=timeout,
        trust_env=False,
    )


def polling_open(client: httpx.Client, base: str) -> tuple[httpx.Response, str]:
    """Open an Engine.IO polling session; return the response and its sid.

    A 502 (round robin onto a dead backend) is retried, as a client's reconnect would.
    """
    for _ in range(3):
        response = client.get(f"{base}/socket.io/", params={"EIO": "4", "transport": "polling"})
        if response.status_code != 502:
            break
    response.raise_for_status()
    assert response.text.startswith("0{"), response.text

    return response, json.loads(response.text[1:])["sid"]


def polling_follow_up(client: httpx.Client, base: str, sid: str) -> httpx.Response:
    """A follow-up on the session: a PONG packet, harmless to the server, answered at once."""
    return client.post(
        f"{base}/socket.io/",
        params={"EIO": "4", "transport": "polling", "sid": sid},
        content=b"3",
        headers={"content-type": "text/plain;charset=UTF-8"},
    )


def jobs_started(lab: fleet.LabInfo) -> int:
    """start-inscription jobs the lab's backends have logged so far."""
    logs = (lab.lab_dir / "logs").glob("inscribe-*.log")
    return sum(path.read_text(errors="replace").count("start-inscription: job") for path in logs)
