"""``payload`` (``--deep``): the largest Socket.IO message that passes, over one transport.

An inscription uploads its file in ``start-inscription`` (``fileBase64``): 4/3 of the file plus
the request. Servers cap a message (engine.io and python-engineio: ``maxHttpBufferSize``, 1 MB by
default), and so may a proxy (nginx's ``client_max_body_size`` for polling POSTs); above the cap
the session dies (a CLOSE frame 1009 from engine.io, 1000 from python-engineio; a POST answered
413 or 400), and the user with a large file is the one whose inscription never completes.

The probe sends a message of its cap first (the start-inscription of a ``--file-size`` file):
where it passes, as it does on most servers, one message settles it. Where it fails, messages of
doubling size from 1 KiB, then a bisection between the largest that passed and the smallest that
failed, as far as its deadline allows. Never more than the cap, and never ``start-inscription`` (a real
server would start a job): the sized messages are an event no application handles, on ``/`` when
the configured key (or none) is accepted there; otherwise a CONNECT to a namespace no server has,
padded with an auth payload of the size wanted (the limit counts the whole packet, whatever it
holds). After each message it asks what every Socket.IO server answers, a CONNECT to that
namespace: its CONNECT_ERROR (``{"message":"Invalid namespace"}`` from engine.io, ``"Unable to
connect"`` from python-socketio) says the session survived. A failed message ends its session;
the next one opens another. Every session is closed before the deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field

from kiloscribe_lab import protocol
from kiloscribe_lab.details import AttemptJson, EndJson, PayloadDetail
from kiloscribe_lab.errors import ProtocolError
from kiloscribe_lab.names import Outcome, SessionEnd, Transport
from kiloscribe_lab.probes.base import ProbeContext, Recorder
from kiloscribe_lab.probes.sessions import (
    CHECK_NAMESPACE,
    OpenFailed,
    PollSession,
    WsSession,
    close_quietly,
    open_polling,
    open_websocket,
)
from kiloscribe_lab.probes.websocket import loop_time
from kiloscribe_lab.probes.wire import HttpResponse, evidence_headers
from kiloscribe_lab.results import ProbeResult
from kiloscribe_lab.session import (
    Closed,
    Event,
    LocalProtocolError,
    Ping,
    PollingRefused,
    Send,
    SioConnected,
    SioConnectError,
)
from kiloscribe_lab.settings import inscription_message_bytes, largest_file_bytes
from kiloscribe_lab.untrusted import CAP, decoded

PAYLOAD_EVENT = "kiloscribe-lab-payload"  # an event no application handles: it starts nothing
START_BYTES = 1024
# How long the check's answer may take after a message. A session that says nothing that long
# proves nothing either way (a busy server is slow, not closed): the search stops there.
CHECK_WAIT_S = 3.0
MIN_STEP_S = 0.2  # a step with less time left than this is not started
CLOSE_S = 0.3  # the search ends this long before the probe's deadline, to close in time
CLOSING_S = 0.15  # what saying goodbye may take (then the connections are aborted)
PAD = "x"  # one byte in UTF-8 and in JSON: a message is its pad plus a fixed framing


def overhead_bytes(events: bool) -> int:
    """The bytes of a sized message with an empty pad: the ignored event on ``/``, or the padded
    CONNECT to the check namespace (as an Engine.IO MESSAGE: a WebSocket message, a POST body)."""
    if events:
        packet = protocol.SioPacket(protocol.SioPacketType.EVENT, "/", [PAYLOAD_EVENT, ""])
    else:
        packet = protocol.SioPacket(protocol.SioPacketType.CONNECT, CHECK_NAMESPACE, {"pad": ""})
    sio = protocol.encode_sio_packet(packet)
    return len(protocol.encode_eio_packet(protocol.EioPacket(protocol.EioPacketType.MESSAGE, sio)).encode())


def send_bytes(send: Send) -> int:
    """What a Send puts on the wire as data: its POST body, or its WebSocket messages."""
    if send.transport is Transport.POLLING:
        return len(send.polling_body())
    return sum(len(m.encode() if isinstance(m, str) else m) for m in send.websocket_messages())


class _Failed(Exception):
    """A message the session did not survive: ``end`` says how."""

    def __init__(self, end: EndJson, answer: HttpResponse | None = None) -> None:
        super().__init__(end.get("how", ""))
        self.end = end
        self.answer = answer


@dataclass
class _Search:
    """The sizes tried and what came of them."""

    cap: int
    largest_passed: int | None = None
    smallest_failed: int | None = None
    failure: EndJson | None = None
    tried: set[int] = field(default_factory=set)
    inconclusive: str | None = None  # why the search stopped without an answer

    def next_size(self, floor: int) -> int | None:
        """The next size to try; None when there is no more to learn. The cap first: on a server
        without a low limit (the usual case) one message settles it. When it fails, START_BYTES
        (halving below it until one passes), doubling while below the smallest failure, then
        bisecting."""
        lo, hi = self.largest_passed, self.smallest_failed
        if self.inconclusive is not None:
            return None
        if hi is None:
            return self.cap if lo is None else None
        if lo is None:
            if hi > START_BYTES and START_BYTES not in self.tried:
                return max(floor, START_BYTES)
            # Nothing passed yet, not even the first step: halve towards the smallest message
            # there is (one byte at a time down from it would take a thousand messages).
            half = max(floor, hi // 2)
            return None if half >= hi or half in self.tried else half
        if lo * 2 < hi:
            return lo * 2
        return None if hi - lo <= 1 else (lo + hi) // 2


@dataclass
class _Probe:
    ctx: ProbeContext
    rec: Recorder
    transport: Transport
    end_by: float
    key: str | None
    session: WsSession | PollSession | None = None
    events: bool = True  # the sized messages are the ignored event (False: padded CONNECTs)
    sessions: int = 0

    def left(self) -> float:
        return self.end_by - time.monotonic()

    async def open(self) -> WsSession | PollSession:
        """A fresh session, CONNECTed: on "/" when it accepts us (the ignored event then), else
        the padded CONNECTs."""
        if self.transport is Transport.WEBSOCKET:
            session: WsSession | PollSession = await open_websocket(
                self.ctx, self.rec, upgrade=False, deadline=self.end_by
            )
        else:
            session = await open_polling(self.ctx, self.rec)
        self.sessions += 1
        self.session = session
        auth = {"apiKey": self.key} if self.key else None
        answer = await self.exchange(session.client.connect("/", auth), "/")
        self.events = isinstance(answer, SioConnected)
        return session

    async def exchange(self, send: Send, namespace: str, *, then: Send | None = None) -> Event:
        """Send ``send`` (and ``then`` behind it); the CONNECT answer for ``namespace``. Raises
        _Failed when the session does not survive or does not answer in time."""
        session = self.session
        if session is None:
            raise LocalProtocolError("no session is open")
        wait = min(CHECK_WAIT_S, max(0.0, self.left()))
        if isinstance(session, WsSession):
            return await _ws_exchange(session, [send, *([then] if then else [])], namespace, wait)
        return await _poll_exchange(session, [send, *([then] if then else [])], namespace, wait)

    async def attempt(self, size: int, search: _Search) -> AttemptJson:
        if size > search.cap:
            raise LocalProtocolError(f"a message of {size} bytes, above the cap of {search.cap}")
        search.tried.add(size)
        session = self.session or await self.open()
        overhead = overhead_bytes(self.events)
        began = time.monotonic()
        attempt: AttemptJson = {"bytes": size}
        try:
            if size < overhead:
                raise LocalProtocolError(f"no message is as small as {size} bytes ({overhead} at least)")
            pad = PAD * (size - overhead)
            client = session.client
            if self.events:
                message = client.emit(PAYLOAD_EVENT, pad)
                check: Send | None = client.connect(CHECK_NAMESPACE)
            else:
                message, check = client.connect(CHECK_NAMESPACE, {"pad": pad}), None
            if send_bytes(message) != size:
                raise LocalProtocolError(f"made a message of {send_bytes(message)} bytes, not {size}")
            await self.exchange(message, CHECK_NAMESPACE, then=check)
        except _Failed as failed:
            attempt["passed"] = False
            attempt["end"] = failed.end
            if failed.end.get("how") == SessionEnd.NO_ANSWER:
                search.inconclusive = f"no answer within {CHECK_WAIT_S:g} s after a message of {size} bytes"
            elif search.smallest_failed is None or size < search.smallest_failed:
                search.smallest_failed, search.failure = size, failed.end
                if failed.answer is not None:
                    _keep_answer(self.rec, failed.answer)
            await self.close()
        else:
            attempt["passed"] = True
            search.largest_passed = max(size, search.largest_passed or 0)
        attempt["ms"] = round((time.monotonic() - began) * 1000, 1)
        return attempt

    async def close(self) -> None:
        if self.session is not None:
            session, self.session = self.session, None
            await close_quietly(session, CLOSING_S)


def _keep_answer(rec: Recorder, answer: HttpResponse) -> None:
    """The answer that refused a message is the evidence of who refused it (nginx's 413 page)."""
    rec.status = answer.status
    rec.headers = evidence_headers(answer.headers)
    rec.detail["header_names"] = list(answer.header_names)
    rec.detail["status_line"] = answer.status_line
    rec.detail["body"] = rec.excerpt(answer.body)


def _answer(events: list[Event], namespace: str) -> Event | None:
    return next(
        (e for e in events if isinstance(e, SioConnected | SioConnectError) and e.namespace == namespace),
        None,
    )


async def _ws_exchange(session: WsSession, sends: list[Send], namespace: str, wait_s: float) -> Event:
    began = time.monotonic()
    try:
        for send in sends:
            await session.send(send)
    except OSError:
        pass  # the server closed while we wrote: why is in what it sent (a CLOSE frame) or not
    deadline = began + wait_s
    while True:
        try:
            events, ended = await session.next(deadline - time.monotonic())
        except TimeoutError:
            raise _Failed({"how": str(SessionEnd.NO_ANSWER), "at_s": round(wait_s, 3)}) from None
        answer = _answer(events, namespace)
        if answer is not None:
            return answer
        if any(isinstance(e, Closed) for e in events):
            raise _Failed({"how": str(SessionEnd.CLOSE_PACKET), "at_s": _since(began)})
        if ended is not None:
            end: EndJson = {"at_s": _since(began)}
            if ended.frame:
                end.update({"how": str(SessionEnd.CLOSE_FRAME), "code": ended.code, "reason": ended.reason})
            else:
                end["how"] = str(SessionEnd.RESET if ended.reset else SessionEnd.CONNECTION_CLOSED)
            raise _Failed(end)
        for event in events:
            if isinstance(event, Ping):
                await session.send(session.client.pong(now=time.monotonic()))


def _head(body: bytes) -> str:
    """An answer's first bytes as text; the recorder's boundary redacts, then caps it (keeping
    more than the cap here, so a key is never cut before it is redacted)."""
    return decoded(body[:BODY_KEPT])


BODY_KEPT = 4 * CAP
GRACE_S = 0.1  # once the long-poll failed, how long the POST may still take to say why


def _poll_failure(task: asyncio.Task[tuple[HttpResponse, list[Event]]], began: float) -> _Failed | None:
    """What a finished long-poll says about the session: None when it is alive."""
    try:
        response, events = task.result()
    except (ConnectionResetError, BrokenPipeError) as exc:
        return _Failed({"how": str(SessionEnd.CONNECTION_CLOSED), "method": "GET", "error": str(exc),
                        "at_s": _since(began)})  # fmt: skip
    if any(isinstance(e, PollingRefused) for e in events):
        end: EndJson = {
            "how": str(SessionEnd.POLL_FAILED),
            "method": "GET",
            "status": response.status,
            "body": _head(response.body),
            "at_s": _since(began),
        }
        return _Failed(end, response)
    if any(isinstance(e, Closed) for e in events):
        return _Failed({"how": str(SessionEnd.CLOSE_PACKET), "method": "GET", "at_s": _since(began)})
    return None


def _post_failure(task: asyncio.Task[tuple[HttpResponse, list[Event]]], began: float) -> _Failed | None:
    try:
        response, events = task.result()
    except (ConnectionResetError, BrokenPipeError) as exc:
        return _Failed(
            {"how": str(SessionEnd.RESET), "method": "POST", "error": str(exc), "at_s": _since(began)}
        )
    if any(isinstance(e, PollingRefused) for e in events):
        end: EndJson = {
            "how": str(SessionEnd.POST_FAILED),
            "method": "POST",
            "status": response.status,
            "body": _head(response.body),
            "at_s": _since(began),
        }
        return _Failed(end, response)
    return None


async def _poll_exchange(session: PollSession, sends: list[Send], namespace: str, wait_s: float) -> Event:
    """POST ``sends`` with a long-poll pending, as a real client has one: the long-poll carries
    the answer, and it is also where a session's end shows first (python-engineio answers an
    over-size POST only once a GET has taken its CLOSE packet, and a GET that came too late
    gets 400: then the POST is never answered)."""
    began = time.monotonic()
    deadline = began + wait_s
    get = asyncio.ensure_future(session.poll())
    post: asyncio.Task[tuple[HttpResponse, list[Event]]] | None = None
    received: list[Event] = []

    def left() -> float:
        return max(0.0, deadline - time.monotonic())

    async def next_poll() -> None:
        nonlocal get
        failure = _poll_failure(get, began)
        if failure is not None:
            if post is not None and not post.done():  # the POST may still say why, and better
                await asyncio.wait({post}, timeout=GRACE_S)
            raise (_post_failure(post, began) if post is not None and post.done() else None) or failure
        received.extend(get.result()[1])
        get = asyncio.ensure_future(session.poll())

    try:
        for send in sends:
            post = asyncio.ensure_future(session.send(send))
            while not post.done():
                done, _ = await asyncio.wait({post, get}, timeout=left(), return_when=asyncio.FIRST_COMPLETED)
                if not done:
                    raise _Failed({"how": str(SessionEnd.NO_ANSWER), "method": "POST", "at_s": _since(began)})
                if get in done:
                    await next_poll()
            failure = _post_failure(post, began)
            if failure is not None:
                raise failure
            post = None
        while True:
            answer = _answer(received, namespace)
            if answer is not None:
                return answer
            pings = [e for e in received if isinstance(e, Ping)]
            received.clear()
            for _ in pings:
                await session.send(session.client.pong(now=time.monotonic()))
            done, _ = await asyncio.wait({get}, timeout=left())
            if not done:
                raise _Failed({"how": str(SessionEnd.NO_ANSWER), "method": "GET", "at_s": _since(began)})
            await next_poll()
    finally:
        for task, conn in ((get, session.get), (post, session.post)):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
                conn.close()  # a request cut mid-way leaves its connection unusable


def _since(began: float) -> float:
    return round(time.monotonic() - began, 3)


async def payload(ctx: ProbeContext, rec: Recorder, *, transport: Transport) -> ProbeResult:
    file_size = ctx.options.file_size
    cap = inscription_message_bytes(file_size)
    detail = rec.detail_as(PayloadDetail)
    detail.update({"transport": str(transport), "file_size": file_size, "cap": cap})
    attempts: list[AttemptJson] = []
    detail["attempts"] = attempts
    end_by = time.monotonic() + max(0.05, rec.time_left(ctx.timeout_s) - CLOSE_S)
    probe = _Probe(ctx, rec, transport, end_by, ctx.api_key())
    search = _Search(cap)
    try:
        try:
            session = await probe.open()
            opened = session.client.open
            detail["maxPayload"] = None if opened is None else opened.max_payload
            detail["sends"] = (
                f"event {PAYLOAD_EVENT!r} on /" if probe.events else f"a CONNECT to {CHECK_NAMESPACE}, padded"
            )
            detail["check"] = f"a CONNECT to {CHECK_NAMESPACE} (every server refuses it)"
            rec.clock.current = "checking the session answers"
            await probe.exchange(session.client.connect(CHECK_NAMESPACE), CHECK_NAMESPACE)
        except OpenFailed as exc:
            return rec.result(exc.outcome, f"no session to send on: {exc}")
        except _Failed as failed:
            what = f"{failed.end.get('how')} after a CONNECT to {CHECK_NAMESPACE}"
            return rec.result(Outcome.PROTOCOL_MISMATCH, f"the session does not answer: {what}")
        rec.clock.current = "sending sized messages"
        floor = overhead_bytes(probe.events)
        size: int | None = None
        try:
            # Every step within the deadline: what was learnt by then is the result.
            async with asyncio.timeout_at(loop_time(end_by)):
                while (size := search.next_size(floor)) is not None and probe.left() > MIN_STEP_S:
                    attempts.append(await probe.attempt(size, search))
        except TimeoutError:
            # The deadline ended a message in flight: what it would have shown is unknown.
            if size is not None and search.inconclusive is None:
                search.inconclusive = f"the deadline ended a message of {size} bytes before its answer"
        except OpenFailed as exc:
            detail["sessions"] = probe.sessions
            _summarise(detail, search)
            return rec.result(Outcome.OK, f"stopped after {len(attempts)} messages: {exc}")
    except ProtocolError as exc:
        return rec.result(Outcome.MALFORMED, f"while sending sized messages: {exc}")
    finally:
        await probe.close()
    detail["sessions"] = probe.sessions
    _summarise(detail, search)
    return rec.result(Outcome.OK)


def _summarise(detail: PayloadDetail, search: _Search) -> None:
    lo, hi = search.largest_passed, search.smallest_failed
    detail["largest_passed"] = lo
    detail["smallest_failed"] = hi
    detail["exact"] = lo is not None and hi is not None and hi == lo + 1
    detail["file_passes"] = lo is not None and lo >= search.cap
    detail["largest_file"] = None if lo is None else largest_file_bytes(lo)
    if search.failure is not None:
        detail["failure"] = search.failure
    if search.inconclusive is not None:
        detail["inconclusive"] = search.inconclusive
