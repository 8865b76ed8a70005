"""Engine.IO sessions kept open over raw streams: the I/O pumps of the slow probes (``hold``,
``payload``), around the sans-I/O :class:`~kiloscribe_lab.session.SioClient`.

* :func:`open_websocket`: a session on WebSocket, opened as socket.io-client opens it (a polling
  handshake, then the upgrade: probe, its answer, upgrade) or WebSocket first (the SDK's way;
  also the fallback when the upgrade fails, as a client retrying with ``transports:
  ['websocket']`` would);
* :func:`open_polling`: a polling session, with two HTTP/1.1 connections (a long-poll waits on
  one while our packets go on the other, as a browser's XHRs do).

Opening fails with :class:`OpenFailed`, which carries the outcome. What comes back is read within
our limits (``websocket.MessageReader``; polling answers through ``wire.Http1``'s byte cap).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from dataclasses import dataclass, field

from kiloscribe_lab import protocol
from kiloscribe_lab.errors import ProtocolError
from kiloscribe_lab.names import Outcome, Transport
from kiloscribe_lab.outcomes import handshake_outcome, upgrade_refusal
from kiloscribe_lab.probes.base import ProbeContext, Recorder
from kiloscribe_lab.probes.polling import Session
from kiloscribe_lab.probes.websocket import (
    FIRST_FRAME_WAIT_S,
    MessageReader,
    OpenedSocket,
    WsEnded,
    client_frames,
    feed,
    header_names,
    websocket_handshake,
)
from kiloscribe_lab.probes.wire import HttpResponse, evidence_headers
from kiloscribe_lab.session import EioState, Event, Opened, ProbeAnswered, Send, SioClient, first

# A namespace no server has: every Socket.IO server answers its CONNECT with CONNECT_ERROR
# (engine.io: {"message":"Invalid namespace"}; python-socketio: "Unable to connect"), which is
# how a probe asks "are you still there?" without the application's help.
CHECK_NAMESPACE = "/kiloscribe-lab-check"


class OpenFailed(Exception):
    """The session could not be opened; ``outcome`` says how, as the other probes would."""

    def __init__(self, outcome: Outcome, message: str) -> None:
        super().__init__(message)
        self.outcome = outcome


def _record_answer(
    rec: Recorder, status: int, headers: tuple[tuple[str, str], ...], names: list[str]
) -> None:
    rec.status = status
    rec.headers = evidence_headers(headers)
    rec.detail["header_names"] = names


@dataclass
class WsSession:
    """An open Engine.IO session on a WebSocket."""

    client: SioClient
    sock: OpenedSocket
    reader: MessageReader
    opened_at: float  # time.monotonic() of the OPEN packet (the heartbeat counts from it)
    how: str  # "upgrade" or "websocket"
    upgrade_error: str | None = None

    async def send(self, send: Send) -> None:
        await self.reader.send(client_frames(send))

    async def next(self, timeout_s: float) -> tuple[list[Event], WsEnded | None]:
        """What the next message (or the end) means to the session; TimeoutError when none came."""
        received = await self.reader.receive(timeout_s=max(0.0, timeout_s))
        return feed(self.client, received), received if isinstance(received, WsEnded) else None

    def abort(self) -> None:
        self.sock.stream.abort()


async def open_websocket(
    ctx: ProbeContext, rec: Recorder, *, upgrade: bool, deadline: float, max_message: int | None = None
) -> WsSession:
    """A session on WebSocket: upgraded from polling when ``upgrade`` (WebSocket first when that
    fails), else WebSocket first."""
    upgrade_error = None
    if upgrade:
        try:
            return await _open_upgraded(ctx, rec, deadline, max_message)
        except (OpenFailed, ProtocolError, OSError) as exc:
            upgrade_error = str(exc) or type(exc).__name__
    session = await _open_direct(ctx, rec, deadline, max_message)
    session.upgrade_error = upgrade_error
    return session


def _reader(sock: OpenedSocket, deadline: float, max_message: int | None) -> MessageReader:
    reader = MessageReader(sock.stream, bytearray(sock.buffer), deadline=deadline)
    if max_message is not None:
        reader.max_message = max_message
    return reader


async def _accepted(ctx: ProbeContext, rec: Recorder, client: SioClient, path: str) -> OpenedSocket:
    sock = await websocket_handshake(ctx.endpoint.with_path(path), ctx, rec)
    head = sock.head
    _record_answer(rec, head.status, head.headers, header_names(head))
    rec.detail["status_line"] = f"HTTP/{head.http_version} {head.status} {head.reason}".rstrip()
    client.receive_websocket_response(head, sock.key, sock.buffer)
    if not sock.check.accepted:
        sock.stream.abort()
        if head.status == 101:
            raise OpenFailed(Outcome.MALFORMED, sock.check.reason)
        rec.detail["body"] = rec.excerpt(sock.buffer)
        outcome = upgrade_refusal(head.status, sock.buffer, engineio_path=True)
        raise OpenFailed(outcome, f"WebSocket refused: {rec.detail['status_line']}")
    return sock


async def _open_direct(
    ctx: ProbeContext, rec: Recorder, deadline: float, max_message: int | None
) -> WsSession:
    client = SioClient(Transport.WEBSOCKET)
    rec.clock.current = "WebSocket handshake"
    sock = await _accepted(ctx, rec, client, client.handshake_target())
    reader = _reader(sock, deadline, max_message)
    try:
        received = await reader.receive(timeout_s=FIRST_FRAME_WAIT_S)
        opened = first(feed(client, received), Opened)
    except TimeoutError:
        sock.stream.abort()
        raise OpenFailed(Outcome.PROTOCOL_MISMATCH, "101, then no OPEN packet") from None
    except BaseException:
        sock.stream.abort()
        raise
    if opened is None:
        sock.stream.abort()
        raise OpenFailed(Outcome.RESET, "the WebSocket ended before its OPEN packet")
    return WsSession(client, sock, reader, received.at, "websocket")


async def _open_upgraded(
    ctx: ProbeContext, rec: Recorder, deadline: float, max_message: int | None
) -> WsSession:
    client = SioClient(Transport.POLLING)
    handshake = ctx.endpoint.with_path(client.handshake_target())
    polling = Session(handshake, ctx, rec)
    rec.clock.current = "polling handshake"
    try:
        response = await polling.request("GET", handshake.path)
    finally:
        polling.close()  # the session goes on on WebSocket: no long-poll is kept
    opened_at = time.monotonic()
    events = client.receive_handshake(
        response.status, response.body, response.get("content-type"), now=opened_at
    )
    opened = first(events, Opened)
    if opened is None:
        outcome, error = handshake_outcome(client.handshake_result, response.status)
        raise OpenFailed(outcome, f"polling handshake: {error or response.status_line}")
    if "websocket" not in opened.open.upgrades:
        raise OpenFailed(Outcome.BLOCKED, "the server offers no WebSocket upgrade")
    rec.clock.current = "WebSocket upgrade"
    sock = await _accepted(ctx, rec, client, client.begin_upgrade())
    reader = _reader(sock, deadline, max_message)
    try:
        await reader.send(client_frames(client.probe()))
        answered = None
        while answered is None:
            received = await reader.receive(timeout_s=FIRST_FRAME_WAIT_S)
            if isinstance(received, WsEnded):
                raise OpenFailed(Outcome.RESET, "the upgrade WebSocket ended before 3probe")
            answered = first(feed(client, received), ProbeAnswered)
        await reader.send(client_frames(client.upgrade()))
    except BaseException:
        sock.stream.abort()
        raise
    return WsSession(client, sock, reader, opened_at, "upgrade")


@dataclass
class PollSession:
    """An open Engine.IO polling session: ``get`` carries the long-polls, ``post`` our packets."""

    client: SioClient
    get: Session
    post: Session
    opened_at: float
    last_traffic: float = field(default_factory=time.monotonic)
    post_rtts_ms: list[float] = field(default_factory=list)

    async def send(self, send: Send) -> tuple[HttpResponse, list[Event]]:
        """POST our packets; the answer and what it means (PostAccepted or PollingRefused)."""
        began = time.monotonic()
        response = await self.post.request("POST", self.client.polling_target(), send.polling_body())
        self.last_traffic = time.monotonic()
        self.post_rtts_ms.append((self.last_traffic - began) * 1000)
        return response, self.client.receive_post(response.status, response.body)

    async def poll(self) -> tuple[HttpResponse, list[Event]]:
        """One long-poll GET: the server answers when it has packets (a PING at the latest)."""
        response = await self.get.request("GET", self.client.polling_target())
        self.last_traffic = time.monotonic()
        return response, self.client.receive_poll(response.status, response.body, now=self.last_traffic)

    def abort(self) -> None:
        self.get.close()
        self.post.close()


async def open_polling(ctx: ProbeContext, rec: Recorder) -> PollSession:
    client = SioClient(Transport.POLLING)
    handshake = ctx.endpoint.with_path(client.handshake_target())
    get, post = Session(handshake, ctx, rec), Session(handshake, ctx, rec)
    rec.clock.current = "polling handshake"
    try:
        response = await get.request("GET", handshake.path)
        opened_at = time.monotonic()
        _record_answer(rec, response.status, response.headers, list(response.header_names))
        rec.detail["status_line"] = response.status_line
        events = client.receive_handshake(
            response.status, response.body, response.get("content-type"), now=opened_at
        )
    except BaseException:
        get.close()
        raise
    if first(events, Opened) is None:
        get.close()
        rec.detail["body"] = rec.excerpt(response.body)
        outcome, error = handshake_outcome(client.handshake_result, response.status)
        raise OpenFailed(outcome, f"polling handshake: {error or response.status_line}")
    return PollSession(client, get, post, opened_at, opened_at)


async def close_quietly(session: WsSession | PollSession, timeout_s: float) -> None:
    """Our end of the session, as a client that disconnects says it (the CLOSE packet, and on a
    WebSocket its CLOSE frame), within ``timeout_s``; then every connection is aborted."""
    client = session.client
    try:
        if client.state is not EioState.CLOSED:
            with contextlib.suppress(OSError, ProtocolError, TimeoutError):
                async with asyncio.timeout(max(0.01, timeout_s)):
                    if isinstance(session, WsSession):
                        await session.send(client.close())
                        close = protocol.encode_frame(
                            protocol.Opcode.CLOSE, protocol.close_payload(), os.urandom(4)
                        )
                        await session.reader.send(close)
                    else:
                        target = client.polling_target()
                        await session.post.request("POST", target, client.close().polling_body())
    finally:
        session.abort()
