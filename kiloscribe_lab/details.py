"""The shape of each probe's ``detail``: what probes write and the diagnosis reads. Pure.

``ProbeResult.detail`` stays a ``Mapping[str, Any]`` in the JSON contract (records written by
another version still load); these TypedDicts type what *this* version's probes write, so a
misspelt key or a wrong value type is a mypy error at the probe, and a reader can see every key
a probe may set. Keys are optional (``total=False``): a probe records what it got to measure
before its outcome was known, and a timeout keeps what was measured so far.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Mapping
from typing import Any, TypedDict

from kiloscribe_lab.names import ProbeName

__all__ = [
    "DETAIL_SHAPES",
    "CloseJson",
    "CommonDetail",
    "ConnectRun",
    "ConnectStatsDetail",
    "CorsDetail",
    "DiscoveryDetail",
    "EngineioErrorJson",
    "EngineioHandshakeDetail",
    "EngineioOpenJson",
    "EngineioUpgradeDetail",
    "Exchange",
    "FollowUp",
    "Hop",
    "HttpUpgradeDetail",
    "OpenAttempt",
    "PresentedCert",
    "SdkFlowDetail",
    "SdkStepJson",
    "SioAttemptDetail",
    "SocketioConnectDetail",
    "StickySessionDetail",
    "TlsRejectedJson",
    "WebsocketPlainDetail",
    "shape_problems",
]


class PresentedCert(TypedDict):
    subject: str  # "commonName=..., organizationName=..."
    issuer: str


class TlsRejectedJson(TypedDict):
    """A certificate that did not verify, and the chain the server presented (leaf first)."""

    verify_code: int | None  # OpenSSL's X509_V_ERR_*: 20 = unable to get local issuer certificate
    verify_message: str
    presented: list[PresentedCert] | None  # None: this Python could not read it


class CommonDetail(TypedDict, total=False):
    """Keys any probe's detail may carry: written by the probe machinery, not the probe."""

    label: str  # the target's LABEL= name, when it has one
    deadline_s: float  # the deadline this probe ran under (its own, or what the run had left)
    stalled_during: str  # the phase a timed-out probe was in
    tls: TlsRejectedJson  # the TLS handshake failed on a certificate that did not verify


# --- websocket_plain, engineio_upgrade (probes/websocket.py) ----------------------------


class EngineioOpenJson(TypedDict):
    """An Engine.IO OPEN packet's fields, as the server sent them."""

    sid: str
    upgrades: list[str]
    pingInterval: int  # the wire's own spelling
    pingTimeout: int
    maxPayload: int | None


class CloseJson(TypedDict):
    code: int | None
    reason: str


class WebsocketPlainDetail(CommonDetail, total=False):
    url: str
    command: str  # the wscat command that reproduces it
    status_line: str
    upgrade: str  # why the handshake did (not) complete
    body: str  # a refusal's body, first bytes
    first_frame_opcode: str  # TEXT, BINARY, CLOSE...
    first_frame: str  # a text first frame, first bytes
    engineio_open: EngineioOpenJson | None  # a text first frame: its OPEN packet, or None
    close: CloseJson  # a CLOSE first frame
    not_engineio: str  # it upgraded, and what came instead of an OPEN packet
    header_names: list[str]  # as the server spelled them: a fingerprint


class EngineioUpgradeDetail(CommonDetail, total=False):
    command: str
    polling: str  # the polling handshake's status line, when it opened no session
    body: str
    polling_backend: str | None
    upgrades_offered: list[str]
    stuck_in_polling: bool
    websocket: str  # the upgrade WebSocket's status line
    websocket_backend: str | None
    probe_answer: str  # what came back for 2probe
    control_websocket: str  # a fresh WebSocket without the sid, when the upgrade was refused
    header_names: list[str]  # of the last answer, as the server spelled them


# --- engineio_handshake, sticky_session (probes/polling.py) -----------------------------


class EngineioErrorJson(TypedDict):
    code: int
    name: str
    message: str
    style: str  # node or python


class EngineioHandshakeDetail(CommonDetail, total=False):
    command: str
    status_line: str
    body: str
    engineio_version: int  # 4, or 3 for a v3 server
    sid: str
    upgrades: list[str]
    pingInterval: int
    pingTimeout: int
    maxPayload: int | None
    idle_budget_ms: int
    engineio_error: EngineioErrorJson
    not_engineio: str  # what answered instead, in a few words
    body_kind: str
    eio3: str  # whether the server still accepts Engine.IO v3 clients
    header_names: list[str]


class OpenAttempt(TypedDict):
    status: int
    backend: str | None


class _FollowUpAnswer(TypedDict):
    status: int
    backend: str | None
    session_unknown: bool


class FollowUp(_FollowUpAnswer, total=False):
    # NotRequired would do, if 3.11's TypedDict read it under postponed annotations.
    retry_after: str  # a 429's Retry-After


class CorsDetail(CommonDetail, total=False):
    """``cors``: one request a browser page on ``origin`` would make, and what allows it."""

    origin: str
    command: str
    method: str
    request_headers: dict[str, str]  # the CORS request headers sent (Origin, Access-Control-Request-*)
    status_line: str
    body: str
    allow_origin: str | None  # Access-Control-Allow-Origin as answered
    allow_credentials: str | None
    allowed: bool  # would a browser let the page read the answer (or open the socket)?
    why: str  # in a few words, why (not)
    header_names: list[str]


class StickySessionDetail(CommonDetail, total=False):
    client: str
    open_attempts: list[OpenAttempt]
    opener: str | None  # the backend that opened the session
    cookie_names: list[str]
    follow_ups: int
    answered: int
    session_unknown: int
    moved: int
    other: int
    answers: list[FollowUp]
    backends: list[str]
    header_names: list[str]  # of the handshake answer


# --- http_upgrade (probes/http_upgrade.py), discovery (probes/discovery.py) --------------


class Hop(TypedDict):
    url: str
    status: int
    location: str | None


class HttpUpgradeDetail(CommonDetail, total=False):
    command: str
    status_line: str
    body: str
    redirects: list[Hop]
    upgrade: str
    note: str
    alpn: str | None
    enable_connect_protocol: bool | None
    upgrade_headers: str
    header_names: list[str]


class DiscoveryDetail(CommonDetail, total=False):
    url: str
    command: str
    status_line: str
    body: str
    servers: list[dict[str, Any]]
    recommended: str | None
    problems: list[str]
    chosen: str | None


# --- socketio_connect, sdk_flow, connect_stats (probes/sio.py) ---------------------------


class Exchange(TypedDict):
    method: str
    transport: str
    status: int
    backend: str | None


class SioAttemptDetail(CommonDetail, total=False):
    exchanges: list[Exchange]
    timing_note: str
    transport: str
    backend: str
    server_message: str


class SocketioConnectDetail(SioAttemptDetail, total=False):
    credential: str
    client: str


class SdkStepJson(TypedDict, total=False):
    step: str
    sdk_timer_s: float
    outcome: str
    result: str
    sdk_message: str | None
    skipped: str
    ack_success: Any  # whatever the server's ack said
    ack_error: Any
    ack: str  # answered, not-in-time, disconnected (probes.sio.Ack)
    ack_ms: float
    events: list[str]


class SdkFlowDetail(SioAttemptDetail, total=False):
    steps: list[SdkStepJson]
    failed_step: str
    sdk_message: str | None
    ack_wait_s: float  # how long start-inscription's ack was waited for, when it never came


class ConnectRun(TypedDict):
    outcome: str
    ms: float | None
    backend: str | None


class ConnectStatsDetail(CommonDetail, total=False):
    transport: str
    attempts: int
    successes: int
    success_rate: float
    p50_ms: float | None
    p95_ms: float | None
    max_ms: float | None
    outcomes: dict[str, int]
    by_backend: dict[str, dict[str, int]]
    runs: list[ConnectRun]


DETAIL_SHAPES: Mapping[ProbeName, type[Mapping[str, Any]]] = {
    ProbeName.HTTP_UPGRADE: HttpUpgradeDetail,
    ProbeName.WEBSOCKET_PLAIN: WebsocketPlainDetail,
    ProbeName.ENGINEIO_HANDSHAKE: EngineioHandshakeDetail,
    ProbeName.ENGINEIO_UPGRADE: EngineioUpgradeDetail,
    ProbeName.SOCKETIO_CONNECT: SocketioConnectDetail,
    ProbeName.STICKY_SESSION: StickySessionDetail,
    ProbeName.DISCOVERY: DiscoveryDetail,
    ProbeName.SDK_FLOW: SdkFlowDetail,
    ProbeName.CONNECT_STATS: ConnectStatsDetail,
    ProbeName.CORS: CorsDetail,
}
"""The detail shape of each probe this package runs (the SDK replay's is the sdk module's)."""


def shape_problems(value: object, shape: Any, where: str = "detail") -> list[str]:
    """How ``value`` (JSON as read back) departs from ``shape`` (a TypedDict or a type built of
    list, dict, ``X | None``, str, int, float, bool, Any): keys it does not declare, values of the
    wrong type. Empty when it fits. For tests and readers of records written by other versions."""
    if shape is Any:
        return []
    if typing.is_typeddict(shape):
        if not isinstance(value, dict):
            return [f"{where}: expected an object, got {type(value).__name__}"]
        hints = typing.get_type_hints(shape)
        problems = [f"{where}.{key}: not declared" for key in value if key not in hints]
        missing = [key for key in shape.__required_keys__ if key not in value]
        problems += [f"{where}.{key}: missing" for key in missing]
        for key, item in value.items():
            if key in hints:
                problems += shape_problems(item, hints[key], f"{where}.{key}")
        return problems
    origin, args = typing.get_origin(shape), typing.get_args(shape)
    if origin in (types.UnionType, typing.Union):
        fits = [shape_problems(value, arg, where) for arg in args]
        return [] if any(not p for p in fits) else min(fits, key=len)
    if origin is list:
        if not isinstance(value, list):
            return [f"{where}: expected a list, got {type(value).__name__}"]
        return [p for i, item in enumerate(value) for p in shape_problems(item, args[0], f"{where}[{i}]")]
    if origin is dict:
        if not isinstance(value, dict):
            return [f"{where}: expected an object, got {type(value).__name__}"]
        return [p for k, item in value.items() for p in shape_problems(item, args[1], f"{where}.{k}")]
    if shape is type(None):
        return [] if value is None else [f"{where}: expected null, got {type(value).__name__}"]
    if shape is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    elif shape is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    else:
        ok = isinstance(value, shape)
    return [] if ok else [f"{where}: expected {shape.__name__}, got {type(value).__name__}"]
