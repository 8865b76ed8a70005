"""Sans-I/O core: Engine.IO v4 / Socket.IO v5 packets, the HTTP upgrade and WebSocket frames.

Everything here is a pure function or a small frozen value: bytes or str in, typed values
out. Nothing reads a socket, a clock or a file, so the probes (the I/O edge) and the lab's
fake servers share one codec and the fuzz tests can hammer it. Every malformed input raises
:class:`~kiloscribe_lab.errors.ProtocolError` and nothing else; probes turn that into the
outcome ``malformed``.

Layers, bottom up::

    WebSocket frame (RFC 6455)  /  HTTP long-polling body
      └── Engine.IO packet      "4..."  (4 = MESSAGE; polling joins packets with \\x1e)
            └── Socket.IO packet  "0{...}"  (so the wire text of a CONNECT is "40{...}")
"""

from __future__ import annotations

import base64
import enum
import hashlib
import json
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, TypeAlias

from kiloscribe_lab.errors import ProtocolError

__all__ = [
    "DEFAULT_MAX_FRAME_SIZE",
    "ENGINEIO_PROTOCOL",
    "MAX_ACK_ID_DIGITS",
    "MAX_HEADER_LINES",
    "MAX_HEAD_BYTES",
    "PY_ORIGIN_REFUSED",
    "RECORD_SEPARATOR",
    "SOCKETIO_PROTOCOL",
    "WEBSOCKET_GUID",
    "BodyKind",
    "EioError",
    "EioErrorCode",
    "EioOpen",
    "EioPacket",
    "EioPacketType",
    "EioV3Handshake",
    "EioV4Handshake",
    "Frame",
    "HandshakeResult",
    "NotEngineIO",
    "Opcode",
    "ResponseHead",
    "SioPacket",
    "SioPacketType",
    "UpgradeCheck",
    "UpgradeFailure",
    "build_upgrade_request",
    "check_upgrade_response",
    "classify_engineio_error",
    "classify_handshake",
    "close_payload",
    "connect_error_message",
    "connect_packet",
    "connect_sid",
    "decode_body",
    "decode_eio_packet",
    "decode_frame",
    "decode_polling_payload",
    "decode_sio_message",
    "decode_sio_packet",
    "decode_v3_payload",
    "describe_body",
    "encode_eio_packet",
    "encode_frame",
    "encode_open",
    "encode_polling_payload",
    "encode_sio_message",
    "encode_sio_packet",
    "event_packet",
    "event_parts",
    "find_head_end",
    "make_websocket_key",
    "parse_close_payload",
    "parse_open",
    "parse_response_head",
    "websocket_accept",
]

ENGINEIO_PROTOCOL = 4
SOCKETIO_PROTOCOL = 5
# Polling payloads separate packets with this; JSON always escapes it, so it cannot
# occur inside a well-formed text packet.
RECORD_SEPARATOR = "\x1e"
WEBSOCKET_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

MAX_HEAD_BYTES = 64 * 1024
MAX_HEADER_LINES = 200
DEFAULT_MAX_FRAME_SIZE = 1 << 20
# 15 digits stay below 2**53, the largest integer a JavaScript peer represents exactly.
MAX_ACK_ID_DIGITS = 15
_MAX_JSON_INT = 2**53
_MAX_V3_LENGTH_DIGITS = 10


# --------------------------------------------------------------------------- helpers


def _snip(value: str | bytes, limit: int = 60) -> str:
    """A short, safe rendering of offending input for error messages."""
    shown = value[:limit]
    more = "…" if len(value) > limit else ""
    return f"{shown!r}{more}"


def _utf8(data: bytes | bytearray, what: str) -> str:
    try:
        return bytes(data).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProtocolError(f"{what} is not valid UTF-8 (byte {exc.start})") from exc


def _reject_constant(name: str) -> object:
    # JavaScript's JSON.stringify never produces NaN/Infinity; Python would accept them.
    raise ProtocolError(f"JSON constant {name} is not valid JSON")


def _json_loads(text: str, what: str) -> object:
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except RecursionError as exc:
        raise ProtocolError(f"{what}: JSON nested too deeply") from exc
    except json.JSONDecodeError as exc:
        raise ProtocolError(f"{what}: invalid JSON ({exc.msg} at {exc.pos})") from exc
    except ValueError as exc:  # e.g. an integer beyond int_max_str_digits
        raise ProtocolError(f"{what}: invalid JSON ({exc})") from exc


def _json_dumps(value: object, what: str) -> str:
    try:
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except RecursionError as exc:
        raise ProtocolError(f"{what}: data nested too deeply to encode") from exc
    except (TypeError, ValueError) as exc:
        raise ProtocolError(f"{what}: data is not JSON-encodable ({exc})") from exc
    if not text.isascii() and _has_surrogate(text):
        # A lone surrogate cannot go on the wire as UTF-8; escape it as JS's JSON.stringify does.
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    return text


def _has_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _is_digits(text: str) -> bool:
    # str.isdigit() alone accepts non-ASCII digits such as "²" or "٣".
    return text.isascii() and text.isdigit()


def _json_int(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ProtocolError(f"{name} must be an integer, got {type(value).__name__}")
    if not 0 <= value <= _MAX_JSON_INT:
        raise ProtocolError(f"{name} out of range: {value}")
    return value


# --------------------------------------------------------------------------- Engine.IO


class EioPacketType(enum.IntEnum):
    OPEN = 0
    CLOSE = 1
    PING = 2
    PONG = 3
    MESSAGE = 4
    UPGRADE = 5
    NOOP = 6


_EIO_TYPES = {str(t.value): t for t in EioPacketType}


@dataclass(frozen=True, slots=True)
class EioPacket:
    """One Engine.IO packet. ``bytes`` data is a binary MESSAGE, ``str`` data everything else."""

    type: EioPacketType
    data: str | bytes = ""

    def __post_init__(self) -> None:
        if isinstance(self.data, bytes) and self.type is not EioPacketType.MESSAGE:
            raise ProtocolError(f"only MESSAGE packets carry binary data, not {self.type.name}")


def encode_eio_packet(packet: EioPacket) -> str:
    """The text form (polling, WebSocket text frame). Binary data becomes ``b<base64>``.

    Over WebSocket a binary MESSAGE is sent as a binary frame of the raw bytes instead.
    """
    if isinstance(packet.data, bytes):
        return "b" + base64.b64encode(packet.data).decode("ascii")
    return f"{int(packet.type)}{packet.data}"


def decode_eio_packet(text: str) -> EioPacket:
    """Parse one text-form Engine.IO packet: a type digit then data, or ``b<base64>``."""
    if not text:
        raise ProtocolError("empty Engine.IO packet")
    head = text[0]
    if head == "b":
        try:
            data = base64.b64decode(text[1:], validate=True)
        except ValueError as exc:  # binascii.Error, or non-ASCII str input
            raise ProtocolError(f"invalid base64 in binary packet {_snip(text)}") from exc
        return EioPacket(EioPacketType.MESSAGE, data)
    ptype = _EIO_TYPES.get(head)
    if ptype is None:
        raise ProtocolError(f"unknown Engine.IO packet type {head!r} in {_snip(text)}")
    return EioPacket(ptype, text[1:])


def encode_polling_payload(packets: Iterable[EioPacket]) -> str:
    """Join packets into a v4 long-polling body."""
    parts = [encode_eio_packet(p) for p in packets]
    if not parts:
        raise ProtocolError("a polling payload holds at least one packet")
    for part in parts:
        if RECORD_SEPARATOR in part:
            raise ProtocolError("packet data contains the record separator \\x1e")
    return RECORD_SEPARATOR.join(parts)


def decode_polling_payload(body: str | bytes) -> list[EioPacket]:
    """Split a v4 long-polling body into packets."""
    text = _utf8(body, "polling payload") if isinstance(body, bytes) else body
    if not text:
        raise ProtocolError("empty polling payload")
    return [decode_eio_packet(part) for part in text.split(RECORD_SEPARATOR)]


@dataclass(frozen=True, slots=True)
class EioOpen:
    """The server's OPEN handshake. Times are milliseconds."""

    sid: str
    upgrades: tuple[str, ...]
    ping_interval: int
    ping_timeout: int
    max_payload: int | None = None

    @property
    def idle_budget_ms(self) -> int:
        """How long a healthy connection may stay silent; proxy idle timeouts must exceed it."""
        return self.ping_interval + self.ping_timeout


def parse_open(packet: EioPacket) -> EioOpen:
    """Validate an OPEN packet's JSON (v4, and v3 which lacks ``maxPayload``)."""
    if packet.type is not EioPacketType.OPEN or not isinstance(packet.data, str):
        raise ProtocolError(f"expected an OPEN packet, got {packet.type.name}")
    obj = _json_loads(packet.data, "OPEN packet")
    if not isinstance(obj, dict):
        raise ProtocolError(f"OPEN data must be a JSON object, got {type(obj).__name__}")
    sid = obj.get("sid")
    if not isinstance(sid, str) or not sid:
        raise ProtocolError("OPEN data has no non-empty string 'sid'")
    upgrades = obj.get("upgrades")
    if not isinstance(upgrades, list) or not all(isinstance(u, str) for u in upgrades):
        raise ProtocolError("OPEN 'upgrades' must be a list of strings")
    max_payload = obj.get("maxPayload")
    return EioOpen(
        sid=sid,
        upgrades=tuple(upgrades),
        ping_interval=_json_int(obj.get("pingInterval"), "pingInterval"),
        ping_timeout=_json_int(obj.get("pingTimeout"), "pingTimeout"),
        max_payload=None if max_payload is None else _json_int(max_payload, "maxPayload"),
    )


def encode_open(handshake: EioOpen) -> EioPacket:
    """The OPEN packet a server sends (used by fake servers in tests and the lab)."""
    obj: dict[str, object] = {
        "sid": handshake.sid,
        "upgrades": list(handshake.upgrades),
        "pingInterval": handshake.ping_interval,
        "pingTimeout": handshake.ping_timeout,
    }
    if handshake.max_payload is not None:
        obj["maxPayload"] = handshake.max_payload
    return EioPacket(EioPacketType.OPEN, _json_dumps(obj, "OPEN packet"))


# --- Engine.IO v3 (only to recognise an old server, not to talk to it)

# A v3 handshake body starts with a length-prefixed OPEN; anything looser would also match
# ordinary text such as "12:30".
_V3_TEXT_SIGNATURE = re.compile(r"\d{1,10}:0\{")


def _decode_v3_packet(text: str) -> EioPacket:
    if text.startswith("b"):
        # v3 binary-in-text is "b<type digit><base64>" and only MESSAGE carries binary.
        if text[1:2] != "4":
            raise ProtocolError(f"v3 base64 packet is not a MESSAGE: {_snip(text)}")
        return decode_eio_packet("b" + text[2:])
    return decode_eio_packet(text)


def _decode_v3_text(text: str) -> list[EioPacket]:
    packets: list[EioPacket] = []
    pos = 0
    while pos < len(text):
        colon = text.find(":", pos, pos + _MAX_V3_LENGTH_DIGITS + 1)
        digits = text[pos:colon] if colon != -1 else ""
        if not _is_digits(digits):
            raise ProtocolError(f"v3 payload: bad length prefix at {pos}: {_snip(text[pos:])}")
        length = int(digits)
        start = colon + 1
        if length == 0 or start + length > len(text):
            raise ProtocolError(f"v3 payload: length {length} does not fit at {pos}")
        packets.append(_decode_v3_packet(text[start : start + length]))
        pos = start + length
    if not packets:
        raise ProtocolError("empty v3 payload")
    return packets


def _decode_v3_binary(buf: bytes) -> list[EioPacket]:
    # Framing: <0 string | 1 binary> <length as one byte per decimal digit> 0xFF <packet>;
    # the length counts bytes.
    packets: list[EioPacket] = []
    pos = 0
    while pos < len(buf):
        kind = buf[pos]
        if kind not in (0, 1):
            raise ProtocolError(f"v3 binary payload: bad packet kind {kind} at {pos}")
        end = buf.find(b"\xff", pos + 1, pos + 2 + _MAX_V3_LENGTH_DIGITS)
        digits = buf[pos + 1 : end] if end != -1 else b""
        if not digits or any(d > 9 for d in digits):
            raise ProtocolError(f"v3 binary payload: bad length at {pos}")
        length = int("".join(str(d) for d in digits))
        start = end + 1
        if length == 0 or start + length > len(buf):
            raise ProtocolError(f"v3 binary payload: length {length} does not fit at {pos}")
        chunk = buf[start : start + length]
        if kind == 0:
            packets.append(_decode_v3_packet(_utf8(chunk, "v3 string packet")))
        elif chunk[0] != EioPacketType.MESSAGE:
            raise ProtocolError(f"v3 binary packet of type {chunk[0]} is not a MESSAGE")
        else:
            packets.append(EioPacket(EioPacketType.MESSAGE, bytes(chunk[1:])))
        pos = start + length
    if not packets:
        raise ProtocolError("empty v3 payload")
    return packets


def _has_v3_binary_signature(body: bytes) -> bool:
    end = body.find(b"\xff", 1, 2 + _MAX_V3_LENGTH_DIGITS)
    return body[:1] in (b"\x00", b"\x01") and end > 1 and all(d <= 9 for d in body[1:end])


def decode_v3_payload(body: str | bytes) -> list[EioPacket]:
    """Decode an Engine.IO v3 polling body: ``<len>:<packet>...`` or the binary framing.

    Text lengths count code points (JS counts UTF-16 units; they agree on BMP text, which
    is all a handshake contains).
    """
    if isinstance(body, bytes):
        if body[:1] in (b"\x00", b"\x01"):
            return _decode_v3_binary(body)
        body = _utf8(body, "v3 payload")
    return _decode_v3_text(body)


# --- Engine.IO error responses


class EioErrorCode(enum.IntEnum):
    TRANSPORT_UNKNOWN = 0
    SESSION_ID_UNKNOWN = 1
    BAD_HANDSHAKE_METHOD = 2
    BAD_REQUEST = 3
    FORBIDDEN = 4
    UNSUPPORTED_PROTOCOL_VERSION = 5


_EIO_ERROR_CODES = frozenset(int(c) for c in EioErrorCode)
# python-engineio answers with a JSON *string*; these are its words for the Node codes.
_PY_EXACT = {
    "Invalid transport": EioErrorCode.TRANSPORT_UNKNOWN,
    "Bad Request": EioErrorCode.BAD_REQUEST,
    "Invalid websocket upgrade": EioErrorCode.BAD_REQUEST,
    "Not connected": EioErrorCode.BAD_REQUEST,
    "Unexpected HTTP request": EioErrorCode.BAD_REQUEST,
    "Invalid JSONP index number": EioErrorCode.BAD_REQUEST,
    "Not an accepted origin.": EioErrorCode.FORBIDDEN,
    "Unauthorized": EioErrorCode.FORBIDDEN,
}
_PY_PREFIX = (
    ("Invalid session ", EioErrorCode.SESSION_ID_UNKNOWN),
    ("The client is using an unsupported version", EioErrorCode.UNSUPPORTED_PROTOCOL_VERSION),
)
# python-engineio 4.15 refusing an Origin: "https://evil.example is not an accepted origin."
PY_ORIGIN_REFUSED = " is not an accepted origin."


@dataclass(frozen=True, slots=True)
class EioError:
    """An Engine.IO server refusing a request; ``style`` is ``node`` or ``python``."""

    kind: ClassVar[str] = "engineio_error"

    code: EioErrorCode
    message: str
    status: int
    style: str

    @property
    def session_unknown(self) -> bool:
        return self.code is EioErrorCode.SESSION_ID_UNKNOWN


def classify_engineio_error(status: int, body: bytes | str) -> EioError | None:
    """Recognise an Engine.IO error response; ``None`` for anything else. Never raises.

    Node: 400 (403 for Forbidden) with ``{"code": N, "message": "..."}``.
    python-engineio: 400 (401 for Unauthorized) with a JSON string such as
    ``"Invalid session <sid>"``.
    """
    if status not in (400, 401, 403):
        return None
    try:
        text = body.decode("utf-8") if isinstance(body, bytes) else body
        obj = json.loads(text)
    except (ValueError, RecursionError):  # UnicodeDecodeError and JSONDecodeError included
        return None
    if isinstance(obj, dict) and status in (400, 403):
        code, message = obj.get("code"), obj.get("message")
        is_code = isinstance(code, int) and not isinstance(code, bool)
        if is_code and isinstance(message, str) and code in _EIO_ERROR_CODES:
            return EioError(EioErrorCode(code), message, status, "node")
        return None
    if isinstance(obj, str) and status in (400, 401):
        exact = _PY_EXACT.get(obj)
        if exact is not None:
            return EioError(exact, obj, status, "python")
        for prefix, code_ in _PY_PREFIX:
            if obj.startswith(prefix):
                return EioError(code_, obj, status, "python")
        if obj.endswith(PY_ORIGIN_REFUSED):
            return EioError(EioErrorCode.FORBIDDEN, obj, status, "python")
    return None


# --- handshake classification


class BodyKind(enum.StrEnum):
    EMPTY = "empty"
    HTML = "html"
    JSON = "json"
    TEXT = "text"
    BINARY = "binary"


@dataclass(frozen=True, slots=True)
class EioV4Handshake:
    """A polling handshake answered by an Engine.IO v4 server."""

    kind: ClassVar[str] = "v4_open"

    open: EioOpen
    extra: tuple[EioPacket, ...] = ()


@dataclass(frozen=True, slots=True)
class EioV3Handshake:
    """A polling handshake answered in Engine.IO v3 framing: an old server (or EIO=3 asked)."""

    kind: ClassVar[str] = "v3_open"

    open: EioOpen
    extra: tuple[EioPacket, ...] = ()
    binary_framing: bool = False


@dataclass(frozen=True, slots=True)
class NotEngineIO:
    """Something that is not Engine.IO at all, e.g. an HTML error page or a bare ``OK``."""

    kind: ClassVar[str] = "not_engineio"

    status: int
    body_kind: BodyKind
    description: str
    content_type: str | None = None


HandshakeResult: TypeAlias = EioV4Handshake | EioV3Handshake | EioError | NotEngineIO

_TITLE = re.compile(r"<title[^>]*>([^<]{0,200})", re.IGNORECASE)


def _one_line(text: str, limit: int = 80) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def describe_body(body: bytes, content_type: str | None = None) -> tuple[BodyKind, str]:
    """What an HTTP body looks like, in a few words. Never raises."""
    if not body.strip():
        return BodyKind.EMPTY, "empty body"
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return BodyKind.BINARY, f"{len(body)} bytes of binary data"
    stripped = text.lstrip()
    if stripped.startswith("<") or "html" in (content_type or "").lower():
        match = _TITLE.search(text, 0, 8192)
        title = _one_line(match.group(1)) if match else ""
        return BodyKind.HTML, f"HTML page {title!r}" if title else "HTML page"
    try:
        obj = json.loads(text)
    except (ValueError, RecursionError):
        return BodyKind.TEXT, f"text {_one_line(text)!r}"
    return BodyKind.JSON, f"JSON {type(obj).__name__}: {_one_line(stripped)}"


def classify_handshake(status: int, body: bytes, content_type: str | None = None) -> HandshakeResult:
    """Classify the answer to ``GET /socket.io/?EIO=4&transport=polling``.

    Raises ProtocolError only when the body clearly *claims* to be Engine.IO (``0{``, a v3
    length prefix or v3 binary framing) but does not parse: that is a broken server, not a
    different one.
    """
    if status == 200:
        if _has_v3_binary_signature(body):
            packets = _decode_v3_binary(body)
            return EioV3Handshake(_open_first(packets), tuple(packets[1:]), binary_framing=True)
        try:
            text: str | None = body.decode("utf-8")
        except UnicodeDecodeError:
            text = None
        if text is not None and text.startswith("0{"):
            packets = decode_polling_payload(text)
            return EioV4Handshake(_open_first(packets), tuple(packets[1:]))
        if text is not None and _V3_TEXT_SIGNATURE.match(text):
            packets = _decode_v3_text(text)
            return EioV3Handshake(_open_first(packets), tuple(packets[1:]))
    error = classify_engineio_error(status, body)
    if error is not None:
        return error
    body_kind, what = describe_body(body, content_type)
    return NotEngineIO(status, body_kind, f"HTTP {status}, {what}", content_type)


def _open_first(packets: Sequence[EioPacket]) -> EioOpen:
    if packets[0].type is not EioPacketType.OPEN:
        raise ProtocolError(f"handshake starts with {packets[0].type.name}, not OPEN")
    return parse_open(packets[0])


# --------------------------------------------------------------------------- Socket.IO


class SioPacketType(enum.IntEnum):
    CONNECT = 0
    DISCONNECT = 1
    EVENT = 2
    ACK = 3
    CONNECT_ERROR = 4
    BINARY_EVENT = 5
    BINARY_ACK = 6


_SIO_TYPES = {str(t.value): t for t in SioPacketType}
_BINARY_TYPES = frozenset({SioPacketType.BINARY_EVENT, SioPacketType.BINARY_ACK})
_EVENT_TYPES = frozenset({SioPacketType.EVENT, SioPacketType.BINARY_EVENT})
_ACK_TYPES = frozenset({SioPacketType.ACK, SioPacketType.BINARY_ACK})


def _check_count(value: object, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ProtocolError(f"{name} must be an integer, got {type(value).__name__}")
    if not 0 <= value < 10**MAX_ACK_ID_DIGITS:
        raise ProtocolError(f"{name} out of range: {value}")


@dataclass(frozen=True, slots=True)
class SioPacket:
    """One Socket.IO v5 packet. ``data is None`` means no payload.

    Binary packets keep their ``{"_placeholder": true, "num": N}`` entries as plain data;
    the attachments themselves travel as separate binary Engine.IO messages.
    """

    type: SioPacketType
    namespace: str = "/"
    data: Any = None
    ack_id: int | None = None
    attachments: int | None = None

    def __post_init__(self) -> None:
        name = self.type.name
        if not isinstance(self.namespace, str) or not self.namespace.startswith("/"):
            raise ProtocolError(f"namespace must start with '/': {_snip(str(self.namespace))}")
        if "," in self.namespace:
            raise ProtocolError(f"namespace must not contain ',': {_snip(self.namespace)}")
        if not self.namespace.isascii() and _has_surrogate(self.namespace):
            raise ProtocolError("namespace is not encodable as UTF-8 (lone surrogate)")
        if self.type in _BINARY_TYPES:
            if self.attachments is None:
                raise ProtocolError(f"{name} needs an attachment count")
            _check_count(self.attachments, "attachment count")
        elif self.attachments is not None:
            raise ProtocolError(f"{name} cannot have attachments")
        if self.ack_id is not None:
            if self.type not in _EVENT_TYPES | _ACK_TYPES:
                raise ProtocolError(f"{name} cannot carry an ack id")
            _check_count(self.ack_id, "ack id")
        elif self.type in _ACK_TYPES:
            raise ProtocolError(f"{name} needs an ack id")
        _check_sio_data(self.type, self.data)


def _check_sio_data(ptype: SioPacketType, data: Any) -> None:
    name = ptype.name
    if ptype is SioPacketType.CONNECT:
        ok = data is None or isinstance(data, dict)
        rule = "an object"
    elif ptype is SioPacketType.DISCONNECT:
        ok, rule = data is None, "absent"
    elif ptype is SioPacketType.CONNECT_ERROR:
        ok = data is None or isinstance(data, dict | str)
        rule = "an object or a string"
    elif ptype in _EVENT_TYPES:
        ok = isinstance(data, list) and bool(data) and isinstance(data[0], str)
        rule = "a non-empty array starting with the event name"
    else:
        ok, rule = isinstance(data, list), "an array"
    if not ok:
        raise ProtocolError(f"{name} payload must be {rule}, got {type(data).__name__}")


def encode_sio_packet(packet: SioPacket) -> str:
    """``<type>[<attachments>-][<nsp>,][<ack id>][<JSON>]``: the Engine.IO MESSAGE's data."""
    parts = [str(int(packet.type))]
    if packet.attachments is not None:
        parts.append(f"{packet.attachments}-")
    if packet.namespace != "/":
        parts.append(packet.namespace + ",")
    if packet.ack_id is not None:
        parts.append(str(packet.ack_id))
    if packet.data is not None:
        parts.append(_json_dumps(packet.data, f"{packet.type.name} packet"))
    return "".join(parts)


def _read_digits(text: str, pos: int) -> int:
    end = pos
    while end < len(text) and text[end] in "0123456789":
        end += 1
    return end


def decode_sio_packet(text: str) -> SioPacket:
    """Parse a Socket.IO v5 packet (the data of an Engine.IO MESSAGE)."""
    if not text:
        raise ProtocolError("empty Socket.IO packet")
    ptype = _SIO_TYPES.get(text[0])
    if ptype is None:
        raise ProtocolError(f"unknown Socket.IO packet type {text[0]!r} in {_snip(text)}")
    pos = 1
    attachments: int | None = None
    if ptype in _BINARY_TYPES:
        dash = text.find("-", pos, pos + MAX_ACK_ID_DIGITS + 1)
        digits = text[pos:dash] if dash != -1 else ""
        if not _is_digits(digits):
            raise ProtocolError(f"{ptype.name}: missing or bad attachment count in {_snip(text)}")
        attachments, pos = int(digits), dash + 1
    namespace = "/"
    if text.startswith("/", pos):
        comma = text.find(",", pos)
        end = len(text) if comma == -1 else comma
        namespace, pos = text[pos:end], end + 1
    end = _read_digits(text, pos)
    ack_id: int | None = None
    if end > pos:
        if end - pos > MAX_ACK_ID_DIGITS:
            raise ProtocolError(f"ack id longer than {MAX_ACK_ID_DIGITS} digits")
        ack_id, pos = int(text[pos:end]), end
    data: Any = None
    if pos < len(text):
        data = _json_loads(text[pos:], f"{ptype.name} payload")
        if data is None:
            # No packet type takes null; keeping None for "absent" stays unambiguous.
            raise ProtocolError(f"{ptype.name} payload must not be null")
    return SioPacket(ptype, namespace, data, ack_id, attachments)


def encode_sio_message(packet: SioPacket) -> str:
    """The wire text of a Socket.IO packet: Engine.IO MESSAGE ``4`` + the packet."""
    return encode_eio_packet(EioPacket(EioPacketType.MESSAGE, encode_sio_packet(packet)))


def decode_sio_message(text: str) -> SioPacket:
    """Parse wire text such as ``44{"message":"Invalid API key"}``."""
    eio = decode_eio_packet(text)
    if eio.type is not EioPacketType.MESSAGE:
        raise ProtocolError(f"Engine.IO {eio.type.name} packet carries no Socket.IO packet")
    if isinstance(eio.data, bytes):
        raise ProtocolError("binary Engine.IO message is an attachment, not a Socket.IO packet")
    return decode_sio_packet(eio.data)


def connect_packet(auth: dict[str, Any] | None = None, namespace: str = "/") -> str:
    """Wire text of a namespace CONNECT, e.g. ``40{"apiKey":"..."}``."""
    return encode_sio_message(SioPacket(SioPacketType.CONNECT, namespace, auth))


def event_packet(name: str, *args: Any, ack_id: int | None = None, namespace: str = "/") -> str:
    """Wire text of an EVENT, e.g. ``421["start-inscription",{...}]`` (ack id 1)."""
    return encode_sio_message(SioPacket(SioPacketType.EVENT, namespace, [name, *args], ack_id=ack_id))


def connect_error_message(packet: SioPacket) -> str | None:
    """The reason of a CONNECT_ERROR: ``{"message": ...}`` (v5) or a plain string (v4)."""
    if packet.type is not SioPacketType.CONNECT_ERROR:
        raise ProtocolError(f"expected CONNECT_ERROR, got {packet.type.name}")
    if isinstance(packet.data, str):
        return packet.data
    if isinstance(packet.data, dict):
        message = packet.data.get("message")
        return message if isinstance(message, str) else None
    return None


def connect_sid(packet: SioPacket) -> str | None:
    """The Socket.IO session id a server's CONNECT reply carries (``40{"sid":...}``)."""
    if packet.type is not SioPacketType.CONNECT:
        raise ProtocolError(f"expected CONNECT, got {packet.type.name}")
    sid = packet.data.get("sid") if isinstance(packet.data, dict) else None
    return sid if isinstance(sid, str) and sid else None


def event_parts(packet: SioPacket) -> tuple[str, list[Any]]:
    """An EVENT's name and arguments."""
    if packet.type not in _EVENT_TYPES:
        raise ProtocolError(f"expected EVENT, got {packet.type.name}")
    return packet.data[0], list(packet.data[1:])


# --------------------------------------------------------------------------- HTTP upgrade


_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_TOKEN_STR = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_CTL = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
_CTL_STR = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_HEAD_END = re.compile(rb"\r?\n\r?\n")
_LINE_BREAK = re.compile(rb"\r?\n")
_STATUS_LINE = re.compile(rb"HTTP/(\d)\.(\d) (\d{3})(?: (.*))?", re.DOTALL)
# Headers build_upgrade_request writes itself; a duplicate would make the request ambiguous.
_MANAGED_HEADERS = frozenset({"host", "upgrade", "connection", "sec-websocket-key", "sec-websocket-version"})


def make_websocket_key(random_bytes: bytes | None = None) -> str:
    """A Sec-WebSocket-Key: 16 bytes, base64. Deterministic when the bytes are given."""
    raw = os.urandom(16) if random_bytes is None else random_bytes
    if len(raw) != 16:
        raise ProtocolError(f"a WebSocket key is 16 bytes, got {len(raw)}")
    return base64.b64encode(raw).decode("ascii")


def websocket_accept(key: str) -> str:
    """The Sec-WebSocket-Accept a server must answer ``key`` with (RFC 6455 §4.2.2)."""
    if not key.isascii():
        raise ProtocolError(f"Sec-WebSocket-Key is not ASCII: {_snip(key)}")
    digest = hashlib.sha1((key + WEBSOCKET_GUID).encode("ascii")).digest()
    return base64.b64encode(digest).decode("ascii")


def _check_field(value: str, what: str) -> None:
    if _CTL_STR.search(value) or not all(ord(c) < 256 for c in value):
        raise ProtocolError(f"{what} contains a control or non-Latin-1 character")


def build_upgrade_request(
    host: str, path: str, key: str, extra_headers: Iterable[tuple[str, str]] = ()
) -> bytes:
    """The HTTP/1.1 GET that asks for a WebSocket upgrade (RFC 6455 §4.1)."""
    if not host or not host.isascii() or any(c in host for c in " /\t") or _CTL_STR.search(host):
        raise ProtocolError(f"bad Host: {_snip(host)}")
    if not path.startswith("/") or not path.isascii() or " " in path or _CTL_STR.search(path):
        raise ProtocolError(f"bad request path: {_snip(path)}")
    _check_field(key, "Sec-WebSocket-Key")
    headers = [
        ("Host", host),
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Key", key),
        ("Sec-WebSocket-Version", "13"),
    ]
    for name, value in extra_headers:
        if not _TOKEN_STR.fullmatch(name):
            raise ProtocolError(f"bad header name: {_snip(name)}")
        if name.lower() in _MANAGED_HEADERS:
            raise ProtocolError(f"header {name} is set by the upgrade request itself")
        _check_field(value, f"header {name}")
        headers.append((name, value))
    lines = [f"GET {path} HTTP/1.1", *(f"{n}: {v}" for n, v in headers), "", ""]
    return "\r\n".join(lines).encode("latin-1")


@dataclass(frozen=True, slots=True)
class ResponseHead:
    """The status line and headers of an HTTP/1.x response; header names keep their case."""

    status: int
    reason: str
    http_version: str
    headers: tuple[tuple[str, str], ...] = ()

    def get_all(self, name: str) -> tuple[str, ...]:
        wanted = name.lower()
        return tuple(v for n, v in self.headers if n.lower() == wanted)

    def get(self, name: str) -> str | None:
        """A header's value, case-insensitively; repeated headers joined with ``, ``."""
        values = self.get_all(name)
        return ", ".join(values) if values else None


def find_head_end(buf: bytes | bytearray) -> int | None:
    """Offset just past the blank line ending a response head; None until it has arrived.

    Raises ProtocolError once the head exceeds MAX_HEAD_BYTES, so a reader never buffers an
    endless head. Bare LF line ends are tolerated, as h11 does.
    """
    match = _HEAD_END.search(buf, 0, MAX_HEAD_BYTES + 4)
    if match is None:
        if len(buf) >= MAX_HEAD_BYTES:
            raise ProtocolError(f"no end of response head within {MAX_HEAD_BYTES} bytes")
        return None
    if match.start() > MAX_HEAD_BYTES:
        raise ProtocolError(f"response head longer than {MAX_HEAD_BYTES} bytes")
    return match.end()


def parse_response_head(data: bytes | bytearray) -> ResponseHead:
    """Parse a raw HTTP/1.x response head. Bytes after its blank line (body, frames) are
    ignored; a missing blank line is the caller's concern (see :func:`find_head_end`)."""
    end = find_head_end(data)
    head = bytes(data[:end]) if end is not None else bytes(data)
    if len(head) > MAX_HEAD_BYTES:
        raise ProtocolError(f"response head longer than {MAX_HEAD_BYTES} bytes")
    lines = _LINE_BREAK.split(head)
    while lines and not lines[-1]:
        lines.pop()
    if not lines:
        raise ProtocolError("empty response head")
    status_match = _STATUS_LINE.fullmatch(lines[0])
    if status_match is None:
        raise ProtocolError(f"not an HTTP/1.x status line: {_snip(lines[0])}")
    major, minor, status, reason = status_match.groups()
    if reason is not None and _CTL.search(reason):
        raise ProtocolError("control character in the reason phrase")
    if len(lines) - 1 > MAX_HEADER_LINES:
        raise ProtocolError(f"more than {MAX_HEADER_LINES} header lines")
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        if line[:1] in (b" ", b"\t"):
            raise ProtocolError("obsolete header line folding")
        name, colon, raw_value = line.partition(b":")
        if not colon or not _TOKEN.fullmatch(name):
            raise ProtocolError(f"malformed header line: {_snip(line)}")
        # strip(), not a regex: "value<many spaces>x" would make a lazy pattern quadratic.
        value = raw_value.strip(b" \t")
        if _CTL.search(value):
            raise ProtocolError(f"control character in header {_snip(name)}")
        headers.append((name.decode("ascii"), value.decode("latin-1")))
    return ResponseHead(
        status=int(status),
        reason=(reason or b"").decode("latin-1"),
        http_version=f"{major.decode()}.{minor.decode()}",
        headers=tuple(headers),
    )


_CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]{1,16}")


def decode_body(head: ResponseHead, data: bytes, limit: int) -> tuple[bytes, bool]:
    """The body of a response whose head is ``head``, from the ``data`` read after it so far:
    (up to ``limit`` bytes of it, whether the body is complete or the limit reached).

    For the answers a WebSocket handshake gets instead of 101, which the probes read from a
    raw stream: ``Content-Length``, ``chunked`` (engine.io's JSON errors are chunked), or
    until the server closes (complete only when the caller sees the close). Never raises:
    chunk framing that does not parse ends the body where it stops making sense.
    """
    if "chunked" in (head.get("transfer-encoding") or "").lower():
        body = bytearray()
        pos = 0
        while len(body) < limit:
            line_end = data.find(b"\r\n", pos)
            if line_end < 0:
                return bytes(body), False
            size_text = data[pos:line_end].split(b";", 1)[0].strip()
            # Hex digits only: int(..., 16) would also take "-10", "0x10" or "1_0", and a negative
            # size would send the loop back to where it was, for ever (this runs inside the event
            # loop, where no deadline can interrupt it).
            if not _CHUNK_SIZE.fullmatch(size_text):
                return bytes(body), True  # not chunk framing after all: what we have is it
            size = int(size_text, 16)
            if size == 0:
                return bytes(body), True
            start = line_end + 2
            chunk = data[start : start + size]
            body += chunk
            if len(chunk) < size:
                return bytes(body[:limit]), len(body) >= limit
            pos = start + size + 2
        return bytes(body[:limit]), True
    length = head.get("content-length")
    if length is not None and length.strip().isdigit():
        wanted = min(int(length.strip()), limit)
        return data[:wanted], len(data) >= wanted
    if head.status in (204, 304) or 100 <= head.status < 200:
        return b"", True
    return data[:limit], len(data) >= limit


class UpgradeFailure(enum.StrEnum):
    STATUS = "status"
    UPGRADE_HEADER = "upgrade_header"
    CONNECTION_HEADER = "connection_header"
    ACCEPT_HEADER = "accept_header"
    EXTENSIONS = "extensions"


@dataclass(frozen=True, slots=True)
class UpgradeCheck:
    """Whether a response completes the WebSocket opening handshake, and if not, why."""

    accepted: bool
    reason: str
    failure: UpgradeFailure | None = None


def _tokens(value: str | None) -> set[str]:
    return {t.strip().lower() for t in (value or "").split(",") if t.strip()}


def check_upgrade_response(head: ResponseHead, key: str) -> UpgradeCheck:
    """Verify a response against RFC 6455 §4.1 for the request sent with ``key``."""
    if head.status != 101:
        return UpgradeCheck(
            False, f"HTTP {head.status} {head.reason}".rstrip() + ", not 101", UpgradeFailure.STATUS
        )
    upgrade = head.get("upgrade")
    if "websocket" not in _tokens(upgrade):
        why = "no Upgrade header" if upgrade is None else f"Upgrade: {upgrade!r}"
        return UpgradeCheck(False, f"{why}, expected websocket", UpgradeFailure.UPGRADE_HEADER)
    connection = head.get("connection")
    if "upgrade" not in _tokens(connection):
        why = "no Connection header" if connection is None else f"Connection: {connection!r}"
        return UpgradeCheck(False, f"{why}, expected Upgrade", UpgradeFailure.CONNECTION_HEADER)
    accept = head.get("sec-websocket-accept")
    if accept is None:
        return UpgradeCheck(False, "no Sec-WebSocket-Accept header", UpgradeFailure.ACCEPT_HEADER)
    if accept.strip() != websocket_accept(key):
        return UpgradeCheck(
            False,
            f"Sec-WebSocket-Accept {accept!r} does not match the key",
            UpgradeFailure.ACCEPT_HEADER,
        )
    extensions = head.get("sec-websocket-extensions")
    if extensions:
        # This codec implements no extension, so it must not accept one (RFC 6455 §9.1).
        return UpgradeCheck(
            False, f"server chose unsupported extensions {extensions!r}", UpgradeFailure.EXTENSIONS
        )
    return UpgradeCheck(True, "101 Switching Protocols with a valid Sec-WebSocket-Accept")


# --------------------------------------------------------------------------- WebSocket frames


class Opcode(enum.IntEnum):
    CONTINUATION = 0x0
    TEXT = 0x1
    BINARY = 0x2
    CLOSE = 0x8
    PING = 0x9
    PONG = 0xA

    @property
    def is_control(self) -> bool:
        return self >= 0x8


_OPCODES = {int(op): op for op in Opcode}


@dataclass(frozen=True, slots=True)
class Frame:
    opcode: Opcode
    payload: bytes
    fin: bool = True

    def text(self) -> str:
        """The payload of a TEXT frame, decoded (RFC 6455 requires valid UTF-8)."""
        return _utf8(self.payload, "text frame")


def _apply_mask(data: bytes, key: bytes) -> bytes:
    # One big-int XOR: fast enough for a MiB without numpy or a per-byte Python loop.
    n = len(data)
    if not n:
        return b""
    stream = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "big") ^ int.from_bytes(stream, "big")).to_bytes(n, "big")


def encode_frame(opcode: Opcode | int, payload: bytes, mask_key: bytes | None, *, fin: bool = True) -> bytes:
    """One frame. Clients must mask (give a 4-byte key); ``None`` writes a server frame."""
    op = _OPCODES.get(int(opcode))
    if op is None:
        raise ProtocolError(f"invalid opcode {opcode}")
    if op.is_control and (len(payload) > 125 or not fin):
        raise ProtocolError("control frames are unfragmented and carry at most 125 bytes")
    if mask_key is not None and len(mask_key) != 4:
        raise ProtocolError(f"a masking key is 4 bytes, got {len(mask_key)}")
    mask_bit = 0x80 if mask_key is not None else 0
    head = bytearray([(0x80 if fin else 0) | op])
    n = len(payload)
    if n < 126:
        head.append(mask_bit | n)
    elif n < 1 << 16:
        head += bytes([mask_bit | 126]) + n.to_bytes(2, "big")
    else:
        head += bytes([mask_bit | 127]) + n.to_bytes(8, "big")
    if mask_key is None:
        return bytes(head) + payload
    return bytes(head) + mask_key + _apply_mask(payload, mask_key)


def decode_frame(
    buf: bytes | bytearray, *, max_size: int = DEFAULT_MAX_FRAME_SIZE, masked: bool = False
) -> tuple[Frame, int] | None:
    """Parse one frame from the start of ``buf``: ``(frame, bytes used)``, or None if incomplete.

    ``masked`` says which side we are: False (a client reading server frames, which must be
    unmasked), True (a server reading client frames). Limits are checked from the header
    alone, before waiting for the payload, so a hostile length never makes a reader buffer.
    """
    if len(buf) < 2:
        return None
    b0, b1 = buf[0], buf[1]
    if b0 & 0x70:
        raise ProtocolError("reserved bits set, but no extension was negotiated")
    op = _OPCODES.get(b0 & 0x0F)
    if op is None:
        raise ProtocolError(f"reserved opcode {b0 & 0x0F:#x}")
    fin = bool(b0 & 0x80)
    if bool(b1 & 0x80) != masked:
        raise ProtocolError("unexpected masked frame" if not masked else "unmasked client frame")
    length = b1 & 0x7F
    pos = 2
    if op.is_control and (length > 125 or not fin):
        raise ProtocolError("control frames are unfragmented and carry at most 125 bytes")
    if length >= 126:
        width = 2 if length == 126 else 8
        if len(buf) < pos + width:
            return None
        length = int.from_bytes(buf[pos : pos + width], "big")
        pos += width
        if length >> 63:
            raise ProtocolError("payload length has its most significant bit set")
    if length > max_size:
        raise ProtocolError(f"frame payload of {length} bytes exceeds the {max_size}-byte limit")
    key = b""
    if masked:
        if len(buf) < pos + 4:
            return None
        key = bytes(buf[pos : pos + 4])
        pos += 4
    if len(buf) < pos + length:
        return None
    payload = bytes(buf[pos : pos + length])
    if masked:
        payload = _apply_mask(payload, key)
    return Frame(op, payload, fin), pos + length


def _check_close_code(code: int) -> None:
    # 1004-1006 and 1015 are reserved or meant for local reporting only, never the wire.
    if not (1000 <= code <= 1014 and code not in (1004, 1005, 1006)) and not 3000 <= code <= 4999:
        raise ProtocolError(f"invalid close code {code}")


def close_payload(code: int = 1000, reason: str = "") -> bytes:
    """The payload of a CLOSE frame."""
    _check_close_code(code)
    try:
        encoded = reason.encode("utf-8")
    except UnicodeEncodeError as exc:  # a lone surrogate
        raise ProtocolError("close reason is not encodable as UTF-8") from exc
    if len(encoded) > 123:
        raise ProtocolError("close reason longer than 123 bytes")
    return code.to_bytes(2, "big") + encoded


def parse_close_payload(payload: bytes) -> tuple[int | None, str]:
    """A CLOSE frame's code and reason; ``(None, "")`` when it carries none."""
    if not payload:
        return None, ""
    if len(payload) == 1:
        raise ProtocolError("close payload of one byte")
    code = int.from_bytes(payload[:2], "big")
    _check_close_code(code)
    return code, _utf8(payload[2:], "close reason")
