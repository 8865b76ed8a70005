"""Tests for the sans-I/O client session: valid sequences, every order violation, caller misuse,
heartbeat bookkeeping, round trips with the protocol codecs, and fuzzing with server input."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kiloscribe_lab import protocol
from kiloscribe_lab.errors import ProtocolError
from kiloscribe_lab.names import Transport
from kiloscribe_lab.protocol import (
    EioError,
    EioErrorCode,
    EioOpen,
    EioPacket,
    EioPacketType,
    ResponseHead,
    SioPacket,
    SioPacketType,
    UpgradeCheck,
    UpgradeFailure,
)
from kiloscribe_lab.session import (
    MAX_ATTACHMENTS,
    MAX_EARLY_EVENTS,
    Closed,
    EioState,
    Event,
    HandshakeFailed,
    LocalProtocolError,
    NamespaceState,
    Noop,
    Opened,
    Ping,
    PollingRefused,
    PostAccepted,
    ProbeAnswered,
    Send,
    SioAck,
    SioClient,
    SioConnected,
    SioConnectError,
    SioDisconnected,
    SioEvent,
    TransportClosed,
    WebSocketOpened,
    WebSocketRefused,
    first,
)

pytestmark = pytest.mark.unit

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

POLLING, WEBSOCKET = Transport.POLLING, Transport.WEBSOCKET
OPEN = EioOpen("sid-1", ("websocket",), 25000, 20000, 1_000_000)
OPEN_TEXT = protocol.encode_eio_packet(protocol.encode_open(OPEN))
NO_UPGRADE_TEXT = protocol.encode_eio_packet(protocol.encode_open(EioOpen("sid-2", (), 25000, 20000)))
KEY = protocol.make_websocket_key(b"k" * 16)
SWITCHED = ResponseHead(
    101,
    "Switching Protocols",
    "1.1",
    (
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Accept", protocol.websocket_accept(KEY)),
    ),
)


# --------------------------------------------------------------------------- a tiny driver

Step = tuple[Any, ...]


def act(client: SioClient, step: Step) -> Any:
    """Perform one step; receive steps give events, send steps what goes on the wire."""
    name, *args = step
    if name == "handshake":
        return client.receive_handshake(200, args[0].encode())
    if name == "handshake_answer":
        status, body = args
        return client.receive_handshake(status, body.encode())
    if name == "ws101":
        return client.receive_websocket_response(SWITCHED, KEY)
    if name == "ws_refused":
        status, body = args
        return client.receive_websocket_response(ResponseHead(status, "", "1.1"), KEY, body.encode())
    if name == "text":
        return client.receive_text(args[0])
    if name == "binary":
        return client.receive_binary(args[0])
    if name == "close":
        return client.receive_close(*args)
    if name == "lost":
        return client.connection_lost()
    if name == "poll":
        return client.receive_poll(args[0], args[1].encode())
    if name == "post":
        return client.receive_post(args[0], args[1].encode())
    if name == "begin_upgrade":
        return client.begin_upgrade()
    if name == "polling_target":
        return client.polling_target()
    sends = {
        "probe": lambda: client.probe(),
        "upgrade": lambda: client.upgrade(),
        "pong": lambda: client.pong(),
        "connect": lambda: client.connect(*args),
        "emit": lambda: client.emit(args[0], *args[1], ack=args[2]),
        "ack": lambda: client.ack(args[0], *args[1]),
        "disconnect": lambda: client.disconnect(*args),
        "close_session": lambda: client.close(),
    }
    send: Send = sends[name]()
    return send.polling_body() if send.transport is POLLING else send.websocket_messages()


def run(client: SioClient, steps: list[Step]) -> None:
    for step in steps:
        act(client, step)


POLL_OPEN: list[Step] = [("handshake", OPEN_TEXT)]
WS_OPEN: list[Step] = [("ws101",), ("text", OPEN_TEXT)]
CONNECTED: list[Step] = [*WS_OPEN, ("connect",), ("text", '40{"sid":"a"}')]
UPGRADING: list[Step] = [*POLL_OPEN, ("begin_upgrade",), ("ws101",)]
PROBING: list[Step] = [*UPGRADING, ("probe",)]
PROBED: list[Step] = [*PROBING, ("text", "3probe")]
UPGRADED: list[Step] = [*PROBED, ("upgrade",)]


# --------------------------------------------------------------------------- valid sequences

PYTHON_UNKNOWN_SID = EioError(EioErrorCode.SESSION_ID_UNKNOWN, "Invalid session sid-1", 400, "python")
NODE_BAD_REQUEST = EioError(EioErrorCode.BAD_REQUEST, "Bad request", 400, "node")

VALID: list[tuple[str, Transport, list[tuple[Step, Any]], EioState]] = [
    (
        "polling session: pong follow-ups, refusals, heartbeat, server close",
        POLLING,
        [
            (("handshake", OPEN_TEXT), [Opened(OPEN, POLLING)]),
            (("polling_target",), "/socket.io/?EIO=4&transport=polling&sid=sid-1"),
            (("pong",), b"3"),
            (("post", 200, "ok"), [PostAccepted()]),
            (("post", 400, '"Invalid session sid-1"'), [PollingRefused("POST", 400, PYTHON_UNKNOWN_SID)]),
            (("poll", 502, "Bad Gateway"), [PollingRefused("GET", 502, None)]),
            (("poll", 200, "2\x1e6"), [Ping("", None, None), Noop()]),
            (("pong",), b"3"),
            (("poll", 200, "1"), [Closed()]),
        ],
        EioState.CLOSED,
    ),
    (
        "polling, then the upgrade as socket.io-client does it",
        POLLING,
        [
            (("handshake", OPEN_TEXT), [Opened(OPEN, POLLING)]),
            (("begin_upgrade",), "/socket.io/?EIO=4&transport=websocket&sid=sid-1"),
            (("ws101",), [WebSocketOpened()]),
            (("probe",), ("2probe",)),
            (("poll", 200, "6"), [Noop()]),  # engine.io ends the pending long-poll
            (("text", "3probe"), [ProbeAnswered()]),
            (("pong",), b"3"),  # still polling until upgrade()
            (("upgrade",), ("5",)),
            (("poll", 200, "6"), [Noop()]),  # a long-poll still in flight
            (("text", "6"), [Noop()]),  # python-engineio's answer to the UPGRADE
            (("connect", "/", {"apiKey": "k"}), ('40{"apiKey":"k"}',)),
            (("text", '40{"sid":"a"}'), [SioConnected("/", "a")]),
            (("pong",), ("3",)),
        ],
        EioState.OPEN,
    ),
    (
        "a WebSocket-first session: namespaces, events, acks, disconnect, close",
        WEBSOCKET,
        [
            (("ws101",), [WebSocketOpened()]),
            (("text", OPEN_TEXT), [Opened(OPEN, WEBSOCKET)]),
            (("connect",), ("40",)),
            # python-socketio sends what its connect handler emits before the CONNECT reply
            (("text", '42["hello","world"]'), []),
            (("text", '40{"sid":"a"}'), [SioConnected("/", "a"), SioEvent("/", "hello", ["world"], None)]),
            (("connect", "/kiloscribe-lab-check"), ("40/kiloscribe-lab-check,",)),
            (
                ("text", '44/kiloscribe-lab-check,{"message":"Invalid namespace"}'),
                [
                    SioConnectError(
                        "/kiloscribe-lab-check", "Invalid namespace", {"message": "Invalid namespace"}
                    )
                ],
            ),
            (("connect", "/kiloscribe-lab-check"), ("40/kiloscribe-lab-check,",)),
            (
                ("text", '44/kiloscribe-lab-check,"Unable to connect"'),
                [SioConnectError("/kiloscribe-lab-check", "Unable to connect", "Unable to connect")],
            ),
            (("emit", "echo", [{"n": 1}], True), ('420["echo",{"n":1}]',)),
            (("emit", "note", ["x"], False), ('42["note","x"]',)),
            (("text", '430[{"n":1}]'), [SioAck("/", 0, [{"n": 1}], "echo")]),
            (("text", '427["ask",1]'), [SioEvent("/", "ask", [1], 7)]),
            (("ack", 7, ["yes"]), ('437["yes"]',)),
            (("text", "2"), [Ping("", None, None)]),
            (("pong",), ("3",)),
            (("text", "41"), [SioDisconnected("/")]),
            (("connect",), ("40",)),
            (("text", '40{"sid":"b"}'), [SioConnected("/", "b")]),
            (("disconnect",), ("41",)),
            (("close_session",), ("1",)),
            (("text", "2"), []),  # in flight when we closed (engine.io pings on after a ws CLOSE)
            (("close", 1000, ""), []),
        ],
        EioState.CLOSED,
    ),
    (
        "a binary event and a binary ack, attachments in order",
        WEBSOCKET,
        [
            *[(step, None) for step in CONNECTED],
            (("text", '452-["file",{"_placeholder":true,"num":1},{"_placeholder":true,"num":0}]'), []),
            (("binary", b"first"), []),
            (("binary", b"second"), [SioEvent("/", "file", [b"second", b"first"], None)]),
            (("emit", "upload", [], True), ('420["upload"]',)),
            (("text", '461-0[{"_placeholder":true,"num":0}]'), []),
            (("binary", b"\x00\x01"), [SioAck("/", 0, [b"\x00\x01"], "upload")]),
            (("text", '450-["empty"]'), [SioEvent("/", "empty", [], None)]),
        ],
        EioState.OPEN,
    ),
    (
        "a refused upgrade falls back to polling",
        POLLING,
        [
            (("handshake", OPEN_TEXT), [Opened(OPEN, POLLING)]),
            (("begin_upgrade",), "/socket.io/?EIO=4&transport=websocket&sid=sid-1"),
            (
                ("ws_refused", 400, '{"code":3,"message":"Bad request"}'),
                [
                    WebSocketRefused(
                        400, UpgradeCheck(False, "HTTP 400, not 101", UpgradeFailure.STATUS), NODE_BAD_REQUEST
                    )
                ],
            ),
            (("pong",), b"3"),
            (("begin_upgrade",), "/socket.io/?EIO=4&transport=websocket&sid=sid-1"),
        ],
        EioState.UPGRADING,
    ),
    (
        "the upgrade WebSocket closes during the probe: polling goes on",
        POLLING,
        [
            *[(step, None) for step in PROBING],
            (("close", 1001, "going away"), [TransportClosed(WEBSOCKET, 1001, "going away", False)]),
            (("pong",), b"3"),
        ],
        EioState.OPEN,
    ),
    (
        "a WebSocket-first session refused, and one lost",
        WEBSOCKET,
        [
            (
                ("ws_refused", 403, ""),
                [
                    WebSocketRefused(
                        403, UpgradeCheck(False, "HTTP 403, not 101", UpgradeFailure.STATUS), None
                    )
                ],
            ),
        ],
        EioState.CLOSED,
    ),
    (
        "the WebSocket's connection is lost",
        WEBSOCKET,
        [
            *[(step, None) for step in WS_OPEN],
            (("lost",), [TransportClosed(WEBSOCKET, 1006, "", True)]),
            (("lost",), []),
        ],
        EioState.CLOSED,
    ),
    (
        "a server that closes the WebSocket before its OPEN",
        WEBSOCKET,
        [
            (("ws101",), [WebSocketOpened()]),
            (("close", 1011, "nope"), [TransportClosed(WEBSOCKET, 1011, "nope", True)]),
        ],
        EioState.CLOSED,
    ),
    (
        "the handshake's payload carries more than the OPEN",
        POLLING,
        [(("handshake", OPEN_TEXT + "\x1e6"), [Opened(OPEN, POLLING), Noop()])],
        EioState.OPEN,
    ),
]


@pytest.mark.parametrize(("transport", "steps", "final"), [v[1:] for v in VALID], ids=[v[0] for v in VALID])
def test_valid_sequences(transport: Transport, steps: list[tuple[Step, Any]], final: EioState) -> None:
    client = SioClient(transport)
    for step, expected in steps:
        got = act(client, step)
        if expected is not None:
            assert got == expected, step
    assert client.state is final
    assert client.failure is None


def test_handshake_failures_close_the_session_and_keep_the_classification() -> None:
    refused = SioClient()
    events = refused.receive_handshake(400, b'{"code":5,"message":"Unsupported protocol version"}')
    error = EioError(EioErrorCode.UNSUPPORTED_PROTOCOL_VERSION, "Unsupported protocol version", 400, "node")
    assert events == [HandshakeFailed(400, error)]
    assert refused.state is EioState.CLOSED and refused.handshake_result == error and refused.open is None

    old = SioClient()
    v3_open = b'0{"sid":"x","upgrades":[],"pingInterval":1,"pingTimeout":2}'
    [failed] = old.receive_handshake(200, b"%d:%s" % (len(v3_open), v3_open))
    assert isinstance(failed, HandshakeFailed) and isinstance(failed.result, protocol.EioV3Handshake)

    page = SioClient()
    [failed] = page.receive_handshake(502, b"<html><title>Bad Gateway</title></html>", "text/html")
    assert isinstance(failed, HandshakeFailed) and isinstance(failed.result, protocol.NotEngineIO)


def test_state_and_namespaces_along_an_upgrade() -> None:
    client = SioClient()
    assert (
        client.state is EioState.IDLE and client.handshake_target() == "/socket.io/?EIO=4&transport=polling"
    )
    run(client, POLL_OPEN)
    assert (client.state, client.transport, client.sid) == (EioState.OPEN, POLLING, "sid-1")
    assert client.handshake_result == protocol.EioV4Handshake(OPEN)
    act(client, ("begin_upgrade",))
    assert client.state is EioState.UPGRADING and not client.websocket_open
    act(client, ("ws101",))
    assert client.websocket_open
    act(client, ("probe",))
    assert client.state is EioState.PROBING
    act(client, ("text", "3probe"))
    assert client.state is EioState.PROBED and client.transport is POLLING
    act(client, ("upgrade",))
    assert (client.state, client.transport) == (EioState.OPEN, WEBSOCKET)
    act(client, ("connect", "/"))
    assert client.namespace_state("/") is NamespaceState.CONNECTING
    act(client, ("text", '40{"sid":"x"}'))
    assert dict(client.namespaces) == {"/": NamespaceState.CONNECTED}
    act(client, ("connect", "/x"))
    act(client, ("text", '44/x,{"message":"Invalid namespace"}'))
    assert client.namespace_state("/x") is NamespaceState.REFUSED
    act(client, ("disconnect",))
    assert client.namespace_state("/") is NamespaceState.DISCONNECTED
    assert client.namespace_state("/never") is None


def test_abandoning_an_upgrade_returns_to_polling() -> None:
    client = SioClient()
    run(client, PROBING)
    client.abandon_upgrade()
    assert (client.state, client.transport, client.websocket_open) == (EioState.OPEN, POLLING, False)
    assert act(client, ("pong",)) == b"3"


def test_a_sid_is_quoted_into_the_target() -> None:
    client = SioClient(path="/custom/")
    text = protocol.encode_eio_packet(protocol.encode_open(EioOpen("a&b=c d", ("websocket",), 1, 2)))
    client.receive_handshake(200, text.encode())
    assert client.polling_target() == "/custom/?EIO=4&transport=polling&sid=a%26b%3Dc%20d"


def test_receive_frame_dispatches_by_opcode() -> None:
    client = SioClient(WEBSOCKET)
    act(client, ("ws101",))
    assert client.receive_frame(protocol.Frame(protocol.Opcode.TEXT, OPEN_TEXT.encode())) == [
        Opened(OPEN, WEBSOCKET)
    ]
    assert client.receive_frame(protocol.Frame(protocol.Opcode.PING, b"x")) == []  # the WebSocket layer's
    assert client.receive_frame(protocol.Frame(protocol.Opcode.TEXT, b"6")) == [Noop()]
    assert client.receive_frame(
        protocol.Frame(protocol.Opcode.CLOSE, protocol.close_payload(1000, "bye"))
    ) == [TransportClosed(WEBSOCKET, 1000, "bye", True)]


def test_first() -> None:
    events: list[Event] = [Noop(), Ping("", None, None), Noop()]
    assert first(events, Ping) == Ping("", None, None)
    assert first(events, Closed) is None


# --------------------------------------------------------------------------- heartbeats


def test_heartbeat_lateness_counts_from_the_open_and_then_from_our_pong() -> None:
    client = SioClient(WEBSOCKET)
    act(client, ("ws101",))
    assert client.next_ping_due is None and client.ping_deadline is None
    client.receive_text(OPEN_TEXT, now=10.0)
    assert client.next_ping_due == pytest.approx(35.0)  # open + pingInterval
    assert client.ping_deadline == pytest.approx(55.0)  # + pingTimeout: socket.io-client gives up
    [ping] = client.receive_text("2", now=35.5)
    assert isinstance(ping, Ping) and ping.at == 35.5 and ping.late_ms == pytest.approx(500.0)
    assert client.pong_owed and client.pings == 1
    assert client.ping_deadline == pytest.approx(80.5)  # from the last PING
    assert client.pong(now=36.0).websocket_messages() == ("3",)
    assert not client.pong_owed and client.next_ping_due == pytest.approx(61.0)
    [early] = client.receive_text("2", now=60.9)
    assert isinstance(early, Ping) and early.late_ms == pytest.approx(-100.0)


def test_heartbeat_without_times_records_counts_only() -> None:
    client = SioClient()
    client.receive_handshake(200, OPEN_TEXT.encode())
    [ping] = client.receive_poll(200, b"2")
    assert ping == Ping("", None, None) and client.pings == 1 and client.next_ping_due is None


# --------------------------------------------------------------------------- what the server must not do

VIOLATIONS: list[tuple[str, Transport, list[Step], Step, str]] = [
    ("first packet not OPEN", WEBSOCKET, [("ws101",)], ("text", "40"), "first packet is MESSAGE, not OPEN"),
    ("first packet a PING", WEBSOCKET, [("ws101",)], ("text", "2"), "first packet is PING"),
    ("first packet a broken OPEN", WEBSOCKET, [("ws101",)], ("text", "0{"), "OPEN packet"),
    ("first packet binary", WEBSOCKET, [("ws101",)], ("binary", b"\x00"), "first packet is MESSAGE"),
    ("not Engine.IO at all", WEBSOCKET, [("ws101",)], ("text", "hello"), "unknown Engine.IO packet type"),
    ("a second OPEN on WebSocket", WEBSOCKET, WS_OPEN, ("text", OPEN_TEXT), "second OPEN"),
    ("a second OPEN on polling", POLLING, POLL_OPEN, ("poll", 200, OPEN_TEXT), "second OPEN"),
    ("a handshake that claims Engine.IO and breaks", POLLING, [], ("handshake", "0{broken"), "OPEN packet"),
    (
        "a handshake whose extra packet is out of order",
        POLLING,
        [],
        ("handshake", OPEN_TEXT + "\x1e3"),
        "PING",
    ),
    (
        "3probe before we probed, on polling",
        POLLING,
        POLL_OPEN,
        ("poll", 200, "3probe"),
        "3probe before we probed",
    ),
    ("3probe before we probed, on the upgrade", POLLING, UPGRADING, ("text", "3probe"), "before we probed"),
    (
        "a NOOP on the upgrade before the probe",
        POLLING,
        UPGRADING,
        ("text", "6"),
        "before the upgrade completed",
    ),
    ("a PONG without a PING", WEBSOCKET, WS_OPEN, ("text", "3"), "we sent no PING"),
    ("a wrong probe answer", POLLING, PROBING, ("text", "3nope"), "expected PONG 'probe'"),
    ("a NOOP instead of the probe answer", POLLING, PROBING, ("text", "6"), "expected PONG 'probe'"),
    ("binary on the upgrade WebSocket", POLLING, PROBING, ("binary", b"x"), "expected PONG 'probe'"),
    (
        "a message before upgrade()",
        POLLING,
        PROBED,
        ("text", '40{"sid":"a"}'),
        "before the upgrade completed",
    ),
    ("a second 3probe", POLLING, PROBED, ("text", "3probe"), "before the upgrade completed"),
    ("UPGRADE from the server", WEBSOCKET, WS_OPEN, ("text", "5"), "client's packet"),
    (
        "a polling answer other than NOOP after the upgrade",
        POLLING,
        UPGRADED,
        ("poll", 200, "2"),
        "after the upgrade",
    ),
    ("a CONNECT reply we did not ask for", WEBSOCKET, WS_OPEN, ("text", '40{"sid":"a"}'), "did not ask"),
    (
        "a CONNECT reply for another namespace",
        WEBSOCKET,
        [*WS_OPEN, ("connect",)],
        ("text", '40/x,{"sid":"a"}'),
        "for /x, which we did not ask",
    ),
    ("a CONNECT reply without a sid", WEBSOCKET, [*WS_OPEN, ("connect",)], ("text", "40"), "without a sid"),
    ("a second CONNECT reply", WEBSOCKET, CONNECTED, ("text", '40{"sid":"b"}'), "did not ask"),
    ("a CONNECT_ERROR we did not ask for", WEBSOCKET, WS_OPEN, ("text", '44{"message":"x"}'), "did not ask"),
    ("a CONNECT_ERROR after the connect", WEBSOCKET, CONNECTED, ("text", '44{"message":"x"}'), "did not ask"),
    ("an EVENT on a namespace never connected", WEBSOCKET, WS_OPEN, ("text", '42["x"]'), "not connected"),
    (
        "an EVENT on another namespace",
        WEBSOCKET,
        CONNECTED,
        ("text", '42/x,["x"]'),
        "/x, which is not connected",
    ),
    ("an ACK for an id we never sent", WEBSOCKET, CONNECTED, ("text", "430[]"), "we sent no EVENT"),
    (
        "a second ACK for one id",
        WEBSOCKET,
        [*CONNECTED, ("emit", "e", [], True), ("text", "430[]")],
        ("text", "430[]"),
        "we sent no EVENT",
    ),
    ("an ACK before the connect", WEBSOCKET, [*WS_OPEN, ("connect",)], ("text", "430[]"), "not connected"),
    ("a DISCONNECT for a namespace not connected", WEBSOCKET, WS_OPEN, ("text", "41"), "not connected"),
    (
        "a Socket.IO packet that is not one",
        WEBSOCKET,
        CONNECTED,
        ("text", "4x"),
        "unknown Socket.IO packet type",
    ),
    (
        "a binary message nobody announced",
        WEBSOCKET,
        CONNECTED,
        ("binary", b"x"),
        "no binary Socket.IO packet",
    ),
    (
        "a text packet while attachments are due",
        WEBSOCKET,
        [*CONNECTED, ("text", '451-["f",{"_placeholder":true,"num":0}]')],
        ("text", '42["x"]'),
        "0 of 1 attachments",
    ),
    ("too many attachments", WEBSOCKET, CONNECTED, ("text", '45999-["f"]'), "attachments \\(at most"),
    (
        "a placeholder for an attachment that is not there",
        WEBSOCKET,
        [*CONNECTED, ("text", '451-["f",{"_placeholder":true,"num":3}]')],
        ("binary", b"x"),
        "placeholder for attachment 3",
    ),
    (
        "a packet after the server's CLOSE",
        WEBSOCKET,
        [*WS_OPEN, ("text", "1")],
        ("text", "2"),
        "after the session",
    ),
    (
        "a message after the WebSocket's CLOSE frame",
        WEBSOCKET,
        [*WS_OPEN, ("close", 1000, "")],
        ("text", "2"),
        "after the WebSocket closed",
    ),
    (
        "a second CLOSE frame",
        WEBSOCKET,
        [*WS_OPEN, ("close", 1000, "")],
        ("close", 1000, ""),
        "after the WebSocket closed",
    ),
    (
        "a polling answer after the server's CLOSE",
        POLLING,
        [*POLL_OPEN, ("poll", 200, "1")],
        ("poll", 200, "6"),
        "after the session closed",
    ),
]


@pytest.mark.parametrize(
    ("transport", "setup", "bad", "match"), [v[1:] for v in VIOLATIONS], ids=[v[0] for v in VIOLATIONS]
)
def test_order_violations_raise_protocol_error_and_end_the_session(
    transport: Transport, setup: list[Step], bad: Step, match: str
) -> None:
    client = SioClient(transport)
    run(client, setup)
    with pytest.raises(ProtocolError, match=match):
        act(client, bad)
    assert client.state is EioState.CLOSED
    assert client.failure is not None
    # A dead session stays dead: whatever arrives next is refused, as ProtocolError again.
    if client.open is None and transport is POLLING:
        return  # no session ever opened: there is nothing more to feed
    with pytest.raises(ProtocolError):
        if client.websocket_open or transport is WEBSOCKET:
            client.receive_text("6")
        else:
            client.receive_poll(200, b"6")


def test_early_events_are_bounded() -> None:
    client = SioClient(WEBSOCKET)
    run(client, [*WS_OPEN, ("connect",)])
    for _ in range(MAX_EARLY_EVENTS):
        assert client.receive_text('42["e"]') == []
    with pytest.raises(ProtocolError, match="before its CONNECT reply"):
        client.receive_text('42["e"]')


def test_early_events_are_dropped_with_a_refusal() -> None:
    client = SioClient(WEBSOCKET)
    run(
        client,
        [*WS_OPEN, ("connect",), ("text", '42["early"]'), ("text", '44{"message":"no"}'), ("connect",)],
    )
    assert client.receive_text('40{"sid":"a"}') == [SioConnected("/", "a")]


def test_attachments_up_to_the_limit_are_accepted() -> None:
    client = SioClient(WEBSOCKET)
    run(client, CONNECTED)
    placeholders = ",".join(f'{{"_placeholder":true,"num":{i}}}' for i in range(MAX_ATTACHMENTS))
    assert client.receive_text(f'45{MAX_ATTACHMENTS}-["many",{placeholders}]') == []
    for i in range(MAX_ATTACHMENTS - 1):
        assert client.receive_binary(bytes([i])) == []
    [event] = client.receive_binary(b"last")
    assert isinstance(event, SioEvent) and len(event.args) == MAX_ATTACHMENTS and event.args[-1] == b"last"


# --------------------------------------------------------------------------- what the caller must not do

MISUSE: list[tuple[str, Transport, list[Step], Step]] = [
    ("a probe before the upgrade WebSocket is open", POLLING, [*POLL_OPEN, ("begin_upgrade",)], ("probe",)),
    ("a probe without an upgrade", POLLING, POLL_OPEN, ("probe",)),
    ("upgrade() before 3probe", POLLING, PROBING, ("upgrade",)),
    ("a connect before the session is open", POLLING, [], ("connect",)),
    ("a second connect", WEBSOCKET, [*WS_OPEN, ("connect",)], ("connect",)),
    ("an emit on a namespace not connected", WEBSOCKET, WS_OPEN, ("emit", "e", [], False)),
    ("an emit while connecting", WEBSOCKET, [*WS_OPEN, ("connect",)], ("emit", "e", [], False)),
    ("an ack the server did not ask for", WEBSOCKET, CONNECTED, ("ack", 5, [])),
    ("a disconnect of a namespace not connected", WEBSOCKET, WS_OPEN, ("disconnect",)),
    ("a WebSocket message with no WebSocket", POLLING, POLL_OPEN, ("text", "2")),
    ("a WebSocket message before its handshake", WEBSOCKET, [], ("text", OPEN_TEXT)),
    (
        "a frame after the upgrade WebSocket was refused",
        POLLING,
        [*POLL_OPEN, ("begin_upgrade",), ("ws_refused", 403, "")],
        ("text", "3probe"),
    ),
    ("a polling answer on a WebSocket session", WEBSOCKET, WS_OPEN, ("poll", 200, "6")),
    ("a polling answer before the handshake", POLLING, [], ("poll", 200, "6")),
    ("a POST answer on a WebSocket session", WEBSOCKET, WS_OPEN, ("post", 200, "ok")),
    ("a polling handshake on a WebSocket session", WEBSOCKET, [], ("handshake", OPEN_TEXT)),
    ("a second handshake", POLLING, POLL_OPEN, ("handshake", OPEN_TEXT)),
    ("an upgrade the server does not offer", POLLING, [("handshake", NO_UPGRADE_TEXT)], ("begin_upgrade",)),
    ("an upgrade of a WebSocket session", WEBSOCKET, WS_OPEN, ("begin_upgrade",)),
    ("a second upgrade", POLLING, UPGRADING, ("begin_upgrade",)),
    ("the polling target of a WebSocket session", WEBSOCKET, WS_OPEN, ("polling_target",)),
    ("a second WebSocket handshake answer", WEBSOCKET, [("ws101",)], ("ws101",)),
    ("a pong after our close", WEBSOCKET, [*WS_OPEN, ("close_session",)], ("pong",)),
    ("a close before the open", WEBSOCKET, [], ("close_session",)),
]


@pytest.mark.parametrize(("transport", "setup", "bad"), [v[1:] for v in MISUSE], ids=[v[0] for v in MISUSE])
def test_caller_misuse_is_a_local_error_not_the_servers(
    transport: Transport, setup: list[Step], bad: Step
) -> None:
    client = SioClient(transport)
    run(client, setup)
    with pytest.raises(LocalProtocolError):
        act(client, bad)
    assert client.failure is None


def test_other_local_errors() -> None:
    with pytest.raises(LocalProtocolError):
        SioClient(path="socket.io")
    with pytest.raises(LocalProtocolError):
        SioClient(path="/socket.io/?x=1")
    client = SioClient()
    with pytest.raises(LocalProtocolError):
        client.handshake_result  # noqa: B018 - the property raises
    with pytest.raises(LocalProtocolError):
        client.abandon_upgrade()
    run(client, POLL_OPEN)
    with pytest.raises(LocalProtocolError):
        client.handshake_target()
    with pytest.raises(LocalProtocolError):
        client.pong().websocket_messages()
    ws = SioClient(WEBSOCKET)
    run(ws, WS_OPEN)
    with pytest.raises(LocalProtocolError):
        ws.pong().polling_body()
    with pytest.raises(LocalProtocolError):
        ws.receive_frame(protocol.Frame(protocol.Opcode.TEXT, b"2", fin=False))
    with pytest.raises(LocalProtocolError):
        ws.receive_frame(protocol.Frame(protocol.Opcode.CONTINUATION, b"2"))


# --------------------------------------------------------------------------- round trips

namespaces = st.sampled_from(["/", "/x", "/kiloscribe-lab-check", "/ns/deep", "/ünï"])
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
event_names = st.text(min_size=1, max_size=20)


def _connected(namespace: str) -> SioClient:
    client = SioClient(WEBSOCKET)
    run(client, WS_OPEN)
    client.connect(namespace)
    client.receive_text(
        protocol.encode_sio_message(SioPacket(SioPacketType.CONNECT, namespace, {"sid": "s"}))
    )
    return client


@FUZZ
@given(namespaces, st.none() | st.dictionaries(st.text(max_size=8), json_values, max_size=4))
def test_connect_round_trips_through_the_decoder(namespace: str, auth: dict[str, Any] | None) -> None:
    client = SioClient(WEBSOCKET)
    run(client, WS_OPEN)
    [text] = client.connect(namespace, auth).websocket_messages()
    assert isinstance(text, str)
    assert protocol.decode_sio_message(text) == SioPacket(SioPacketType.CONNECT, namespace, auth)


@FUZZ
@given(namespaces, event_names, st.lists(json_values, max_size=4), st.booleans())
def test_emit_round_trips_and_its_ack_comes_back(
    namespace: str, name: str, args: list[Any], ack: bool
) -> None:
    client = _connected(namespace)
    send = client.emit(name, *args, namespace=namespace, ack=ack)
    [text] = send.websocket_messages()
    assert isinstance(text, str)
    assert protocol.decode_sio_message(text) == SioPacket(
        SioPacketType.EVENT, namespace, [name, *args], send.ack_id
    )
    if ack:
        assert send.ack_id is not None
        reply = protocol.encode_sio_message(SioPacket(SioPacketType.ACK, namespace, args, ack_id=send.ack_id))
        assert client.receive_text(reply) == [SioAck(namespace, send.ack_id, args, name)]
    else:
        assert send.ack_id is None


@FUZZ
@given(namespaces, event_names, st.lists(json_values, max_size=4), st.none() | st.integers(0, 10**15 - 1))
def test_server_events_round_trip(namespace: str, name: str, args: list[Any], ack_id: int | None) -> None:
    client = _connected(namespace)
    text = protocol.encode_sio_message(SioPacket(SioPacketType.EVENT, namespace, [name, *args], ack_id))
    assert client.receive_text(text) == [SioEvent(namespace, name, args, ack_id)]
    if ack_id is not None:
        [answer] = client.ack(ack_id, *args, namespace=namespace).websocket_messages()
        assert isinstance(answer, str)
        assert protocol.decode_sio_message(answer) == SioPacket(SioPacketType.ACK, namespace, args, ack_id)


@FUZZ
@given(st.lists(st.binary(max_size=20), min_size=1, max_size=5), event_names)
def test_binary_events_round_trip(attachments: list[bytes], name: str) -> None:
    client = _connected("/")
    placeholders = [{"_placeholder": True, "num": i} for i in range(len(attachments))]
    head = SioPacket(SioPacketType.BINARY_EVENT, "/", [name, *placeholders], attachments=len(attachments))
    assert client.receive_text(protocol.encode_sio_message(head)) == []
    events = [e for data in attachments for e in client.receive_binary(data)]
    assert events == [SioEvent("/", name, attachments, None)]


@FUZZ
@given(
    st.text(min_size=1, max_size=30).filter(lambda s: s.isprintable()),
    st.lists(st.sampled_from(["websocket", "webtransport"]), max_size=2, unique=True),
    st.integers(0, 2**53),
    st.integers(0, 2**53),
    st.none() | st.integers(0, 2**53),
)
def test_open_round_trips_on_both_transports(
    sid: str, upgrades: list[str], interval: int, timeout: int, max_payload: int | None
) -> None:
    opened = EioOpen(sid, tuple(upgrades), interval, timeout, max_payload)
    text = protocol.encode_eio_packet(protocol.encode_open(opened))
    polling = SioClient()
    assert polling.receive_handshake(200, text.encode()) == [Opened(opened, POLLING)]
    ws = SioClient(WEBSOCKET)
    ws.receive_websocket_response(SWITCHED, KEY)
    assert ws.receive_text(text) == [Opened(opened, WEBSOCKET)]


@FUZZ
@given(st.lists(st.sampled_from(["pong", "connect", "emit"]), min_size=1, max_size=6))
def test_polling_bodies_decode_to_what_was_asked(actions: list[str]) -> None:
    client = SioClient()
    client.receive_handshake(200, OPEN_TEXT.encode())
    for action in actions:
        if action == "pong":
            body = client.pong().polling_body()
            assert protocol.decode_polling_payload(body) == [EioPacket(EioPacketType.PONG)]
        elif action == "connect" and client.namespace_state("/") is None:
            body = client.connect("/", {"k": "v"}).polling_body()
            assert protocol.decode_polling_payload(body) == [EioPacket(EioPacketType.MESSAGE, '0{"k":"v"}')]
            client.receive_poll(200, b'40{"sid":"s"}')
        elif action == "emit" and client.namespace_state("/") is NamespaceState.CONNECTED:
            body = client.emit("e", "\x1e").polling_body()  # JSON escapes the record separator
            assert protocol.decode_polling_payload(body) == [
                EioPacket(EioPacketType.MESSAGE, '2["e","\\u001e"]')
            ]


# --------------------------------------------------------------------------- fuzz: only ProtocolError

eio_texts = st.builds(
    lambda t, d: f"{t}{d}", st.sampled_from("0123456"), st.sampled_from(["", "probe", "x", OPEN_TEXT[1:]])
)
sio_texts = st.builds(
    lambda t, att, ns, ack, data: f"4{t}{att}{ns}{ack}{data}",
    st.sampled_from("0123456"),
    st.sampled_from(["", "1-", "0-", "2-", "99-"]),
    st.sampled_from(["", "/x,", "/kiloscribe-lab-check,"]),
    st.sampled_from(["", "0", "1", "7"]),
    st.sampled_from(
        [
            "",
            '{"sid":"s"}',
            '{"message":"Invalid namespace"}',
            '"Unable to connect"',
            '["e"]',
            '["e",{"_placeholder":true,"num":0}]',
            '["e",{"_placeholder":true,"num":5}]',
            "[1]",
            "[]",
            "null",
            "{",
        ]
    ),
)
server_texts = st.text(max_size=40) | eio_texts | sio_texts | st.just(OPEN_TEXT)
server_bodies = st.lists(server_texts, min_size=0, max_size=3).map(
    lambda parts: "\x1e".join(parts).encode()
) | st.binary(max_size=40)
heads = st.sampled_from(
    [
        SWITCHED,
        ResponseHead(101, "Switching Protocols", "1.1", (("Upgrade", "websocket"),)),
        ResponseHead(400, "Bad Request", "1.1"),
        ResponseHead(403, "Forbidden", "1.1"),
    ]
)


T = TypeVar("T")


def mostly(data: st.DataObject, likely: st.SearchStrategy[T], anything: st.SearchStrategy[T]) -> T:
    """Four times in five what a correct server would send, else anything."""
    return data.draw(likely if data.draw(st.integers(0, 4)) else anything)


def plausible(client: SioClient) -> list[str]:
    """What a correct server might send next, so the fuzzing also reaches the deep states."""
    if client.state is EioState.IDLE:
        return [OPEN_TEXT]
    if client.state is EioState.PROBING:
        return ["3probe"]
    texts = ["2", "6"]
    for namespace, state in client.namespaces.items():
        nsp = "" if namespace == "/" else f"{namespace},"
        if state is NamespaceState.CONNECTING:
            texts += [f'40{nsp}{{"sid":"s"}}', f'44{nsp}{{"message":"no"}}', f'42{nsp}["early"]']
        elif state is NamespaceState.CONNECTED:
            texts += [f'42{nsp}["e",1]', f'42{nsp}3["ask"]', f"43{nsp}0[]", f"43{nsp}1[]", f"41{nsp}"]
            texts += [f'45{nsp}1-["f",{{"_placeholder":true,"num":0}}]']
    return texts


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from([POLLING, WEBSOCKET]), st.data())
def test_arbitrary_server_input_raises_only_protocol_error(transport: Transport, data: st.DataObject) -> None:
    """A driver that behaves as a correct pump (it only does what the state allows) and a server
    that sends anything, often what a correct server would: the session answers with events or
    ProtocolError, never another exception."""
    client = SioClient(transport)
    handshake_pending = transport is WEBSOCKET
    now = 0.0
    for _ in range(data.draw(st.integers(1, 30))):
        now += data.draw(st.floats(0, 30))
        state = client.state
        choices: list[str] = []
        if state is EioState.IDLE and transport is POLLING:
            choices.append("handshake")
        if handshake_pending:
            choices.append("ws_response")
        if client.websocket_open:
            choices += ["text"] * 8 + ["binary", "close", "lost"]
        if transport is POLLING and client.open is not None:
            choices += ["poll"] * 3 + ["post"]
        if state not in {EioState.IDLE, EioState.CLOSED}:
            choices += ["pong", "connect", "connect", "emit", "emit", "disconnect", "close_session"]
        if (
            state is EioState.OPEN
            and client.transport is POLLING
            and client.open
            and "websocket" in client.open.upgrades
        ):
            choices += ["begin_upgrade"] * 2
        if state is EioState.UPGRADING and client.websocket_open:
            choices += ["probe"] * 3
        if state is EioState.PROBED:
            choices += ["upgrade"] * 3
        if not choices:
            break
        choice = data.draw(st.sampled_from(choices))
        likely = st.sampled_from(plausible(client))
        bodies = st.lists(st.sampled_from(plausible(client)), min_size=1, max_size=3).map(
            lambda parts: "\x1e".join(parts).encode()
        )
        try:
            if choice == "handshake":
                status = data.draw(st.sampled_from([200, 200, 200, 400, 502]))
                opens = st.sampled_from([OPEN_TEXT.encode(), NO_UPGRADE_TEXT.encode()])
                body = mostly(data, opens, server_bodies)
                client.receive_handshake(status, body, now=now)
            elif choice == "ws_response":
                handshake_pending = False
                head = mostly(data, st.just(SWITCHED), heads)
                client.receive_websocket_response(head, KEY, data.draw(server_bodies))
            elif choice == "text":
                client.receive_text(mostly(data, likely, server_texts), now=now)
            elif choice == "binary":
                client.receive_binary(data.draw(st.binary(max_size=10)), now=now)
            elif choice == "close":
                client.receive_close(data.draw(st.none() | st.sampled_from([1000, 1001, 1009])), "")
            elif choice == "lost":
                client.connection_lost()
            elif choice == "poll":
                status = data.draw(st.sampled_from([200, 200, 200, 400]))
                client.receive_poll(status, mostly(data, bodies, server_bodies), now=now)
            elif choice == "post":
                client.receive_post(data.draw(st.sampled_from([200, 400, 502])), data.draw(server_bodies))
            elif choice == "pong":
                client.pong(now=now)
            elif choice == "connect":
                namespace = data.draw(st.sampled_from(["/", "/x"]))
                if client.namespace_state(namespace) not in {
                    NamespaceState.CONNECTING,
                    NamespaceState.CONNECTED,
                }:
                    client.connect(namespace)
            elif choice == "emit":
                if client.namespace_state("/") is NamespaceState.CONNECTED:
                    client.emit("e", 1, ack=data.draw(st.booleans()))
            elif choice == "disconnect":
                if client.namespace_state("/") in {NamespaceState.CONNECTING, NamespaceState.CONNECTED}:
                    client.disconnect("/")
            elif choice == "close_session":
                client.close()
            elif choice == "begin_upgrade":
                client.begin_upgrade()
                handshake_pending = True
            elif choice == "probe":
                client.probe()
            elif choice == "upgrade":
                client.upgrade()
        except ProtocolError:
            assert client.state is EioState.CLOSED
        if client.state is EioState.CLOSED:
            handshake_pending = False


@FUZZ
@given(st.text(max_size=60) | sio_texts | eio_texts)
def test_any_first_frame_opens_or_raises_protocol_error(text: str) -> None:
    client = SioClient(WEBSOCKET)
    client.receive_websocket_response(SWITCHED, KEY)
    try:
        events = client.receive_text(text)
    except ProtocolError:
        assert client.state is EioState.CLOSED
    else:
        assert [type(e) for e in events] == [Opened] and client.state is EioState.OPEN


def test_json_in_events_is_exactly_what_the_server_sent() -> None:
    client = _connected("/")
    payload = {"fileBase64": "QUJD", "n": [1, 2.5, None, True], "ü": "✓"}
    text = "42" + json.dumps(["inscription-progress", payload], separators=(",", ":"), ensure_ascii=False)
    assert client.receive_text(text) == [SioEvent("/", "inscription-progress", [payload], None)]


# --------------------------------------------------------------------------- the pure core

BANNED = {"socket", "ssl", "asyncio", "http", "h11", "h2", "httpx", "aiohttp", "socketio", "engineio"}
BANNED |= {"websockets", "uvicorn", "subprocess", "select", "selectors"}
EDGES = {"probes", "lab", "report", "report_sections", "sdk", "cli", "notebook", "output"}


def _imports(module: str) -> set[str]:
    import ast
    import importlib.util

    spec = importlib.util.find_spec(module)
    assert spec is not None and spec.origin is not None
    tree = ast.parse(Path(spec.origin).read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found |= {
                f"{node.module}.{alias.name}" for alias in node.names if node.module == "kiloscribe_lab"
            }
    return found


@pytest.mark.parametrize("module", ["kiloscribe_lab.session", "kiloscribe_lab.details"])
def test_the_session_and_the_detail_shapes_are_pure(module: str) -> None:
    """What they import, and what that imports in turn, reads no socket and starts no process."""
    seen: set[str] = set()
    todo = [module]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for imported in _imports(name):
            top, _, rest = imported.partition(".")
            assert top not in BANNED, (name, imported)
            if top == "kiloscribe_lab":
                assert rest.split(".")[0] not in EDGES, (name, imported)
                todo.append(imported)
    assert "kiloscribe_lab.names" in seen  # the walk did follow our own imports
