"""The vocabulary: every name the parts of kiloscribe-lab share, written once.

Probe names, their variants where they form a closed set, the outcomes a probe can observe,
severities, finding ids, the built-in networks and the headers a backend names itself in.
Everything else (probes, rules, scenarios, reports, tests) refers to these members; a bare
string literal of a probe name or a finding id outside this module is a bug waiting to drift.

All are ``StrEnum``: a member *is* its string, so JSON written by an older or newer version
still compares equal, and ``ProbeName("socketio_connect")`` parses foreign records.
"""

from __future__ import annotations

import enum
from typing import TypeVar

__all__ = [
    "BACKEND_HEADERS",
    "BackendHeader",
    "Component",
    "ContractEvent",
    "CookieMode",
    "CorsCheck",
    "Credential",
    "FindingId",
    "FlowStep",
    "HttpVersion",
    "NetworkName",
    "Outcome",
    "OverallStatus",
    "PlainPath",
    "ProbeName",
    "SdkMode",
    "SdkStep",
    "Severity",
    "Tier",
    "Transport",
    "Verdict",
    "connect_variant",
    "parse_connect_variant",
    "parse_sdk_variant",
    "sdk_variant",
]


_E = TypeVar("_E", bound=enum.StrEnum)


class ProbeName(enum.StrEnum):
    """Every probe, as it appears in ``ProbeResult.probe``."""

    HTTP_UPGRADE = "http_upgrade"
    WEBSOCKET_PLAIN = "websocket_plain"
    ENGINEIO_HANDSHAKE = "engineio_handshake"
    ENGINEIO_UPGRADE = "engineio_upgrade"
    SOCKETIO_CONNECT = "socketio_connect"
    STICKY_SESSION = "sticky_session"
    DISCOVERY = "discovery"
    SDK_FLOW = "sdk_flow"
    CONNECT_STATS = "connect_stats"
    SDK_REPLAY = "sdk_replay"  # the published SDK in Node (kiloscribe_lab.sdk)
    CORS = "cors"  # only with --origin: what a browser page on that origin would be allowed


class Outcome(enum.StrEnum):
    """The closed vocabulary of what a probe observed (DESIGN.md: ProbeResult.outcome)."""

    OK = "ok"
    AUTH_REJECTED = "auth_rejected"
    REDIRECT = "redirect"
    HTTP_ERROR = "http_error"
    UPSTREAM_ERROR = "upstream_error"  # 502/503/504 from a proxy
    PROTOCOL_MISMATCH = "protocol_mismatch"
    SESSION_UNKNOWN = "session_unknown"
    BLOCKED = "blocked"
    TIMEOUT = "timeout"
    REFUSED = "refused"
    RESET = "reset"
    DNS_ERROR = "dns_error"
    TLS_ERROR = "tls_error"
    MALFORMED = "malformed"

    @property
    def ok(self) -> bool:
        return self is Outcome.OK


class Severity(enum.StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _SEVERITY_RANK[self]


_SEVERITY_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}


class Verdict(enum.StrEnum):
    """One word per target."""

    HEALTHY = "healthy"
    DEGRADED = "degraded"
    DOWN = "down"


class OverallStatus(enum.StrEnum):
    """One word for a whole investigation (``diagnosis.overall``, a report's summary)."""

    HEALTHY = "healthy"
    DEGRADED = "degraded"
    CRITICAL = "critical"
    DOWN = "down"
    INCOMPLETE = "incomplete"  # a report whose findings notebook did not finish


# --- variants ---------------------------------------------------------------------------


class Transport(enum.StrEnum):
    """Engine.IO transports, as socket.io-client names them."""

    WEBSOCKET = "websocket"
    POLLING = "polling"


class TransportOrder(enum.StrEnum):
    """The transports a real client tries, in order: through round robin websocket-first
    clients work and polling-first ones fail (FACTS.md §3.2), so ground truth names it."""

    WEBSOCKET_FIRST = "websocket-first"  # ['websocket', 'polling']: the SDK's order
    POLLING_FIRST = "polling-first"  # ['polling', 'websocket']: socket.io-client's default


class ClientKind(enum.StrEnum):
    """The real clients the tests point at a scenario, by the name of their package."""

    SDK = "sdk"  # the published Kiloscribe SDK in Node, WebSocket runtime (sdk-check)
    SOCKETIO_CLIENT = "socket.io-client"  # Node socket.io-client 4.8
    PYTHON_SOCKETIO = "python-socketio"


class Credential(enum.StrEnum):
    """Which key a Socket.IO connect sends: the configured one, a deliberately wrong one, none."""

    VALID = "valid"
    INVALID = "invalid"
    NONE = "none"


class HttpVersion(enum.StrEnum):
    """``http_upgrade``'s variants."""

    HTTP1 = "http1.1"
    H2 = "h2"


class PlainPath(enum.StrEnum):
    """``websocket_plain``'s variants: the URL as given (what wscat did), or the Engine.IO path."""

    AS_GIVEN = "as-given"
    SOCKETIO = "socket.io"


class CookieMode(enum.StrEnum):
    """``sticky_session``'s variants: a client that returns cookies (a browser) or drops them."""

    COOKIES = "cookies"
    NO_COOKIES = "no-cookies"


class CorsCheck(enum.StrEnum):
    """``cors``'s variants: the requests a browser page on another origin makes."""

    POLLING = "polling"  # the polling handshake, with Origin (a simple request: no preflight)
    PREFLIGHT = "preflight"  # OPTIONS, as for a client that adds headers (extraHeaders)
    WEBSOCKET = "websocket"  # the WebSocket handshake, with Origin (CORS does not apply; servers check)


class SdkMode(enum.StrEnum):
    """The Node runtime the SDK replay ran in: as the user has it, or with a WebSocket global."""

    PLAIN = "plain"
    WEBSOCKET = "websocket"


class SdkStep(enum.StrEnum):
    LOAD = "load"  # the SDK's import itself (only reported when it fails)
    CONNECT_VALID = "connect-valid"
    CONNECT_INVALID = "connect-invalid"
    DETECT = "detect"
    DISCOVER = "discover"
    START_INSCRIPTION = "start-inscription"


class FlowStep(enum.StrEnum):
    """``sdk_flow``'s steps, in the SDK's own words (its ``failed_step``)."""

    DETECT = "detectBestConnection"
    CONNECT = "connectWebSocket"
    START_INSCRIPTION = "start-inscription"
    PROGRESS = "inscription-progress"


class ContractEvent(enum.StrEnum):
    """The Socket.IO events of the Kiloscribe contract (kiloscribe-contract.md)."""

    START_INSCRIPTION = "start-inscription"  # client -> server, with an ack
    PROGRESS = "inscription-progress"
    COMPLETE = "inscription-complete"
    ERROR = "inscription-error"


def connect_variant(transport: Transport, credential: Credential) -> str:
    """``socketio_connect``'s variant: ``websocket:valid``."""
    return f"{transport}:{credential}"


def parse_connect_variant(variant: str) -> tuple[Transport | None, Credential | None]:
    """``websocket:valid`` -> (WEBSOCKET, VALID); a part it does not know is None."""
    transport, _, credential = variant.partition(":")
    return _member(Transport, transport), _member(Credential, credential)


def sdk_variant(mode: SdkMode, step: SdkStep) -> str:
    """``sdk_replay``'s variant: ``node-plain:connect-valid``."""
    return f"node-{mode}:{step}"


def parse_sdk_variant(variant: str) -> tuple[SdkMode | None, SdkStep | None]:
    runtime, _, step = variant.partition(":")
    return _member(SdkMode, runtime.removeprefix("node-")), _member(SdkStep, step)


def _member(kind: type[_E], value: str) -> _E | None:
    try:
        return kind(value)
    except ValueError:
        return None


# --- networks and backends ----------------------------------------------------------------


class NetworkName(enum.StrEnum):
    """The built-in networks: ``direct`` everywhere, the rest are the lab's (``lab up``)."""

    DIRECT = "direct"
    POLLING_ONLY = "polling-only"
    CORPORATE_PROXY = "corporate-proxy"
    MOBILE = "mobile"


class BackendHeader(enum.StrEnum):
    """Response headers in which a backend (or a balancer) names the node that answered."""

    LAB = "x-lab-backend"  # the lab's backends
    SERVED_BY = "x-served-by"
    BACKEND = "x-backend"
    UPSTREAM = "x-upstream"


BACKEND_HEADERS: tuple[BackendHeader, ...] = tuple(BackendHeader)


# --- components on the path (diagnosis.fingerprint) --------------------------------------


class Tier(enum.StrEnum):
    """Where on the path a component sits, as far as its fixes are concerned."""

    EDGE = "edge"  # a CDN in front of everything
    BALANCER = "balancer"  # a reverse proxy / load balancer
    SERVER = "server"  # the Engine.IO implementation itself


class Component(enum.StrEnum):
    """The software a response can be traced to; each belongs to one tier."""

    CLOUDFLARE = "Cloudflare"
    CADDY = "Caddy"
    NGINX = "nginx"
    HAPROXY = "HAProxy"
    ENGINEIO = "engine.io"  # Node: the socket.io package's server
    PYTHON_ENGINEIO = "python-engineio"  # python-socketio's server

    @property
    def tier(self) -> Tier:
        return _TIERS[self]


_TIERS = {
    Component.CLOUDFLARE: Tier.EDGE,
    Component.CADDY: Tier.BALANCER,
    Component.NGINX: Tier.BALANCER,
    Component.HAPROXY: Tier.BALANCER,
    Component.ENGINEIO: Tier.SERVER,
    Component.PYTHON_ENGINEIO: Tier.SERVER,
}


# --- findings -----------------------------------------------------------------------------


class FindingId(enum.StrEnum):
    """Every finding the diagnosis can raise; each has exactly one rule (diagnosis.registry)."""

    ALL_BACKENDS_DOWN = "all-backends-down"
    BACKEND_DOWN = "backend-down"
    BACKEND_TIMEOUT = "backend-timeout"
    TLS_PROBLEM = "tls-problem"
    DNS_PROBLEM = "dns-problem"
    CDN_CHALLENGE = "cdn-challenge"
    NOT_SOCKETIO = "not-socketio"
    ENGINEIO_VERSION_MISMATCH = "engineio-version-mismatch"
    AUTH_REJECTED = "auth-rejected"
    INSCRIPTION_NOT_ACKNOWLEDGED = "inscription-not-acknowledged"
    UPGRADE_HEADERS_DROPPED = "upgrade-headers-dropped"
    WEBSOCKET_BLOCKED = "websocket-blocked"
    POLLING_DISABLED = "polling-disabled"
    WEBSOCKET_DISABLED = "websocket-disabled"
    CORS_ORIGIN_REJECTED = "cors-origin-rejected"
    RATE_LIMITED = "rate-limited"
    NETWORK_TIMEOUTS = "network-timeouts"
    STICKY_SESSIONS_MISSING = "sticky-sessions-missing"
    STICKY_SESSIONS_COOKIE_ONLY = "sticky-sessions-cookie-only"
    DISCOVERY_PROBLEM = "discovery-problem"
    PLAIN_WEBSOCKET_PROTOCOL_MISMATCH = "plain-websocket-protocol-mismatch"
    ROOT_REDIRECT = "root-redirect"
    AUTH_PATH_HEALTHY = "auth-path-healthy"
    SDK_RUNTIME_MISSING_WEBSOCKET = "sdk-runtime-missing-websocket"
    SDK_FALLBACK_NOT_EFFECTIVE = "sdk-fallback-not-effective"
