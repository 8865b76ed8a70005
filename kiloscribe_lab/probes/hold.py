"""``hold`` (``--deep``): a session kept open past one heartbeat, the way a client keeps it.

socket.io-client opens a session, CONNECTs, answers every PING with a PONG and otherwise stays
silent; a polling client always has a long-poll pending. Whatever on the path closes idle
connections (nginx ``proxy_read_timeout``, HAProxy ``timeout tunnel``/``timeout server``, an
ALB's idle timeout) cuts such a session before its first heartbeat when its limit is below
``pingInterval``; a server whose event loop is blocked sends its PINGs late. One probe per
transport:

* ``websocket``: opened polling-first and upgraded, as socket.io-client does (WebSocket first
  when the upgrade fails, as the SDK does);
* ``polling``: a long-poll always pending on one connection, our packets on another.

It CONNECTs to ``/`` with the configured key, or, without a key, to a namespace no server has
(every server answers it, and nothing of the application runs). It holds until the server's
advertised ``pingInterval`` + a margin has passed and a PING was seen, or, when none came, until
``pingInterval + pingTimeout`` (where socket.io-client gives up with "ping timeout"), always
within its own deadline, which ``--timeout`` sets (the hold counts). It records how long the
session lived and how it ended (a CLOSE frame's code and reason, a bare FIN, the status and body
of a long-poll a proxy answered: the fingerprint reads them), each PING's lateness and each
PONG's round trip.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

from kiloscribe_lab.details import EndJson, HoldDetail, PingJson
from kiloscribe_lab.errors import ProtocolError
from kiloscribe_lab.names import Outcome, SessionEnd, Transport
from kiloscribe_lab.outcomes import outcome_for_status
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
from kiloscribe_lab.probes.websocket import WsEnded
from kiloscribe_lab.probes.websocket import loop_time as _loop_time
from kiloscribe_lab.probes.wire import HttpResponse, evidence_headers
from kiloscribe_lab.results import ProbeResult
from kiloscribe_lab.session import (
    Closed,
    Event,
    Ping,
    PollingRefused,
    SioClient,
    SioConnected,
    SioConnectError,
)

MARGIN_MIN_S = 0.5
MARGIN_SHARE = 0.1  # of pingInterval: a PING a little late is still seen within the hold
CLOSE_S = 0.3  # the hold ends this long before the probe's deadline, to close in time
CLOSING_S = 0.15  # what saying goodbye may take (then the connections are aborted)


def margin_s(interval_s: float) -> float:
    return max(MARGIN_MIN_S, MARGIN_SHARE * interval_s)


def hold_until(opened_at: float, interval_ms: int, timeout_ms: int, pinged: bool, end_by: float) -> float:
    """When to stop holding (``time.monotonic()`` seconds): ``pingInterval`` + a margin after the
    open once a PING came; until then ``pingInterval + pingTimeout`` + the margin (a late PING
    is still awaited, as a client awaits it); never after ``end_by`` (the deadline's)."""
    interval = interval_ms / 1000
    wait = interval if pinged else interval + timeout_ms / 1000
    return min(opened_at + wait + margin_s(interval), end_by)


def _end_by(ctx: ProbeContext, rec: Recorder) -> float:
    return time.monotonic() + max(0.05, rec.time_left(ctx.timeout_s) - CLOSE_S)


def _auth(ctx: ProbeContext) -> tuple[str, dict[str, str] | None]:
    key = ctx.api_key()
    return ("/", {"apiKey": key}) if key else (CHECK_NAMESPACE, None)


class _Hold:
    """What one hold records, as it happens (a deadline keeps what was measured)."""

    def __init__(self, rec: Recorder, client: SioClient, opened_at: float) -> None:
        self.rec = rec
        self.detail = rec.detail_as(HoldDetail)
        self.client = client
        self.opened_at = opened_at
        self.pings: list[PingJson] = []
        self.detail["pings"] = self.pings
        self.end: EndJson | None = None
        opened = client.open
        if opened is not None:
            self.detail["pingInterval"] = opened.ping_interval
            self.detail["pingTimeout"] = opened.ping_timeout
            self.detail["planned_s"] = round(
                opened.ping_interval / 1000 + margin_s(opened.ping_interval / 1000), 3
            )

    def until(self, end_by: float) -> float:
        opened = self.client.open
        if opened is None:
            return end_by
        return hold_until(self.opened_at, opened.ping_interval, opened.ping_timeout, bool(self.pings), end_by)

    def events(self, events: list[Event]) -> list[Ping]:
        """Record what the events say; the PINGs to answer."""
        pings = []
        for event in events:
            if isinstance(event, Ping):
                at = event.at if event.at is not None else time.monotonic()
                late = None if event.late_ms is None else round(event.late_ms, 1)
                self.pings.append({"at_s": round(at - self.opened_at, 3), "late_ms": late})
                pings.append(event)
            elif isinstance(event, SioConnected):
                self.detail["connect_answer"] = "connected"
            elif isinstance(event, SioConnectError):
                self.detail["connect_answer"] = f"refused: {event.message or event.data!r}"
            elif isinstance(event, Closed):
                self.ended(SessionEnd.CLOSE_PACKET, time.monotonic(), idle_s=None)
        return pings

    def ended(
        self, how: SessionEnd, at: float, *, idle_s: float | None, more: EndJson | None = None
    ) -> EndJson:
        """The first end is the one: what follows it (our own close) is not evidence."""
        if self.end is None:
            end: EndJson = {"how": str(how), "at_s": round(at - self.opened_at, 3)}
            if idle_s is not None:
                end["idle_s"] = round(idle_s, 3)
            end.update(more or {})
            self.end = end
        return self.end

    def result(self) -> ProbeResult:
        now = time.monotonic()
        end = self.ended(SessionEnd.HELD, now, idle_s=None)
        self.detail["end"] = end
        self.detail["lived_s"] = end["at_s"]
        opened = self.client.open
        held = end["how"] == SessionEnd.HELD
        if opened is not None and held:
            planned = self.opened_at + opened.ping_interval / 1000 + margin_s(opened.ping_interval / 1000)
            self.detail["cut_short"] = not self.pings and now < planned
            due = self.client.next_ping_due
            if not self.pings and due is not None and now > due:
                self.detail["overdue_ms"] = round((now - due) * 1000, 1)
        if held:
            return self.rec.result(Outcome.OK)
        return self.rec.result(_outcome(end), f"the session ended after {end['at_s']:.1f} s: {_said(end)}")


def _outcome(end: EndJson) -> Outcome:
    status = end.get("status")
    if isinstance(status, int):
        return outcome_for_status(status) if status != 400 else Outcome.SESSION_UNKNOWN
    return Outcome.RESET


def _said(end: EndJson) -> str:
    how = end["how"]
    idle = f", {end['idle_s']:.1f} s after the last traffic" if "idle_s" in end else ""
    if how == SessionEnd.CLOSE_FRAME:
        return f"a CLOSE frame, code {end.get('code')}" + (f" {end['reason']!r}" if end.get("reason") else "")
    if how == SessionEnd.CONNECTION_CLOSED:
        return "the connection closed without a CLOSE frame (1006)" + idle
    if how == SessionEnd.RESET:
        return "the connection was reset" + idle
    if how == SessionEnd.CLOSE_PACKET:
        return "the server's Engine.IO CLOSE packet"
    if how in {SessionEnd.POLL_FAILED, SessionEnd.POST_FAILED}:
        method = "a long-poll" if how == SessionEnd.POLL_FAILED else "a POST"
        return f"{method} answered {end.get('status')}" + idle
    return str(how)


LAG_TICK_S = 0.05  # how often the hold checks its own event loop's punctuality


async def _loop_lag(detail: HoldDetail) -> None:
    """Our own event loop's worst lateness so far, in ``loop_lag_ms``, until cancelled: a PING
    we read late because this process was busy (a loaded machine, a hundred other probes) is not
    the server's lateness, and heartbeat-late subtracts it."""
    detail["loop_lag_ms"] = 0.0
    while True:
        began = time.monotonic()
        await asyncio.sleep(LAG_TICK_S)
        lag_ms = round((time.monotonic() - began - LAG_TICK_S) * 1000, 1)
        detail["loop_lag_ms"] = max(detail["loop_lag_ms"], lag_ms)


async def hold(ctx: ProbeContext, rec: Recorder, *, transport: Transport) -> ProbeResult:
    detail = rec.detail_as(HoldDetail)
    detail["transport"] = str(transport)
    namespace, auth = _auth(ctx)
    detail["namespace"] = namespace
    end_by = _end_by(ctx, rec)
    ticker = asyncio.ensure_future(_loop_lag(detail))
    try:
        if transport is Transport.WEBSOCKET:
            ws = await open_websocket(ctx, rec, upgrade=True, deadline=end_by)
            return await _hold_websocket(ws, rec, namespace, auth, end_by)
        poll = await open_polling(ctx, rec)
        return await _hold_polling(poll, rec, namespace, auth, end_by)
    except OpenFailed as exc:
        return rec.result(exc.outcome, f"no session to hold: {exc}")
    finally:
        ticker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await ticker


async def _hold_websocket(
    ws: WsSession, rec: Recorder, namespace: str, auth: dict[str, str] | None, end_by: float
) -> ProbeResult:
    detail = rec.detail_as(HoldDetail)
    detail["opened"] = ws.how
    if ws.upgrade_error:
        detail["upgrade_error"] = ws.upgrade_error
    rtts = ws.reader.rtts_ms
    detail["pong_rtt_ms"] = rtts
    h = _Hold(rec, ws.client, ws.opened_at)
    rec.clock.current = "holding the WebSocket session"
    try:
        # Every wait within the deadline: a server that stops answering ends the hold at it.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout_at(_loop_time(end_by)):
                await ws.send(ws.client.connect(namespace, auth))
                while h.end is None:
                    left = h.until(end_by) - time.monotonic()
                    if left <= 0:
                        break
                    try:
                        events, ended = await ws.next(left)
                    except TimeoutError:
                        continue
                    for _ in h.events(events):
                        await ws.send(ws.client.pong(now=time.monotonic()))
                        await ws.reader.ping()  # its PONG times the round trip the heartbeat travels
                    if ended is not None:
                        _ws_end(h, ws, ended)
        detail["pong_rtt_ms"] = [round(ms, 1) for ms in rtts]
        return h.result()
    except ProtocolError as exc:
        return rec.result(Outcome.MALFORMED, f"while holding the session: {exc}")
    finally:
        await close_quietly(ws, CLOSING_S)


def _ws_end(h: _Hold, ws: WsSession, ended: WsEnded) -> None:
    idle = ended.at - ws.reader.last_traffic
    if ended.frame:
        h.ended(
            SessionEnd.CLOSE_FRAME, ended.at, idle_s=idle, more={"code": ended.code, "reason": ended.reason}
        )
    else:
        how = SessionEnd.RESET if ended.reset else SessionEnd.CONNECTION_CLOSED
        h.ended(how, ended.at, idle_s=idle)


async def _hold_polling(
    poll: PollSession, rec: Recorder, namespace: str, auth: dict[str, str] | None, end_by: float
) -> ProbeResult:
    detail = rec.detail_as(HoldDetail)
    detail["opened"] = "polling"
    detail["pong_rtt_ms"] = []
    h = _Hold(rec, poll.client, poll.opened_at)
    rec.clock.current = "holding the polling session"
    long_poll: asyncio.Task[tuple[HttpResponse, list[Event]]] | None = None
    try:
        # Every wait within the deadline: a server that stops answering ends the hold at it.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout_at(_loop_time(end_by)):
                response, events = await poll.send(poll.client.connect(namespace, auth))
                if _refused(h, poll, response, events, "POST"):
                    return h.result()
                while h.end is None:
                    left = h.until(end_by) - time.monotonic()
                    if left <= 0:
                        break
                    if long_poll is None:
                        sent = time.monotonic()
                        long_poll = asyncio.ensure_future(poll.poll())
                    done, _ = await asyncio.wait({long_poll}, timeout=left)
                    if not done:
                        continue
                    task, long_poll = long_poll, None
                    try:
                        response, events = task.result()
                    except (ConnectionResetError, BrokenPipeError, asyncio.IncompleteReadError) as exc:
                        now = time.monotonic()
                        lost: EndJson = {"method": "GET", "error": str(exc)}
                        h.ended(SessionEnd.CONNECTION_CLOSED, now, idle_s=now - sent, more=lost)
                        break
                    if _refused(h, poll, response, events, "GET", waited_s=time.monotonic() - sent):
                        break
                    for _ in h.events(events):
                        response, answer = await poll.send(poll.client.pong(now=time.monotonic()))
                        if _refused(h, poll, response, answer, "POST"):
                            break
        detail["pong_rtt_ms"] = [round(ms, 1) for ms in poll.post_rtts_ms[1:]]  # the CONNECT's is not one
        return h.result()
    except ProtocolError as exc:
        return rec.result(Outcome.MALFORMED, f"while holding the session: {exc}")
    finally:
        if long_poll is not None:
            long_poll.cancel()
            with contextlib.suppress(BaseException):
                await long_poll
        await close_quietly(poll, CLOSING_S)


def _refused(
    h: _Hold,
    poll: PollSession,
    response: HttpResponse,
    events: list[Event],
    method: str,
    *,
    waited_s: float | None = None,
) -> bool:
    """A polling answer other than 200 ends the hold: it is kept as the evidence (the answer a
    proxy gave is the fingerprint of who cut the session)."""
    if not any(isinstance(e, PollingRefused) for e in events):
        return False
    how = SessionEnd.POLL_FAILED if method == "GET" else SessionEnd.POST_FAILED
    now = time.monotonic()
    idle = waited_s if waited_s is not None else now - poll.last_traffic
    answer: EndJson = {"status": response.status, "method": method, "body": h.rec.excerpt(response.body, 120)}
    h.ended(how, now, idle_s=idle, more=answer)
    rec = h.rec
    rec.status = response.status
    rec.headers = evidence_headers(response.headers)
    rec.detail["header_names"] = list(response.header_names)
    rec.detail["status_line"] = response.status_line
    rec.detail["body"] = rec.excerpt(response.body)
    return True
