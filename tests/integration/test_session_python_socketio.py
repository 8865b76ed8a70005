"""The sans-I/O client session against a real python-socketio server over loopback.

What the probes do not exercise yet and the next ones will: a session held past its heartbeats
(answering pings, measuring their lateness), namespaces (the default one and one that does not
exist), an acknowledged event, and python-socketio's order quirk (what its connect handler emits
arrives before the CONNECT reply). The pump here is a plain asyncio stream: the session decides
what to send and whether what came back is in order.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
import socketio
import uvicorn

from kiloscribe_lab import protocol
from kiloscribe_lab.endpoints import parse_endpoint
from kiloscribe_lab.names import Transport
from kiloscribe_lab.probes.wire import Clock, Http1, Stream
from kiloscribe_lab.session import (
    Event,
    Noop,
    Opened,
    Ping,
    ProbeAnswered,
    Send,
    SioAck,
    SioClient,
    SioConnected,
    SioConnectError,
    SioEvent,
    WebSocketOpened,
    first,
)

pytestmark = pytest.mark.timeout(30)

# Whole seconds: python-engineio 4.15 advertises int(ping_interval) * 1000, so 0.3 s would be
# announced as pingInterval 0 while it pings every 0.3 s.
PING_INTERVAL_S = 1
UNKNOWN_NAMESPACE = "/kiloscribe-lab-check"


@pytest.fixture
async def server_port() -> AsyncIterator[int]:
    sio = socketio.AsyncServer(async_mode="asgi", ping_interval=PING_INTERVAL_S, ping_timeout=1, logger=False)

    @sio.event  # type: ignore[untyped-decorator]
    async def connect(sid: str, environ: dict[str, Any], auth: Any) -> None:
        await sio.emit("hello", {"auth": auth}, to=sid)

    @sio.event  # type: ignore[untyped-decorator]
    async def echo(sid: str, data: Any) -> Any:
        return data

    sock = socket.create_server(("127.0.0.1", 0))
    config = uvicorn.Config(socketio.ASGIApp(sio), log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    # Listening already: connections wait in the backlog until uvicorn serves them.
    task = asyncio.ensure_future(server.serve(sockets=[sock]))
    try:
        yield sock.getsockname()[1]
    finally:
        server.should_exit = True
        async with asyncio.timeout(5):
            await task
        sock.close()


class Pump:
    """A WebSocket over a plain stream: frames in and out, nothing about Engine.IO."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer, self.buffer = reader, writer, b""

    @classmethod
    async def open(cls, port: int, target: str, client: SioClient) -> Pump:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        pump = cls(reader, writer)
        key = protocol.make_websocket_key()
        writer.write(protocol.build_upgrade_request(f"127.0.0.1:{port}", target, key))
        while (end := protocol.find_head_end(pump.buffer)) is None:
            pump.buffer += await pump._read()
        head = protocol.parse_response_head(pump.buffer[:end])
        pump.buffer = pump.buffer[end:]
        assert client.receive_websocket_response(head, key) == [WebSocketOpened()]
        return pump

    async def _read(self) -> bytes:
        chunk = await self.reader.read(65536)
        if not chunk:
            raise ConnectionResetError("server closed the connection")
        return chunk

    async def send(self, send: Send) -> None:
        for message in send.websocket_messages():
            assert isinstance(message, str)
            self.writer.write(protocol.encode_frame(protocol.Opcode.TEXT, message.encode(), os.urandom(4)))
        await self.writer.drain()

    async def events(self, client: SioClient) -> list[Event]:
        """The events of the next frame that gives any."""
        while True:
            decoded = protocol.decode_frame(self.buffer)
            if decoded is None:
                self.buffer += await self._read()
                continue
            frame, used = decoded
            self.buffer = self.buffer[used:]
            events = client.receive_frame(frame, now=time.monotonic())
            if events:
                return events

    def close(self) -> None:
        self.writer.transport.abort()


async def test_a_polling_session_upgrades_connects_and_holds_through_heartbeats(server_port: int) -> None:
    client = SioClient()
    endpoint = parse_endpoint(f"http://127.0.0.1:{server_port}/")
    reader, writer = await asyncio.open_connection("127.0.0.1", server_port)
    http = Http1(Stream(reader, writer, "127.0.0.1"), Clock())
    host = [("host", endpoint.authority)]
    async with asyncio.timeout(20):
        answer = await http.request("GET", client.handshake_target(), host)
        [opened] = client.receive_handshake(
            answer.status, answer.body, answer.get("content-type"), now=time.monotonic()
        )
        assert isinstance(opened, Opened)
        assert opened.open.ping_interval == PING_INTERVAL_S * 1000 and opened.open.upgrades == ("websocket",)
        # An unprompted PONG (what sticky_session sends) is accepted: python-engineio answers "OK".
        posted = await http.request("POST", client.polling_target(), host, client.pong().polling_body())
        assert (posted.status, posted.body) == (200, b"OK")

        ws = await Pump.open(server_port, client.begin_upgrade(), client)
        try:
            await ws.send(client.probe())
            assert await ws.events(client) == [ProbeAnswered()]
            await ws.send(client.upgrade())
            assert await ws.events(client) == [Noop()]  # python-engineio's answer to the UPGRADE
            writer.transport.abort()

            await ws.send(client.connect(auth={"apiKey": "k"}))
            connected = await ws.events(client)
            # The hello its connect handler emitted came first on the wire; the session holds it
            # until the CONNECT reply, as socket.io-client does.
            assert [type(e) for e in connected] == [SioConnected, SioEvent]
            assert connected[1] == SioEvent("/", "hello", [{"auth": {"apiKey": "k"}}], None)

            await ws.send(client.connect(UNKNOWN_NAMESPACE))
            refused = first(await ws.events(client), SioConnectError)
            # python-socketio's words; socket.io 4.8 answers {"message": "Invalid namespace"}.
            assert refused == SioConnectError(UNKNOWN_NAMESPACE, "Unable to connect", "Unable to connect")

            sent = client.emit("echo", {"n": 1}, ack=True)
            await ws.send(sent)
            assert await ws.events(client) == [SioAck("/", 0, [{"n": 1}], "echo")]

            # Held past two heartbeats: each PING answered, each on its schedule.
            held_from = time.monotonic()
            pings: list[Ping] = []
            while len(pings) < 2:
                ping = first(await ws.events(client), Ping)
                if ping is not None:
                    pings.append(ping)
                    await ws.send(client.pong(now=time.monotonic()))
            assert time.monotonic() - held_from >= PING_INTERVAL_S * 0.9
            for ping in pings:
                assert ping.late_ms is not None and -100 < ping.late_ms < 1000, pings
            assert client.pings == 2 and not client.pong_owed

            await ws.send(client.disconnect())
            await ws.send(client.close())
        finally:
            ws.close()


async def test_a_websocket_first_session_opens_with_the_servers_first_frame(server_port: int) -> None:
    client = SioClient(Transport.WEBSOCKET)
    async with asyncio.timeout(10):
        ws = await Pump.open(server_port, client.handshake_target(), client)
        try:
            [opened] = await ws.events(client)
            assert isinstance(opened, Opened) and opened.open.upgrades == ()
            await ws.send(client.connect())
            assert [type(e) for e in await ws.events(client)] == [SioConnected, SioEvent]
            ping = first(await ws.events(client), Ping)
            assert ping is not None and ping.late_ms is not None and ping.late_ms > -100
        finally:
            ws.close()
