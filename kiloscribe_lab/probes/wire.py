"""The I/O seam of the HTTP-level probes: timed streams and thin pumps around sans-I/O cores.

``open_stream`` does DNS, TCP, an optional HTTP CONNECT tunnel and TLS, timing each phase
itself, so a ProbeResult's ``dns``/``connect``/``tls`` are measured, not guessed. HTTP/1.1
goes through h11 and HTTP/2 through h2 (both sans-I/O); the WebSocket handshake through
our own ``kiloscribe_lab.protocol``. Every exception a transport can raise is translated
into an Outcome in one place, ``classify_exception``.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
import h11

from kiloscribe_lab import protocol
from kiloscribe_lab.endpoints import Endpoint
from kiloscribe_lab.errors import ProtocolError
from kiloscribe_lab.names import Outcome
from kiloscribe_lab.networks import NetworkProfile

READ_CHUNK = 65536
MAX_BODY = 64 * 1024  # evidence, not content: a probe keeps the first bytes only
# All a server may send on one connection of a probe: heads, bodies, frames, 1xx answers. A
# probe reads evidence, never content; past this the answer is malformed, whatever it is.
MAX_SESSION_BYTES = 8 << 20
MAX_INFORMATIONAL = 8  # 1xx answers before the real one: more is a server talking in circles
USER_AGENT = "kiloscribe-lab/0.1"


# --- TLS contexts -----------------------------------------------------------------------


@functools.lru_cache(maxsize=32)
def ssl_context(ca_bundle: str | None, alpn: tuple[str, ...]) -> ssl.SSLContext:
    """Verifying context; cached because loading trust stores costs milliseconds per probe."""
    ctx = ssl.create_default_context(cafile=ca_bundle)
    if alpn:
        ctx.set_alpn_protocols(list(alpn))
    return ctx


@functools.lru_cache(maxsize=1)
def _inspecting_context() -> ssl.SSLContext:
    """Verifies nothing: only ever used to read the chain a server presents, after the
    verifying handshake failed, never to send a request."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


# Reading the presented chain costs one more TLS handshake, once the verifying one failed.
CHAIN_INSPECTION_S = 1.0


class CertificateRejected(Exception):
    """The server's certificate did not verify; with the chain the server presented, as far as
    it could be read, so the diagnosis can tell an incomplete chain from an unknown CA."""

    def __init__(self, cause: ssl.SSLCertVerificationError, presented: list[dict[str, str]] | None) -> None:
        self.verify_code: int | None = getattr(cause, "verify_code", None)
        self.verify_message: str = getattr(cause, "verify_message", None) or str(cause)
        self.presented = presented
        super().__init__(f"certificate not trusted: {self.verify_message}")

    def evidence(self) -> dict[str, Any]:
        return {
            "verify_code": self.verify_code,
            "verify_message": self.verify_message,
            "presented": self.presented,
        }


def _names(info: Any, key: str) -> str:
    fields: Any = info.get(key) or ()  # a tuple of RDNs, each a tuple of (name, value)
    return ", ".join(f"{k}={v}" for rdn in fields for (k, v) in rdn)


def presented_chain(ssl_object: ssl.SSLObject | None) -> list[dict[str, str]] | None:
    """Subject and issuer of each certificate the server sent, leaf first; None when this
    Python cannot say. ``get_unverified_chain`` is private in 3.10-3.12 (public, as DER, since
    3.13); its ``Certificate.get_info`` decodes what ``getpeercert`` would."""
    inner = getattr(ssl_object, "_sslobj", None)
    reader = getattr(inner, "get_unverified_chain", None)
    if reader is None:
        return None
    try:
        chain = reader() or []
        return [
            {"subject": _names(info, "subject"), "issuer": _names(info, "issuer")}
            for info in (cert.get_info() for cert in chain)
        ]
    except (AttributeError, ValueError, ssl.SSLError):
        return None


def ca_path(ca_bundle: Path | None, network: NetworkProfile) -> str | None:
    chosen = network.ca_bundle or ca_bundle
    return None if chosen is None else str(chosen)


# --- the clock every probe carries ------------------------------------------------------


@dataclass
class Clock:
    """Phase durations in ms from one monotonic start; also the phase now running."""

    start: float = field(default_factory=time.perf_counter)
    phases: dict[str, float] = field(default_factory=dict)
    current: str = "start"

    def now_ms(self) -> float:
        return (time.perf_counter() - self.start) * 1000.0

    def begin(self, phase: str) -> float:
        self.current = phase
        return time.perf_counter()

    def end(self, phase: str, began: float) -> None:
        # Repeated phases (a redirect chain, a proxy hop) add up.
        elapsed = (time.perf_counter() - began) * 1000.0
        self.phases[phase] = self.phases.get(phase, 0.0) + elapsed

    def mark_once(self, phase: str, began: float) -> None:
        if phase not in self.phases:
            self.phases[phase] = (time.perf_counter() - began) * 1000.0


# --- streams ----------------------------------------------------------------------------


class ProxyRefused(Exception):
    """The CONNECT proxy answered the tunnel request with something other than 2xx."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"proxy refused CONNECT: {status} {reason}".strip())
        self.status = status


@dataclass
class Stream:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    address: str
    alpn: str | None = None
    via_proxy: bool = False
    tls_version: str | None = None
    peer_cert: dict[str, str] = field(default_factory=dict)
    received: int = 0
    limit: int = MAX_SESSION_BYTES  # bytes this connection may bring in, all reads together

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def recv(self, n: int = READ_CHUNK) -> bytes:
        """At most ``n`` bytes; a ProtocolError once the connection brought more than ``limit``."""
        data = await self.reader.read(n)
        self.received += len(data)
        if self.received > self.limit:
            raise ProtocolError(f"the server sent more than {self.limit} bytes on one connection (the limit)")
        return data

    def abort(self) -> None:
        """Close now, on every path: no graceful TLS shutdown to wait on."""
        transport = self.writer.transport
        if transport is not None and not transport.is_closing():
            transport.abort()


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


AddrInfo = tuple[socket.AddressFamily, socket.SocketKind, int, str, tuple[Any, ...]]


def resolve_host(
    host: str, port: int, *, family: int = socket.AF_UNSPEC, flags: int = 0
) -> asyncio.Future[list[AddrInfo]]:
    """``socket.getaddrinfo`` (SOCK_STREAM) in a daemon thread of our own.

    Not ``loop.getaddrinfo``: its executor thread outlives a cancelled probe, and
    ``asyncio.run`` and interpreter exit wait for it, so a hung resolver would hang us.
    Cancelling (or timing out) the returned future abandons the lookup; nothing waits on
    the thread. Errors (``socket.gaierror``) come back through the future.
    """
    loop = asyncio.get_running_loop()
    future: asyncio.Future[list[AddrInfo]] = loop.create_future()

    def settle(result: list[AddrInfo] | None, error: Exception | None) -> None:
        if future.done():  # the caller gave up
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result or [])

    def lookup() -> None:
        result: list[AddrInfo] | None = None
        error: Exception | None = None
        try:
            result = list(socket.getaddrinfo(host, port, family, socket.SOCK_STREAM, 0, flags))
        except Exception as exc:  # handed over to the awaiting task
            error = exc
        if loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: nobody is waiting
            loop.call_soon_threadsafe(settle, result, error)

    threading.Thread(target=lookup, name=f"resolve {host}", daemon=True).start()
    return future


async def _resolve(host: str, port: int, clock: Clock) -> str:
    if _is_ip(host):
        return host
    began = clock.begin("dns")
    infos = await resolve_host(host, port)
    clock.end("dns", began)
    if not infos:
        raise socket.gaierror(f"no address for {host}")
    return str(infos[0][4][0])


def check_http_start(data: bytes | bytearray) -> None:
    """A ProtocolError as soon as the first bytes cannot begin an HTTP/1.x response: garbage is
    malformed at once, whatever it holds, never a wait for a line end that may not come."""
    n = min(len(data), len(_HTTP))
    if data[:n] != _HTTP[:n]:
        raise ProtocolError(
            f"malformed HTTP/1.1 response: the answer is not HTTP (it starts with {bytes(data[:16])!r})"
        )


_HTTP = b"HTTP/"


def closed_early(received: int) -> ConnectionResetError:
    if received:
        return ConnectionResetError("the server closed the connection before a complete response head")
    return ConnectionResetError("the server closed the connection without answering")


async def read_head(
    stream: Stream, limit: int = protocol.MAX_HEAD_BYTES
) -> tuple[protocol.ResponseHead, bytes]:
    """Read an HTTP/1.x response head; return it and any bytes read past it. Informational
    answers (``100 Continue``...) before it are skipped, at most MAX_INFORMATIONAL of them: the
    answer to an upgrade is the 101 or the final status, never a 100."""
    buf = b""
    informational = 0
    while True:
        check_http_start(buf)
        end = protocol.find_head_end(buf)
        if end is not None:
            head = protocol.parse_response_head(buf[:end])
            if not (100 <= head.status < 200 and head.status != 101):
                return head, buf[end:]
            informational += 1
            if informational > MAX_INFORMATIONAL:
                raise ProtocolError(f"more than {MAX_INFORMATIONAL} informational (1xx) answers")
            buf = buf[end:]
            continue
        if len(buf) > limit:
            raise ProtocolError(f"response head larger than {limit} bytes")
        chunk = await stream.recv()
        if not chunk:
            raise closed_early(len(buf))
        buf += chunk


def _cert_summary(ssl_object: ssl.SSLObject | None) -> dict[str, str]:
    if ssl_object is None:
        return {}
    cert = ssl_object.getpeercert() or {}
    summary: dict[str, str] = {}
    for key in ("subject", "issuer"):
        fields: Any = cert.get(key) or ()  # a tuple of RDNs, each a tuple of (name, value)
        names = [f"{k}={v}" for rdn in fields for (k, v) in rdn]
        if names:
            summary[key] = ", ".join(names)
    if cert.get("notAfter"):
        summary["not_after"] = str(cert["notAfter"])
    return summary


async def open_stream(
    endpoint: Endpoint,
    network: NetworkProfile,
    clock: Clock,
    *,
    ca_bundle: Path | None = None,
    alpn: Sequence[str] = ("http/1.1",),
    verify: bool = True,
) -> Stream:
    """Connect to ``endpoint`` as ``network`` says, timing dns, connect and tls.

    A certificate that does not verify raises :class:`CertificateRejected`, with the chain the
    server presented (read over a second, non-verifying handshake that sends nothing)."""
    # The profile's proxy, else the environment's (curl's rules, NO_PROXY per host).
    proxy = network.proxy_for(endpoint.host, tls=endpoint.tls)
    via_proxy = proxy is not None
    if proxy is not None:
        address = await _resolve(proxy.host, proxy.port, clock)
        port = proxy.port
    else:
        address = network.pinned_address(endpoint.host, endpoint.port) or await _resolve(
            endpoint.host, endpoint.port, clock
        )
        port = endpoint.port
    began = clock.begin("connect")
    reader, writer = await asyncio.open_connection(address, port)
    stream = Stream(reader, writer, f"{address}:{port}", via_proxy=via_proxy)
    try:
        if proxy is not None:
            # The tunnel request carries the target's name: the proxy resolves it (or pins).
            target = network.pinned_address(endpoint.host, endpoint.port) or endpoint.host
            hostport = f"[{target}]:{endpoint.port}" if ":" in target else f"{target}:{endpoint.port}"
            auth = proxy.authorization()
            await stream.send(
                (
                    f"CONNECT {hostport} HTTP/1.1\r\nHost: {hostport}\r\nUser-Agent: {USER_AGENT}\r\n"
                    + (f"Proxy-Authorization: {auth}\r\n" if auth else "")
                    + "\r\n"
                ).encode()
            )
            head, rest = await read_head(stream)
            if not 200 <= head.status < 300:
                raise ProxyRefused(head.status, head.reason)
            if rest:
                raise ProtocolError("proxy sent bytes after its CONNECT answer")
        clock.end("connect", began)
        if endpoint.tls:
            began = clock.begin("tls")
            ctx = ssl_context(ca_path(ca_bundle, network), tuple(alpn)) if verify else _inspecting_context()
            try:
                await writer.start_tls(ctx, server_hostname=endpoint.host)
            except ssl.SSLCertVerificationError as exc:
                raise CertificateRejected(exc, await _inspect_chain(endpoint, network)) from exc
            clock.end("tls", began)
            ssl_object = writer.get_extra_info("ssl_object")
            if ssl_object is not None:
                stream.alpn = ssl_object.selected_alpn_protocol()
                stream.tls_version = ssl_object.version()
                stream.peer_cert = _cert_summary(ssl_object)
    except BaseException:
        stream.abort()
        raise
    return stream


async def _inspect_chain(endpoint: Endpoint, network: NetworkProfile) -> list[dict[str, str]] | None:
    """The chain the server presents, or None when it cannot be read within CHAIN_INSPECTION_S."""
    try:
        async with asyncio.timeout(CHAIN_INSPECTION_S):
            stream = await open_stream(endpoint, network, Clock(), verify=False)
    except (OSError, TimeoutError, ssl.SSLError, ProtocolError, ProxyRefused):
        return None
    try:
        return presented_chain(stream.writer.get_extra_info("ssl_object"))
    finally:
        stream.abort()


# --- HTTP/1.1 through h11 ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HttpResponse:
    status: int
    reason: str
    http_version: str
    headers: tuple[tuple[str, str], ...]
    body: bytes
    truncated: bool = False
    header_names: tuple[str, ...] = ()  # as the server spelled them (``headers`` are lower-cased)

    def get(self, name: str) -> str | None:
        name = name.lower()
        for key, value in self.headers:
            if key == name:
                return value
        return None

    def get_all(self, name: str) -> list[str]:
        name = name.lower()
        return [v for k, v in self.headers if k == name]

    @property
    def status_line(self) -> str:
        return f"HTTP/{self.http_version} {self.status} {self.reason}".rstrip()


def base_headers(endpoint: Endpoint, network: NetworkProfile) -> list[tuple[str, str]]:
    headers = [("host", endpoint.authority), ("user-agent", USER_AGENT), ("accept", "*/*")]
    headers.extend((k.lower(), v) for k, v in network.headers.items())
    return headers


class Http1:
    """One HTTP/1.1 connection; requests reuse it while the server keeps it alive."""

    def __init__(self, stream: Stream, clock: Clock) -> None:
        self.stream = stream
        self.clock = clock
        self.conn = h11.Connection(our_role=h11.CLIENT, max_incomplete_event_size=protocol.MAX_HEAD_BYTES)

    @property
    def reusable(self) -> bool:
        return self.conn.our_state is h11.IDLE and self.conn.their_state is h11.IDLE

    async def request(
        self,
        method: str,
        target: str,
        headers: Iterable[tuple[str, str]],
        body: bytes = b"",
        *,
        max_body: int = MAX_BODY,
    ) -> HttpResponse:
        all_headers = list(headers)
        if body or method in {"POST", "PUT"}:
            all_headers.append(("content-length", str(len(body))))
        try:
            out = self.conn.send(h11.Request(method=method, target=target, headers=all_headers))
            if body:
                out += self.conn.send(h11.Data(data=body))
            out += self.conn.send(h11.EndOfMessage())
        except h11.LocalProtocolError as exc:
            # h11's message quotes the offending value, which may be a key: never echo it.
            raise ProtocolError("cannot send request: a header name or value is not valid HTTP/1.1") from exc
        await self.stream.send(out)
        began = time.perf_counter()
        self.clock.current = "waiting for response"
        response: h11.Response | h11.InformationalResponse | None = None
        chunks: list[bytes] = []
        size = 0
        truncated = False
        eof = False
        first = b""  # the answer's first bytes, until they show it is HTTP at all
        informational = 0
        try:
            while True:
                event = self.conn.next_event()
                if event is h11.NEED_DATA:
                    data = await self.stream.recv()
                    if data:
                        self.clock.mark_once("first_byte", began)
                    if response is None and len(first) < 16:
                        first += data[: 16 - len(first)]
                        check_http_start(first)
                    eof = not data
                    self.conn.receive_data(data)
                    continue
                if isinstance(event, h11.InformationalResponse):
                    if event.status_code == 101:
                        # Protocols switched: the 101 is the answer (h11 would only say PAUSED).
                        response = event
                        break
                    informational += 1
                    if informational > MAX_INFORMATIONAL:
                        raise ProtocolError(f"more than {MAX_INFORMATIONAL} informational (1xx) answers")
                    continue
                if isinstance(event, h11.Response):
                    response = event
                    if len(event.headers) > protocol.MAX_HEADER_LINES:
                        raise ProtocolError(f"more than {protocol.MAX_HEADER_LINES} header lines")
                    self.clock.current = "reading body"
                elif isinstance(event, h11.Data):
                    room = max_body - size
                    if len(event.data) > room:
                        truncated = True
                    chunks.append(bytes(event.data[:room]))
                    size += min(len(event.data), room)
                    if truncated:
                        break  # evidence enough; the connection is not reused
                elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
                    break
        except h11.RemoteProtocolError as exc:
            if eof and response is None:
                # h11 reports a close before the response head as a protocol error: it is a reset.
                raise closed_early(len(first)) from exc
            if eof:
                raise ConnectionResetError(
                    f"the server closed the connection in the middle of the response body ({size} bytes)"
                ) from exc
            raise ProtocolError(f"malformed HTTP/1.1 response: {_h11_reason(exc)}") from exc
        if response is None:
            raise closed_early(len(first))
        if self.conn.our_state is h11.DONE and self.conn.their_state is h11.DONE:
            self.conn.start_next_cycle()
        return HttpResponse(
            status=response.status_code,
            reason=response.reason.decode("latin-1"),
            http_version=response.http_version.decode("latin-1"),
            headers=tuple((k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in response.headers),
            body=b"".join(chunks),
            truncated=truncated,
            header_names=tuple(k.decode("latin-1") for k, _ in response.headers.raw_items()),
        )


def _h11_reason(exc: h11.RemoteProtocolError) -> str:
    """What rule of HTTP/1.1 h11 found broken, in our words (its own quote the server's bytes
    and its internals)."""
    text = str(exc).lower()
    for needle, reason in (
        ("receive buffer too long", f"a response head larger than {protocol.MAX_HEAD_BYTES} bytes"),
        ("status line", "no valid status line"),
        ("status_code", "a status code outside 100-999"),
        ("header", "a header line that is not valid HTTP"),
        ("content-length", "an invalid Content-Length"),
        ("chunk", "invalid chunked transfer coding"),
        ("transfer-encoding", "an invalid Transfer-Encoding"),
    ):
        if needle in text:
            return reason
    return "the answer breaks HTTP/1.1 message framing"


# --- HTTP/2 through h2 ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Http2Answer:
    response: HttpResponse | None
    enable_connect_protocol: bool | None  # RFC 8441: can WebSocket run over this h2 server?
    reset_code: int | None = None


async def http2_request(
    stream: Stream,
    clock: Clock,
    endpoint: Endpoint,
    headers: Iterable[tuple[str, str]],
    *,
    max_body: int = MAX_BODY,
) -> Http2Answer:
    """One GET over HTTP/2. Connection-specific headers (Connection, Upgrade) cannot be
    sent in HTTP/2 (RFC 9113 §8.2.2); the caller passes only what h2 allows."""
    conn = h2.connection.H2Connection(
        # Headers as bytes, decoded by us as latin-1: h2's UTF-8 would fail on a server's byte.
        config=h2.config.H2Configuration(client_side=True, header_encoding=None)
    )
    conn.initiate_connection()
    stream_id = conn.get_next_available_stream_id()
    request_headers = [
        (":method", "GET"),
        (":authority", endpoint.authority),
        (":scheme", endpoint.scheme),
        (":path", endpoint.path),
        *((k, v) for k, v in headers if k != "host"),
    ]
    conn.send_headers(stream_id, request_headers, end_stream=True)
    await stream.send(conn.data_to_send())
    began = time.perf_counter()
    clock.current = "waiting for response"
    status: int | None = None
    response_headers: list[tuple[str, str]] = []
    chunks: list[bytes] = []
    size = 0
    truncated = False
    connect_protocol: bool | None = None
    reset_code: int | None = None
    done = False
    try:
        while not done:
            data = await stream.recv()
            if not data:
                break
            clock.mark_once("first_byte", began)
            for event in conn.receive_data(data):
                if isinstance(event, h2.events.RemoteSettingsChanged):
                    changed = event.changed_settings.get(h2.settings.SettingCodes.ENABLE_CONNECT_PROTOCOL)
                    if changed is not None:
                        connect_protocol = bool(changed.new_value)
                    elif connect_protocol is None:
                        connect_protocol = False
                elif isinstance(event, h2.events.ResponseReceived) and event.stream_id == stream_id:
                    for name, value in event.headers or ():
                        key = name.decode("latin-1") if isinstance(name, bytes) else name
                        val = value.decode("latin-1") if isinstance(value, bytes) else value
                        if key == ":status":
                            if not (val.isascii() and val.isdigit() and len(val) == 3):
                                raise ProtocolError(
                                    "malformed HTTP/2 exchange: :status is not a 3-digit code"
                                )
                            status = int(val)
                        else:
                            response_headers.append((key.lower(), val))
                elif isinstance(event, h2.events.DataReceived) and event.stream_id == stream_id:
                    conn.acknowledge_received_data(event.flow_controlled_length, stream_id)
                    room = max_body - size
                    truncated = truncated or len(event.data) > room
                    chunks.append(event.data[:room])
                    size += min(len(event.data), room)
                elif isinstance(event, h2.events.StreamEnded) and event.stream_id == stream_id:
                    done = True
                elif isinstance(event, h2.events.StreamReset) and event.stream_id == stream_id:
                    reset_code = int(event.error_code)
                    done = True
                elif isinstance(event, h2.events.ConnectionTerminated):
                    done = True
            pending = conn.data_to_send()
            if pending:
                await stream.send(pending)
            if truncated:
                break
    except h2.exceptions.ProtocolError as exc:
        raise ProtocolError(f"malformed HTTP/2 exchange ({type(exc).__name__})") from exc
    response = None
    if status is not None:
        response = HttpResponse(status, "", "2", tuple(response_headers), b"".join(chunks), truncated)
    return Http2Answer(response, connect_protocol, reset_code)


# --- one place that turns exceptions into outcomes --------------------------------------


_RESET_ERRNOS = {errno.ECONNRESET, errno.EPIPE, errno.ECONNABORTED}
_UNREACHABLE_ERRNOS = {errno.ENETUNREACH, errno.EHOSTUNREACH, errno.ENETDOWN, errno.EHOSTDOWN}


def classify_exception(exc: BaseException) -> tuple[Outcome, str] | None:
    """The Outcome a transport exception stands for, with a one-line message; None when
    the exception is not a transport failure (a bug: let it surface)."""
    text = str(exc) or type(exc).__name__
    if isinstance(exc, TimeoutError):
        return Outcome.TIMEOUT, text
    if isinstance(exc, socket.gaierror):
        return Outcome.DNS_ERROR, f"DNS lookup failed: {text}"
    if isinstance(exc, ProxyRefused):
        return Outcome.BLOCKED, text
    if isinstance(exc, CertificateRejected):
        return Outcome.TLS_ERROR, text
    if isinstance(exc, ssl.SSLCertVerificationError):
        # getattr: only the C module sets these; SSLErrors raised from Python lack them.
        return Outcome.TLS_ERROR, f"certificate not trusted: {getattr(exc, 'verify_message', None) or text}"
    if isinstance(exc, ssl.SSLError):
        return Outcome.TLS_ERROR, f"TLS failed: {getattr(exc, 'reason', None) or text}"
    if isinstance(exc, ProtocolError):
        return Outcome.MALFORMED, text
    if isinstance(exc, ConnectionRefusedError) or (
        isinstance(exc, OSError) and exc.errno == errno.ECONNREFUSED
    ):
        return Outcome.REFUSED, "connection refused"
    if isinstance(exc, ConnectionResetError | BrokenPipeError | ConnectionAbortedError) or (
        isinstance(exc, OSError) and exc.errno in _RESET_ERRNOS
    ):
        # The OS's words ("[Errno 104] ...") say less than ours; our own messages say what closed.
        said = "the server reset the connection" if getattr(exc, "errno", None) else text
        return Outcome.RESET, f"connection reset or closed early: {said}"
    if isinstance(exc, asyncio.IncompleteReadError):
        return Outcome.RESET, f"connection reset or closed early: {len(exc.partial)} bytes of {exc.expected}"
    if isinstance(exc, OSError):
        if exc.errno in _UNREACHABLE_ERRNOS:
            return Outcome.REFUSED, f"network unreachable: {exc.strerror or text}"
        return Outcome.REFUSED, f"connection failed: {exc.strerror or text}"
    return None


# Headers worth keeping as evidence: fingerprints of CDN, balancer and backend.
EVIDENCE_HEADERS = (
    "server",
    "via",
    "location",
    "cf-ray",
    "cf-cache-status",
    "alt-svc",
    "x-lab-backend",
    "x-served-by",
    "x-backend",
    "x-upstream",
    "content-type",
    "sec-websocket-accept",
    "upgrade",
    "connection",
    "vary",
    "retry-after",
    "cf-mitigated",
    "access-control-allow-origin",
    "access-control-allow-credentials",
    "access-control-allow-methods",
    "access-control-allow-headers",
)


def evidence_headers(headers: Iterable[tuple[str, str]]) -> dict[str, str]:
    kept: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in headers:
        key = name.lower()
        if key == "set-cookie":
            # Names only: cookie values can be session secrets.
            cookies.append(value.split("=", 1)[0].strip())
        elif key in EVIDENCE_HEADERS:
            kept[key] = f"{kept[key]}, {value}" if key in kept else value
    if cookies:
        kept["set-cookie-names"] = ", ".join(cookies)
    return kept
