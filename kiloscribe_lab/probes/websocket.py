"""WebSocket-level probes over raw streams, driven by the sans-I/O ``session`` client.

* ``websocket_plain``: what wscat does — an RFC 6455 handshake to the URL as given and to
  ``/socket.io/?EIO=4&transport=websocket``; it validates the accept key and reads the first
  frame, because an Engine.IO server speaks first with its OPEN packet ``0{...}``.
* ``engineio_upgrade``: a polling session, then its upgrade to WebSocket (probe, its answer,
  upgrade) as socket.io-client does it; tells "upgrade works" from "stuck in polling".

What is sent, and whether what came back is in order, is :class:`~kiloscribe_lab.session.SioClient`'s
business; these functions only move bytes and record evidence.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from kiloscribe_lab import protocol
from kiloscribe_lab.details import EngineioOpenJson, EngineioUpgradeDetail, WebsocketPlainDetail
from kiloscribe_lab.endpoints import Endpoint
from kiloscribe_lab.errors import ProtocolError
from kiloscribe_lab.names import BackendHeader, Outcome, Transport
from kiloscribe_lab.outcomes import outcome_for_status, upgrade_refusal
from kiloscribe_lab.probes.base import ProbeContext, Recorder
from kiloscribe_lab.probes.wire import (
    MAX_BODY,
    Http1,
    Stream,
    base_headers,
    evidence_headers,
    open_stream,
    read_head,
)
from kiloscribe_lab.results import ProbeResult
from kiloscribe_lab.session import EioState, Event, Opened, ProbeAnswered, Send, SioClient, first

# An Engine.IO server writes its OPEN packet right behind the 101 (both are ready at once), so
# a WebSocket that stays silent this long after its 101 is not Engine.IO: a plain WebSocket
# server waits for the client to speak.
FIRST_FRAME_WAIT_S = 2.0
# How long the body of a refusal (the answer instead of 101) may take to arrive after its head.
REFUSAL_BODY_WAIT_S = 0.5


@dataclass
class OpenedSocket:
    stream: Stream
    key: str
    head: protocol.ResponseHead
    check: protocol.UpgradeCheck
    buffer: bytes  # after a 101, the frames read so far; else the answer's (de-chunked) body


async def websocket_handshake(
    endpoint: Endpoint, ctx: ProbeContext, rec: Recorder, extra_headers: Iterable[tuple[str, str]] = ()
) -> OpenedSocket:
    """Connect and send the upgrade request; the caller owns (and aborts) the stream. An
    answer other than 101 has its body read (bounded in bytes and time) into ``buffer``."""
    stream = await open_stream(
        endpoint, ctx.network, rec.clock, ca_bundle=ctx.options.ca_bundle, alpn=("http/1.1",)
    )
    try:
        key = protocol.make_websocket_key()
        extra = [*ctx.network.headers.items(), *extra_headers]
        began = rec.clock.begin("websocket handshake")
        await stream.send(protocol.build_upgrade_request(endpoint.authority, endpoint.path, key, extra))
        head, rest = await read_head(stream)
        rec.clock.mark_once("first_byte", began)
        rec.clock.mark_once("handshake", began)
        if head.status != 101:
            rest = await _read_body(stream, head, rest)
    except BaseException:
        stream.abort()
        raise
    return OpenedSocket(stream, key, head, protocol.check_upgrade_response(head, key), rest)


async def _read_body(stream: Stream, head: protocol.ResponseHead, data: bytes) -> bytes:
    """The refusal's body as far as it arrives within REFUSAL_BODY_WAIT_S: it is evidence
    (engine.io words its errors in a chunked JSON body), not something to wait for."""
    body, complete = protocol.decode_body(head, data, MAX_BODY)
    # A body that only the server's close ends: its first bytes are evidence enough.
    unframed = (
        head.get("content-length") is None and "chunked" not in (head.get("transfer-encoding") or "").lower()
    )
    try:
        async with asyncio.timeout(REFUSAL_BODY_WAIT_S):
            # Bounded in bytes too: chunk framing that never ends a chunk would grow ``data``.
            while not complete and not (unframed and body) and len(data) < 4 * MAX_BODY:
                chunk = await stream.recv()
                if not chunk:
                    break
                data += chunk
                body, complete = protocol.decode_body(head, data, MAX_BODY)
    except (TimeoutError, OSError, ProtocolError):
        pass  # the evidence is what arrived
    return body


def header_names(head: protocol.ResponseHead) -> list[str]:
    """The answer's header names as the server spelled them: a fingerprint (HAProxy lower-cases
    every name it forwards; Node capitalises its own)."""
    return [name for name, _ in head.headers]


async def read_frame(sock: OpenedSocket, rec: Recorder) -> protocol.Frame:
    """The next frame. Bounded: ``decode_frame`` refuses a frame over its size limit from the
    header alone, before its payload is buffered, and the stream refuses more than its session
    limit (issue 12's message reader, with fragments and per-message caps, builds on this)."""
    rec.clock.current = "reading a frame"
    while True:
        decoded = protocol.decode_frame(sock.buffer)
        if decoded is not None:
            frame, used = decoded
            sock.buffer = sock.buffer[used:]
            return frame
        chunk = await sock.stream.recv()
        if not chunk:
            raise ConnectionResetError("the server closed the connection before a complete frame")
        sock.buffer += chunk


def client_frames(send: Send) -> bytes:
    """What the session asked to send on a WebSocket, as masked client frames."""
    frames = []
    for message in send.websocket_messages():
        if isinstance(message, str):
            frames.append(protocol.encode_frame(protocol.Opcode.TEXT, message.encode(), os.urandom(4)))
        else:
            frames.append(protocol.encode_frame(protocol.Opcode.BINARY, message, os.urandom(4)))
    return b"".join(frames)


# --- whole messages, bounded ---------------------------------------------------------------

# What one message may hold (a Socket.IO event the server sends us), and what one session may
# read in all: evidence, not content. Engine.IO's own default maxPayload is 1 MB.
MAX_MESSAGE_BYTES = 1 << 20
MAX_SESSION_BYTES = 8 << 20
_CLOSE_REPLY_S = 0.2  # how long answering the server's CLOSE frame may take


class MessageTooLarge(ProtocolError):
    """A message, or the session's messages in all, beyond the reader's cap: read no further."""


@dataclass(frozen=True, slots=True)
class WsMessage:
    """One whole data message (its fragments reassembled)."""

    opcode: protocol.Opcode  # TEXT or BINARY
    payload: bytes
    at: float  # time.monotonic() when its last byte arrived

    def text(self) -> str:
        return protocol.Frame(self.opcode, self.payload).text()


@dataclass(frozen=True, slots=True)
class WsEnded:
    """The WebSocket ended: with the server's CLOSE frame (``frame``; its code, None when it
    carried none), or without one (``frame`` False: a FIN, or a reset with ``reset``)."""

    frame: bool
    code: int | None
    reason: str
    reset: bool
    at: float

    @property
    def close_code(self) -> int | None:
        """The code a client reports: the frame's, or 1006 for a connection lost without one."""
        return self.code if self.frame else 1006


Received = WsMessage | WsEnded


@dataclass
class MessageReader:
    """Whole WebSocket messages from a client's stream, within our limits.

    ``receive()`` returns the next data message or how the WebSocket ended, reassembling
    fragments; control frames are answered on the way (a PING with its PONG, the server's CLOSE
    with ours) and never returned. Bounded three ways, by our code: ``max_message`` bytes per
    message and ``max_session`` bytes in all (checked from each frame's header, before its
    payload is read: a hostile length never makes us buffer), and time — ``deadline`` (a
    ``time.monotonic()`` value) for every call, ``timeout_s`` for one. Over a cap:
    :class:`MessageTooLarge`; a frame no server may send: :class:`ProtocolError`; out of
    time: ``TimeoutError``. ``ping()`` sends a PING of our own: its PONG's round trip lands in
    ``rtts_ms``. Once ended, ``receive()`` returns the same ``WsEnded`` again.
    """

    stream: Stream
    buffer: bytearray = field(default_factory=bytearray)
    max_message: int = MAX_MESSAGE_BYTES
    max_session: int = MAX_SESSION_BYTES
    deadline: float | None = None
    bytes_read: int = 0  # frame bytes taken from the stream so far (headers included)
    last_traffic: float = field(default_factory=time.monotonic)  # a byte either way
    pings_answered: int = 0
    rtts_ms: list[float] = field(default_factory=list)
    ended: WsEnded | None = None
    _fragments: list[bytes] = field(default_factory=list)
    _fragment_opcode: protocol.Opcode | None = None
    _pings_sent: dict[bytes, float] = field(default_factory=dict)
    _reset: bool = False  # the stream ended in a reset, not a FIN

    def __post_init__(self) -> None:
        self.buffer = bytearray(self.buffer)
        self.bytes_read = len(self.buffer)

    async def send(self, data: bytes) -> None:
        """Client frames (masked) on the same stream; counts as traffic."""
        await self.stream.send(data)
        self.last_traffic = time.monotonic()

    async def ping(self, payload: bytes = b"") -> None:
        """A WebSocket PING of ours (at most 125 bytes); its PONG's round trip goes to ``rtts_ms``."""
        payload = payload or os.urandom(4)
        self._pings_sent[payload] = time.monotonic()
        await self.send(protocol.encode_frame(protocol.Opcode.PING, payload, os.urandom(4)))

    async def receive(self, *, timeout_s: float | None = None) -> Received:
        if self.ended is not None:
            return self.ended
        limit = None if timeout_s is None else time.monotonic() + timeout_s
        if self.deadline is not None:
            limit = self.deadline if limit is None else min(limit, self.deadline)
        async with asyncio.timeout_at(None if limit is None else loop_time(limit)):
            while True:
                frame = await self._frame()
                if frame is None:
                    return self._end(False, None, "", reset=self._reset)
                received = await self._take(frame)
                if received is not None:
                    return received

    async def _frame(self) -> protocol.Frame | None:
        """The next frame, or None at the end of the stream."""
        while True:
            held = sum(len(f) for f in self._fragments)
            room = min(self.max_message - held, self.max_session - self.bytes_read + len(self.buffer))
            try:
                decoded = protocol.decode_frame(self.buffer, max_size=max(0, room))
            except protocol.FrameTooLarge as exc:
                raise MessageTooLarge(
                    f"a message beyond the reader's cap ({self.max_message} bytes a message, "
                    f"{self.max_session} a session): {exc}"
                ) from exc
            if decoded is not None:
                frame, used = decoded
                del self.buffer[:used]
                return frame
            try:
                chunk = await self.stream.recv()
            except (ConnectionResetError, BrokenPipeError):
                self._reset = True
                return None
            if not chunk:
                return None
            self.bytes_read += len(chunk)
            self.last_traffic = time.monotonic()
            self.buffer += chunk

    async def _take(self, frame: protocol.Frame) -> Received | None:
        op = frame.opcode
        now = time.monotonic()
        if op is protocol.Opcode.PING:
            self.pings_answered += 1
            await self._send_quietly(
                protocol.encode_frame(protocol.Opcode.PONG, frame.payload, os.urandom(4))
            )
            return None
        if op is protocol.Opcode.PONG:
            sent = self._pings_sent.pop(frame.payload, None)
            if sent is not None:
                self.rtts_ms.append((now - sent) * 1000)
            return None  # unsolicited PONGs are allowed (RFC 6455 §5.5.3)
        if op is protocol.Opcode.CLOSE:
            code, reason = protocol.parse_close_payload(frame.payload)
            reply = protocol.close_payload(code) if code is not None else b""
            await self._send_quietly(protocol.encode_frame(protocol.Opcode.CLOSE, reply, os.urandom(4)))
            return self._end(True, code, reason)
        if op is protocol.Opcode.CONTINUATION:
            if self._fragment_opcode is None:
                raise ProtocolError("a continuation frame with no message to continue")
        elif self._fragment_opcode is not None:
            raise ProtocolError(f"a new {op.name} frame in the middle of a fragmented message")
        else:
            self._fragment_opcode = op
        self._fragments.append(frame.payload)
        if not frame.fin:
            return None
        opcode, payload = self._fragment_opcode, b"".join(self._fragments)
        self._fragment_opcode, self._fragments = None, []
        return WsMessage(opcode, payload, now)

    async def _send_quietly(self, data: bytes) -> None:
        """A control answer: the server may already be gone, which is its business."""
        try:
            async with asyncio.timeout(_CLOSE_REPLY_S):
                await self.send(data)
        except (OSError, TimeoutError):
            pass

    def _end(self, frame: bool, code: int | None, reason: str, *, reset: bool = False) -> WsEnded:
        self.ended = WsEnded(frame, code, reason, reset, time.monotonic())
        return self.ended


def loop_time(monotonic_s: float) -> float:
    """A ``time.monotonic()`` instant on the running loop's clock (asyncio.timeout_at's)."""
    loop = asyncio.get_running_loop()
    return loop.time() + (monotonic_s - time.monotonic())


def feed(client: SioClient, received: Received) -> list[Event]:
    """What the session makes of a received message or of the WebSocket's end."""
    if isinstance(received, WsEnded):
        if received.frame:
            return client.receive_close(received.code, received.reason)
        return client.connection_lost()
    now = received.at
    if received.opcode is protocol.Opcode.TEXT:
        return client.receive_text(received.text(), now=now)
    return client.receive_binary(received.payload, now=now)


async def send_packets(sock: OpenedSocket, send: Send) -> None:
    await sock.stream.send(client_frames(send))


async def close_politely(sock: OpenedSocket) -> None:
    await sock.stream.send(
        protocol.encode_frame(protocol.Opcode.CLOSE, protocol.close_payload(), os.urandom(4))
    )


def _status_line(head: protocol.ResponseHead) -> str:
    return f"HTTP/{head.http_version} {head.status} {head.reason}".rstrip()


async def websocket_plain(ctx: ProbeContext, rec: Recorder, *, socketio_path: bool) -> ProbeResult:
    # Either way the question is a WebSocket-first client's: is the first frame an Engine.IO OPEN?
    # A 101 alone proves only that *a* WebSocket server answered (a plain one upgrades anything).
    client = SioClient(Transport.WEBSOCKET)
    endpoint = ctx.endpoint.with_path(client.handshake_target()) if socketio_path else ctx.endpoint
    detail = rec.detail_as(WebsocketPlainDetail)
    detail["url"] = endpoint.url
    detail["command"] = f"wscat -c {endpoint.url.replace('https://', 'wss://', 1)}"
    sock = await websocket_handshake(endpoint, ctx, rec)
    try:
        head = sock.head
        rec.status = head.status
        rec.headers = evidence_headers(head.headers)
        detail["header_names"] = header_names(head)
        detail["status_line"] = _status_line(head)
        detail["upgrade"] = sock.check.reason
        client.receive_websocket_response(head, sock.key, sock.buffer)
        if not sock.check.accepted:
            if head.status == 101:
                return rec.result(Outcome.MALFORMED, sock.check.reason)
            detail["body"] = rec.excerpt(sock.buffer)
            outcome = upgrade_refusal(head.status, sock.buffer, engineio_path=socketio_path)
            # wscat's own words for it, so the reader recognises the seed's error
            return rec.result(outcome, f"Unexpected server response: {head.status}")
        try:
            async with asyncio.timeout(FIRST_FRAME_WAIT_S):
                frame = await read_frame(sock, rec)
        except TimeoutError:
            return _not_engineio(rec, f"101, then no frame within {FIRST_FRAME_WAIT_S:g} s")
        detail["first_frame_opcode"] = frame.opcode.name
        if frame.opcode is protocol.Opcode.TEXT:
            text = frame.text()
            detail["first_frame"] = rec.excerpt(text)
            try:
                opened = first(client.receive_text(text), Opened)
            except ProtocolError:
                opened = None
            detail["engineio_open"] = None if opened is None else _open_json(opened.open)
            if opened is None:
                return _not_engineio(rec, f"101, then the text frame {rec.excerpt(text, 40)!r}")
        elif frame.opcode is protocol.Opcode.CLOSE:
            code, reason = protocol.parse_close_payload(frame.payload)
            client.receive_close(code, reason)
            detail["close"] = {"code": code, "reason": reason}
            return _not_engineio(rec, f"101, then a close frame (code {code})")
        else:
            return _not_engineio(rec, f"101, then a {frame.opcode.name} frame")
        await close_politely(sock)
        return rec.result(Outcome.OK)
    finally:
        sock.stream.abort()


def _not_engineio(rec: Recorder, what: str) -> ProbeResult:
    """A WebSocket that upgraded and did not open an Engine.IO session."""
    rec.detail_as(WebsocketPlainDetail)["not_engineio"] = what
    return rec.result(Outcome.PROTOCOL_MISMATCH, f"not Engine.IO: {what} instead of an OPEN packet 0{{...}}")


def _open_json(opened: protocol.EioOpen) -> EngineioOpenJson:
    return {
        "sid": opened.sid,
        "upgrades": list(opened.upgrades),
        "pingInterval": opened.ping_interval,
        "pingTimeout": opened.ping_timeout,
        "maxPayload": opened.max_payload,
    }


async def engineio_upgrade(ctx: ProbeContext, rec: Recorder) -> ProbeResult:
    """Open a polling session, then upgrade it as a real client does."""
    client = SioClient(Transport.POLLING)
    polling = ctx.endpoint.with_path(client.handshake_target())
    detail = rec.detail_as(EngineioUpgradeDetail)
    detail["command"] = f"curl '{polling.url}'  # then upgrade with the sid"
    stream = await open_stream(
        polling, ctx.network, rec.clock, ca_bundle=ctx.options.ca_bundle, alpn=("http/1.1",)
    )
    try:
        http = Http1(stream, rec.clock)
        response = await http.request("GET", polling.path, base_headers(polling, ctx.network))
    finally:
        stream.abort()
    rec.status = response.status
    rec.headers = evidence_headers(response.headers)
    detail["header_names"] = list(response.header_names)
    events = client.receive_handshake(response.status, response.body, response.get("content-type"))
    opened = first(events, Opened)
    if opened is None:  # HandshakeFailed: a v3 server, an Engine.IO refusal, not Engine.IO
        detail["polling"] = response.status_line
        detail["body"] = rec.excerpt(response.body)
        outcome = outcome_for_status(response.status)
        return rec.result(
            outcome if not outcome.ok else Outcome.PROTOCOL_MISMATCH,
            f"no Engine.IO v4 session to upgrade ({response.status_line})",
        )
    detail["polling_backend"] = response.get(BackendHeader.LAB)
    detail["upgrades_offered"] = list(opened.open.upgrades)
    if "websocket" not in opened.open.upgrades:
        detail["stuck_in_polling"] = True
        return rec.result(Outcome.BLOCKED, "the server offers no WebSocket upgrade")
    if client.state is not EioState.OPEN:
        return rec.result(Outcome.MALFORMED, "the server closed the session in its handshake answer")

    ws_endpoint = ctx.endpoint.with_path(client.begin_upgrade())
    sock = await websocket_handshake(ws_endpoint, ctx, rec)
    try:
        head = sock.head
        rec.status = head.status
        rec.headers = evidence_headers(head.headers)
        detail["header_names"] = header_names(head)
        detail["websocket"] = _status_line(head)
        detail["websocket_backend"] = head.get(BackendHeader.LAB)
        client.receive_websocket_response(head, sock.key, sock.buffer)
        if not sock.check.accepted:
            detail["stuck_in_polling"] = True
            detail["body"] = rec.excerpt(sock.buffer)
            if head.status == 101:
                return rec.result(Outcome.MALFORMED, sock.check.reason)
            outcome = upgrade_refusal(head.status, sock.buffer, engineio_path=True)
            if outcome is Outcome.BLOCKED:
                outcome = await _control_upgrade(ctx, rec)
            return rec.result(outcome, f"upgrade refused: {detail['websocket']}")
        await send_packets(sock, client.probe())
        frame = await read_frame(sock, rec)
        answer = frame.text() if frame.opcode is protocol.Opcode.TEXT else frame.opcode.name
        detail["probe_answer"] = rec.excerpt(answer)
        answered = None
        if frame.fin and frame.opcode is not protocol.Opcode.CONTINUATION:
            try:
                answered = first(client.receive_frame(frame), ProbeAnswered)
            except ProtocolError:
                answered = None
        if answered is None:
            detail["stuck_in_polling"] = True
            return rec.result(Outcome.MALFORMED, f"expected 3probe, got {rec.excerpt(answer, 60)!r}")
        await send_packets(sock, client.upgrade())
        await close_politely(sock)
        detail["stuck_in_polling"] = False
        return rec.result(Outcome.OK)
    finally:
        sock.stream.abort()


async def _control_upgrade(ctx: ProbeContext, rec: Recorder) -> Outcome:
    """Was the upgrade refused for the session or for WebSocket itself?

    python-engineio refuses a WebSocket for a sid it does not know with a bare 403 (it
    cannot send a body before accepting), which looks like a blocking proxy. A fresh
    WebSocket without a sid tells them apart: 101 means WebSocket passes and the session
    was unknown where the upgrade landed.
    """
    path = SioClient(Transport.WEBSOCKET).handshake_target()
    control = await websocket_handshake(ctx.endpoint.with_path(path), ctx, rec)
    control.stream.abort()
    rec.detail_as(EngineioUpgradeDetail)["control_websocket"] = control.check.reason
    if control.check.accepted:
        return Outcome.SESSION_UNKNOWN
    return upgrade_refusal(control.head.status, control.buffer, engineio_path=True)
