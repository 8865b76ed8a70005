"""The I/O seam, without I/O: exception and status classification, evidence
headers, the clock, and the HTTP/1.1 and HTTP/2 pumps against scripted in-memory servers."""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from collections.abc import Callable

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.settings
import pytest

from kiloscribe_lab.endpoints import parse_endpoint
from kiloscribe_lab.errors import ProtocolError
from kiloscribe_lab.names import Outcome
from kiloscribe_lab.networks import NetworkProfile
from kiloscribe_lab.probes import wire
from kiloscribe_lab.probes.wire import (
    Clock,
    Http1,
    HttpResponse,
    ProxyRefused,
    base_headers,
    classify_exception,
    evidence_headers,
    http2_request,
)


def test_base_headers_add_the_network_headers_lowercased() -> None:
    ep = parse_endpoint("https://h.example:8443/")
    net = NetworkProfile("corp", headers={"X-Corp-Tag": "1"})
    headers = base_headers(ep, net)
    assert headers[0] == ("host", "h.example:8443")
    assert ("user-agent", wire.USER_AGENT) in headers
    assert ("x-corp-tag", "1") in headers


# --- classify_exception -----------------------------------------------------------------


def _cert_error() -> ssl.SSLCertVerificationError:
    exc = ssl.SSLCertVerificationError(1, "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed")
    exc.verify_message = "self-signed certificate"
    return exc


def _ssl_error() -> ssl.SSLError:
    exc = ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number")
    exc.reason = "WRONG_VERSION_NUMBER"
    return exc


@pytest.mark.parametrize(
    ("exc", "outcome", "text"),
    [
        (TimeoutError("slow"), Outcome.TIMEOUT, "slow"),
        (TimeoutError(), Outcome.TIMEOUT, "TimeoutError"),
        (socket.gaierror(-2, "Name or service not known"), Outcome.DNS_ERROR, "DNS lookup failed"),
        (ConnectionRefusedError(111, "Connection refused"), Outcome.REFUSED, "connection refused"),
        (ConnectionResetError(104, "Connection reset by peer"), Outcome.RESET, "reset or closed early"),
        (BrokenPipeError(32, "Broken pipe"), Outcome.RESET, "reset or closed early"),
        (asyncio.IncompleteReadError(b"", 10), Outcome.RESET, "reset or closed early"),
        (_cert_error(), Outcome.TLS_ERROR, "certificate not trusted: self-signed certificate"),
        (_ssl_error(), Outcome.TLS_ERROR, "TLS failed: WRONG_VERSION_NUMBER"),
        (ProtocolError("bad frame"), Outcome.MALFORMED, "bad frame"),
        (ProxyRefused(403, "Forbidden"), Outcome.BLOCKED, "proxy refused CONNECT: 403 Forbidden"),
        (OSError(101, "Network is unreachable"), Outcome.REFUSED, "network unreachable"),
    ],
)
def test_classify_exception(exc: BaseException, outcome: Outcome, text: str) -> None:
    classified = classify_exception(exc)
    assert classified is not None
    assert classified[0] is outcome
    assert text in classified[1]


@pytest.mark.parametrize(
    "exc",
    [
        ssl.SSLError("raised from Python, without the C module's attributes"),
        ssl.SSLCertVerificationError("raised from Python"),
    ],
)
def test_classify_exception_ssl_errors_without_reason_attributes(exc: ssl.SSLError) -> None:
    """ssl.py and libraries construct SSLError themselves; classifying must not raise."""
    classified = classify_exception(exc)
    assert classified is not None and classified[0] is Outcome.TLS_ERROR
    assert "raised from Python" in classified[1]


@pytest.mark.parametrize("exc", [ValueError("a bug"), KeyError("x"), RuntimeError(), KeyboardInterrupt()])
def test_classify_exception_leaves_bugs_alone(exc: BaseException) -> None:
    assert classify_exception(exc) is None


# --- evidence_headers -------------------------------------------------------------


def test_evidence_headers_keeps_fingerprints_and_cookie_names_only() -> None:
    kept = evidence_headers(
        [
            ("Server", "cloudflare"),
            ("CF-Ray", "8f1a-AMS"),
            ("CF-Cache-Status", "DYNAMIC"),
            ("Via", "1.1 Caddy"),
            ("via", "1.1 edge"),
            ("Location", "/api/health"),
            ("X-Lab-Backend", "inscribe-1"),
            ("Set-Cookie", "lb_sticky=SECRET-VALUE-1; Path=/; HttpOnly"),
            ("set-cookie", " io = SECRET-VALUE-2"),
            ("Authorization", "Bearer nope"),
            ("X-Api-Key", "nope"),
            ("Date", "today"),
        ]
    )
    assert kept == {
        "server": "cloudflare",
        "cf-ray": "8f1a-AMS",
        "cf-cache-status": "DYNAMIC",
        "via": "1.1 Caddy, 1.1 edge",
        "location": "/api/health",
        "x-lab-backend": "inscribe-1",
        "set-cookie-names": "lb_sticky, io",
    }
    flat = repr(kept)
    assert "SECRET" not in flat and "nope" not in flat


def test_evidence_headers_without_cookies_has_no_cookie_key() -> None:
    assert evidence_headers([("content-type", "text/plain")]) == {"content-type": "text/plain"}
    assert evidence_headers([]) == {}


# --- Clock -------------------------------------------------------------------------------------


def test_clock_phases_add_up_and_mark_once_keeps_the_first(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [100.0]
    monkeypatch.setattr(wire.time, "perf_counter", lambda: now[0])
    clock = Clock(start=100.0)
    began = clock.begin("connect")
    assert clock.current == "connect"
    now[0] = 100.010
    clock.end("connect", began)
    began = clock.begin("connect")  # a second hop through a proxy
    now[0] = 100.015
    clock.end("connect", began)
    assert clock.phases["connect"] == pytest.approx(15.0)
    clock.mark_once("first_byte", 100.010)
    now[0] = 100.5
    clock.mark_once("first_byte", 100.010)
    assert clock.phases["first_byte"] == pytest.approx(5.0)
    assert clock.now_ms() == pytest.approx(500.0)
    assert "dns" not in clock.phases  # a phase that did not happen stays absent


# --- DNS in a thread of our own ---------------------------------------------------------------


def test_a_hung_lookup_is_bounded_by_our_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    def hung(*_a: object, **_k: object) -> list[object]:
        time.sleep(5)
        return []

    monkeypatch.setattr(socket, "getaddrinfo", hung)
    began = time.monotonic()
    with pytest.raises(TimeoutError):
        asyncio.run(asyncio.wait_for(wire._resolve("hung.example", 443, Clock()), 0.2))
    # asyncio.run itself returned: nothing of the loop waits on the lookup thread.
    assert time.monotonic() - began < 2.0


def test_lookup_answers_and_errors_come_back(monkeypatch: pytest.MonkeyPatch) -> None:
    def fake(host: str, port: int, *_a: object, **_k: object) -> list[object]:
        if host == "nx.example":
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("192.0.2.7", port))]

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    clock = Clock()
    assert asyncio.run(wire._resolve("ok.example", 443, clock)) == "192.0.2.7"
    assert "dns" in clock.phases
    with pytest.raises(socket.gaierror) as caught:
        asyncio.run(wire._resolve("nx.example", 443, Clock()))
    assert classify_exception(caught.value) == (Outcome.DNS_ERROR, f"DNS lookup failed: {caught.value}")


# --- a scripted in-memory stream ----------------------------------------------------------


class FakeStream:
    """send()/recv()/abort() over scripted server bytes; b"" (EOF) once the script is spent."""

    def __init__(self, *chunks: bytes) -> None:
        self.chunks = list(chunks)
        self.sent = b""
        self.aborted = False

    async def send(self, data: bytes) -> None:
        self.sent += data

    async def recv(self, n: int = wire.READ_CHUNK) -> bytes:
        return self.chunks.pop(0) if self.chunks else b""

    def abort(self) -> None:
        self.aborted = True


def http1(*chunks: bytes) -> tuple[Http1, FakeStream, Clock]:
    stream = FakeStream(*chunks)
    clock = Clock()
    return Http1(stream, clock), stream, clock  # type: ignore[arg-type]


HEADERS = [("host", "h.example"), ("user-agent", wire.USER_AGENT)]


async def test_http1_content_length_body_and_reuse() -> None:
    conn, stream, clock = http1(
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Lab-Backend: inscribe-1\r\n",
        b"Set-Cookie: a=1\r\nSet-Cookie: b=2\r\n\r\nhel",
        b"lo",
        b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
    )
    response = await conn.request("GET", "/socket.io/?EIO=4&transport=polling", HEADERS)
    assert stream.sent.startswith(b"GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\n")
    assert b"host: h.example\r\n" in stream.sent
    assert (response.status, response.reason, response.http_version) == (200, "OK", "1.1")
    assert response.body == b"hello" and not response.truncated
    assert response.get("X-LAB-BACKEND") == "inscribe-1"
    assert response.get_all("set-cookie") == ["a=1", "b=2"]
    assert response.get("absent") is None
    assert response.status_line == "HTTP/1.1 200 OK"
    assert "first_byte" in clock.phases
    assert conn.reusable
    second = await conn.request("GET", "/other", HEADERS)
    assert second.status == 404 and second.body == b""
    assert second.status_line == "HTTP/1.1 404 Not Found"


async def test_http1_chunked_body() -> None:
    conn, _, _ = http1(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/plain\r\n\r\n",
        b'5\r\n0{"si\r\n',
        b'3\r\nd":\r\n0\r\n\r\n',
    )
    response = await conn.request("GET", "/", HEADERS)
    assert response.body == b'0{"sid":'
    assert response.get("content-type") == "text/plain"
    assert not response.truncated


async def test_http1_post_sends_body_with_content_length() -> None:
    conn, stream, _ = http1(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    response = await conn.request("POST", "/socket.io/?EIO=4&sid=x", HEADERS, b"40")
    assert b"content-length: 2\r\n" in stream.sent
    assert stream.sent.endswith(b"\r\n\r\n40")
    assert response.body == b"ok"


async def test_http1_skips_informational_responses() -> None:
    conn, _, _ = http1(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n")
    response = await conn.request("GET", "/", HEADERS)
    assert response.status == 204


async def test_read_head_skips_informational_answers_but_not_the_101() -> None:
    head, rest = await wire.read_head(
        FakeStream(
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\n\r\n", b"HTTP/1.1 101 Up\r\n\r\nx"
        )  # type: ignore[arg-type]
    )
    assert head.status == 101 and rest == b"x"


async def test_read_head_refuses_endless_informational_answers() -> None:
    flood = b"HTTP/1.1 100 Continue\r\n\r\n" * (wire.MAX_INFORMATIONAL + 1)
    with pytest.raises(ProtocolError, match=f"more than {wire.MAX_INFORMATIONAL} informational"):
        await wire.read_head(FakeStream(flood, b"HTTP/1.1 200 OK\r\n\r\n"))  # type: ignore[arg-type]


async def test_http1_truncates_a_body_beyond_max_body() -> None:
    conn, _, _ = http1(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + b"a" * 60, b"b" * 40)
    response = await conn.request("GET", "/", HEADERS, max_body=10)
    assert response.body == b"a" * 10
    assert response.truncated
    assert not conn.reusable  # the rest of the body is still on the wire


async def test_http1_upgrade_101_keeps_headers() -> None:
    conn, _, _ = http1(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"
    )
    response = await conn.request("GET", "/", [*HEADERS, ("connection", "Upgrade"), ("upgrade", "websocket")])
    assert response.status == 101
    assert response.get("sec-websocket-accept") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    assert not conn.reusable  # the connection now speaks WebSocket


async def test_http1_unrequested_101_is_a_protocol_error() -> None:
    conn, _, _ = http1(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n")
    with pytest.raises(ProtocolError):
        await conn.request("GET", "/", HEADERS)


@pytest.mark.parametrize(
    "raw",
    [
        b"HTTP/1.1 abc OK\r\n\r\n",
        b"garbage\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nbad header line\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    ],
)
async def test_http1_malformed_response_is_a_protocol_error(raw: bytes) -> None:
    conn, _, _ = http1(raw)
    with pytest.raises(ProtocolError, match=r"malformed HTTP/1\.1 response"):
        await conn.request("GET", "/", HEADERS)


@pytest.mark.parametrize("chunks", [(), (b"HTTP/1.1 200",)])
async def test_http1_connection_closed_before_a_response_is_a_reset(chunks: tuple[bytes, ...]) -> None:
    conn, _, _ = http1(*chunks)
    with pytest.raises(ConnectionResetError):
        await conn.request("GET", "/", HEADERS)
    classified = classify_exception(ConnectionResetError("x"))
    assert classified is not None and classified[0] is Outcome.RESET


async def test_http1_invalid_request_is_a_protocol_error() -> None:
    conn, stream, _ = http1()
    with pytest.raises(ProtocolError, match="cannot send request"):
        await conn.request("GET", "/", [("host", "h"), ("bad header", "x")])
    assert stream.sent == b""


# --- HTTP/2 against h2's own server side -------------------------------------------------

Responder = Callable[[h2.connection.H2Connection, int], None]


class H2ServerStream:
    """A Stream whose far end is a real h2 server connection answering with ``respond``."""

    def __init__(self, respond: Responder, *, connect_protocol: int | None) -> None:
        self.server = h2.connection.H2Connection(
            config=h2.config.H2Configuration(client_side=False, header_encoding="utf-8")
        )
        code = h2.settings.SettingCodes.ENABLE_CONNECT_PROTOCOL
        if connect_protocol is None:
            del self.server.local_settings[code]
        else:
            self.server.local_settings = h2.settings.Settings(
                client=False, initial_values={code: connect_protocol}
            )
        self.server.initiate_connection()
        self.respond = respond
        self.requests: list[dict[str, str]] = []
        self.outbox = self.server.data_to_send()

    async def send(self, data: bytes) -> None:
        for event in self.server.receive_data(data):
            if isinstance(event, h2.events.RequestReceived):
                self.requests.append({str(k): str(v) for k, v in event.headers or ()})
                self.respond(self.server, event.stream_id)
        self.outbox += self.server.data_to_send()

    async def recv(self, n: int = wire.READ_CHUNK) -> bytes:
        out, self.outbox = self.outbox, b""
        return out

    def abort(self) -> None:
        pass


def answer(status: int, body: bytes, headers: tuple[tuple[str, str], ...] = ()) -> Responder:
    def respond(server: h2.connection.H2Connection, stream_id: int) -> None:
        server.send_headers(stream_id, [(":status", str(status)), *headers], end_stream=not body)
        if body:
            server.send_data(stream_id, body, end_stream=True)

    return respond


def reset(code: h2.errors.ErrorCodes) -> Responder:
    def respond(server: h2.connection.H2Connection, stream_id: int) -> None:
        server.reset_stream(stream_id, error_code=code)

    return respond


EP = parse_endpoint("https://h.example:8443/socket.io/?EIO=4&transport=polling")


async def _h2(stream: object, **kw: int) -> wire.Http2Answer:
    return await http2_request(stream, Clock(), EP, [("host", "h.example"), ("x-probe", "1")], **kw)  # type: ignore[arg-type]


async def test_http2_response_and_the_request_it_sent() -> None:
    stream = H2ServerStream(
        answer(200, b'0{"sid":"x"}', (("content-type", "text/plain"), ("server", "Caddy"))),
        connect_protocol=0,
    )
    got = await _h2(stream)
    assert got.response is not None
    assert (got.response.status, got.response.http_version) == (200, "2")
    assert got.response.body == b'0{"sid":"x"}'
    assert got.response.get("server") == "Caddy"
    assert got.response.status_line == "HTTP/2 200"
    assert got.reset_code is None
    assert got.enable_connect_protocol is False
    (request,) = stream.requests
    assert request[":method"] == "GET"
    assert request[":authority"] == "h.example:8443"
    assert request[":scheme"] == "https"
    assert request[":path"] == "/socket.io/?EIO=4&transport=polling"
    assert request["x-probe"] == "1"
    assert "host" not in request  # :authority replaces it in HTTP/2


async def test_http2_enable_connect_protocol_offered() -> None:
    got = await _h2(H2ServerStream(answer(200, b""), connect_protocol=1))
    assert got.enable_connect_protocol is True
    assert got.response is not None and got.response.status == 200 and got.response.body == b""


async def test_http2_enable_connect_protocol_absent_means_not_offered() -> None:
    got = await _h2(H2ServerStream(answer(308, b"", (("location", "/api/health"),)), connect_protocol=None))
    assert got.enable_connect_protocol is False
    assert got.response is not None and got.response.get("location") == "/api/health"


async def test_http2_rst_stream_gives_the_reset_code() -> None:
    got = await _h2(H2ServerStream(reset(h2.errors.ErrorCodes.REFUSED_STREAM), connect_protocol=0))
    assert got.response is None
    assert got.reset_code == int(h2.errors.ErrorCodes.REFUSED_STREAM)


async def test_http2_truncates_a_body_beyond_max_body() -> None:
    got = await _h2(H2ServerStream(answer(200, b"z" * 1000), connect_protocol=0), max_body=16)
    assert got.response is not None
    assert got.response.body == b"z" * 16
    assert got.response.truncated


async def test_http2_connection_closed_without_answer() -> None:
    got = await _h2(FakeStream())
    assert got.response is None and got.enable_connect_protocol is None and got.reset_code is None


async def test_http2_a_protocol_violation_is_a_protocol_error() -> None:
    data_on_stream_0 = b"\x00\x00\x00\x00\x00\x00\x00\x00\x00"  # DATA must name a stream
    with pytest.raises(ProtocolError, match="malformed HTTP/2 exchange"):
        await _h2(FakeStream(data_on_stream_0))


def test_http_response_is_a_plain_value() -> None:
    r = HttpResponse(200, "OK", "1.1", (("a", "1"), ("a", "2")), b"")
    assert r.get("A") == "1" and r.get_all("a") == ["1", "2"]
