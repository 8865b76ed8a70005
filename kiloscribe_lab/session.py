"""Sans-I/O Engine.IO v4 / Socket.IO v5 client session: what socket.io-client does, as a state machine.

In the h11/websockets style: feed :class:`SioClient` what arrived (a polling answer, a WebSocket
message or close frame) and it returns typed events; ask it for what to send and it returns a
:class:`Send` (the packets, and the transport they go on). It reads no socket and no clock:
the probes are its I/O pump and pass ``now`` (their own monotonic seconds) where heartbeat
timing matters. The codecs are :mod:`kiloscribe_lab.protocol`'s.

Engine.IO states (:class:`EioState`)::

    polling:   IDLE ─handshake answered─▶ OPEN(polling) ─begin_upgrade()─▶ UPGRADING ─101, probe()─▶
               PROBING ─3probe─▶ PROBED ─upgrade()─▶ OPEN(websocket)
               (a refused or closed upgrade WebSocket goes back to OPEN(polling))
    WebSocket: IDLE ─101, then the OPEN frame─▶ OPEN(websocket)
    any state ─CLOSE packet, WebSocket closed, close(), a protocol violation─▶ CLOSED

Socket.IO, per namespace (:class:`NamespaceState`)::

    connect() ▶ CONNECTING ─40─▶ CONNECTED ─41 or disconnect()─▶ DISCONNECTED
                CONNECTING ─44─▶ REFUSED

What the *server* does out of order (a ``3probe`` before we probed, a CONNECT reply we did not
ask for, a second OPEN, an ACK for an id we never sent...) raises
:class:`~kiloscribe_lab.errors.ProtocolError`, and the session is then CLOSED with ``failure``
set, as an h11 connection is dead after a protocol error. What the *caller* does out of order
(asking to probe with no WebSocket open, feeding a frame no socket could have carried) raises
:class:`LocalProtocolError`: a bug in a probe, never evidence about a server.
"""

from __future__ import annotations

import contextlib
import enum
import urllib.parse
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, TypeAlias, TypeVar

from kiloscribe_lab import protocol
from kiloscribe_lab.errors import ProtocolError
from kiloscribe_lab.names import Transport
from kiloscribe_lab.protocol import EioPacket, EioPacketType, SioPacket, SioPacketType

__all__ = [
    "DEFAULT_PATH",
    "MAX_ATTACHMENTS",
    "MAX_EARLY_EVENTS",
    "PROBE",
    "Closed",
    "EioState",
    "Event",
    "HandshakeFailed",
    "LocalProtocolError",
    "NamespaceState",
    "Noop",
    "Opened",
    "Ping",
    "PollingRefused",
    "PostAccepted",
    "ProbeAnswered",
    "Send",
    "SioAck",
    "SioClient",
    "SioConnectError",
    "SioConnected",
    "SioDisconnected",
    "SioEvent",
    "TransportClosed",
    "WebSocketOpened",
    "WebSocketRefused",
    "first",
]

DEFAULT_PATH = "/socket.io/"
PROBE = "probe"  # the data of the upgrade's PING/PONG pair: 2probe, 3probe
# A binary event names how many attachments follow; more than this is not a real client's
# traffic, and buffering them unbounded would let a server grow our memory at will.
MAX_ATTACHMENTS = 64
# Events a server sends before its CONNECT reply are held until it (socket.io-client's
# receiveBuffer); python-socketio sends what its connect handler emits first. Bounded likewise.
MAX_EARLY_EVENTS = 64
ABNORMAL_CLOSURE = 1006  # RFC 6455 §7.1.5: the connection ended without a CLOSE frame


class LocalProtocolError(RuntimeError):
    """The caller asked for something the session's state does not allow: a bug in our code.

    Not a :class:`ProtocolError`, which probes record as the server's ``malformed``."""


class EioState(enum.StrEnum):
    IDLE = "idle"  # no OPEN yet
    OPEN = "open"  # the Engine.IO session is open on ``SioClient.transport``
    UPGRADING = "upgrading"  # polling is open; the WebSocket to upgrade to is being opened
    PROBING = "probing"  # 2probe sent on that WebSocket; 3probe awaited
    PROBED = "probed"  # 3probe arrived; upgrade() switches the session over
    CLOSED = "closed"


_EVENTS = frozenset({SioPacketType.EVENT, SioPacketType.BINARY_EVENT})
_POLLING_STATES = frozenset({EioState.OPEN, EioState.UPGRADING, EioState.PROBING, EioState.PROBED})


class NamespaceState(enum.StrEnum):
    CONNECTING = "connecting"
    CONNECTED = "connected"
    REFUSED = "refused"
    DISCONNECTED = "disconnected"


class _WebSocket(enum.Enum):
    NONE = "none"  # no WebSocket is part of the session
    HANDSHAKE = "handshake"  # its HTTP upgrade is under way
    OPEN = "open"
    CLOSED = "closed"  # closed by the server (a CLOSE frame) or lost


# --------------------------------------------------------------------------- events


@dataclass(frozen=True, slots=True)
class Opened:
    """The Engine.IO session is open: the server's OPEN packet."""

    open: protocol.EioOpen
    transport: Transport


@dataclass(frozen=True, slots=True)
class HandshakeFailed:
    """The polling handshake got no Engine.IO v4 session: a v3 server, an Engine.IO refusal,
    or something that is not Engine.IO at all. The session is CLOSED."""

    status: int
    result: protocol.EioV3Handshake | protocol.EioError | protocol.NotEngineIO


@dataclass(frozen=True, slots=True)
class WebSocketOpened:
    """The WebSocket's opening handshake completed (101 with a valid accept key)."""


@dataclass(frozen=True, slots=True)
class WebSocketRefused:
    """The WebSocket's opening handshake failed; ``error`` when Engine.IO said why in the body.
    A WebSocket-first session is CLOSED; an upgrade falls back to OPEN(polling)."""

    status: int
    check: protocol.UpgradeCheck
    error: protocol.EioError | None


@dataclass(frozen=True, slots=True)
class ProbeAnswered:
    """``3probe`` on the upgrade WebSocket: the path carries WebSocket; upgrade() may follow."""


@dataclass(frozen=True, slots=True)
class Ping:
    """A server heartbeat; answer with :meth:`SioClient.pong`.

    ``late_ms`` is how long after its schedule it came: Engine.IO servers (engine.io and
    python-engineio alike) send the next PING ``pingInterval`` after the session opened or
    after our PONG to the last one (an unprompted PONG restarts engine.io's timer too, not
    python-engineio's). Negative when early; None unless the caller passed times.
    """

    data: str
    at: float | None
    late_ms: float | None


@dataclass(frozen=True, slots=True)
class Noop:
    """A NOOP: engine.io ends a pending long-poll with one during an upgrade."""


@dataclass(frozen=True, slots=True)
class Closed:
    """The server's Engine.IO CLOSE packet. The session is CLOSED."""


@dataclass(frozen=True, slots=True)
class TransportClosed:
    """A WebSocket ended: its CLOSE frame's code and reason, or 1006 when the connection was
    lost without one. The session's own transport closing ends the session; the upgrade
    WebSocket closing falls back to OPEN(polling)."""

    transport: Transport
    code: int | None
    reason: str
    session_ended: bool


@dataclass(frozen=True, slots=True)
class PostAccepted:
    """A polling POST (our packets) was accepted (HTTP 200)."""


@dataclass(frozen=True, slots=True)
class PollingRefused:
    """A polling GET or POST answered other than 200; ``error`` when it is Engine.IO's refusal
    (e.g. "Session ID unknown" from a backend that never saw the session). The session's state
    is unchanged: the refusal may come from a backend other than the session's own, so the
    caller decides (``connection_lost()`` when it gives up)."""

    method: str
    status: int
    error: protocol.EioError | None


@dataclass(frozen=True, slots=True)
class SioConnected:
    namespace: str
    sid: str


@dataclass(frozen=True, slots=True)
class SioConnectError:
    """CONNECT_ERROR: ``message`` from ``{"message": ...}`` (engine.io: "Invalid namespace")
    or a bare string (python-socketio: "Unable to connect"); ``data`` as sent."""

    namespace: str
    message: str | None
    data: Any


@dataclass(frozen=True, slots=True)
class SioEvent:
    """An EVENT; when ``ack_id`` is set the server waits for :meth:`SioClient.ack`."""

    namespace: str
    name: str
    args: list[Any]
    ack_id: int | None


@dataclass(frozen=True, slots=True)
class SioAck:
    """The answer to an EVENT we emitted with ``ack=True`` (``event`` is its name)."""

    namespace: str
    ack_id: int
    args: list[Any]
    event: str


@dataclass(frozen=True, slots=True)
class SioDisconnected:
    """The server's DISCONNECT for a namespace."""

    namespace: str


Event: TypeAlias = (
    Opened
    | HandshakeFailed
    | WebSocketOpened
    | WebSocketRefused
    | ProbeAnswered
    | Ping
    | Noop
    | Closed
    | TransportClosed
    | PostAccepted
    | PollingRefused
    | SioConnected
    | SioConnectError
    | SioEvent
    | SioAck
    | SioDisconnected
)

_E = TypeVar("_E")


def first(events: Iterable[Event], kind: type[_E]) -> _E | None:
    """The first event of ``kind`` among ``events``, or None."""
    return next((e for e in events if isinstance(e, kind)), None)


# --------------------------------------------------------------------------- what to send


@dataclass(frozen=True, slots=True)
class Send:
    """Packets to send, and the transport they go on. ``ack_id``: the id an emit was given."""

    transport: Transport
    packets: tuple[EioPacket, ...]
    ack_id: int | None = None

    def polling_body(self) -> bytes:
        """The body of a polling POST (v4: packets joined by ``\\x1e``)."""
        if self.transport is not Transport.POLLING:
            raise LocalProtocolError(f"these packets go on the {self.transport} transport, not polling")
        return protocol.encode_polling_payload(self.packets).encode("utf-8")

    def websocket_messages(self) -> tuple[str | bytes, ...]:
        """One WebSocket message per packet: ``str`` for a text frame, ``bytes`` for a binary one."""
        if self.transport is not Transport.WEBSOCKET:
            raise LocalProtocolError(f"these packets go on the {self.transport} transport, not websocket")
        return tuple(
            p.data if isinstance(p.data, bytes) else protocol.encode_eio_packet(p) for p in self.packets
        )


# --------------------------------------------------------------------------- the session


@dataclass(slots=True)
class _Binary:
    """A BINARY_EVENT/BINARY_ACK waiting for its attachments."""

    packet: SioPacket
    event: str  # for a BINARY_ACK, the name of the EVENT it answers
    attachments: list[bytes]


class SioClient:
    """One Engine.IO session and its Socket.IO namespaces, from the client's side.

    ``transport`` is the one the session opens on: ``polling`` (socket.io-client's default,
    upgraded later) or ``websocket`` (``transports: ['websocket']``: the server speaks first,
    its first frame is the OPEN packet).
    """

    def __init__(self, transport: Transport = Transport.POLLING, *, path: str = DEFAULT_PATH) -> None:
        if not path.startswith("/") or not path.isascii() or any(c in path for c in "?# "):
            raise LocalProtocolError(f"not a request path: {path!r}")
        self._path = path
        self._state = EioState.IDLE
        self._transport = Transport(transport)
        self._opens_on_polling = self._transport is Transport.POLLING
        self._ws = _WebSocket.HANDSHAKE if self._transport is Transport.WEBSOCKET else _WebSocket.NONE
        self._upgraded = False  # polling → websocket done: a late long-poll answer may still come
        self._closed_by_us = False
        self._failure: str | None = None
        self._open: protocol.EioOpen | None = None
        self._handshake: protocol.HandshakeResult | None = None
        self._namespaces: dict[str, NamespaceState] = {}
        self._next_ack_id = 0
        self._acks_pending: dict[tuple[str, int], str] = {}  # (namespace, id) -> event name
        self._acks_owed: set[tuple[str, int]] = set()  # the server's EVENTs that asked for an ack
        self._binary: _Binary | None = None
        self._early: dict[str, list[Event]] = {}  # namespace -> events before its CONNECT reply
        # Heartbeat bookkeeping, in the caller's seconds: when the server scheduled its next
        # PING from (open or our last PONG), and when the last PING came (the client's timer).
        self._schedule_from: float | None = None
        self._last_ping_at: float | None = None
        self._pong_owed = False
        self._pings = 0

    # --- what the session knows

    @property
    def state(self) -> EioState:
        return self._state

    @property
    def transport(self) -> Transport:
        """The session's transport now (polling until an upgrade completes)."""
        return self._transport

    @property
    def open(self) -> protocol.EioOpen | None:
        """The server's OPEN: sid, upgrades, pingInterval, pingTimeout, maxPayload."""
        return self._open

    @property
    def handshake_result(self) -> protocol.HandshakeResult:
        """The polling handshake's answer as :func:`protocol.classify_handshake` classified it
        (what HandshakeFailed carries, or the v4 OPEN)."""
        if self._handshake is None:
            raise LocalProtocolError("no polling handshake was received")
        return self._handshake

    @property
    def sid(self) -> str | None:
        return None if self._open is None else self._open.sid

    @property
    def failure(self) -> str | None:
        """Why the session failed, when a protocol violation ended it."""
        return self._failure

    @property
    def namespaces(self) -> Mapping[str, NamespaceState]:
        return MappingProxyType(self._namespaces)

    def namespace_state(self, namespace: str = "/") -> NamespaceState | None:
        return self._namespaces.get(namespace)

    @property
    def websocket_open(self) -> bool:
        """Whether a WebSocket of this session (its transport, or the upgrade's) is open."""
        return self._ws is _WebSocket.OPEN

    @property
    def pong_owed(self) -> bool:
        """A PING arrived and no PONG was sent since."""
        return self._pong_owed

    @property
    def pings(self) -> int:
        """How many heartbeats the server has sent."""
        return self._pings

    @property
    def next_ping_due(self) -> float | None:
        """When the server's next PING is due (caller's seconds): pingInterval after the open
        or after our last PONG. None until times were passed."""
        if self._open is None or self._schedule_from is None:
            return None
        return self._schedule_from + self._open.ping_interval / 1000

    @property
    def ping_deadline(self) -> float | None:
        """When socket.io-client would give up ("ping timeout"): pingInterval + pingTimeout
        after the open or the last PING."""
        if self._open is None:
            return None
        since = self._last_ping_at if self._last_ping_at is not None else self._schedule_from
        return None if since is None else since + self._open.idle_budget_ms / 1000

    # --- request targets

    def _target(self, transport: Transport, sid: str | None) -> str:
        query = f"EIO={protocol.ENGINEIO_PROTOCOL}&transport={transport}"
        if sid is not None:
            # Quoted: a sid is the server's text, and must not add query parameters of its own.
            query += "&sid=" + urllib.parse.quote(sid, safe="-_.~")
        return f"{self._path}?{query}"

    def handshake_target(self) -> str:
        """The request target that opens the session (a polling GET, or the WebSocket's)."""
        if self._state is not EioState.IDLE:
            raise LocalProtocolError(f"the session is {self._state}, not waiting for its handshake")
        return self._target(self._transport, None)

    def polling_target(self) -> str:
        """The target of the session's polling requests (GET to receive, POST to send)."""
        if self._state not in _POLLING_STATES or self._transport is not Transport.POLLING:
            raise LocalProtocolError("no polling session is open")
        return self._target(Transport.POLLING, self.sid)

    def begin_upgrade(self) -> str:
        """Start the upgrade to WebSocket; returns the WebSocket's request target (with the sid)."""
        self._require(EioState.OPEN, "begin an upgrade")
        if self._transport is not Transport.POLLING:
            raise LocalProtocolError("the session already runs on WebSocket")
        if self._open is None or "websocket" not in self._open.upgrades:
            raise LocalProtocolError("the server offers no WebSocket upgrade")
        self._state = EioState.UPGRADING
        self._ws = _WebSocket.HANDSHAKE
        return self._target(Transport.WEBSOCKET, self.sid)

    def abandon_upgrade(self) -> None:
        """Give up an upgrade under way (its WebSocket timed out or was dropped): back to polling."""
        if self._state not in {EioState.UPGRADING, EioState.PROBING, EioState.PROBED}:
            raise LocalProtocolError(f"no upgrade under way (the session is {self._state})")
        self._state = EioState.OPEN
        self._ws = _WebSocket.NONE

    # --- what arrived

    def receive_handshake(
        self, status: int, body: bytes, content_type: str | None = None, *, now: float | None = None
    ) -> list[Event]:
        """The answer to the polling handshake GET (:meth:`handshake_target`)."""
        self._require(EioState.IDLE, "receive a handshake")
        if self._transport is not Transport.POLLING:
            raise LocalProtocolError("a WebSocket-first session has no polling handshake")
        with self._failing():
            result = self._handshake = protocol.classify_handshake(status, body, content_type)
            if not isinstance(result, protocol.EioV4Handshake):
                self._state = EioState.CLOSED
                return [HandshakeFailed(status, result)]
            events: list[Event] = [self._opened(result.open, now)]
            for packet in result.extra:
                events += self._dispatch(packet, now)
            return events

    def receive_websocket_response(
        self, head: protocol.ResponseHead, key: str, body: bytes = b""
    ) -> list[Event]:
        """The answer to the WebSocket's opening handshake sent with ``key``; ``body`` is what
        came after the head (a refusal's body; frames, after a 101, go to receive_*)."""
        if self._ws is not _WebSocket.HANDSHAKE:
            raise LocalProtocolError("no WebSocket handshake is under way")
        check = protocol.check_upgrade_response(head, key)
        if check.accepted:
            self._ws = _WebSocket.OPEN
            return [WebSocketOpened()]
        self._ws = _WebSocket.NONE
        if self._transport is Transport.WEBSOCKET:
            self._state = EioState.CLOSED
        else:
            self._state = EioState.OPEN  # the upgrade failed; polling goes on
        error = protocol.classify_engineio_error(head.status, body) if head.status != 101 else None
        return [WebSocketRefused(head.status, check, error)]

    def receive_poll(self, status: int, body: bytes | str, *, now: float | None = None) -> list[Event]:
        """The answer to a long-polling GET on :meth:`polling_target`."""
        if not self._opens_on_polling or self._open is None:
            raise LocalProtocolError("no polling session was opened")
        if status != 200:
            return [PollingRefused("GET", status, protocol.classify_engineio_error(status, body))]
        if self._state is EioState.CLOSED:
            return self._after_close()
        with self._failing():
            packets = protocol.decode_polling_payload(body)
            if self._upgraded:
                # The long-poll that was pending when we upgraded: engine.io ends it with a NOOP.
                if any(p.type is not EioPacketType.NOOP for p in packets):
                    raise ProtocolError("a polling answer other than NOOP after the upgrade to WebSocket")
                return [Noop() for _ in packets]
            events: list[Event] = []
            for packet in packets:
                events += self._dispatch(packet, now)
            return events

    def receive_post(self, status: int, body: bytes | str = b"") -> list[Event]:
        """The answer to a polling POST (a :meth:`Send.polling_body`)."""
        if not self._opens_on_polling or self._open is None:
            raise LocalProtocolError("no polling session was opened")
        if status == 200:
            return [PostAccepted()]
        return [PollingRefused("POST", status, protocol.classify_engineio_error(status, body))]

    def receive_text(self, text: str, *, now: float | None = None) -> list[Event]:
        """A text message on the session's WebSocket (or the upgrade's)."""
        if self._state is EioState.CLOSED and self._closed_by_us:
            return []
        self._require_websocket_input()
        with self._failing():
            return self._websocket_packet(protocol.decode_eio_packet(text), now)

    def receive_binary(self, data: bytes, *, now: float | None = None) -> list[Event]:
        """A binary message on the WebSocket: an Engine.IO binary MESSAGE (a Socket.IO attachment)."""
        if self._state is EioState.CLOSED and self._closed_by_us:
            return []
        self._require_websocket_input()
        with self._failing():
            return self._websocket_packet(EioPacket(EioPacketType.MESSAGE, bytes(data)), now)

    def receive_close(self, code: int | None, reason: str = "") -> list[Event]:
        """A CLOSE frame on the WebSocket (:func:`protocol.parse_close_payload` gives code and reason)."""
        if self._state is EioState.CLOSED and self._closed_by_us:
            self._ws = _WebSocket.CLOSED
            return []
        self._require_websocket_input()
        return [self._websocket_ended(code, reason)]

    def receive_frame(self, frame: protocol.Frame, *, now: float | None = None) -> list[Event]:
        """A whole (unfragmented) WebSocket frame; control PING/PONG frames are the WebSocket
        layer's, not the session's, and give no event."""
        if not frame.fin or frame.opcode is protocol.Opcode.CONTINUATION:
            raise LocalProtocolError("reassemble fragmented messages before feeding them")
        if frame.opcode is protocol.Opcode.TEXT:
            return self.receive_text(frame.text(), now=now)
        if frame.opcode is protocol.Opcode.BINARY:
            return self.receive_binary(frame.payload, now=now)
        if frame.opcode is protocol.Opcode.CLOSE:
            code, reason = protocol.parse_close_payload(frame.payload)
            return self.receive_close(code, reason)
        return []

    def connection_lost(self) -> list[Event]:
        """The WebSocket's connection ended without a CLOSE frame (the pump saw EOF or a reset)."""
        if self._ws is not _WebSocket.OPEN:
            return []
        return [self._websocket_ended(ABNORMAL_CLOSURE, "")]

    # --- what to send

    def probe(self) -> Send:
        """``2probe`` on the upgrade WebSocket, once its handshake succeeded."""
        self._require(EioState.UPGRADING, "probe")
        if self._ws is not _WebSocket.OPEN:
            raise LocalProtocolError("the upgrade WebSocket is not open")
        self._state = EioState.PROBING
        return Send(Transport.WEBSOCKET, (EioPacket(EioPacketType.PING, PROBE),))

    def upgrade(self) -> Send:
        """``5`` on the upgrade WebSocket, after 3probe: the session moves to WebSocket."""
        self._require(EioState.PROBED, "upgrade")
        self._state = EioState.OPEN
        self._transport = Transport.WEBSOCKET
        self._upgraded = True
        return Send(Transport.WEBSOCKET, (EioPacket(EioPacketType.UPGRADE),))

    def pong(self, *, now: float | None = None) -> Send:
        """A PONG: the answer to a PING, or unprompted (servers accept one at any time; it
        postpones their next PING)."""
        self._require_open("pong")
        self._pong_owed = False
        if now is not None:
            self._schedule_from = now
        return self._send(EioPacket(EioPacketType.PONG))

    def connect(self, namespace: str = "/", auth: dict[str, Any] | None = None) -> Send:
        """A namespace CONNECT, with the auth payload (``{"apiKey": ...}``) if any."""
        self._require_open("connect")
        if self._namespaces.get(namespace) in {NamespaceState.CONNECTING, NamespaceState.CONNECTED}:
            raise LocalProtocolError(f"namespace {namespace} is already {self._namespaces[namespace]}")
        packet = self._sio(SioPacket(SioPacketType.CONNECT, namespace, auth))
        self._namespaces[namespace] = NamespaceState.CONNECTING
        return packet

    def emit(self, event: str, *args: Any, namespace: str = "/", ack: bool = False) -> Send:
        """An EVENT; with ``ack=True`` it carries a fresh ack id (``Send.ack_id``) and the
        server's SioAck is expected."""
        self._require_connected(namespace, "emit")
        ack_id = self._next_ack_id if ack else None
        send = self._sio(SioPacket(SioPacketType.EVENT, namespace, [event, *args], ack_id=ack_id))
        if ack_id is not None:
            self._next_ack_id += 1
            self._acks_pending[(namespace, ack_id)] = event
        return Send(send.transport, send.packets, ack_id)

    def ack(self, ack_id: int, *args: Any, namespace: str = "/") -> Send:
        """Acknowledge a server EVENT that asked for it (its ``SioEvent.ack_id``)."""
        self._require_connected(namespace, "ack")
        if (namespace, ack_id) not in self._acks_owed:
            raise LocalProtocolError(f"the server asked for no ack {ack_id} on {namespace}")
        send = self._sio(SioPacket(SioPacketType.ACK, namespace, list(args), ack_id=ack_id))
        self._acks_owed.discard((namespace, ack_id))
        return send

    def disconnect(self, namespace: str = "/") -> Send:
        """A namespace DISCONNECT (``41``)."""
        self._require_open("disconnect")
        if self._namespaces.get(namespace) not in {NamespaceState.CONNECTING, NamespaceState.CONNECTED}:
            raise LocalProtocolError(f"namespace {namespace} is not connected")
        send = self._sio(SioPacket(SioPacketType.DISCONNECT, namespace))
        self._leave(namespace, NamespaceState.DISCONNECTED)
        return send

    def close(self) -> Send:
        """The Engine.IO CLOSE packet: the session ends; what still arrives is ignored."""
        self._require_open("close")
        send = self._send(EioPacket(EioPacketType.CLOSE))
        self._state = EioState.CLOSED
        self._closed_by_us = True
        return send

    # --- internals: preconditions

    def _require(self, state: EioState, action: str) -> None:
        if self._state is not state:
            raise LocalProtocolError(f"cannot {action}: the session is {self._state}, not {state}")

    def _require_open(self, action: str) -> None:
        if self._state in {EioState.IDLE, EioState.CLOSED}:
            raise LocalProtocolError(f"cannot {action}: the session is {self._state}")

    def _require_connected(self, namespace: str, action: str) -> None:
        self._require_open(action)
        if self._namespaces.get(namespace) is not NamespaceState.CONNECTED:
            raise LocalProtocolError(f"cannot {action}: namespace {namespace} is not connected")

    def _require_websocket_input(self) -> None:
        if self._ws is _WebSocket.CLOSED:
            raise self._fail(ProtocolError("a WebSocket message after the WebSocket closed"))
        if self._ws is not _WebSocket.OPEN:
            raise LocalProtocolError("no WebSocket of this session is open")
        if self._failure is not None:
            raise ProtocolError(f"the session already failed: {self._failure}")

    def _after_close(self) -> list[Event]:
        if self._closed_by_us:
            return []  # in flight when we closed
        if self._failure is not None:
            raise ProtocolError(f"the session already failed: {self._failure}")
        raise self._fail(ProtocolError("a packet after the session closed"))

    # --- internals: failing on a violation

    def _fail(self, exc: ProtocolError) -> ProtocolError:
        self._failure = self._failure or str(exc)
        self._state = EioState.CLOSED
        return exc

    @contextlib.contextmanager
    def _failing(self) -> Iterator[None]:
        """Around the handling of the server's input: a violation ends the session."""
        if self._failure is not None:
            raise ProtocolError(f"the session already failed: {self._failure}")
        try:
            yield
        except ProtocolError as exc:
            self._fail(exc)
            raise

    # --- internals: sending

    def _send(self, packet: EioPacket) -> Send:
        return Send(self._transport, (packet,))

    def _sio(self, packet: SioPacket) -> Send:
        return self._send(EioPacket(EioPacketType.MESSAGE, protocol.encode_sio_packet(packet)))

    def _leave(self, namespace: str, state: NamespaceState) -> None:
        self._namespaces[namespace] = state
        self._early.pop(namespace, None)
        for key in [k for k in self._acks_pending if k[0] == namespace]:
            del self._acks_pending[key]
        self._acks_owed = {k for k in self._acks_owed if k[0] != namespace}

    # --- internals: Engine.IO

    def _opened(self, opened: protocol.EioOpen, now: float | None) -> Opened:
        self._open = opened
        self._state = EioState.OPEN
        self._schedule_from = now
        return Opened(opened, self._transport)

    def _websocket_packet(self, packet: EioPacket, now: float | None) -> list[Event]:
        state = self._state
        if state is EioState.CLOSED:
            return self._after_close()
        if state is EioState.IDLE:
            if packet.type is not EioPacketType.OPEN:
                raise ProtocolError(f"the first packet is {packet.type.name}, not OPEN")
            return [self._opened(protocol.parse_open(packet), now)]
        if self._transport is Transport.WEBSOCKET:
            return self._dispatch(packet, now)
        # The upgrade WebSocket: it carries the probe's answer and nothing else until upgrade().
        if state is EioState.PROBING and packet.type is EioPacketType.PONG and packet.data == PROBE:
            self._state = EioState.PROBED
            return [ProbeAnswered()]
        if state is EioState.UPGRADING and packet.type is EioPacketType.PONG:
            raise ProtocolError(f"PONG {packet.data!r} on the upgrade WebSocket before we probed")
        if state is EioState.PROBING:
            raise ProtocolError(f"expected PONG 'probe' on the upgrade WebSocket, got {_show(packet)}")
        raise ProtocolError(f"{_show(packet)} on the upgrade WebSocket before the upgrade completed")

    def _websocket_ended(self, code: int | None, reason: str) -> TransportClosed:
        self._ws = _WebSocket.CLOSED
        session_ended = self._transport is Transport.WEBSOCKET
        if session_ended:
            self._state = EioState.CLOSED
        elif self._state is not EioState.CLOSED:
            self._state = EioState.OPEN  # the upgrade WebSocket closed: polling goes on
        return TransportClosed(Transport.WEBSOCKET, code, reason, session_ended)

    def _dispatch(self, packet: EioPacket, now: float | None) -> list[Event]:
        """A packet on the session's own transport, the session open."""
        ptype = packet.type
        if ptype is EioPacketType.OPEN:
            raise ProtocolError("a second OPEN packet")
        if ptype is EioPacketType.CLOSE:
            self._state = EioState.CLOSED
            return [Closed()]
        if ptype is EioPacketType.PING:
            return [self._ping(str(packet.data), now)]
        if ptype is EioPacketType.PONG:
            # Engine.IO v4 heartbeats go server → client; engine.io closes a session whose
            # client pings ("invalid heartbeat direction"), so a PONG answers nothing we sent.
            what = "3probe before we probed" if packet.data == PROBE else f"PONG {packet.data!r}"
            raise ProtocolError(f"{what}: we sent no PING")
        if ptype is EioPacketType.UPGRADE:
            raise ProtocolError("UPGRADE is the client's packet, not the server's")
        if ptype is EioPacketType.NOOP:
            return [Noop()]
        if isinstance(packet.data, bytes):
            return self._attachment(packet.data)
        return self._socketio(protocol.decode_sio_packet(packet.data))

    def _ping(self, data: str, now: float | None) -> Ping:
        due = self.next_ping_due
        late_ms = None if now is None or due is None else (now - due) * 1000
        self._pings += 1
        self._pong_owed = True
        if now is not None:
            self._last_ping_at = now
        return Ping(data, now, late_ms)

    # --- internals: Socket.IO

    def _socketio(self, packet: SioPacket) -> list[Event]:
        if self._binary is not None:
            raise ProtocolError(
                f"{packet.type.name} while {len(self._binary.attachments)} of "
                f"{self._binary.packet.attachments} attachments had arrived"
            )
        ns = packet.namespace
        state = self._namespaces.get(ns)
        ptype = packet.type
        if ptype is SioPacketType.CONNECT:
            if state is not NamespaceState.CONNECTING:
                raise ProtocolError(f"CONNECT reply for {ns}, which we did not ask to connect")
            sid = protocol.connect_sid(packet)
            if sid is None:
                raise ProtocolError(f"CONNECT reply for {ns} without a sid (not Socket.IO v5)")
            self._namespaces[ns] = NamespaceState.CONNECTED
            return [SioConnected(ns, sid), *self._early.pop(ns, [])]
        if ptype is SioPacketType.CONNECT_ERROR:
            if state is not NamespaceState.CONNECTING:
                raise ProtocolError(f"CONNECT_ERROR for {ns}, which we did not ask to connect")
            self._leave(ns, NamespaceState.REFUSED)
            return [SioConnectError(ns, protocol.connect_error_message(packet), packet.data)]
        if ptype is SioPacketType.DISCONNECT:
            if state not in {NamespaceState.CONNECTING, NamespaceState.CONNECTED}:
                raise ProtocolError(f"DISCONNECT for {ns}, which is not connected")
            self._leave(ns, NamespaceState.DISCONNECTED)
            return [SioDisconnected(ns)]
        early = state is NamespaceState.CONNECTING and ptype in _EVENTS
        if state is not NamespaceState.CONNECTED and not early:
            raise ProtocolError(f"{ptype.name} on {ns}, which is not connected")
        event = ""
        if ptype in {SioPacketType.ACK, SioPacketType.BINARY_ACK}:
            key = (ns, packet.ack_id if packet.ack_id is not None else -1)
            if key not in self._acks_pending:
                raise ProtocolError(f"{ptype.name} {packet.ack_id} on {ns}: we sent no EVENT with that id")
            event = self._acks_pending[key]
        if packet.attachments:  # BINARY_* with attachments to come as binary messages
            if packet.attachments > MAX_ATTACHMENTS:
                raise ProtocolError(f"{packet.attachments} attachments (at most {MAX_ATTACHMENTS})")
            self._binary = _Binary(packet, event, [])
            return []
        return self._deliver(self._complete(packet, event, packet.data))

    def _attachment(self, data: bytes) -> list[Event]:
        pending = self._binary
        if pending is None:
            raise ProtocolError("a binary message that no binary Socket.IO packet announced")
        pending.attachments.append(data)
        if len(pending.attachments) < (pending.packet.attachments or 0):
            return []
        self._binary = None
        return self._deliver(
            self._complete(pending.packet, pending.event, _fill(pending.packet.data, pending.attachments))
        )

    def _deliver(self, event: SioEvent | SioAck) -> list[Event]:
        if self._namespaces.get(event.namespace) is not NamespaceState.CONNECTING:
            return [event]
        held = self._early.setdefault(event.namespace, [])
        if len(held) >= MAX_EARLY_EVENTS:
            raise ProtocolError(
                f"more than {MAX_EARLY_EVENTS} events on {event.namespace} before its CONNECT reply"
            )
        held.append(event)
        return []

    def _complete(self, packet: SioPacket, event: str, data: Any) -> SioEvent | SioAck:
        ns = packet.namespace
        if packet.type in _EVENTS:
            if packet.ack_id is not None:
                self._acks_owed.add((ns, packet.ack_id))
            return SioEvent(ns, data[0], list(data[1:]), packet.ack_id)
        ack_id = packet.ack_id if packet.ack_id is not None else -1
        del self._acks_pending[(ns, ack_id)]
        return SioAck(ns, ack_id, list(data), event)


def _show(packet: EioPacket) -> str:
    if isinstance(packet.data, bytes):
        return f"binary MESSAGE of {len(packet.data)} bytes"
    shown = packet.data[:40] + ("…" if len(packet.data) > 40 else "")
    return f"{packet.type.name} {shown!r}" if shown else packet.type.name


def _fill(data: Any, attachments: Sequence[bytes]) -> Any:
    """Replace ``{"_placeholder": true, "num": N}`` with the N-th attachment (socket.io-parser)."""

    def walk(value: Any, depth: int) -> Any:
        if depth > 100:  # decode_sio_packet already bounds nesting; this keeps walk() bounded too
            raise ProtocolError("binary packet nested too deeply")
        if isinstance(value, dict):
            if value.get("_placeholder") is True:
                num = value.get("num")
                if isinstance(num, bool) or not isinstance(num, int) or not 0 <= num < len(attachments):
                    raise ProtocolError(f"placeholder for attachment {num!r} of {len(attachments)}")
                return attachments[num]
            return {k: walk(v, depth + 1) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v, depth + 1) for v in value]
        return value

    return walk(data, 0)
