"""Tests for the sans-I/O protocol core: table tests, round trips and fuzzing."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kiloscribe_lab.errors import ProtocolError
from kiloscribe_lab.protocol import (
    MAX_HEAD_BYTES,
    MAX_HEADER_LINES,
    BodyKind,
    EioError,
    EioErrorCode,
    EioOpen,
    EioPacket,
    EioPacketType,
    EioV3Handshake,
    EioV4Handshake,
    Frame,
    NotEngineIO,
    Opcode,
    ResponseHead,
    SioPacket,
    SioPacketType,
    UpgradeFailure,
    build_upgrade_request,
    check_upgrade_response,
    classify_engineio_error,
    classify_handshake,
    close_payload,
    connect_error_message,
    connect_packet,
    connect_sid,
    decode_body,
    decode_eio_packet,
    decode_frame,
    decode_polling_payload,
    decode_sio_message,
    decode_sio_packet,
    decode_v3_payload,
    describe_body,
    encode_eio_packet,
    encode_frame,
    encode_open,
    encode_polling_payload,
    encode_sio_message,
    encode_sio_packet,
    event_packet,
    event_parts,
    find_head_end,
    make_websocket_key,
    parse_close_payload,
    parse_open,
    parse_response_head,
    websocket_accept,
)

pytestmark = pytest.mark.unit

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

T = EioPacketType
S = SioPacketType

OPEN_JSON = (
    '{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":["websocket"],'
    '"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}'
)
OPEN_V4 = "0" + OPEN_JSON
EXPECTED_OPEN = EioOpen("lv_VI97HAXpY6yYWAAAC", ("websocket",), 25000, 20000, 1000000)
# Exactly 96 characters, so the contract's literal "96:0{...}2:40" example is exercised.
OPEN_V3 = '0{"sid":"lv_VI97HAXpY6yYWAAC","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":60000}'
V3_BODY = f"96:{OPEN_V3}2:40"

RFC_KEY = "dGhlIHNhbXBsZSBub25jZQ=="
RFC_ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="  # RFC 6455 §1.3
SEED_KEY = "x3JJHMbDL1EzLkh9GBhXDw=="


def test_v3_fixture_is_96_characters() -> None:
    assert len(OPEN_V3) == 96


# --------------------------------------------------------------------------- Engine.IO packets


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (OPEN_V4, EioPacket(T.OPEN, OPEN_JSON)),
        ("1", EioPacket(T.CLOSE)),
        ("2", EioPacket(T.PING)),
        ("2probe", EioPacket(T.PING, "probe")),
        ("3probe", EioPacket(T.PONG, "probe")),
        ("40", EioPacket(T.MESSAGE, "0")),
        ('44{"message":"Invalid API key"}', EioPacket(T.MESSAGE, '4{"message":"Invalid API key"}')),
        ("4", EioPacket(T.MESSAGE, "")),
        ("5", EioPacket(T.UPGRADE)),
        ("6", EioPacket(T.NOOP)),
        ("4héllo ✓", EioPacket(T.MESSAGE, "héllo ✓")),
        ("bAAEC", EioPacket(T.MESSAGE, b"\x00\x01\x02")),
        ("b", EioPacket(T.MESSAGE, b"")),
    ],
)
def test_decode_eio_packet(text: str, expected: EioPacket) -> None:
    assert decode_eio_packet(text) == expected


@pytest.mark.parametrize(
    "text",
    ["", "7", "9hello", "x", "{}", " 4", "b!!!!", "bAAE", "b====", "bAA E=", "b\u00e9AA="],
)
def test_decode_eio_packet_rejects(text: str) -> None:
    with pytest.raises(ProtocolError):
        decode_eio_packet(text)


@pytest.mark.parametrize(
    ("packet", "text"),
    [
        (EioPacket(T.PING, "probe"), "2probe"),
        (EioPacket(T.MESSAGE, "0"), "40"),
        (EioPacket(T.UPGRADE), "5"),
        (EioPacket(T.MESSAGE, b"\x00\x01\x02"), "bAAEC"),
    ],
)
def test_encode_eio_packet(packet: EioPacket, text: str) -> None:
    assert encode_eio_packet(packet) == text
    assert decode_eio_packet(text) == packet


def test_binary_data_only_in_message_packets() -> None:
    with pytest.raises(ProtocolError):
        EioPacket(T.PING, b"probe")


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (OPEN_V4, [EioPacket(T.OPEN, OPEN_JSON)]),
        (OPEN_V4.encode(), [EioPacket(T.OPEN, OPEN_JSON)]),
        ("40\x1e2", [EioPacket(T.MESSAGE, "0"), EioPacket(T.PING)]),
        (
            "4hello\x1ebAAE=\x1e6",
            [EioPacket(T.MESSAGE, "hello"), EioPacket(T.MESSAGE, b"\0\1"), EioPacket(T.NOOP)],
        ),
        ("4é".encode(), [EioPacket(T.MESSAGE, "é")]),
    ],
)
def test_decode_polling_payload(body: str | bytes, expected: list[EioPacket]) -> None:
    assert decode_polling_payload(body) == expected


@pytest.mark.parametrize(
    "body", ["", b"", "40\x1e", "\x1e40", "40\x1e\x1e2", "4a\x1e9", b"4\xff\xfe", "OK", "<html>"]
)
def test_decode_polling_payload_rejects(body: str | bytes) -> None:
    with pytest.raises(ProtocolError):
        decode_polling_payload(body)


def test_encode_polling_payload() -> None:
    packets = [EioPacket(T.MESSAGE, "0"), EioPacket(T.PING), EioPacket(T.MESSAGE, b"\xff")]
    body = encode_polling_payload(packets)
    assert body == "40\x1e2\x1eb/w=="
    assert decode_polling_payload(body) == packets


@pytest.mark.parametrize("packets", [[], [EioPacket(T.MESSAGE, "a\x1eb")]])
def test_encode_polling_payload_rejects(packets: list[EioPacket]) -> None:
    with pytest.raises(ProtocolError):
        encode_polling_payload(packets)


def test_polling_payload_matches_python_engineio() -> None:
    # Differential: python-engineio reads what we write.
    from engineio import payload

    packets = [EioPacket(T.MESSAGE, "hello"), EioPacket(T.MESSAGE, b"\0\1"), EioPacket(T.PING)]
    theirs = payload.Payload(encoded_payload=encode_polling_payload(packets)).packets
    assert [(p.packet_type, p.data) for p in theirs] == [(4, "hello"), (4, b"\0\1"), (2, "")]


# --------------------------------------------------------------------------- OPEN handshake


def test_parse_open_contract_example() -> None:
    handshake = parse_open(decode_eio_packet(OPEN_V4))
    assert handshake == EXPECTED_OPEN
    assert handshake.idle_budget_ms == 45000


def test_parse_open_without_max_payload_and_extra_keys() -> None:
    text = '{"sid":"s","upgrades":[],"pingInterval":0,"pingTimeout":1,"x":[1]}'
    assert parse_open(EioPacket(T.OPEN, text)) == EioOpen("s", (), 0, 1, None)


@pytest.mark.parametrize(
    "handshake", [EXPECTED_OPEN, EioOpen("a", (), 1, 2), EioOpen("é", ("websocket", "x"), 0, 0, 0)]
)
def test_open_round_trip(handshake: EioOpen) -> None:
    assert parse_open(decode_eio_packet(encode_eio_packet(encode_open(handshake)))) == handshake


_GOOD_OPEN: dict[str, Any] = json.loads(OPEN_JSON)
_DROP = object()  # marks a key to remove


def _open_with(**changes: Any) -> EioPacket:
    obj = {**_GOOD_OPEN, **changes}
    return EioPacket(T.OPEN, json.dumps({k: v for k, v in obj.items() if v is not _DROP}))


@pytest.mark.parametrize(
    "packet",
    [
        EioPacket(T.MESSAGE, OPEN_JSON),
        EioPacket(T.OPEN, ""),
        EioPacket(T.OPEN, "{"),
        EioPacket(T.OPEN, "[]"),
        EioPacket(T.OPEN, '"sid"'),
        EioPacket(T.OPEN, OPEN_JSON.replace("25000", "NaN")),
        EioPacket(T.OPEN, OPEN_JSON.replace("25000", "9" * 5000)),
        EioPacket(T.OPEN, "[" * 100_000),
        _open_with(sid=""),
        _open_with(sid=12),
        _open_with(sid=None),
        _open_with(sid=_DROP),
        _open_with(upgrades="websocket"),
        _open_with(upgrades=["websocket", 1]),
        _open_with(upgrades=_DROP),
        _open_with(pingInterval="25000"),
        _open_with(pingInterval=25000.0),
        _open_with(pingInterval=True),
        _open_with(pingInterval=-1),
        _open_with(pingInterval=2**60),
        _open_with(pingTimeout=_DROP),
        _open_with(maxPayload=-5),
        _open_with(maxPayload="1e6"),
    ],
)
def test_parse_open_rejects(packet: EioPacket) -> None:
    with pytest.raises(ProtocolError):
        parse_open(packet)


# --------------------------------------------------------------------------- Engine.IO v3


def test_decode_v3_contract_example() -> None:
    packets = decode_v3_payload(V3_BODY)
    assert packets == [EioPacket(T.OPEN, OPEN_V3[1:]), EioPacket(T.MESSAGE, "0")]
    assert decode_v3_payload(V3_BODY.encode()) == packets


def _v3_binary(*chunks: tuple[int, bytes]) -> bytes:
    out = b""
    for kind, data in chunks:
        out += bytes([kind, *(int(d) for d in str(len(data)))]) + b"\xff" + data
    return out


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("2:4é", [EioPacket(T.MESSAGE, "é")]),
        ("6:b4AAE=1:2", [EioPacket(T.MESSAGE, b"\0\1"), EioPacket(T.PING)]),
        (
            _v3_binary((0, OPEN_V3.encode()), (0, b"40")),
            [EioPacket(T.OPEN, OPEN_V3[1:]), EioPacket(T.MESSAGE, "0")],
        ),
        (_v3_binary((1, b"\x04\x00\x01")), [EioPacket(T.MESSAGE, b"\0\1")]),
    ],
)
def test_decode_v3_payload(body: str | bytes, expected: list[EioPacket]) -> None:
    assert decode_v3_payload(body) == expected


@pytest.mark.parametrize(
    "body",
    [
        "",
        "5:0{}",  # length beyond the body
        "0:",
        "x:40",
        ":40",
        "99999999999:4",
        "2:40x",
        "2:7x",
        "4:b2AA",  # binary packet that is not a MESSAGE
        b"\x00\xff",
        b"\x00\x0a\xff4",
        b"\x02\x01\xff4",
        b"\x01\x01\xff\x02",
        _v3_binary((0, b"\xff\xfe")),
        b"\x00\x09\xff40",
    ],
)
def test_decode_v3_payload_rejects(body: str | bytes) -> None:
    with pytest.raises(ProtocolError):
        decode_v3_payload(body)


# --------------------------------------------------------------------------- Engine.IO errors


@pytest.mark.parametrize(
    ("status", "body", "code", "style"),
    [
        (400, b'{"code":0,"message":"Transport unknown"}', EioErrorCode.TRANSPORT_UNKNOWN, "node"),
        (
            400,
            b'{"code":1,"message":"Session ID unknown"}',
            EioErrorCode.SESSION_ID_UNKNOWN,
            "node",
        ),
        (
            400,
            b'{"code":2,"message":"Bad handshake method"}',
            EioErrorCode.BAD_HANDSHAKE_METHOD,
            "node",
        ),
        (400, b'{"code":3,"message":"Bad request"}', EioErrorCode.BAD_REQUEST, "node"),
        (403, b'{"code":4,"message":"Forbidden"}', EioErrorCode.FORBIDDEN, "node"),
        (
            400,
            b'{"code":5,"message":"Unsupported protocol version"}',
            EioErrorCode.UNSUPPORTED_PROTOCOL_VERSION,
            "node",
        ),
        (
            400,
            '{"code":1,"message":"Session ID unknown","context":{}}',
            EioErrorCode.SESSION_ID_UNKNOWN,
            "node",
        ),
        (400, b'"Invalid session xyz"', EioErrorCode.SESSION_ID_UNKNOWN, "python"),
        (
            400,
            b'"The client is using an unsupported version of the Socket.IO or Engine.IO protocols"',
            EioErrorCode.UNSUPPORTED_PROTOCOL_VERSION,
            "python",
        ),
        (400, b'"Invalid transport"', EioErrorCode.TRANSPORT_UNKNOWN, "python"),
        (400, b'"Bad Request"', EioErrorCode.BAD_REQUEST, "python"),
        (400, b'"Invalid websocket upgrade"', EioErrorCode.BAD_REQUEST, "python"),
        (400, b'"Not an accepted origin."', EioErrorCode.FORBIDDEN, "python"),
        # python-engineio 4.15's words name the origin (FACTS.md §3.5)
        (400, b'"https://evil.example is not an accepted origin."', EioErrorCode.FORBIDDEN, "python"),
        (401, b'"Unauthorized"', EioErrorCode.FORBIDDEN, "python"),
    ],
)
def test_classify_engineio_error(status: int, body: bytes | str, code: EioErrorCode, style: str) -> None:
    error = classify_engineio_error(status, body)
    assert error is not None
    assert (error.code, error.status, error.style) == (code, status, style)
    assert error.session_unknown == (code is EioErrorCode.SESSION_ID_UNKNOWN)


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (200, b'{"code":1,"message":"Session ID unknown"}'),
        (502, b'{"code":1,"message":"Session ID unknown"}'),
        (401, b'{"code":1,"message":"Session ID unknown"}'),
        (403, b'"Invalid session xyz"'),
        (400, b'{"code":6,"message":"?"}'),
        (400, b'{"code":-1,"message":"?"}'),
        (400, b'{"code":true,"message":"?"}'),
        (400, b'{"code":"1","message":"?"}'),
        (400, b'{"code":1}'),
        (400, b'{"code":1,"message":2}'),
        (400, b'"Something else"'),
        (400, b"Bad Request"),
        (400, b"<html>400</html>"),
        (400, b""),
        (400, b"\xff\xfe"),
        (400, b"[" * 100_000),
        (400, b"1"),
    ],
)
def test_classify_engineio_error_none(status: int, body: bytes) -> None:
    assert classify_engineio_error(status, body) is None


# --------------------------------------------------------------------------- handshake


def test_classify_v4_open() -> None:
    result = classify_handshake(200, OPEN_V4.encode(), "text/plain; charset=UTF-8")
    assert result == EioV4Handshake(EXPECTED_OPEN)
    assert result.kind == "v4_open"


def test_classify_v3_text() -> None:
    result = classify_handshake(200, V3_BODY.encode(), "text/plain; charset=UTF-8")
    assert isinstance(result, EioV3Handshake)
    assert result.open.sid == "lv_VI97HAXpY6yYWAAC" and result.open.max_payload is None
    assert result.extra == (EioPacket(T.MESSAGE, "0"),)
    assert not result.binary_framing


def test_classify_v3_binary() -> None:
    body = _v3_binary((0, OPEN_V3.encode()), (0, b"40"))
    result = classify_handshake(200, body, "application/octet-stream")
    assert isinstance(result, EioV3Handshake) and result.binary_framing
    assert result.open.ping_timeout == 60000


@pytest.mark.parametrize(
    ("status", "body", "content_type", "expected"),
    [
        (
            400,
            b'{"code":5,"message":"Unsupported protocol version"}',
            "application/json",
            EioError(
                EioErrorCode.UNSUPPORTED_PROTOCOL_VERSION,
                "Unsupported protocol version",
                400,
                "node",
            ),
        ),
        (
            400,
            b'"Invalid session xyz"',
            "text/plain",
            EioError(EioErrorCode.SESSION_ID_UNKNOWN, "Invalid session xyz", 400, "python"),
        ),
    ],
)
def test_classify_errors(status: int, body: bytes, content_type: str, expected: EioError) -> None:
    assert classify_handshake(status, body, content_type) == expected


@pytest.mark.parametrize(
    ("status", "body", "content_type", "kind", "words"),
    [
        (
            404,
            b"<html><head><title>404 Not Found</title></head></html>",
            "text/html",
            BodyKind.HTML,
            "404 Not Found",
        ),
        (200, b"<!DOCTYPE html>\n<html><body>hi</body></html>", None, BodyKind.HTML, "HTML page"),
        (502, b"Bad Gateway", "text/html", BodyKind.HTML, "HTML page"),
        (200, b"OK", "text/plain", BodyKind.TEXT, "'OK'"),
        (404, b"404: Not Found", None, BodyKind.TEXT, "404: Not Found"),
        (200, b"12:30 is lunch", None, BodyKind.TEXT, "lunch"),
        (200, b"2:40", None, BodyKind.TEXT, "2:40"),
        (200, b'{"status":"ok"}', "application/json", BodyKind.JSON, "dict"),
        (400, b'{"code":9,"message":"x"}', "application/json", BodyKind.JSON, "HTTP 400"),
        (308, b"", None, BodyKind.EMPTY, "empty"),
        (200, b"  \r\n", None, BodyKind.EMPTY, "empty"),
        (200, b"\x89PNG\r\n\x1a\n\xff\x00", "image/png", BodyKind.BINARY, "10 bytes"),
        (200, b"0", None, BodyKind.JSON, "int"),
        (200, b"6", None, BodyKind.JSON, "int"),
        (101, b"", None, BodyKind.EMPTY, "HTTP 101"),
    ],
)
def test_classify_not_engineio(
    status: int, body: bytes, content_type: str | None, kind: BodyKind, words: str
) -> None:
    result = classify_handshake(status, body, content_type)
    assert isinstance(result, NotEngineIO)
    assert result.body_kind is kind and result.status == status
    assert words in result.description


@pytest.mark.parametrize(
    "body",
    [
        b"0{",  # claims to be an OPEN, is not JSON
        b'0{"sid":""}',
        b'0{"sid":"x","upgrades":[],"pingInterval":1}',
        OPEN_V4.encode() + b"\x1e9",  # a bad packet after the OPEN
        b"96:0{",  # v3 framing, truncated
        b"3:0{}",  # v3 framing, an OPEN without fields
        b"\x00\x01\xff4",  # v3 binary framing, not an OPEN first
    ],
)
def test_classify_broken_engineio(body: bytes) -> None:
    with pytest.raises(ProtocolError):
        classify_handshake(200, body)


def test_describe_body_truncates_and_flattens() -> None:
    kind, text = describe_body(b"line one\n\n  line two " + b"x" * 500)
    assert kind is BodyKind.TEXT
    assert "line one line two" in text and len(text) < 100


# --------------------------------------------------------------------------- Socket.IO packets


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", SioPacket(S.CONNECT)),
        ('0{"apiKey":"k"}', SioPacket(S.CONNECT, data={"apiKey": "k"})),
        ('0/admin,{"sid":"x"}', SioPacket(S.CONNECT, "/admin", {"sid": "x"})),
        ("0/admin,", SioPacket(S.CONNECT, "/admin")),
        ("0/,", SioPacket(S.CONNECT)),
        ("1", SioPacket(S.DISCONNECT)),
        ("1/admin,", SioPacket(S.DISCONNECT, "/admin")),
        (
            "1/admin",
            SioPacket(S.DISCONNECT, "/admin"),
        ),  # the JS parser tolerates no comma at the end
        ('2["ev"]', SioPacket(S.EVENT, data=["ev"])),
        ('21["ev",1,{"a":null}]', SioPacket(S.EVENT, data=["ev", 1, {"a": None}], ack_id=1)),
        ('2/admin,7["ev"]', SioPacket(S.EVENT, "/admin", ["ev"], ack_id=7)),
        ('2007["ev"]', SioPacket(S.EVENT, data=["ev"], ack_id=7)),
        ('2999999999999999["ev"]', SioPacket(S.EVENT, data=["ev"], ack_id=999999999999999)),
        ("3/admin,7[]", SioPacket(S.ACK, "/admin", [], ack_id=7)),
        ('30[{"success":true}]', SioPacket(S.ACK, data=[{"success": True}], ack_id=0)),
        (
            '4{"message":"Invalid API key"}',
            SioPacket(S.CONNECT_ERROR, data={"message": "Invalid API key"}),
        ),
        ('4"Not authorized"', SioPacket(S.CONNECT_ERROR, data="Not authorized")),
        ("4", SioPacket(S.CONNECT_ERROR)),
        (
            '51-["ev",{"_placeholder":true,"num":0}]',
            SioPacket(S.BINARY_EVENT, data=["ev", {"_placeholder": True, "num": 0}], attachments=1),
        ),
        (
            '62-/admin,3[{"_placeholder":true,"num":0}]',
            SioPacket(S.BINARY_ACK, "/admin", [{"_placeholder": True, "num": 0}], 3, 2),
        ),
        ('2["é",1.5,-0.0,1e+16]', SioPacket(S.EVENT, data=["é", 1.5, -0.0, 1e16])),
        ('2 ["ev"] ', SioPacket(S.EVENT, data=["ev"])),
    ],
)
def test_decode_sio_packet(text: str, expected: SioPacket) -> None:
    assert decode_sio_packet(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "7",
        "x",
        "-1",
        "0[]",
        '0"s"',
        "0null",
        "01{}",  # CONNECT cannot carry an ack id
        "0{",
        "1{}",
        "1/admin,{}",
        "2",
        "2{}",
        "2[]",
        "2[1]",
        "2null",
        '2["ev"',
        '2["ev"]x',
        '2["ev",NaN]',
        '2["ev",Infinity]',
        "2" + "1" * 16 + '["ev"]',
        "2" + "[" * 100_000,
        '2["ev",' + "9" * 5000 + "]",
        "3",
        "3[]",  # ACK without an ack id
        "31{}",
        "4[1]",
        "4null",
        "45",
        '5["ev"]',
        '5-["ev"]',
        '5x-["ev"]',
        "5" + "1" * 16 + '-["ev"]',
        '5²-["ev"]',
        '2²["ev"]',
        "6-[]",
        "admin,0",
    ],
)
def test_decode_sio_packet_rejects(text: str) -> None:
    with pytest.raises(ProtocolError):
        decode_sio_packet(text)


@pytest.mark.parametrize(
    ("packet", "text"),
    [
        (SioPacket(S.CONNECT, data={"apiKey": "k"}), '0{"apiKey":"k"}'),
        (SioPacket(S.CONNECT, "/admin"), "0/admin,"),
        (SioPacket(S.DISCONNECT), "1"),
        (SioPacket(S.EVENT, data=["ev", "é"], ack_id=12), '212["ev","é"]'),
        (SioPacket(S.ACK, "/a", [None], ack_id=0), "3/a,0[null]"),
        (
            SioPacket(S.CONNECT_ERROR, data={"message": "Invalid API key"}),
            '4{"message":"Invalid API key"}',
        ),
        (
            SioPacket(S.BINARY_EVENT, "/x", ["e", {"_placeholder": True, "num": 0}], 3, 1),
            '51-/x,3["e",{"_placeholder":true,"num":0}]',
        ),
        # A lone surrogate is escaped, as JSON.stringify does, so the text stays UTF-8-encodable.
        (SioPacket(S.EVENT, data=["\ud800"]), '2["\\ud800"]'),
    ],
)
def test_encode_sio_packet(packet: SioPacket, text: str) -> None:
    assert encode_sio_packet(packet) == text
    assert decode_sio_packet(text) == packet


def _deep(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize(
    "packet",
    [
        SioPacket(S.EVENT, data=["ev", {1, 2}]),
        SioPacket(S.EVENT, data=["ev", float("nan")]),
        SioPacket(S.EVENT, data=["ev", float("inf")]),
        SioPacket(S.EVENT, data=["ev", _deep(100_000)]),
        SioPacket(S.ACK, data=[b"raw"], ack_id=1),
    ],
)
def test_encode_sio_packet_rejects(packet: SioPacket) -> None:
    with pytest.raises(ProtocolError):
        encode_sio_packet(packet)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"type": S.CONNECT, "namespace": "admin"},
        {"type": S.CONNECT, "namespace": ""},
        {"type": S.CONNECT, "namespace": "/a,b"},
        {"type": S.CONNECT, "namespace": "/\ud800"},
        {"type": S.CONNECT, "data": []},
        {"type": S.CONNECT, "ack_id": 1},
        {"type": S.DISCONNECT, "data": {}},
        {"type": S.EVENT},
        {"type": S.EVENT, "data": ("ev",)},
        {"type": S.EVENT, "data": [1]},
        {"type": S.EVENT, "data": ["ev"], "ack_id": -1},
        {"type": S.EVENT, "data": ["ev"], "ack_id": True},
        {"type": S.EVENT, "data": ["ev"], "ack_id": 10**15},
        {"type": S.EVENT, "data": ["ev"], "ack_id": "1"},
        {"type": S.EVENT, "data": ["ev"], "attachments": 1},
        {"type": S.ACK, "data": []},
        {"type": S.ACK, "data": {}, "ack_id": 1},
        {"type": S.CONNECT_ERROR, "data": 5},
        {"type": S.BINARY_EVENT, "data": ["ev"]},
        {"type": S.BINARY_EVENT, "data": ["ev"], "attachments": -1},
    ],
)
def test_sio_packet_validation(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ProtocolError):
        SioPacket(**kwargs)


def test_connect_and_event_helpers() -> None:
    assert connect_packet({"apiKey": "k"}) == '40{"apiKey":"k"}'
    assert connect_packet() == "40"
    assert connect_packet(None, "/admin") == "40/admin,"
    assert event_packet("start-inscription", {"network": "testnet"}, ack_id=1) == (
        '421["start-inscription",{"network":"testnet"}]'
    )
    assert event_packet("ping") == '42["ping"]'
    with pytest.raises(ProtocolError):
        event_packet("ev", ack_id=-1)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('44{"message":"Invalid API key"}', "Invalid API key"),
        ('44"Not authorized"', "Not authorized"),
        ('44/admin,{"message":"nope","data":{}}', "nope"),
        ('44{"data":1}', None),
        ('44{"message":1}', None),
        ("44", None),
    ],
)
def test_connect_error_message(text: str, message: str | None) -> None:
    assert connect_error_message(decode_sio_message(text)) == message


@pytest.mark.parametrize(
    ("text", "sid"),
    [('40{"sid":"abc"}', "abc"), ("40", None), ('40{"sid":""}', None), ('40{"sid":1}', None)],
)
def test_connect_sid(text: str, sid: str | None) -> None:
    assert connect_sid(decode_sio_message(text)) == sid


def test_helpers_reject_other_packet_types() -> None:
    event = SioPacket(S.EVENT, data=["ev", 1, 2])
    assert event_parts(event) == ("ev", [1, 2])
    with pytest.raises(ProtocolError):
        connect_error_message(event)
    with pytest.raises(ProtocolError):
        connect_sid(event)
    with pytest.raises(ProtocolError):
        event_parts(SioPacket(S.CONNECT))


@pytest.mark.parametrize("text", ["", "2probe", "0{}", "bAAE=", "4", "47", '4["ev"]'])
def test_decode_sio_message_rejects(text: str) -> None:
    with pytest.raises(ProtocolError):
        decode_sio_message(text)


def test_encode_sio_message() -> None:
    packet = SioPacket(S.CONNECT_ERROR, data={"message": "Invalid API key"})
    assert encode_sio_message(packet) == '44{"message":"Invalid API key"}'


# --------------------------------------------------------------------------- HTTP upgrade


def test_make_websocket_key() -> None:
    assert make_websocket_key(base64.b64decode(SEED_KEY)) == SEED_KEY
    key = make_websocket_key()
    assert len(base64.b64decode(key, validate=True)) == 16
    assert key != make_websocket_key()


@pytest.mark.parametrize("raw", [b"", b"x" * 15, b"x" * 17])
def test_make_websocket_key_rejects(raw: bytes) -> None:
    with pytest.raises(ProtocolError):
        make_websocket_key(raw)


def test_websocket_accept_rfc_example() -> None:
    assert websocket_accept(RFC_KEY) == RFC_ACCEPT
    with pytest.raises(ProtocolError):
        websocket_accept("clé")


def test_build_upgrade_request() -> None:
    request = build_upgrade_request(
        "inscribe.example.com",
        "/socket.io/?EIO=4&transport=websocket",
        SEED_KEY,
        [("Origin", "https://app.example"), ("User-Agent", "kiloscribe-lab")],
    )
    assert request == (
        b"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\n"
        b"Host: inscribe.example.com\r\n"
        b"Upgrade: websocket\r\n"
        b"Connection: Upgrade\r\n"
        b"Sec-WebSocket-Key: x3JJHMbDL1EzLkh9GBhXDw==\r\n"
        b"Sec-WebSocket-Version: 13\r\n"
        b"Origin: https://app.example\r\n"
        b"User-Agent: kiloscribe-lab\r\n"
        b"\r\n"
    )


@pytest.mark.parametrize(
    ("host", "path", "key", "extra"),
    [
        ("", "/", SEED_KEY, []),
        ("a b", "/", SEED_KEY, []),
        ("a\r\nX: y", "/", SEED_KEY, []),
        ("hôst", "/", SEED_KEY, []),
        ("h", "", SEED_KEY, []),
        ("h", "socket.io", SEED_KEY, []),
        ("h", "/a b", SEED_KEY, []),
        ("h", "/\r\nX: y", SEED_KEY, []),
        ("h", "/", "k\r\n", []),
        ("h", "/", SEED_KEY, [("Bad Name", "v")]),
        ("h", "/", SEED_KEY, [("", "v")]),
        ("h", "/", SEED_KEY, [("X", "v\r\nInjected: 1")]),
        ("h", "/", SEED_KEY, [("X", "\u20ac")]),
        ("h", "/", SEED_KEY, [("host", "other")]),
        ("h", "/", SEED_KEY, [("Sec-WebSocket-Version", "8")]),
    ],
)
def test_build_upgrade_request_rejects(host: str, path: str, key: str, extra: list[tuple[str, str]]) -> None:
    with pytest.raises(ProtocolError):
        build_upgrade_request(host, path, key, extra)


HEAD_101 = (
    b"HTTP/1.1 101 Switching Protocols\r\n"
    b"Upgrade: websocket\r\n"
    b"Connection: Upgrade\r\n"
    b"Sec-WebSocket-Accept: " + RFC_ACCEPT.encode() + b"\r\n\r\n"
)


@pytest.mark.parametrize(
    ("buf", "end"),
    [
        (b"", None),
        (b"HTTP/1.1 101 Switching Protocols\r\n", None),
        (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r", None),
        (HEAD_101, len(HEAD_101)),
        (HEAD_101 + b"\x81\x0240", len(HEAD_101)),
        (b"HTTP/1.1 200 OK\n\nbody", 17),
        (b"HTTP/1.1 200 OK\r\n\nbody", 18),
        (b"x" * (MAX_HEAD_BYTES - 1), None),
    ],
)
def test_find_head_end(buf: bytes, end: int | None) -> None:
    assert find_head_end(buf) == end


@pytest.mark.parametrize("buf", [b"x" * MAX_HEAD_BYTES, b"x" * (MAX_HEAD_BYTES + 10) + b"\r\n\r\n"])
def test_find_head_end_is_bounded(buf: bytes) -> None:
    with pytest.raises(ProtocolError):
        find_head_end(buf)


def test_parse_response_head_101() -> None:
    head = parse_response_head(HEAD_101 + b"\x81\x0240")
    assert (head.status, head.reason, head.http_version) == (101, "Switching Protocols", "1.1")
    assert head.get("UPGRADE") == "websocket"
    assert head.get("sec-websocket-accept") == RFC_ACCEPT
    assert head.get("X-Missing") is None
    assert head.headers[0] == ("Upgrade", "websocket")


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"HTTP/1.1 200", ResponseHead(200, "", "1.1")),
        (b"HTTP/1.1 200 \r\n\r\n", ResponseHead(200, "", "1.1")),
        (b"HTTP/1.0 404 Not Found\n\n", ResponseHead(404, "Not Found", "1.0")),
        (
            b"HTTP/1.1 308 Permanent Redirect\r\nLocation: /x\r\n",
            ResponseHead(308, "Permanent Redirect", "1.1", (("Location", "/x"),)),
        ),
        (
            b"HTTP/1.1 502 Bad Gateway\r\nX-A:  v  \r\nx-a:\tw\r\nEmpty:\r\n\r\n",
            ResponseHead(502, "Bad Gateway", "1.1", (("X-A", "v"), ("x-a", "w"), ("Empty", ""))),
        ),
        (
            b"HTTP/1.1 200 Caf\xe9\r\nServer: caf\xe9\r\n\r\n",
            ResponseHead(200, "Café", "1.1", (("Server", "café"),)),
        ),
    ],
)
def test_parse_response_head(data: bytes, expected: ResponseHead) -> None:
    assert parse_response_head(data) == expected


def test_response_head_joins_repeated_headers() -> None:
    head = parse_response_head(b"HTTP/1.1 200 OK\r\nVia: a\r\nX: 1\r\nvia: b\r\n\r\n")
    assert head.get("via") == "a, b"
    assert head.get_all("VIA") == ("a", "b")


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\r\n\r\n",
        b"HTTP/1.1\r\n\r\n",
        b"HTTP/2 200 OK\r\n\r\n",
        b"HTTP/1.1 20 OK\r\n\r\n",
        b"HTTP/1.1 2000 OK\r\n\r\n",
        b"http/1.1 200 OK\r\n\r\n",
        b"ICY 200 OK\r\n\r\n",
        b" HTTP/1.1 200 OK\r\n\r\n",
        b"HTTP/1.1 200 O\x00K\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nNoColon\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nBad Name: v\r\n\r\n",
        b"HTTP/1.1 200 OK\r\n: v\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nName : v\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nA: b\r\n folded\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nA: b\x00c\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nA: b\rc\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nA\xff: b\r\n\r\n",
        b"HTTP/1.1 200 OK\r\n" + b"A: b\r\n" * (MAX_HEADER_LINES + 1) + b"\r\n",
        b"HTTP/1.1 200 OK\r\nA: " + b"x" * MAX_HEAD_BYTES + b"\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nA: " + b"x" * MAX_HEAD_BYTES,
    ],
)
def test_parse_response_head_rejects(data: bytes) -> None:
    with pytest.raises(ProtocolError):
        parse_response_head(data)


def test_parse_response_head_is_linear_in_whitespace() -> None:
    # Regression: a lazy header regex backtracked quadratically on runs of spaces.
    data = b"HTTP/1.1 200 OK\r\nA: a" + b" " * (MAX_HEAD_BYTES - 100) + b"b\r\n\r\n"
    assert parse_response_head(data).get("a") == "a" + " " * (MAX_HEAD_BYTES - 100) + "b"


def test_parse_response_head_allows_max_header_lines() -> None:
    data = b"HTTP/1.1 200 OK\r\n" + b"A: b\r\n" * MAX_HEADER_LINES + b"\r\n"
    assert len(parse_response_head(data).headers) == MAX_HEADER_LINES


def _head(status: str = "101 Switching Protocols", **headers: str) -> ResponseHead:
    lines = [f"HTTP/1.1 {status}"] + [f"{k.replace('_', '-')}: {v}" for k, v in headers.items()]
    return parse_response_head(("\r\n".join(lines) + "\r\n\r\n").encode())


_OK_HEADERS = {"Upgrade": "websocket", "Connection": "Upgrade", "Sec_WebSocket_Accept": RFC_ACCEPT}


@pytest.mark.parametrize(
    ("head", "failure", "words"),
    [
        (_head(**_OK_HEADERS), None, "101"),
        (
            _head(
                Upgrade="WebSocket",
                Connection="keep-alive, upgrade",
                Sec_WebSocket_Accept=RFC_ACCEPT,
            ),
            None,
            "101",
        ),
        (
            _head("308 Permanent Redirect", Location="/x"),
            UpgradeFailure.STATUS,
            "HTTP 308 Permanent Redirect",
        ),
        (_head("502 Bad Gateway"), UpgradeFailure.STATUS, "502"),
        (_head("200 OK", **_OK_HEADERS), UpgradeFailure.STATUS, "200"),
        (
            _head(Connection="Upgrade", Sec_WebSocket_Accept=RFC_ACCEPT),
            UpgradeFailure.UPGRADE_HEADER,
            "no Upgrade",
        ),
        (
            _head(Upgrade="h2c", Connection="Upgrade", Sec_WebSocket_Accept=RFC_ACCEPT),
            UpgradeFailure.UPGRADE_HEADER,
            "h2c",
        ),
        (
            _head(Upgrade="websocket", Sec_WebSocket_Accept=RFC_ACCEPT),
            UpgradeFailure.CONNECTION_HEADER,
            "no Connection",
        ),
        (
            _head(Upgrade="websocket", Connection="close", Sec_WebSocket_Accept=RFC_ACCEPT),
            UpgradeFailure.CONNECTION_HEADER,
            "close",
        ),
        (
            _head(Upgrade="websocket", Connection="Upgrade"),
            UpgradeFailure.ACCEPT_HEADER,
            "no Sec-WebSocket-Accept",
        ),
        (
            _head(Upgrade="websocket", Connection="Upgrade", Sec_WebSocket_Accept="AAAA"),
            UpgradeFailure.ACCEPT_HEADER,
            "does not match",
        ),
        (
            _head(**_OK_HEADERS, Sec_WebSocket_Extensions="permessage-deflate"),
            UpgradeFailure.EXTENSIONS,
            "permessage-deflate",
        ),
    ],
)
def test_check_upgrade_response(head: ResponseHead, failure: UpgradeFailure | None, words: str) -> None:
    verdict = check_upgrade_response(head, RFC_KEY)
    assert verdict.accepted is (failure is None)
    assert verdict.failure is failure
    assert words in verdict.reason


# --------------------------------------------------------------------------- WebSocket frames

# RFC 6455 §5.7 examples.
HELLO_UNMASKED = bytes.fromhex("810548656c6c6f")
HELLO_MASKED = bytes.fromhex("818537fa213d7f9f4d5158")
RFC_MASK = bytes.fromhex("37fa213d")


@pytest.mark.parametrize(
    ("opcode", "payload", "mask", "fin", "wire"),
    [
        (Opcode.TEXT, b"Hello", None, True, HELLO_UNMASKED),
        (Opcode.TEXT, b"Hello", RFC_MASK, True, HELLO_MASKED),
        (Opcode.TEXT, b"Hel", None, False, bytes.fromhex("010348656c")),
        (Opcode.CONTINUATION, b"lo", None, True, bytes.fromhex("80026c6f")),
        (Opcode.PING, b"Hello", None, True, bytes.fromhex("890548656c6c6f")),
        (Opcode.PONG, b"Hello", RFC_MASK, True, bytes.fromhex("8a8537fa213d7f9f4d5158")),
        (Opcode.BINARY, b"\0" * 256, None, True, bytes.fromhex("827e0100") + b"\0" * 256),
        (
            Opcode.BINARY,
            b"\0" * 65536,
            None,
            True,
            bytes.fromhex("827f0000000000010000") + b"\0" * 65536,
        ),
        (Opcode.CLOSE, b"", None, True, b"\x88\x00"),
        (2, b"", None, True, b"\x82\x00"),
    ],
)
def test_frames(opcode: Opcode | int, payload: bytes, mask: bytes | None, fin: bool, wire: bytes) -> None:
    assert encode_frame(opcode, payload, mask, fin=fin) == wire
    decoded = decode_frame(wire + b"\x81", masked=mask is not None, max_size=1 << 17)
    assert decoded == (Frame(Opcode(opcode), payload, fin), len(wire))


def test_decode_frame_needs_more_bytes() -> None:
    for wire, masked in [(HELLO_UNMASKED, False), (HELLO_MASKED, True)]:
        for cut in range(len(wire)):
            assert decode_frame(wire[:cut], masked=masked) is None
    long_frame = encode_frame(Opcode.BINARY, b"x" * 70000, b"abcd")
    for cut in (2, 5, 9, 13, 14, len(long_frame) - 1):
        assert decode_frame(long_frame[:cut], masked=True) is None


@pytest.mark.parametrize(
    ("wire", "kwargs"),
    [
        (b"\xc1\x00", {}),  # RSV1 (e.g. permessage-deflate) without an extension
        (b"\xa1\x00", {}),
        (b"\x91\x00", {}),
        (b"\x83\x00", {}),  # reserved opcodes
        (b"\x87\x00", {}),
        (b"\x8b\x00", {}),
        (b"\x8f\x00", {}),
        (b"\x89\x7e\x00\x7e", {}),  # control frame with a 126-byte payload
        (b"\x09\x00", {}),  # fragmented ping
        (b"\x08\x00", {}),  # fragmented close
        (b"\x82\x7f\x00\x00\x01\x00\x00\x00\x00\x00", {}),  # 1 TiB, from the header alone
        (b"\x82\x7f\x80\x00\x00\x00\x00\x00\x00\x00", {}),  # most significant bit set
        (b"\x82\x7e\x04\x01", {"max_size": 1024}),
        (HELLO_MASKED, {}),  # server frames must not be masked
        (HELLO_UNMASKED, {"masked": True}),  # client frames must be masked
    ],
)
def test_decode_frame_rejects(wire: bytes, kwargs: dict[str, Any]) -> None:
    with pytest.raises(ProtocolError):
        decode_frame(wire, **kwargs)


def test_decode_frame_max_size_is_inclusive() -> None:
    wire = encode_frame(Opcode.BINARY, b"x" * 1024, None)
    assert decode_frame(wire, max_size=1024) is not None
    with pytest.raises(ProtocolError):
        decode_frame(wire, max_size=1023)


@pytest.mark.parametrize(
    ("opcode", "payload", "mask", "fin"),
    [
        (Opcode.PING, b"x" * 126, None, True),
        (Opcode.CLOSE, b"", None, False),
        (3, b"", None, True),
        (16, b"", None, True),
        (Opcode.TEXT, b"", b"abc", True),
        (Opcode.TEXT, b"", b"abcde", True),
    ],
)
def test_encode_frame_rejects(opcode: int, payload: bytes, mask: bytes | None, fin: bool) -> None:
    with pytest.raises(ProtocolError):
        encode_frame(opcode, payload, mask, fin=fin)


def test_frame_text() -> None:
    assert Frame(Opcode.TEXT, "40é".encode()).text() == "40é"
    with pytest.raises(ProtocolError):
        Frame(Opcode.TEXT, b"\xc3").text()


@pytest.mark.parametrize(
    ("code", "reason", "payload"),
    [
        (1000, "", b"\x03\xe8"),
        (1001, "going away", b"\x03\xe9going away"),
        (4000, "é", b"\x0f\xa0\xc3\xa9"),
        (1011, "x" * 123, b"\x03\xf3" + b"x" * 123),
    ],
)
def test_close_payload(code: int, reason: str, payload: bytes) -> None:
    assert close_payload(code, reason) == payload
    assert parse_close_payload(payload) == (code, reason)


def test_close_payload_empty() -> None:
    assert parse_close_payload(b"") == (None, "")


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        (999, ""),
        (1004, ""),
        (1005, ""),
        (1006, ""),
        (1015, ""),
        (2000, ""),
        (5000, ""),
        (1000, "x" * 124),
        (1000, "\ud800"),
    ],
)
def test_close_payload_rejects(code: int, reason: str) -> None:
    with pytest.raises(ProtocolError):
        close_payload(code, reason)


@pytest.mark.parametrize("payload", [b"\x03", b"\x03\xed", b"\x00\x00", b"\x03\xe8\xff"])
def test_parse_close_payload_rejects(payload: bytes) -> None:
    with pytest.raises(ProtocolError):
        parse_close_payload(payload)


# --------------------------------------------------------------------------- properties

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=10,
)
json_objects = st.dictionaries(st.text(max_size=6), json_values, max_size=4)
# Any text but ',' (the namespace terminator) and lone surrogates (not UTF-8 encodable).
namespace_chars = st.characters(blacklist_categories=["Cs"], blacklist_characters=",")
namespaces = st.just("/") | st.text(namespace_chars, max_size=10).map(lambda s: "/" + s)
ids = st.integers(0, 10**15 - 1)


@st.composite
def sio_packets(draw: st.DrawFn) -> SioPacket:
    ptype = draw(st.sampled_from(list(SioPacketType)))
    nsp = draw(namespaces)
    data: Any
    ack_id: int | None = None
    attachments = draw(st.integers(0, 10**15 - 1)) if ptype in (S.BINARY_EVENT, S.BINARY_ACK) else None
    if ptype is S.CONNECT:
        data = draw(st.none() | json_objects)
    elif ptype is S.DISCONNECT:
        data = None
    elif ptype is S.CONNECT_ERROR:
        data = draw(st.none() | st.text() | json_objects)
    elif ptype in (S.EVENT, S.BINARY_EVENT):
        data = [draw(st.text(max_size=20)), *draw(st.lists(json_values, max_size=3))]
        ack_id = draw(st.none() | ids)
    else:
        data = draw(st.lists(json_values, max_size=3))
        ack_id = draw(ids)
    return SioPacket(ptype, nsp, data, ack_id, attachments)


eio_packets = st.builds(
    EioPacket,
    st.sampled_from(list(EioPacketType)),
    st.text(st.characters(blacklist_characters="\x1e")),
) | st.builds(lambda b: EioPacket(T.MESSAGE, b), st.binary(max_size=64))

# Text assembled from protocol-looking fragments reaches far deeper than uniform noise.
sio_fragments = st.lists(
    st.sampled_from(
        [
            "0",
            "2",
            "3",
            "4",
            "5",
            "6",
            "1-",
            "-",
            "/",
            "/admin",
            ",",
            "12",
            "[",
            "]",
            "{",
            "}",
            '"ev"',
            "null",
            ":",
            " ",
            '"',
            "1e999",
            "²",
            "\x1e",
            "b",
            "AAE=",
        ]
    ),
    max_size=12,
).map("".join)
http_fragments = st.lists(
    st.sampled_from(
        [
            b"HTTP/1.1 ",
            b"101",
            b" ",
            b"OK",
            b"\r\n",
            b"\n",
            b"\r",
            b":",
            b"Upgrade",
            b"websocket",
            b"\x00",
            b"\t",
            b"\xff",
            b"Connection: Upgrade\r\n",
            b"\r\n\r\n",
        ]
    ),
    max_size=16,
).map(b"".join)
body_fragments = st.lists(
    st.sampled_from(
        [
            b"0",
            b"0{",
            b"}",
            b'"sid":"a"',
            b",",
            b'"upgrades":[]',
            b'"pingInterval":1',
            b'"pingTimeout":2',
            b"96:",
            b"2:40",
            b"\x1e",
            b"\x00",
            b"\x01",
            b"\x09",
            b"\xff",
            b"<html>",
            b'"Invalid session x"',
            b'{"code":1,"message":"m"}',
            b"b4AAE=",
        ]
    ),
    max_size=10,
).map(b"".join)


def _total(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Call a decoder; it may return or raise ProtocolError, nothing else."""
    try:
        return fn(*args, **kwargs)
    except ProtocolError:
        return None


@FUZZ
@given(st.text() | sio_fragments)
def test_fuzz_decode_eio_packet(text: str) -> None:
    result = _total(decode_eio_packet, text)
    assert result is None or isinstance(result, EioPacket)


@FUZZ
@given(st.text() | st.binary() | sio_fragments | body_fragments)
def test_fuzz_polling_payloads(body: str | bytes) -> None:
    for fn in (decode_polling_payload, decode_v3_payload):
        result = _total(fn, body)
        assert result is None or all(isinstance(p, EioPacket) for p in result)


@FUZZ
@given(st.text() | sio_fragments)
def test_fuzz_decode_sio_packet(text: str) -> None:
    result = _total(decode_sio_packet, text)
    assert result is None or isinstance(result, SioPacket)
    result = _total(decode_sio_message, "4" + text)
    assert result is None or isinstance(result, SioPacket)


@FUZZ
@given(st.binary() | http_fragments)
def test_fuzz_parse_response_head(data: bytes) -> None:
    _total(find_head_end, data)
    head = _total(parse_response_head, data)
    if head is not None:
        assert isinstance(check_upgrade_response(head, RFC_KEY).accepted, bool)


@FUZZ
@given(st.binary(max_size=64), st.integers(0, 200), st.booleans())
def test_fuzz_decode_frame(data: bytes, max_size: int, masked: bool) -> None:
    result = _total(decode_frame, data, max_size=max_size, masked=masked)
    if result is not None:
        frame, used = result
        assert 2 <= used <= len(data) and len(frame.payload) <= max_size


@FUZZ
@given(st.binary(max_size=130))
def test_fuzz_parse_close_payload(data: bytes) -> None:
    _total(parse_close_payload, data)


@FUZZ
@given(st.integers(100, 599), st.binary() | body_fragments, st.none() | st.text(max_size=20))
def test_fuzz_classify_handshake(status: int, body: bytes, content_type: str | None) -> None:
    result = _total(classify_handshake, status, body, content_type)
    assert result is None or isinstance(result, EioV4Handshake | EioV3Handshake | EioError | NotEngineIO)
    # These two never raise at all.
    error = classify_engineio_error(status, body)
    assert error is None or isinstance(error, EioError)
    assert isinstance(describe_body(body, content_type)[1], str)


@settings(FUZZ, max_examples=200)
@given(sio_packets())
def test_sio_round_trip(packet: SioPacket) -> None:
    text = encode_sio_packet(packet)
    assert decode_sio_packet(text) == packet
    assert decode_sio_message(encode_sio_message(packet)) == packet
    text.encode("utf-8")  # always sendable


@settings(FUZZ, max_examples=100)
@given(sio_packets().filter(lambda p: p.type not in (S.BINARY_EVENT, S.BINARY_ACK)))
def test_sio_matches_python_socketio(packet: SioPacket) -> None:
    # Differential: python-socketio's parser reads what we write the same way. It drops a
    # "?query" from namespaces (a protocol v4 habit), so those are not compared.
    from socketio import packet as sio

    theirs = sio.Packet(encoded_packet=encode_sio_packet(packet))
    assert theirs.packet_type == packet.type
    if "?" not in packet.namespace:
        assert (theirs.namespace or "/") == packet.namespace
    assert theirs.id == packet.ack_id
    assert theirs.data == packet.data


@FUZZ
@given(st.lists(eio_packets, min_size=1, max_size=5))
def test_eio_round_trip(packets: list[EioPacket]) -> None:
    for packet in packets:
        assert decode_eio_packet(encode_eio_packet(packet)) == packet
    assert decode_polling_payload(encode_polling_payload(packets)) == packets


@FUZZ
@given(
    st.sampled_from(list(Opcode)),
    st.binary(max_size=300),
    st.none() | st.binary(min_size=4, max_size=4),
    st.booleans(),
)
def test_frame_round_trip(opcode: Opcode, payload: bytes, mask: bytes | None, fin: bool) -> None:
    if opcode.is_control:
        payload, fin = payload[:125], True
    wire = encode_frame(opcode, payload, mask, fin=fin)
    assert decode_frame(wire + b"\x00", masked=mask is not None) == (
        Frame(opcode, payload, fin),
        len(wire),
    )


# --------------------------------------------------------------------------- refusal bodies

ENGINEIO_400 = b'{"code":3,"message":"Bad request"}'


def _head(*headers: tuple[str, str], status: int = 400) -> ResponseHead:
    return ResponseHead(status, "Bad Request", "1.1", headers)


@pytest.mark.parametrize(
    ("head", "data", "body", "complete"),
    [
        # engine.io's JSON errors are chunked (FACTS.md §2): the framing is not the body
        (
            _head(("Transfer-Encoding", "chunked")),
            b"22\r\n" + ENGINEIO_400 + b"\r\n0\r\n\r\n",
            ENGINEIO_400,
            True,
        ),
        (_head(("Transfer-Encoding", "chunked")), b"22\r\n" + ENGINEIO_400[:10], ENGINEIO_400[:10], False),
        (_head(("Transfer-Encoding", "chunked")), b"3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\n\r\n", b"abcde", True),
        (_head(("Transfer-Encoding", "chunked")), b"zz\r\nnot chunks", b"", True),
        # sizes int(x, 16) would take but chunk framing does not: a negative one looped for ever
        (_head(("Transfer-Encoding", "chunked")), b"-00000000010\r\nab", b"", True),
        (_head(("Transfer-Encoding", "chunked")), b"3\r\nabc\r\n-3\r\nabc", b"abc", True),
        (_head(("Transfer-Encoding", "chunked")), b"0x3\r\nabc\r\n0\r\n\r\n", b"", True),
        (_head(("Transfer-Encoding", "chunked")), b"1_0\r\n" + b"a" * 16, b"", True),
        (_head(("Content-Length", "16")), b"Upgrade Required", b"Upgrade Required", True),
        (_head(("Content-Length", "16")), b"Upgrade", b"Upgrade", False),
        (_head(("Content-Length", "3")), b"abcdef", b"abc", True),
        (_head(), b"until close", b"until close", False),
        (_head(status=204), b"", b"", True),
    ],
)
def test_decode_body(head: ResponseHead, data: bytes, body: bytes, complete: bool) -> None:
    assert decode_body(head, data, 1024) == (body, complete)


@given(st.binary(max_size=512), st.integers(min_value=0, max_value=4096))
def test_decode_body_always_ends_and_never_exceeds_its_limit(data: bytes, limit: int) -> None:
    """Whatever a server sends after its head: a bounded body, every time (it runs inside the
    event loop, so a loop that does not end is a probe past its deadline)."""
    body, _ = decode_body(_head(("Transfer-Encoding", "chunked")), data, limit)
    assert len(body) <= limit


def test_decode_body_stops_at_its_limit() -> None:
    chunked = _head(("Transfer-Encoding", "chunked"))
    assert decode_body(chunked, b"a\r\n0123456789\r\n" * 3, 15) == (b"012345678901234", True)
    assert decode_body(_head(("Content-Length", "100")), b"x" * 100, 10) == (b"x" * 10, True)
