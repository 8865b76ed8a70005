"""Socket.IO probes through python-socketio's ``AsyncClient``, the way an SDK user connects.

* ``socketio_connect``: each transport × credential (configured key, a deliberately invalid
  key, no key). It finishes as soon as the outcome is known: on ``connect``, or on the
  ``connect_error`` event — python-socketio's ``connect()`` over polling does not return on
  a refused namespace (the contract's 31 s quirk), so we never wait on it alone.
* ``sdk_flow``: SDK 2.0.9's sequence — 3 s websocket-only detection, the 10 s websocket
  connect, ``start-inscription`` with its ack and progress events — and the exact message
  the SDK's user would see.
* ``connect_stats``: N attempts with exponential backoff between failures; success rate and
  latency p50/p95/max, by backend where the backend names itself.

python-socketio hides why a transport failed ("Connection error"), so an aiohttp trace
records each HTTP exchange and exception: that is the evidence behind the outcome.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import socket
import statistics
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import aiohttp.abc
import aiohttp.client_exceptions
import aiohttp.http_exceptions
import engineio.exceptions
import socketio
import socketio.exceptions
import yarl

from kiloscribe_lab import protocol
from kiloscribe_lab.credentials import INVALID_KEY
from kiloscribe_lab.details import (
    ConnectRun,
    ConnectStatsDetail,
    Exchange,
    Hop,
    SdkFlowDetail,
    SdkStepJson,
    SioAttemptDetail,
    SocketioConnectDetail,
)
from kiloscribe_lab.errors import ProtocolError
from kiloscribe_lab.names import (
    BACKEND_HEADERS,
    ContractEvent,
    Credential,
    FlowStep,
    Outcome,
    RedirectRefusal,
    Transport,
)
from kiloscribe_lab.outcomes import outcome_for_status
from kiloscribe_lab.probes.base import ProbeContext, Recorder
from kiloscribe_lab.probes.wire import (
    MAX_INFORMATIONAL,
    AddrInfo,
    ca_path,
    classify_exception,
    evidence_headers,
    resolve_host,
    ssl_context,
)
from kiloscribe_lab.results import ProbeResult

EVENTS_WAIT_S = 2.0  # after an ack, how long to collect inscription events
CLEANUP_S = 0.2  # how long closing may take after the outcome is known
SDK_DETECT_S = 3.0  # detectBestConnection's websocket-only probe
SDK_CONNECT_S = 10.0  # connectWebSocket's own timer
SDK_ACK_S = 60.0  # how long inscribeViaWebSocket waits for start-inscription's ack
# sdk_flow keeps this much of its deadline for the ack (a third of what is left, when that is
# less), so a slow connect cannot leave the inscription a window too short to mean anything.
ACK_WINDOW_S = 1.0
BACKOFF_BASE_S = 0.1
BACKOFF_CAP_S = 2.0
INSCRIPTION_PROBE_REQUEST: dict[str, Any] = {
    # A dry-run request: no transaction is signed or executed from it.
    "holderId": "0.0.1",
    "mode": "file",
    "network": "testnet",
    "onlyJSONCollection": 0,
    "creator": "kiloscribe-lab",
    "description": "kiloscribe-lab connectivity probe",
    "fileStandard": "1",
    "metadataObject": {},
    "jsonFileURL": "",
    "fileURL": "https://example.invalid/kiloscribe-lab-probe.png",
}


class PinnedResolver(aiohttp.abc.AbstractResolver):
    """curl's ``--resolve`` for aiohttp: pinned host:port pairs, the system for the rest.

    Used for every session, pins or not: the system lookup runs in a daemon thread of ours
    (``wire.resolve_host``), not in an executor that a hung resolver would keep alive."""

    def __init__(self, pins: dict[str, str] | None = None) -> None:
        self.pins = pins or {}

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[aiohttp.abc.ResolveResult]:
        pinned = self.pins.get(f"{host}:{port}")
        if pinned is None:
            return _resolve_results(host, await resolve_host(host, port, family=family, flags=_AI_ADDRCONFIG))
        fam = socket.AF_INET6 if ":" in pinned else socket.AF_INET
        return [
            {
                "hostname": host,
                "host": pinned,
                "port": port,
                "family": fam,
                "proto": 0,
                "flags": socket.AI_NUMERICHOST,
            }
        ]

    async def close(self) -> None:
        pass


# aiohttp.ThreadedResolver's flags: only the address families this host has configured.
_AI_ADDRCONFIG = socket.AI_ADDRCONFIG & getattr(socket, "AI_MASK", socket.AI_ADDRCONFIG)
_NUMERIC = socket.AI_NUMERICHOST | socket.AI_NUMERICSERV


def _resolve_results(host: str, infos: list[AddrInfo]) -> list[aiohttp.abc.ResolveResult]:
    """getaddrinfo's answer as aiohttp wants it (what ``aiohttp.ThreadedResolver`` returns)."""
    results: list[aiohttp.abc.ResolveResult] = []
    for fam, _, proto, _, address in infos:
        if fam == socket.AF_INET6:
            if len(address) < 3:  # no IPv6 in this Python build
                continue
            if address[3]:  # a link-local scope: numeric, so no lookup (no blocking)
                name, service = socket.getnameinfo(address, socket.NI_NUMERICHOST | socket.NI_NUMERICSERV)
                resolved, port = name, int(service)
            else:
                resolved, port = address[0], address[1]
        elif fam == socket.AF_INET:
            resolved, port = address[0], address[1]
        else:
            continue
        results.append(
            {
                "hostname": host,
                "host": resolved,
                "port": port,
                "family": fam,
                "proto": proto,
                "flags": _NUMERIC,
            }
        )
    return results


# A probe's session reads evidence, never content: an Engine.IO polling answer or a WebSocket
# message longer than this (engine.io's own maxHttpBufferSize default is 1 MB) is malformed.
MAX_MESSAGE = protocol.DEFAULT_MAX_FRAME_SIZE
_WEB_SCHEMES = {"http": "http", "https": "https", "ws": "http", "wss": "https"}


def _origin_of(url: yarl.URL) -> str:
    """``url``'s origin, WebSocket schemes as their HTTP twins (one server, one origin)."""
    scheme = _WEB_SCHEMES.get(url.scheme, url.scheme)
    default = 443 if scheme == "https" else 80
    host = f"[{url.host}]" if url.host and ":" in url.host else str(url.host)
    return f"{scheme}://{host}" + ("" if url.port in {None, default} else f":{url.port}")


def _origin_path(url: yarl.URL) -> str:
    # Engine.IO adds a timestamp (t=...) to every request: a loop is the same path again.
    return _origin_of(url) + url.path


class RedirectRefused(aiohttp.ClientError):
    """A redirect no client should follow (a loop, another origin, too many hops, no http(s)
    URL), refused by ``Trace``; a ClientError, so python-engineio handles it as a failed request."""


class BodyTooLarge(aiohttp.ClientPayloadError):
    """A response body over its limit (``BoundedResponse``)."""


class TooManyInformational(aiohttp.ClientError):
    """More 1xx answers before the real one than any server sends (``BoundedResponse.start``)."""


class BoundedResponse(aiohttp.ClientResponse):
    """aiohttp's response, whose ``read()`` (and so ``text()``, ``json()``) stops at ``limit``
    bytes: python-engineio reads every polling answer whole, and a 200 MB one must cost
    nothing. Flow control keeps aiohttp's own buffer small meanwhile. Its head is bounded too:
    aiohttp skips 1xx answers in a loop that never yields while the parser has more queued, so
    a flood of ``100 Continue`` held the event loop past every deadline."""

    limit = MAX_MESSAGE

    async def start(self, connection: aiohttp.connector.Connection) -> aiohttp.ClientResponse:
        protocol = connection.protocol
        if protocol is None:
            return await super().start(connection)
        heads = 0
        read = protocol.read

        async def counted() -> Any:
            nonlocal heads
            heads += 1
            if heads > MAX_INFORMATIONAL + 1:  # the real answer is the one after them
                raise TooManyInformational(f"more than {MAX_INFORMATIONAL} informational (1xx) answers")
            return await read()

        # Shadowed on this connection's protocol for this head only (ClientResponse.start reads
        # heads through it and offers no other hook).
        protocol.read = counted  # type: ignore[method-assign]
        try:
            return await super().start(connection)
        finally:
            del protocol.read

    async def read(self) -> bytes:
        if self._body is None:  # aiohttp's cache of the body: filled here, bounded
            chunks: list[bytes] = []
            size = 0
            try:
                while chunk := await self.content.readany():
                    size += len(chunk)
                    if size > self.limit:
                        raise BodyTooLarge(f"a response body larger than the {self.limit}-byte limit")
                    chunks.append(chunk)
            except BaseException:
                self.close()
                raise
            self._body = b"".join(chunks)
        return await super().read()


@dataclass
class Trace:
    """What aiohttp saw under python-socketio: phases, exchanges, the last exception."""

    start: float = field(default_factory=time.perf_counter)
    dns_ms: float | None = None
    connect_ms: float | None = None
    first_byte_ms: float | None = None
    exchanges: list[Exchange] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)
    exception: BaseException | None = None
    # The target's origin (http/https) and how many redirects a request may follow within it.
    origin: str = ""
    max_redirects: int = 5
    redirects: list[Hop] = field(default_factory=list)
    redirect_refused: RedirectRefusal | None = None
    # What our own boundary refused (an over-size body or message, a WebSocket that broke its
    # protocol): it decides the outcome, whatever python-socketio made of it.
    refused: tuple[Outcome, str] | None = None
    _chain: list[str] = field(default_factory=list)
    # Set when an exchange fails after the handshake: python-socketio would keep waiting
    # for its namespace (a polling session lost to another backend), we need not.
    failed: asyncio.Event = field(default_factory=asyncio.Event)
    _marks: dict[str, float] = field(default_factory=dict)

    def config(self) -> aiohttp.TraceConfig:
        tc = aiohttp.TraceConfig()

        async def dns_start(*_: Any) -> None:
            self._marks["dns"] = time.perf_counter()

        async def dns_end(*_: Any) -> None:
            if self.dns_ms is None and "dns" in self._marks:
                self.dns_ms = (time.perf_counter() - self._marks["dns"]) * 1000

        async def conn_start(*_: Any) -> None:
            self._marks["connect"] = time.perf_counter()

        async def conn_end(*_: Any) -> None:
            if self.connect_ms is None and "connect" in self._marks:
                self.connect_ms = (time.perf_counter() - self._marks["connect"]) * 1000

        async def req_start(_s: Any, _c: Any, params: aiohttp.TraceRequestStartParams) -> None:
            self._marks["request"] = time.perf_counter()
            self._chain = [_origin_path(params.url)]

        async def req_redirect(_s: Any, _c: Any, params: aiohttp.TraceRequestRedirectParams) -> None:
            self._follow(params.url, params.response)

        async def headers_sent(*_: Any) -> None:
            # first_byte counts from the request on the wire, as the raw-stream probes do: not
            # from request start, which includes opening the connection (CONNECT and TLS too).
            self._marks.setdefault("sent", time.perf_counter())

        async def req_end(_s: Any, _c: Any, params: aiohttp.TraceRequestEndParams) -> None:
            response = params.response
            began = self._marks.get("sent", self._marks.get("request"))
            if self.first_byte_ms is None and began is not None:
                self.first_byte_ms = (time.perf_counter() - began) * 1000
            backend = next(
                (response.headers.get(h) for h in BACKEND_HEADERS if response.headers.get(h)), None
            )
            transport = "websocket" if "transport=websocket" in str(params.url) else "polling"
            self.exchanges.append(
                {
                    "method": params.method,
                    "transport": transport,
                    "status": response.status,
                    "backend": backend,
                }
            )
            self.headers = evidence_headers(response.headers.items())
            if response.status >= 400:
                self.failed.set()

        async def req_exception(_s: Any, _c: Any, params: aiohttp.TraceRequestExceptionParams) -> None:
            self.exception = params.exception

        tc.on_dns_resolvehost_start.append(dns_start)
        tc.on_dns_resolvehost_end.append(dns_end)
        tc.on_connection_create_start.append(conn_start)
        tc.on_connection_create_end.append(conn_end)
        tc.on_request_start.append(req_start)
        tc.on_request_headers_sent.append(headers_sent)
        tc.on_request_end.append(req_end)
        tc.on_request_exception.append(req_exception)
        tc.on_request_redirect.append(req_redirect)
        return tc

    def refuse(self, outcome: Outcome, message: str) -> None:
        if self.refused is None:  # the first violation is the one that ended the exchange
            self.refused = (outcome, message)
        # python-socketio would go on waiting for its namespace until its own timeout: we need not.
        self.failed.set()

    def _follow(self, url: yarl.URL, response: aiohttp.ClientResponse) -> None:
        """aiohttp is about to follow ``response``'s Location: recorded, and refused (raising
        RedirectRefused, which aiohttp passes up) when no client should follow it."""
        location = response.headers.get("location")
        self.redirects.append({"url": str(url), "status": response.status, "location": location})
        why: RedirectRefusal | None = None
        message = ""
        try:
            nxt = url.join(yarl.URL(location or ""))
        except ValueError:
            nxt = None
        if nxt is None or nxt.scheme not in _WEB_SCHEMES or not nxt.host:
            why, message = RedirectRefusal.UNFOLLOWABLE, "a redirect to a location that is no http(s) URL"
        elif _origin_of(nxt) != self.origin:
            why, message = RedirectRefusal.CROSS_ORIGIN, f"a redirect to another origin, {_origin_of(nxt)}"
        elif _origin_path(nxt) in self._chain:
            why, message = RedirectRefusal.LOOP, f"a redirect loop back to {_origin_path(nxt)}"
        elif len(self._chain) > self.max_redirects:
            why, message = RedirectRefusal.TOO_MANY, f"more than {self.max_redirects} redirects"
        if why is None and nxt is not None:
            self._chain.append(_origin_path(nxt))
            return
        self.redirect_refused = why
        self.refuse(Outcome.REDIRECT, f"{message}: not followed")
        response.close()
        raise RedirectRefused(message)


class GuardedWebSocket:
    """The WebSocket python-engineio gets: aiohttp's, with every error message and a first
    message that is no Engine.IO packet (a close, a ping) recorded in our words first."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, trace: Trace) -> None:
        self.ws = ws
        self.trace = trace
        self.received = 0

    async def send_str(self, data: str) -> None:
        await self.ws.send_str(data)

    async def send_bytes(self, data: bytes) -> None:
        await self.ws.send_bytes(data)

    async def close(self) -> bool:
        return await self.ws.close()

    async def receive(self) -> aiohttp.WSMessage:
        msg = await self.ws.receive()
        first = self.received == 0
        self.received += 1
        if msg.type is aiohttp.WSMsgType.ERROR:
            self.trace.refuse(Outcome.MALFORMED, _websocket_error(msg.data))
        elif first and msg.type not in {aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY}:
            if msg.type is aiohttp.WSMsgType.CLOSE:
                what = f"a close frame (code {msg.data})"
            elif msg.type in {aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING}:
                what = "the connection closed"
            else:
                what = f"a {msg.type.name.lower()} frame"
            self.trace.refuse(
                Outcome.PROTOCOL_MISMATCH,
                f"not Engine.IO: 101, then {what} instead of an OPEN packet 0{{...}}",
            )
        return msg


def _websocket_error(error: object) -> str:
    code = getattr(error, "code", None)
    if code == aiohttp.WSCloseCode.MESSAGE_TOO_BIG:
        return f"a WebSocket message larger than the {MAX_MESSAGE}-byte limit"
    if code == aiohttp.WSCloseCode.INVALID_TEXT:
        return "a WebSocket text frame that is not UTF-8 (RFC 6455 §5.6)"
    return "WebSocket frames that break RFC 6455 (reserved bits, opcodes or lengths)"


# aiohttp's words when a 101 does not complete the handshake (its WSServerHandshakeError), as the
# rule of RFC 6455 §4.1 that was broken. "Invalid response status" is no 101 at all: a refusal.
_HANDSHAKE_FAILURES = {
    "Invalid upgrade header": "101 without Upgrade: websocket",
    "Invalid connection header": "101 without Connection: Upgrade",
    "Invalid challenge response": "101 with a Sec-WebSocket-Accept that does not match the key",
}


class BoundedHttp:
    """What python-engineio is given as its ``http_session``: an aiohttp session whose every
    exchange is bounded (bodies and messages at MAX_MESSAGE, heads at aiohttp's 8190-byte
    lines and 128 headers) and redirect-guarded (``Trace``), with what broke said in our words.
    It offers what python-engineio uses of a ClientSession, nothing more."""

    def __init__(self, session: aiohttp.ClientSession, trace: Trace) -> None:
        self.session = session
        self.trace = trace

    @property
    def closed(self) -> bool:
        return self.session.closed

    @property
    def cookie_jar(self) -> aiohttp.abc.AbstractCookieJar:
        return self.session.cookie_jar

    async def close(self) -> None:
        await self.session.close()

    async def get(self, url: str, **options: Any) -> aiohttp.ClientResponse:
        return await self._request("GET", url, options)

    async def post(self, url: str, **options: Any) -> aiohttp.ClientResponse:
        return await self._request("POST", url, options)

    async def _request(self, method: str, url: str, options: dict[str, Any]) -> aiohttp.ClientResponse:
        try:
            response = await self.session.request(
                method, url, max_redirects=self.trace.max_redirects + 2, **options
            )
        except TooManyInformational as exc:
            self.trace.refuse(Outcome.MALFORMED, str(exc))
            raise
        try:
            await response.read()  # bounded (BoundedResponse): later reads get this body
        except BodyTooLarge:
            self.trace.refuse(
                Outcome.MALFORMED, f"an Engine.IO polling answer larger than the {MAX_MESSAGE}-byte limit"
            )
            raise
        except aiohttp.ClientError as exc:
            # A body cut short: aiohttp's trace saw a complete request, so the failure is ours to keep.
            self.trace.exception = exc
            raise
        return response

    async def ws_connect(self, url: str, **options: Any) -> GuardedWebSocket:
        options["max_msg_size"] = MAX_MESSAGE
        try:
            ws = await self.session.ws_connect(url, **options)
        except TooManyInformational as exc:
            self.trace.refuse(Outcome.MALFORMED, str(exc))
            raise
        except aiohttp.WSServerHandshakeError as exc:
            broken = _HANDSHAKE_FAILURES.get(exc.message)
            if exc.status == 101:
                self.trace.refuse(
                    Outcome.MALFORMED, broken or "a 101 that does not complete the WebSocket handshake"
                )
            raise
        return GuardedWebSocket(ws, self.trace)


def http_session(ctx: ProbeContext, trace: Trace) -> BoundedHttp:
    """An aiohttp session that travels as the network profile says, bounded (``BoundedHttp``).
    The proxy is chosen here (the profile's, else the environment's by curl's rules), never by
    aiohttp's ``trust_env``."""
    network = ctx.network
    proxy = network.proxy_for(ctx.endpoint.host, tls=ctx.endpoint.tls)
    connector = aiohttp.TCPConnector(
        ssl=ssl_context(ca_path(ctx.options.ca_bundle, network), ()),
        resolver=PinnedResolver(dict(network.resolve)),  # ours always: see PinnedResolver
    )
    trace.origin = ctx.endpoint.origin
    trace.max_redirects = ctx.options.max_redirects
    return BoundedHttp(
        aiohttp.ClientSession(
            connector=connector,
            proxy=None if proxy is None else proxy.url,  # aiohttp sends its user:password itself
            headers=dict(network.headers),
            trace_configs=[trace.config()],
            response_class=BoundedResponse,
        ),
        trace,
    )


class Ack(enum.StrEnum):
    """What became of the start-inscription an attempt emitted after its connect."""

    ANSWERED = "answered"
    NOT_IN_TIME = "not-in-time"  # no ack within the step's own budget
    DISCONNECTED = "disconnected"  # the session ended before an ack


@dataclass
class SioAttempt:
    outcome: Outcome  # of the connect: an inscription's fate is ``ack_state``'s, never this
    error: str | None
    handshake_ms: float | None
    transport: str | None = None
    server_message: str | None = None
    backend: str | None = None
    ack: Any = None
    ack_state: Ack | None = None  # None: no start-inscription was emitted
    ack_ms: float | None = None
    ack_wait_s: float | None = None  # the inscription's own budget
    events: list[str] = field(default_factory=list)
    trace: Trace = field(default_factory=Trace)


def translate(exc: BaseException) -> BaseException:
    """aiohttp's exception as what it means (the one boundary where they are translated): the
    OS error it wraps, a reset, or a ProtocolError naming the rule the server broke."""
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return exc.certificate_error
    if isinstance(exc, aiohttp.ClientConnectorError):
        return exc.os_error
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return ConnectionResetError("the server closed the connection without a complete answer")
    if isinstance(exc, aiohttp.ClientPayloadError) and not isinstance(exc, BodyTooLarge):
        if "not enough data" in str(exc).lower():
            return ConnectionResetError("the server closed the connection in the middle of the response body")
        return ProtocolError("malformed HTTP response body (its length or chunked coding)")
    if isinstance(exc, aiohttp.ClientResponseError) and isinstance(
        exc.__cause__, aiohttp.http_exceptions.HttpProcessingError
    ):
        return ProtocolError(f"malformed HTTP/1.1 response: {_parser_reason(exc.__cause__)}")
    return exc


def _parser_reason(exc: aiohttp.http_exceptions.HttpProcessingError) -> str:
    """The rule aiohttp's parser found broken, in our words (its own quote the server's bytes;
    the exception reaching us is a plain HttpProcessingError, so its message is all there is)."""
    text = str(exc.message).lower()
    for needle, reason in (
        ("bad status line", "the answer is not HTTP (no HTTP/1.x status line)"),
        ("got more than", "a status or header line longer than 8190 bytes"),
        ("too many headers", "more than 128 headers"),
        ("header", "a header line that is not valid HTTP"),
        ("content-length", "an invalid Content-Length"),
        ("chunk", "invalid chunked transfer coding"),
    ):
        if needle in text:
            return reason
    return "the answer breaks HTTP/1.1 message framing"


def _transport_failure(trace: Trace, transport: str) -> tuple[Outcome, str] | None:
    """The failure the transport's exception or the last HTTP status says, if either does."""
    if trace.exception is not None:
        if isinstance(trace.exception, RedirectRefused):
            return Outcome.REDIRECT, f"{trace.exception}: not followed"
        if isinstance(trace.exception, aiohttp.TooManyRedirects):
            return Outcome.REDIRECT, "too many redirects: not followed"
        if isinstance(trace.exception, aiohttp.client_exceptions.RedirectClientError):
            return Outcome.REDIRECT, "a redirect to a location that is no http(s) URL: not followed"
        classified = classify_exception(translate(trace.exception))
        if classified is not None:
            return classified
    statuses = [e["status"] for e in trace.exchanges]
    if statuses:
        last = statuses[-1]
        said = f"the {transport} handshake was answered HTTP {last}"
        if last in {502, 503, 504}:
            return Outcome.UPSTREAM_ERROR, said
        if last == 400 and any(s == 200 for s in statuses[:-1]):
            return Outcome.SESSION_UNKNOWN, f"{transport} failed (session lost: HTTP 400 after HTTP 200)"
        if transport == "websocket" and last != 101 and (200 <= last < 300 or 400 <= last < 500):
            return Outcome.BLOCKED, f"the WebSocket handshake was answered HTTP {last}"
        if last != 101 and not 200 <= last < 300:
            return outcome_for_status(last), said
    return None


# What python-engineio raises when the server's bytes are not Engine.IO at all (a plain
# WebSocket server's greeting "hello" -> ValueError: invalid literal for int()): the library
# fails parsing, it is not a transport failure.
_PARSE_FAILURES = (ValueError, KeyError, IndexError, TypeError)


def _connect_failure(trace: Trace, exc: BaseException | None, transport: str) -> tuple[Outcome, str]:
    """Why a connect failed, in our words. What our boundary refused comes first, then the
    transport's failure, then the HTTP statuses; python-engineio's own exception text (its
    TypeError on a WebSocket error, "Connection error") is never the explanation."""
    if trace.refused is not None:
        return trace.refused
    if isinstance(exc, ProtocolError):
        return Outcome.MALFORMED, str(exc)
    failure = _transport_failure(trace, transport)
    if failure is not None:
        return failure
    text = str(exc) if isinstance(exc, socketio.exceptions.ConnectionError) else ""
    if isinstance(exc, _PARSE_FAILURES) or "OPEN packet" in text or "Unexpected response" in text:
        return (
            Outcome.PROTOCOL_MISMATCH,
            f"not Engine.IO: python-socketio could not read the server's {transport} answer as Engine.IO",
        )
    return Outcome.RESET, f"the {transport} connection ended without a Socket.IO answer"


async def attempt(
    ctx: ProbeContext,
    rec: Recorder,
    *,
    transports: list[str],
    auth: dict[str, Any] | None,
    budget_s: float,
    inscribe_until: float | None = None,
) -> SioAttempt:
    """One python-socketio connect, bounded by ``budget_s``; with ``inscribe_until`` (a
    ``time.monotonic()`` deadline), then a start-inscription with the time left until then as
    its own budget: a connect that worked is never reported as a connect timeout because the
    application did not acknowledge."""
    trace = Trace()
    session = http_session(ctx, trace)
    client = socketio.AsyncClient(reconnection=False, http_session=session)
    refused: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    events: list[str] = []
    complete = asyncio.Event()

    @client.event  # type: ignore[untyped-decorator]
    async def connect_error(data: Any) -> None:
        if not refused.done():
            # Was Engine.IO open? python-socketio also hands an HTTP error's JSON body (a
            # gateway's 403 {"message": "Forbidden"}) to connect_error: that is no refusal by
            # a Socket.IO server, and must not read as one.
            refused.set_result((data, getattr(client.eio, "state", None) == "connected"))

    @client.on(ContractEvent.PROGRESS)  # type: ignore[untyped-decorator]
    async def on_progress(data: Any) -> None:
        events.append(ContractEvent.PROGRESS)

    @client.on(ContractEvent.COMPLETE)  # type: ignore[untyped-decorator]
    async def on_complete(data: Any) -> None:
        events.append(ContractEvent.COMPLETE)
        complete.set()

    @client.on(ContractEvent.ERROR)  # type: ignore[untyped-decorator]
    async def on_error(data: Any) -> None:
        events.append(ContractEvent.ERROR)
        complete.set()

    url = ctx.endpoint.origin
    began = time.perf_counter()
    rec.clock.current = f"socket.io connect ({'/'.join(transports)})"
    connect = asyncio.ensure_future(
        client.connect(
            url, auth=auth, transports=transports, socketio_path="socket.io", wait_timeout=budget_s
        )
    )
    # Its failure, if any, is read below or already in the result: never left unretrieved.
    connect.add_done_callback(lambda f: f.cancelled() or f.exception())
    result = SioAttempt(Outcome.TIMEOUT, None, None, trace=trace)
    try:
        try:
            async with asyncio.timeout(budget_s):
                failed = asyncio.ensure_future(trace.failed.wait())
                try:
                    await asyncio.wait({connect, refused, failed}, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    failed.cancel()
        except TimeoutError:
            result.outcome = Outcome.TIMEOUT
            result.error = f"no answer within {budget_s:g} s (while {rec.clock.current})"
        else:
            elapsed_ms = (time.perf_counter() - began) * 1000
            data, engineio_open = refused.result() if refused.done() else (None, False)
            message = data.get("message") if isinstance(data, dict) else None
            if isinstance(message, str) and engineio_open:
                # The server refused the namespace with its own words: the whole path works.
                result.outcome, result.error, result.server_message = (
                    Outcome.AUTH_REJECTED,
                    message,
                    message,
                )
            elif connect.done() and connect.exception() is None:
                result.outcome = Outcome.OK
                result.transport = client.transport()
            else:
                exc = connect.exception() if connect.done() else None
                result.outcome, result.error = _connect_failure(trace, exc, transports[0])
            if result.outcome in {Outcome.OK, Outcome.AUTH_REJECTED}:
                # Only a handshake that happened has a duration (DESIGN: else null).
                result.handshake_ms = elapsed_ms
        if result.outcome is Outcome.OK and inscribe_until is not None:
            result.ack_wait_s = max(0.05, inscribe_until - time.monotonic())
            await _inscribe(client, rec, result, complete, result.ack_wait_s)
    finally:
        # Copied here, not later: an outer deadline may cancel us, and what was measured stays.
        rec.clock.phases.update(
            {
                k: v
                for k, v in (
                    ("dns", trace.dns_ms),
                    ("connect", trace.connect_ms),
                    ("first_byte", trace.first_byte_ms),
                )
                if v is not None
            }
        )
        result.events = events
        result.backend = next((e["backend"] for e in reversed(trace.exchanges) if e["backend"]), None)
        await _close(client, session, connect)
    return result


async def _inscribe(
    client: socketio.AsyncClient, rec: Recorder, result: SioAttempt, complete: asyncio.Event, budget_s: float
) -> None:
    """start-inscription on the connected client, under ``budget_s`` of its own."""
    rec.clock.current = ContractEvent.START_INSCRIPTION
    began = time.perf_counter()
    try:
        async with asyncio.timeout(budget_s):
            # Our timeout governs; the library's own is only a backstop beyond it.
            result.ack = await client.call(
                ContractEvent.START_INSCRIPTION, INSCRIPTION_PROBE_REQUEST, timeout=budget_s + 1
            )
            result.ack_state = Ack.ANSWERED
            result.ack_ms = (time.perf_counter() - began) * 1000
            if isinstance(result.ack, dict) and result.ack.get("success"):
                # Progress is evidence enough; a real job may take minutes to complete.
                rec.clock.current = "waiting for inscription events"
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(complete.wait(), EVENTS_WAIT_S)
    except (TimeoutError, socketio.exceptions.TimeoutError):
        if result.ack_state is None:
            result.ack_state = Ack.NOT_IN_TIME
    except (socketio.exceptions.BadNamespaceError, socketio.exceptions.DisconnectedError):
        result.ack_state = Ack.DISCONNECTED


# What closing a python-socketio client and its aiohttp session can raise: none of it is
# evidence, and none of it may replace the result already measured.
_CLOSE_ERRORS = (
    TimeoutError,
    OSError,
    aiohttp.ClientError,
    socketio.exceptions.SocketIOError,
    engineio.exceptions.EngineIOError,
)


def _being_cancelled() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


async def _close(client: socketio.AsyncClient, session: BoundedHttp, connect: asyncio.Future[Any]) -> None:
    """Close on every path, bounded: python-engineio's polling disconnect waits for its
    pending long-poll, so we give it CLEANUP_S and then close the HTTP session under it.

    A cancellation of this task (a deadline, Ctrl-C) lets the remaining steps run, each
    bounded, and is raised again at the end; a CancelledError from python-engineio's own
    tasks (its read loop, cancelled under ``disconnect()``) is not ours and is not raised.
    """
    connect.cancel()
    cancelled: asyncio.CancelledError | None = None
    for closing in (client.disconnect, session.close):
        try:
            await asyncio.wait_for(closing(), CLEANUP_S)
        except asyncio.CancelledError as exc:
            if _being_cancelled():
                cancelled = exc
        except _CLOSE_ERRORS:
            pass
    # Anything python-engineio still runs for this client is cancelled, not awaited.
    for task in (
        getattr(client.eio, "read_loop_task", None),
        getattr(client.eio, "write_loop_task", None),
    ):
        if isinstance(task, asyncio.Task) and not task.done():
            task.cancel()
    if cancelled is not None:
        raise cancelled


def inner_budget(deadline_s: float) -> float:
    """Leave room for cleanup inside the probe's deadline, so our own timeout classifies."""
    return max(0.05, deadline_s - 2 * CLEANUP_S - 0.05)


def budget_of(ctx: ProbeContext, rec: Recorder) -> float:
    """The probe's own budget: its deadline as ``bounded`` enforces it (a run's backstop may
    have shortened it), less room for cleanup."""
    return inner_budget(rec.time_left(ctx.timeout_s))


def _fill(rec: Recorder, res: SioAttempt) -> None:
    t = res.trace
    detail = rec.detail_as(SioAttemptDetail)
    if res.handshake_ms is not None:
        rec.clock.phases["handshake"] = res.handshake_ms
    rec.headers = dict(t.headers)
    failing = [e["status"] for e in t.exchanges if e["status"] >= 400]
    if failing and res.outcome is not Outcome.OK:
        rec.status = failing[0]
    elif t.exchanges:
        rec.status = t.exchanges[-1]["status"]
    else:  # aiohttp's trace ends a request at its last hop: a refused redirect has none
        rec.status = t.redirects[-1]["status"] if t.redirects else None
    detail["exchanges"] = t.exchanges[-12:]
    if t.redirects:
        detail["redirects"] = t.redirects[-12:]
    if t.redirect_refused is not None:
        detail["redirect_refused"] = t.redirect_refused
    detail["timing_note"] = "connect includes TLS (aiohttp reports them together)"
    if res.transport:
        detail["transport"] = res.transport
    if res.backend:
        detail["backend"] = res.backend
    if res.server_message:
        detail["server_message"] = res.server_message


def _auth(ctx: ProbeContext, credential: Credential) -> dict[str, Any] | None:
    if credential is Credential.NONE:
        return None
    if credential is Credential.INVALID:
        return {"apiKey": INVALID_KEY}
    return {"apiKey": ctx.api_key()}


async def socketio_connect(
    ctx: ProbeContext, rec: Recorder, *, transport: Transport, credential: Credential
) -> ProbeResult:
    detail = rec.detail_as(SocketioConnectDetail)
    detail["credential"] = credential
    detail["client"] = f"python-socketio AsyncClient, transports=['{transport}'], reconnection off"
    res = await attempt(
        ctx, rec, transports=[transport], auth=_auth(ctx, credential), budget_s=budget_of(ctx, rec)
    )
    _fill(rec, res)
    if res.outcome is Outcome.TIMEOUT:
        # Say the probe's deadline, not the inner budget that left room for cleanup.
        detail["stalled_during"] = rec.clock.current
        return rec.result(res.outcome, f"no answer within {ctx.timeout_s:g} s (while {rec.clock.current})")
    return rec.result(res.outcome, res.error)


def sdk_message(res: SioAttempt) -> str | None:
    """What SDK 2.0.9's user reads (contract: connectWebSocket's messages) about the connect:
    the connect's own outcome, never the inscription's that follows it."""
    if res.outcome is Outcome.OK:
        return None
    if res.outcome is Outcome.TIMEOUT:
        return "WebSocket connection timeout"
    return f"WebSocket connection failed: {res.server_message or res.error or 'Connection error'}"


async def sdk_flow(ctx: ProbeContext, rec: Recorder) -> ProbeResult:
    """The SDK's connection sequence; stops at the first failing step and says why. The
    connect and the inscription have budgets of their own: what the application did not
    answer is never reported as a connection that timed out."""
    deadline = time.monotonic() + budget_of(ctx, rec)
    auth = _auth(ctx, Credential.VALID)
    steps: list[SdkStepJson] = []
    detail = rec.detail_as(SdkFlowDetail)
    detail["steps"] = steps

    def budget(sdk_timer: float, keep: float = 0.0) -> float:
        return max(0.05, min(sdk_timer, deadline - time.monotonic() - keep))

    detect = await attempt(ctx, rec, transports=["websocket"], auth=auth, budget_s=budget(SDK_DETECT_S))
    steps.append(
        {
            "step": FlowStep.DETECT,
            "sdk_timer_s": SDK_DETECT_S,
            "outcome": detect.outcome.value,
            "result": "websocket" if detect.outcome is Outcome.OK else "http",
        }
    )
    inscribe = ctx.options.inscription
    # The connect leaves the inscription its window; the inscription gets whatever is left of
    # the deadline once the connect is done.
    window = max(0.0, min(ACK_WINDOW_S, (deadline - time.monotonic()) / 3)) if inscribe else 0.0
    connect = await attempt(
        ctx,
        rec,
        transports=["websocket"],
        auth=auth,
        budget_s=budget(SDK_CONNECT_S, keep=window),
        inscribe_until=deadline if inscribe else None,
    )
    _fill(rec, connect)
    message = sdk_message(connect)
    steps.append(
        {
            "step": FlowStep.CONNECT,
            "sdk_timer_s": SDK_CONNECT_S,
            "outcome": connect.outcome.value,
            "sdk_message": message,
        }
    )
    if connect.outcome is not Outcome.OK:
        if connect.outcome is Outcome.TIMEOUT:
            detail["stalled_during"] = rec.clock.current
        detail["failed_step"] = FlowStep.CONNECT
        detail["sdk_message"] = message
        return rec.result(connect.outcome, message)
    if not inscribe:
        steps.append({"step": FlowStep.START_INSCRIPTION, "skipped": "--no-inscription"})
        return rec.result(Outcome.OK)
    ack = connect.ack if isinstance(connect.ack, dict) else {}
    step: SdkStepJson = {
        "step": FlowStep.START_INSCRIPTION,
        "sdk_timer_s": SDK_ACK_S,
        "ack_success": ack.get("success"),
        "ack_error": ack.get("error"),
        "events": connect.events,
    }
    if connect.ack_state is not None:
        step["ack"] = connect.ack_state.value
    if connect.ack_ms is not None:
        step["ack_ms"] = round(connect.ack_ms, 1)
    steps.append(step)
    if connect.ack_state is Ack.NOT_IN_TIME:
        waited = connect.ack_wait_s or 0.0
        detail["failed_step"] = FlowStep.START_INSCRIPTION
        detail["ack_wait_s"] = round(waited, 2)
        detail["sdk_message"] = f"no start-inscription ack within {waited:.3g} s"
        return rec.result(
            Outcome.TIMEOUT,
            f"connected; start-inscription: no ack within {waited:.3g} s (the SDK waits {SDK_ACK_S:g} s)",
        )
    if connect.ack_state is Ack.DISCONNECTED:
        detail["failed_step"] = FlowStep.START_INSCRIPTION
        detail["sdk_message"] = "the session ended before the ack"
        return rec.result(Outcome.RESET, "connected; start-inscription: the session ended before its ack")
    if not ack.get("success"):
        detail["failed_step"] = FlowStep.START_INSCRIPTION
        detail["sdk_message"] = ack.get("error") or "an ack without a result"
        return rec.result(Outcome.HTTP_ERROR, f"start-inscription: {detail['sdk_message']}")
    if ContractEvent.PROGRESS not in connect.events:
        detail["failed_step"] = FlowStep.PROGRESS
        return rec.result(Outcome.TIMEOUT, "ack received, but no inscription-progress event")
    return rec.result(Outcome.OK)


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


async def connect_stats(ctx: ProbeContext, rec: Recorder, *, transport: Transport) -> ProbeResult:
    """Repeat the valid-key connect; exponential backoff between failed attempts."""
    attempts: list[ConnectRun] = []
    failures = 0
    auth = _auth(ctx, Credential.VALID)
    for i in range(ctx.options.attempts):
        if i and failures:
            await asyncio.sleep(min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2 ** (failures - 1)))
        res = await attempt(ctx, rec, transports=[transport], auth=auth, budget_s=inner_budget(ctx.timeout_s))
        attempts.append({"outcome": res.outcome.value, "ms": res.handshake_ms, "backend": res.backend})
        failures = failures + 1 if res.outcome is not Outcome.OK else 0
    ok = [a for a in attempts if a["outcome"] == "ok"]
    latencies = sorted(a["ms"] for a in ok if a["ms"] is not None)
    by_backend: dict[str, dict[str, int]] = {}
    counts: dict[str, int] = {}
    for a in attempts:
        counts[a["outcome"]] = counts.get(a["outcome"], 0) + 1
        if a["backend"]:
            slot = by_backend.setdefault(a["backend"], {"ok": 0, "failed": 0})
            slot["ok" if a["outcome"] == "ok" else "failed"] += 1
    rec.detail_as(ConnectStatsDetail).update(
        {
            "transport": transport,
            "attempts": len(attempts),
            "successes": len(ok),
            "success_rate": len(ok) / len(attempts),
            "p50_ms": percentile(latencies, 50),
            "p95_ms": percentile(latencies, 95),
            "max_ms": latencies[-1] if latencies else None,
            "outcomes": counts,
            "by_backend": by_backend,
            "runs": attempts,
        }
    )
    if len(ok) == len(attempts):
        return rec.result(Outcome.OK)
    worst = max((o for o in counts if o != "ok"), key=lambda o: counts[o])
    return rec.result(Outcome(worst), f"{len(attempts) - len(ok)} of {len(attempts)} attempts failed")
