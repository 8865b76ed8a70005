"""The lab's scenarios as data: one entry per scenario says what the lab runs (its balancer,
each backend's behaviour, the edge's) and what a correct diagnosis of it finds (its ground
truth, on each lab network where it is known).

Pure. The lab turns an entry into config, one function per artefact: the Caddyfile
(``caddyfile.render_caddyfile``), the balancer's ``nginx.conf`` or ``haproxy.cfg`` when it is
not Caddy (``nginx_conf``, ``haproxy_cfg``) and the backends' ``backends.json``
(``backend_config.render_backends_json``); nothing branches on a scenario's name. Adding a
scenario is adding an entry to ``SCENARIOS``, then ``make fixtures`` (its recorded evidence)
and ``make scenario-table`` (the README's table, which a unit test compares with this data).
"""

from __future__ import annotations

import argparse
import dataclasses
import enum
import re
import sys
import types
import typing
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kiloscribe_lab.errors import ConfigError, UsageError
from kiloscribe_lab.names import ClientKind, FindingId, NetworkName, Severity, Transport, TransportOrder

BACKENDS: tuple[str, ...] = ("inscribe-1", "inscribe-2", "inscribe-3")


# --- the balancer ---------------------------------------------------------------------------


class BalancerKind(enum.StrEnum):
    """The software of the load-balancer tier: each has its renderer (``caddyfile``,
    ``nginx_conf``, ``haproxy_cfg``) and says below what it cannot be configured to do."""

    CADDY = "caddy"
    NGINX = "nginx"
    HAPROXY = "haproxy"


IMPLEMENTED_BALANCERS = frozenset(BalancerKind)


class LbPolicy(enum.StrEnum):
    """How the balancer picks a backend; the values are Caddy's ``lb_policy`` names. In nginx:
    round_robin is its default, ip_hash ``hash $remote_addr consistent``, first the later
    servers marked ``backup``; in HAProxy: ``balance roundrobin|source|first``, cookie
    ``cookie ... insert``."""

    ROUND_ROBIN = "round_robin"
    IP_HASH = "ip_hash"
    COOKIE = "cookie"
    FIRST = "first"


@dataclass(frozen=True, slots=True)
class Balancer:
    """The load-balancer tier. Each setting is read by the renderers of the kinds that can
    express it; a kind that cannot is refused here, when the entry is written (or when
    ``lab up --balancer`` swaps the kind), never silently ignored.

    ``forwards_upgrade``: False is nginx without ``proxy_http_version 1.1`` and the
    Upgrade/Connection headers: the WebSocket request reaches the backend as a plain GET.
    ``idle_timeout_s``: the balancer cuts a connection (a WebSocket tunnel, a long-poll waiting
    for its answer) idle this long: nginx ``proxy_read_timeout``/``proxy_send_timeout``, HAProxy
    ``timeout tunnel``/``timeout server``, Caddy's transport ``read_timeout``/``write_timeout``.
    None: each software's setting of a deployment that works with Socket.IO's 25 s heartbeat
    (nginx's default 60 s; HAProxy tunnel 1 h, server 60 s; Caddy none).
    ``max_body_bytes``: request bodies above are answered 413 by the balancer itself (nginx
    ``client_max_body_size``; HAProxy a ``deny_status 413`` on Content-Length; Caddy
    ``request_body max_size``). None: the software's default (nginx 1 MiB; the others none).
    """

    kind: BalancerKind = BalancerKind.CADDY
    policy: LbPolicy = LbPolicy.IP_HASH
    forwards_upgrade: bool = True
    idle_timeout_s: float | None = None
    max_body_bytes: int | None = None

    def __post_init__(self) -> None:
        if self.idle_timeout_s is not None and not 0 < self.idle_timeout_s <= 86_400:
            raise ConfigError(
                f"balancer idle_timeout_s must be in (0, 86400] seconds, got {self.idle_timeout_s}"
            )
        if self.max_body_bytes is not None and self.max_body_bytes < 1:
            raise ConfigError(f"balancer max_body_bytes must be at least 1, got {self.max_body_bytes}")
        refused = _cannot(self)
        if refused:
            raise ConfigError(f"the {self.kind} balancer cannot do that: " + "; ".join(refused))

    def to_json(self) -> dict[str, object]:
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}


def _cannot(balancer: Balancer) -> list[str]:
    """What ``balancer`` asks that its kind cannot be configured to do, each with why."""
    kind, refused = balancer.kind, []
    if kind is BalancerKind.NGINX and balancer.policy is LbPolicy.COOKIE:
        refused.append(
            "lb_policy cookie: nginx open source has no cookie stickiness (`sticky cookie` is NGINX "
            "Plus only); use ip_hash (`hash $remote_addr consistent`)"
        )
    if kind is not BalancerKind.NGINX and not balancer.forwards_upgrade:
        refused.append(
            f"forwards_upgrade=False: {kind} forwards WebSocket upgrades by itself, whatever its "
            "config says; dropping them is nginx's omission of `proxy_http_version 1.1` and the "
            "Upgrade/Connection headers"
        )
    return refused


# --- TLS ------------------------------------------------------------------------------------

# The lab's HTTPS sites: the edge, the balancer, the API host and one public site per backend.
SITES: tuple[str, ...] = ("edge", "lb", "api", *BACKENDS)


@dataclass(frozen=True, slots=True)
class Tls:
    """How the sites present their certificates (the lab's own CA: root -> intermediate -> a
    leaf per site, clients trusting the root).

    ``incomplete_chain``: the sites that serve their leaf without the intermediate, as a server
    given ``cert.pem`` instead of ``fullchain.pem`` does: Python, curl and Node fail with
    "unable to get local issuer certificate" / UNABLE_TO_VERIFY_LEAF_SIGNATURE."""

    incomplete_chain: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        unknown = sorted(set(self.incomplete_chain) - set(SITES))
        if unknown or len(set(self.incomplete_chain)) != len(self.incomplete_chain):
            raise ConfigError(
                f"tls incomplete_chain must name each of {', '.join(SITES)} at most once: "
                f"{list(self.incomplete_chain)}"
            )

    def to_json(self) -> dict[str, object]:
        return {"incomplete_chain": list(self.incomplete_chain)}


# --- the backends ---------------------------------------------------------------------------


class BackendKind(enum.StrEnum):
    """The Socket.IO server the backends run: both serve the same mock contract and read the
    same ``backends.json``; they differ where engine.io and python-engineio do on the wire."""

    PYTHON = "python"  # python-socketio under uvicorn (lab/backend.py)
    NODE = "node"  # the reference implementation, Node socket.io 4.8 (lab/node/server.mjs)


DEFAULT_BACKEND_KIND = BackendKind.PYTHON


class BackendState(enum.StrEnum):
    UP = "up"
    DOWN = "down"  # not started, its port held and refusing: the balancer answers 502 for it
    STALLED = "stalled"  # accepts connections and never answers (its health check excepted)


# engine.io's defaults (socket.io 4.8), which python-engineio shares: a behaviour that leaves
# them alone is a server as its users get it, but for its heartbeat.
SOCKETIO_PATH = "/socket.io"
PING_INTERVAL_MS = 25_000
# The lab's backends beat every 2 s, not every 25 s: `--deep` holds a session until one
# heartbeat has been seen (pingInterval + a margin), so a lab investigation (the report's, the
# tests') holds 2.5 s instead of 27. Nothing else on the wire changes, and pingTimeout keeps its
# default, so clients stay as patient as they are with a real server.
LAB_PING_INTERVAL_MS = 2_000
PING_TIMEOUT_MS = 20_000
MAX_HTTP_BUFFER_SIZE = 1_000_000
_PATH_RE = re.compile(r"^/[A-Za-z0-9._~!$&'()*+,;=:@/-]*[A-Za-z0-9._~!$&'()*+,;=:@-]$")
_ORIGIN_RE = re.compile(r"^https?://[A-Za-z0-9.-]+(?::\d{1,5})?$")


@dataclass(frozen=True, slots=True)
class BackendBehaviour:
    """What one backend does. Each field reaches the backend through ``backends.json``
    (``to_json``/``from_json`` walk the fields), so a new behaviour is one field here plus
    its implementation in both backends (``backend.py``, ``node/server.mjs``). Field types:
    bool, int, float, str, a StrEnum, a tuple of str or StrEnum, or one of those or None.
    Invalid values are a ConfigError when the entry is built, not when a backend starts."""

    state: BackendState = BackendState.UP
    root_redirect: bool = False  # "/" answers 308, as the seed's wscat saw
    auth_broken: bool = False  # every key is refused, the valid one included
    # The Engine.IO transports the server accepts (engine.io's `transports`); websocket only:
    # polling requests get 400 ("Transport unknown" / "Invalid transport").
    transports: tuple[Transport, ...] = (Transport.POLLING, Transport.WEBSOCKET)
    acks_inscription: bool = True  # False: start-inscription is accepted and never acknowledged
    # The origins CORS allows; None: any Origin is echoed with credentials (socket.io's
    # `origin: true`, python-socketio's "*"). One origin is socket.io's string form (always sent
    # as Access-Control-Allow-Origin), several its list (sent only to a member); python-socketio
    # refuses any other Origin with 400.
    cors_origins: tuple[str, ...] | None = None
    path: str = SOCKETIO_PATH  # where Socket.IO is served, without the trailing slash
    # Whole seconds only: python-engineio takes seconds, and both backends must agree.
    ping_interval_ms: int = LAB_PING_INTERVAL_MS
    ping_timeout_ms: int = PING_TIMEOUT_MS
    # The largest WebSocket message / polling POST body the server takes (inclusive); larger
    # ones close the session (engine.io: 1009 / 413; python-engineio: 1000 / 400).
    max_http_buffer_size: int = MAX_HTTP_BUFFER_SIZE
    # >0: once per ping interval of free time, the event loop is blocked this long, so every
    # timer (the heartbeat's too) fires late: the slow-heartbeat scenario.
    stall_event_loop_ms: int = 0

    def __post_init__(self) -> None:
        problems = []
        if not self.transports or len(set(self.transports)) != len(self.transports):
            problems.append(f"transports must name each transport at most once, got {list(self.transports)}")
        if self.cors_origins is not None and (
            not self.cors_origins or not all(_ORIGIN_RE.match(o) for o in self.cors_origins)
        ):
            problems.append(
                f"cors_origins must be origins such as https://app.example, got {self.cors_origins}"
            )
        if not _PATH_RE.match(self.path):
            problems.append(
                f"path must look like /socket.io (no trailing slash, no query), got {self.path!r}"
            )
        for name in ("ping_interval_ms", "ping_timeout_ms"):
            value = getattr(self, name)
            if isinstance(value, int) and (value <= 0 or value % 1000):
                problems.append(f"{name} must be a positive whole number of seconds in ms, got {value}")
        if isinstance(self.max_http_buffer_size, int) and self.max_http_buffer_size <= 0:
            problems.append(f"max_http_buffer_size must be positive, got {self.max_http_buffer_size}")
        if isinstance(self.stall_event_loop_ms, int) and self.stall_event_loop_ms < 0:
            problems.append(f"stall_event_loop_ms must be 0 or more, got {self.stall_event_loop_ms}")
        if problems:
            raise ConfigError("backend behaviour: " + "; ".join(problems))

    def to_json(self) -> dict[str, object]:
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> BackendBehaviour:
        """The behaviour ``to_json`` wrote; a missing field takes its default."""
        hints = typing.get_type_hints(cls)
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ConfigError(f"backend behaviour: unknown field(s) {', '.join(unknown)}")
        values: dict[str, Any] = {n: _decode(n, hints[n], data[n]) for n in names if n in data}
        return cls(**values)


DOWN = BackendBehaviour(state=BackendState.DOWN)
# A message of a 512 KiB file's start-inscription is ~700 KB; these limits are far below it.
SMALL_MESSAGE_LIMIT = 65_536
STALLED = BackendBehaviour(state=BackendState.STALLED)


@dataclass(frozen=True, slots=True)
class BackendSpec:
    """Every backend's behaviour: ``default``, except the backends named in ``overrides``.
    ``kind``: the server implementation the scenario needs; None lets ``lab up --backend``
    choose (python by default)."""

    default: BackendBehaviour = BackendBehaviour()
    overrides: tuple[tuple[str, BackendBehaviour], ...] = ()
    kind: BackendKind | None = None

    def __post_init__(self) -> None:
        names = [name for name, _ in self.overrides]
        unknown = sorted(set(names) - set(BACKENDS))
        if unknown or len(names) != len(set(names)):
            raise ConfigError(
                f"backend overrides must name each of {', '.join(BACKENDS)} at most once: {names}"
            )

    def behaviour(self, name: str) -> BackendBehaviour:
        return dict(self.overrides).get(name, self.default)

    def by_name(self) -> dict[str, BackendBehaviour]:
        return {name: self.behaviour(name) for name in BACKENDS}

    def named(self, state: BackendState) -> frozenset[str]:
        return frozenset(name for name, b in self.by_name().items() if b.state is state)


def backend_kind(requested: BackendKind | str | None, spec: BackendSpec) -> BackendKind:
    """What runs the backends: ``lab up --backend`` when given, else the scenario's, else python."""
    if requested is not None:
        try:
            return BackendKind(requested)
        except ValueError:
            known = ", ".join(BackendKind)
            raise UsageError(f"unknown backend {requested!r}; known backends: {known}") from None
    return spec.kind or DEFAULT_BACKEND_KIND


# --- the edge -------------------------------------------------------------------------------

# Caddy keeps no request counter: a rate-limited share is drawn per request from the request's
# random UUID (its first hex digit), so shares come in sixteenths.
RATE_LIMIT_STEPS = 16


@dataclass(frozen=True, slots=True)
class Edge:
    """The CDN stand-in in front of the balancer (always Caddy).

    ``blocks_websocket``: WebSocket upgrades answered 403, as a zone with WebSockets off.
    ``challenge``: Socket.IO requests (WebSocket and polling) answered 403 with a challenge page
    and ``cf-mitigated: challenge``, as Cloudflare's managed challenge; other requests pass.
    ``rate_limited``: the share of polling requests answered 429 with ``Retry-After``, drawn at
    random per request (a multiple of 1/16; 1 is every one); WebSocket requests pass.
    """

    blocks_websocket: bool = False
    challenge: bool = False
    rate_limited: float = 0.0

    def __post_init__(self) -> None:
        steps = self.rate_limited * RATE_LIMIT_STEPS
        if not 0 <= self.rate_limited <= 1 or steps != int(steps):
            raise ConfigError(
                f"edge rate_limited must be a multiple of 1/{RATE_LIMIT_STEPS} in [0, 1], "
                f"got {self.rate_limited}"
            )

    def to_json(self) -> dict[str, object]:
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}


# --- ground truth ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NetworkTruth:
    """What one lab network adds to a scenario's ground truth, when that network's results
    are diagnosed together with ``direct``'s (as the report's endpoint × network matrix does).

    ``adds``: finding ids beyond the scenario's own, with ``severity``.
    ``probe_timeout_s``: the probes' deadline this holds for; None means one the network's
    round trips fit in (the lab's mobile link needs ~4 round trips, 0.6 s, per connect).
    """

    network: NetworkName
    adds: tuple[FindingId, ...] = ()
    severity: Severity = Severity.WARNING
    probe_timeout_s: float | None = None
    why: str = ""

    def to_json(self) -> dict[str, object]:
        return {
            "network": str(self.network),
            "adds": [str(f) for f in self.adds],
            "severity": str(self.severity),
            "probe_timeout_s": self.probe_timeout_s,
            "why": self.why,
        }


ORDERS: dict[TransportOrder, tuple[Transport, ...]] = {
    TransportOrder.WEBSOCKET_FIRST: (Transport.WEBSOCKET, Transport.POLLING),
    TransportOrder.POLLING_FIRST: (Transport.POLLING, Transport.WEBSOCKET),
}


@dataclass(frozen=True, slots=True)
class ClientTruth:
    """How real clients with the valid key fare against a scenario's edge, direct: whether they
    connect, whether ``start-inscription`` is acknowledged (None: not established), and, held
    for ``hold_s``, whether the session ends (``disconnect``: socket.io-client's reason, e.g.
    ``transport close``, or a tuple of the reasons a race between them allows; the other clients
    word it their own way, so for them any end counts).
    Per transport order: what works for one order may fail for the other (round robin). The
    SDK tries websocket first, always: a polling-first truth does not apply to it."""

    order: TransportOrder
    connects: bool
    acked: bool | None = None
    clients: tuple[ClientKind, ...] = tuple(ClientKind)
    disconnect: str | tuple[str, ...] | None = None
    hold_s: float = 0.0
    why: str = ""
    # Once connected, the client emits an event of this many bytes (no application handles it):
    # whether the session survives a message of an inscription's size.
    emit_size: int | None = None
    # The client sends this Origin, as a page there would (the SDK sends none: a truth with
    # an origin does not apply to it).
    origin: str | None = None
    # The backend kinds this holds on: where engine.io and python-engineio differ (python-
    # socketio refuses a foreign Origin itself, engine.io never does), each has its own truth.
    backends: tuple[BackendKind, ...] = tuple(BackendKind)
    site: str = "edge"  # the lab site the clients are pointed at (one of SITES but "api")

    def __post_init__(self) -> None:
        if not self.connects and (self.acked is not None or self.disconnect is not None):
            raise ConfigError(
                "client truth: a client that does not connect is neither acked nor disconnected"
            )
        if self.disconnect is not None and self.hold_s <= 0:
            raise ConfigError("client truth: a disconnect is seen only in a hold: give hold_s")
        if self.origin is not None and not _ORIGIN_RE.match(self.origin):
            raise ConfigError(f"client truth: origin must look like https://app.example, got {self.origin!r}")
        if not self.backends or self.site not in SITES or self.site == "api":
            raise ConfigError(
                f"client truth: backends must name a kind and site one of the lab's Socket.IO sites "
                f"({', '.join(s for s in SITES if s != 'api')}), got {list(self.backends)}, {self.site!r}"
            )

    @property
    def transports(self) -> tuple[Transport, ...]:
        return ORDERS[self.order]

    def applies_to(self, client: ClientKind, backend: BackendKind | None = None) -> bool:
        """Whether this truth is about ``client`` (on ``backend``; None: on any kind)."""
        if client is ClientKind.SDK and (self.order is not TransportOrder.WEBSOCKET_FIRST or self.origin):
            return False
        if client is ClientKind.SDK and (self.hold_s > 0 or self.emit_size is not None):
            return False  # the SDK replay neither holds a session nor sends a message of our size
        return client in self.clients and (backend is None or backend in self.backends)

    def disagreements(
        self, client: ClientKind, *, connected: bool, acked: bool | None, disconnect: str | None
    ) -> list[str]:
        """What ``client`` did that this truth does not say; empty when they agree."""
        wrong = []
        if connected is not self.connects:
            wrong.append(f"{client} {self.order}: {'connected' if connected else 'did not connect'}")
        if self.acked is not None and connected and acked is not self.acked:
            wrong.append(f"{client} {self.order}: start-inscription {'acked' if acked else 'not acked'}")
        if self.hold_s > 0 and connected:
            expected = self.disconnect
            if expected is None and disconnect is not None:
                wrong.append(f"{client} {self.order}: disconnected ({disconnect}) within {self.hold_s:g} s")
            elif expected is not None and disconnect is None:
                wrong.append(f"{client} {self.order}: still connected after {self.hold_s:g} s")
            elif expected is not None and client is ClientKind.SOCKETIO_CLIENT:
                allowed = (expected,) if isinstance(expected, str) else expected
                if disconnect not in allowed:
                    said = " or ".join(map(repr, allowed))
                    wrong.append(f"{client} {self.order}: disconnect {disconnect!r}, not {said}")
        return wrong

    def to_json(self) -> dict[str, object]:
        return {
            "order": str(self.order),
            "connects": self.connects,
            "acked": self.acked,
            "clients": [str(c) for c in self.clients],
            "disconnect": _plain(self.disconnect),
            "hold_s": self.hold_s,
            "why": self.why,
            "emit_size": self.emit_size,
            "origin": self.origin,
            "backends": [str(b) for b in self.backends],
            "site": self.site,
        }


@dataclass(frozen=True, slots=True)
class GroundTruth:
    """What a correct diagnosis of a scenario finds: ``findings`` (direct), and what each lab
    network in ``networks`` adds to them (empty: not established for this scenario); and how
    real clients fare (``clients``; empty: not established)."""

    findings: tuple[FindingId, ...]
    networks: tuple[NetworkTruth, ...] = ()
    clients: tuple[ClientTruth, ...] = ()
    # The findings are the slow probes' (`probe --deep`): an investigation of the scenario runs
    # them, with a deadline a hold of the lab's heartbeat fits in.
    deep: bool = False
    # The probes' --origin these findings hold for (a browser page there); None: probed
    # without one, as the SDK connects.
    origin: str | None = None

    def __post_init__(self) -> None:
        if self.origin is not None and not _ORIGIN_RE.match(self.origin):
            raise ConfigError(f"ground truth: origin must look like https://app.example, got {self.origin!r}")
        if len(set(self.findings)) != len(self.findings):
            raise ConfigError(f"ground truth names a finding twice: {list(map(str, self.findings))}")
        for truth in self.networks:
            if set(truth.adds) & set(self.findings):
                raise ConfigError(f"network {truth.network} adds a finding the scenario already has")


# --- the scenario ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    description: str
    truth: GroundTruth
    balancer: Balancer = Balancer()
    backends: BackendSpec = BackendSpec()
    edge: Edge = Edge()
    tls: Tls = Tls()
    # The other balancer kinds its ground truth holds on (``lab up --balancer``), beside its own.
    also_on: tuple[BalancerKind, ...] = ()
    # The backend kinds its ground truth has been established on (``lab up --backend``);
    # empty: python. A scenario whose backends need one kind (``BackendSpec.kind``) has that one.
    backend_kinds: tuple[BackendKind, ...] = ()

    def __post_init__(self) -> None:
        for name, kinds in (("also_on", self.also_on), ("backend_kinds", self.backend_kinds)):
            if len(set(kinds)) != len(kinds):
                raise ConfigError(f"scenario {self.name}: {name} names a kind twice: {list(map(str, kinds))}")
        for kind in self.also_on:
            try:  # a kind that cannot run this balancer is refused here, not at `lab up`
                dataclasses.replace(self.balancer, kind=kind)
            except ConfigError as exc:
                raise ConfigError(f"scenario {self.name} on {kind}: {exc}") from None

    @property
    def balancers(self) -> tuple[BalancerKind, ...]:
        """The balancer kinds the ground truth holds on: its own first."""
        own = self.balancer.kind
        return (own, *(k for k in self.also_on if k is not own))

    @property
    def servers(self) -> tuple[BackendKind, ...]:
        """The backend kinds the ground truth holds on."""
        if self.backends.kind is not None:
            return (self.backends.kind,)
        return self.backend_kinds or (DEFAULT_BACKEND_KIND,)

    @property
    def expected_findings(self) -> tuple[FindingId, ...]:
        return self.truth.findings

    def matrix(self) -> list[tuple[BalancerKind, BackendKind]]:
        """Every (balancer, backend) the ground truth is asserted on: the live tests' table."""
        return [(b, k) for b in self.balancers for k in self.servers]

    @property
    def down(self) -> frozenset[str]:
        return self.backends.named(BackendState.DOWN)

    @property
    def stalled(self) -> frozenset[str]:
        return self.backends.named(BackendState.STALLED)

    def to_json(self) -> dict[str, object]:
        """``lab scenarios --json``. ``lb_policy``, ``down``, ``stalled``, ``root_redirect``,
        ``auth_broken`` and ``edge_blocks_websocket`` are kept from the flat form (the two
        backend flags: true when any running backend has them); ``balancer``, ``backends``,
        ``edge``, ``tls`` and ``networks`` are the entry itself."""
        running = [b for b in self.backends.by_name().values() if b.state is not BackendState.DOWN]
        return {
            "name": self.name,
            "description": self.description,
            "balancer": self.balancer.to_json(),
            "lb_policy": str(self.balancer.policy),
            "backends": {name: b.to_json() for name, b in self.backends.by_name().items()},
            "down": sorted(self.down),
            "stalled": sorted(self.stalled),
            "root_redirect": any(b.root_redirect for b in running),
            "auth_broken": any(b.auth_broken for b in running),
            "edge": self.edge.to_json(),
            "edge_blocks_websocket": self.edge.blocks_websocket,
            "tls": self.tls.to_json(),
            "expected_findings": [str(f) for f in self.expected_findings],
            "networks": [t.to_json() for t in self.truth.networks],
            "clients": [t.to_json() for t in self.truth.clients],
            "deep": self.truth.deep,
            "origin": self.truth.origin,
            "balancers": [str(k) for k in self.balancers],
            "backend_kinds": [str(k) for k in self.servers],
        }


# What every lab network adds, where it has been established (incident and healthy).
_ON_EVERY_LAB_NETWORK = (
    NetworkTruth(NetworkName.DIRECT, why="the baseline every other network is compared with"),
    NetworkTruth(NetworkName.POLLING_ONLY, why="polling works wherever it works direct: nothing new"),
    NetworkTruth(
        NetworkName.CORPORATE_PROXY,
        (FindingId.WEBSOCKET_BLOCKED,),
        why="the proxy answers 403 to every WebSocket upgrade; polling through it works",
    ),
    NetworkTruth(NetworkName.MOBILE, why="slower, but every deadline is met: nothing new"),
    NetworkTruth(
        NetworkName.MOBILE,
        (FindingId.NETWORK_TIMEOUTS,),
        probe_timeout_s=1.0,
        why="a deadline shorter than the round trips a Socket.IO connect needs on the slow link",
    ),
)
_HEALTHY_TRUTH = (FindingId.PLAIN_WEBSOCKET_PROTOCOL_MISMATCH, FindingId.AUTH_PATH_HEALTHY)
# Sticky and proxied right: every client connects and is acknowledged, whatever it tries first.
_EVERY_CLIENT_WORKS = tuple(
    ClientTruth(order, connects=True, acked=True, why="nothing is wrong") for order in TransportOrder
)

_BOTH_BACKENDS = (BackendKind.PYTHON, BackendKind.NODE)
# Round robin without stickiness: a WebSocket-only session is one request and needs none; a
# polling session's next request lands on another backend (FACTS.md §3.2).
_ROUND_ROBIN_CLIENTS = (
    ClientTruth(
        TransportOrder.WEBSOCKET_FIRST,
        connects=True,
        acked=True,
        why="a WebSocket session is one request: nothing to keep on one backend",
    ),
    ClientTruth(
        TransportOrder.POLLING_FIRST,
        connects=False,
        why="the CONNECT after the handshake reaches another backend: 400 'Session ID unknown'",
    ),
)
# cors-restricted: the origin the servers allow, and the one the probes come from.
APP_ORIGIN = "https://app.kiloscribe.test"
FOREIGN_ORIGIN = "https://evil.example"

SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario(
            name="healthy",
            description="All backends up, sticky sessions by client IP (ip_hash), WebSocket proxied.",
            balancer=Balancer(policy=LbPolicy.IP_HASH),
            truth=GroundTruth(_HEALTHY_TRUTH, networks=_ON_EVERY_LAB_NETWORK, clients=_EVERY_CLIENT_WORKS),
        ),
        Scenario(
            name="cookie-sticky",
            description="As healthy, but stickiness comes from the balancer's cookie (lb_policy cookie).",
            balancer=Balancer(policy=LbPolicy.COOKIE),
            truth=GroundTruth((FindingId.STICKY_SESSIONS_COOKIE_ONLY, *_HEALTHY_TRUTH)),
        ),
        Scenario(
            name="incident",
            description="The seed's state: inscribe-2 down (502), round robin, / answers 308.",
            balancer=Balancer(policy=LbPolicy.ROUND_ROBIN),
            also_on=(BalancerKind.NGINX, BalancerKind.HAPROXY),
            backends=BackendSpec(BackendBehaviour(root_redirect=True), overrides=(("inscribe-2", DOWN),)),
            truth=GroundTruth(
                (
                    FindingId.BACKEND_DOWN,
                    FindingId.STICKY_SESSIONS_MISSING,
                    FindingId.PLAIN_WEBSOCKET_PROTOCOL_MISMATCH,
                    FindingId.ROOT_REDIRECT,
                    FindingId.AUTH_PATH_HEALTHY,
                ),
                networks=_ON_EVERY_LAB_NETWORK,
            ),
        ),
        Scenario(
            name="all-down",
            description="Every backend down: the balancer and every direct site answer 502.",
            balancer=Balancer(policy=LbPolicy.ROUND_ROBIN),
            also_on=(BalancerKind.NGINX, BalancerKind.HAPROXY),
            backends=BackendSpec(DOWN),
            truth=GroundTruth((FindingId.ALL_BACKENDS_DOWN,)),
        ),
        Scenario(
            name="edge-blocks-websocket",
            description="The CDN edge refuses WebSocket upgrades; polling still works.",
            balancer=Balancer(policy=LbPolicy.IP_HASH),
            edge=Edge(blocks_websocket=True),
            truth=GroundTruth((FindingId.WEBSOCKET_BLOCKED,)),
        ),
        Scenario(
            name="slow-backend",
            description="inscribe-3 accepts connections and then stalls past any probe deadline.",
            # Not ip_hash: which upstream a client IP hashes to depends on the lab's random
            # ports, and the balancer would stall entirely in some labs and not in others.
            balancer=Balancer(policy=LbPolicy.FIRST),
            backends=BackendSpec(overrides=(("inscribe-3", STALLED),)),
            truth=GroundTruth((FindingId.BACKEND_TIMEOUT,)),
        ),
        Scenario(
            name="auth-broken",
            description="The servers refuse every key, the valid one included.",
            balancer=Balancer(policy=LbPolicy.IP_HASH),
            backends=BackendSpec(BackendBehaviour(auth_broken=True)),
            truth=GroundTruth((FindingId.AUTH_REJECTED,)),
        ),
        # --- issue 11: the balancers and servers users run, and the faults they hit -------------
        Scenario(
            name="nginx-no-upgrade",
            description="nginx without `proxy_http_version 1.1` and the Upgrade/Connection headers; sticky.",
            balancer=Balancer(BalancerKind.NGINX, LbPolicy.IP_HASH, forwards_upgrade=False),
            backend_kinds=_BOTH_BACKENDS,
            truth=GroundTruth(
                (FindingId.UPGRADE_HEADERS_DROPPED,),
                clients=(
                    ClientTruth(
                        TransportOrder.WEBSOCKET_FIRST,
                        connects=False,
                        why="the upgrade reaches the server as a plain GET (400); socket.io-client 4.8 does "
                        "not fall back (tryAllTransports is false)",
                    ),
                    ClientTruth(
                        TransportOrder.POLLING_FIRST,
                        connects=True,
                        acked=True,
                        why="polling works; the upgrade probe fails and the session stays on polling",
                    ),
                ),
            ),
        ),
        Scenario(
            name="nginx-round-robin",
            description="nginx round robin over the three backends, upgrade headers right: no stickiness.",
            balancer=Balancer(BalancerKind.NGINX, LbPolicy.ROUND_ROBIN),
            backend_kinds=_BOTH_BACKENDS,
            truth=GroundTruth((FindingId.STICKY_SESSIONS_MISSING,), clients=_ROUND_ROBIN_CLIENTS),
        ),
        Scenario(
            name="nginx-naive",
            description="nginx as first written: round robin and no upgrade headers, both faults at once.",
            balancer=Balancer(BalancerKind.NGINX, LbPolicy.ROUND_ROBIN, forwards_upgrade=False),
            backend_kinds=_BOTH_BACKENDS,
            truth=GroundTruth(
                (FindingId.UPGRADE_HEADERS_DROPPED, FindingId.STICKY_SESSIONS_MISSING),
                clients=tuple(
                    ClientTruth(
                        order,
                        connects=False,
                        why="WebSocket is a plain GET at the server (400) and polling loses its session "
                        "on the next backend (400 'Session ID unknown')",
                    )
                    for order in TransportOrder
                ),
            ),
        ),
        Scenario(
            name="haproxy-healthy",
            description="HAProxy with `balance source`, tunnel timeouts above the heartbeat, health checks.",
            balancer=Balancer(BalancerKind.HAPROXY, LbPolicy.IP_HASH),
            backend_kinds=_BOTH_BACKENDS,
            truth=GroundTruth(_HEALTHY_TRUTH, clients=_EVERY_CLIENT_WORKS),
        ),
        Scenario(
            name="websocket-only",
            description="The servers accept WebSocket only (`transports: ['websocket']`); polling is "
            "refused.",
            backends=BackendSpec(BackendBehaviour(transports=(Transport.WEBSOCKET,))),
            also_on=(BalancerKind.NGINX, BalancerKind.HAPROXY),
            backend_kinds=_BOTH_BACKENDS,
            truth=GroundTruth(
                (FindingId.POLLING_DISABLED,),
                clients=(
                    ClientTruth(
                        TransportOrder.WEBSOCKET_FIRST,
                        connects=True,
                        acked=True,
                        why="WebSocket is what the server serves",
                    ),
                    ClientTruth(
                        TransportOrder.POLLING_FIRST,
                        connects=False,
                        why="the polling handshake is refused (400 'Transport unknown' / 'Invalid "
                        "transport'); without tryAllTransports nothing else is tried",
                    ),
                ),
            ),
        ),
        Scenario(
            name="inscription-stalls",
            description="Connect works; `start-inscription` is accepted and never acknowledged.",
            backends=BackendSpec(BackendBehaviour(acks_inscription=False)),
            backend_kinds=_BOTH_BACKENDS,
            truth=GroundTruth(
                (FindingId.INSCRIPTION_NOT_ACKNOWLEDGED,),
                clients=tuple(
                    ClientTruth(
                        order,
                        connects=True,
                        acked=False,
                        why="the connect works; the application never answers start-inscription",
                    )
                    for order in TransportOrder
                ),
            ),
        ),
        Scenario(
            name="cors-restricted",
            description=f"The servers allow only the origin {APP_ORIGIN} (CORS); probed as a page elsewhere.",
            backends=BackendSpec(BackendBehaviour(cors_origins=(APP_ORIGIN,))),
            backend_kinds=_BOTH_BACKENDS,
            truth=GroundTruth(
                (FindingId.CORS_ORIGIN_REJECTED,),
                origin=FOREIGN_ORIGIN,
                clients=(
                    ClientTruth(
                        TransportOrder.POLLING_FIRST,
                        connects=True,
                        acked=True,
                        why="no Origin sent: not a browser, so CORS does not apply",
                    ),
                    ClientTruth(
                        TransportOrder.WEBSOCKET_FIRST,
                        connects=True,
                        acked=True,
                        clients=(ClientKind.SDK, ClientKind.SOCKETIO_CLIENT),
                        why="Node's WebSocket clients send no Origin: CORS does not apply",
                    ),
                    ClientTruth(
                        TransportOrder.WEBSOCKET_FIRST,
                        connects=True,
                        acked=True,
                        clients=(ClientKind.PYTHON_SOCKETIO,),
                        backends=(BackendKind.NODE,),
                        why="engine.io never refuses an origin",
                    ),
                    ClientTruth(
                        TransportOrder.WEBSOCKET_FIRST,
                        connects=False,
                        clients=(ClientKind.PYTHON_SOCKETIO,),
                        backends=(BackendKind.PYTHON,),
                        why="python-socketio's WebSocket (websocket-client) sends the server's own URL as "
                        "its Origin, which the allowed list does not hold: 403",
                    ),
                    *(
                        ClientTruth(
                            order,
                            connects=False,
                            origin=FOREIGN_ORIGIN,
                            backends=(BackendKind.PYTHON,),
                            why="python-socketio refuses an origin it does not allow itself: 400 on "
                            "polling, 403 on WebSocket",
                        )
                        for order in TransportOrder
                    ),
                    *(
                        ClientTruth(
                            order,
                            connects=True,
                            acked=True,
                            origin=FOREIGN_ORIGIN,
                            backends=(BackendKind.NODE,),
                            why="engine.io never refuses an origin: only a browser, reading "
                            "Access-Control-Allow-Origin, would stop",
                        )
                        for order in TransportOrder
                    ),
                ),
            ),
        ),
        Scenario(
            name="wrong-path",
            description="Socket.IO is served at /ws/, not /socket.io/, where every client looks for it.",
            backends=BackendSpec(BackendBehaviour(path="/ws")),
            backend_kinds=_BOTH_BACKENDS,
            truth=GroundTruth(
                (FindingId.NOT_SOCKETIO,),
                clients=tuple(
                    ClientTruth(order, connects=False, why="nothing speaks Engine.IO at /socket.io/")
                    for order in TransportOrder
                ),
            ),
        ),
        Scenario(
            name="tls-incomplete-chain",
            description="The balancer serves its leaf certificate without the intermediate (cert.pem, "
            "not fullchain.pem).",
            balancer=Balancer(BalancerKind.NGINX, LbPolicy.IP_HASH),
            also_on=(BalancerKind.HAPROXY, BalancerKind.CADDY),
            tls=Tls(incomplete_chain=("lb",)),
            truth=GroundTruth(
                (FindingId.TLS_PROBLEM,),
                clients=tuple(
                    ClientTruth(
                        order,
                        connects=False,
                        site="lb",
                        why="Node and Python do not fetch a missing intermediate: 'unable to verify the "
                        "first certificate' / 'unable to get local issuer certificate'",
                    )
                    for order in TransportOrder
                ),
            ),
        ),
        Scenario(
            name="edge-challenge",
            description="The CDN edge answers Socket.IO requests (polling and WebSocket) with a 403 "
            "challenge page (`cf-mitigated: challenge`).",
            edge=Edge(challenge=True),
            truth=GroundTruth(
                (FindingId.CDN_CHALLENGE,),
                clients=tuple(
                    ClientTruth(order, connects=False, why="no Socket.IO client can solve a challenge page")
                    for order in TransportOrder
                ),
            ),
        ),
        Scenario(
            name="edge-rate-limited",
            description="The CDN edge answers half of the polling requests 429 with `Retry-After`.",
            edge=Edge(rate_limited=0.5),
            truth=GroundTruth(
                (FindingId.RATE_LIMITED,),
                # Polling-first clients connect or not by the luck of the draw (each request is
                # limited at random): no truth for them.
                clients=(
                    ClientTruth(
                        TransportOrder.WEBSOCKET_FIRST,
                        connects=True,
                        acked=True,
                        why="a WebSocket session is one request, which the limit does not count",
                    ),
                ),
            ),
        ),
        # --- issue 12: the slow faults, which only --deep's held sessions and messages show -----
        Scenario(
            name="proxy-idle-timeout",
            description="HAProxy cuts connections idle for 2 s (timeout tunnel/server 2s); the backends "
            "beat every 4 s, so every idle session is cut before its first heartbeat.",
            balancer=Balancer(kind=BalancerKind.HAPROXY, policy=LbPolicy.IP_HASH, idle_timeout_s=2.0),
            backends=BackendSpec(BackendBehaviour(ping_interval_ms=4_000)),
            truth=GroundTruth(
                (FindingId.IDLE_TIMEOUT,),
                deep=True,
                clients=tuple(
                    ClientTruth(
                        order,
                        connects=True,
                        disconnect="transport close",
                        hold_s=3.0,
                        why="the WebSocket (upgraded at once, through a sticky balancer) is silent for "
                        "2 s before the 4 s heartbeat: HAProxy closes it without a CLOSE frame",
                    )
                    for order in TransportOrder
                ),
            ),
        ),
        Scenario(
            name="small-message-limit",
            description=f"The servers take messages of at most {SMALL_MESSAGE_LIMIT} bytes "
            "(maxHttpBufferSize): a 512 KiB file's start-inscription cannot pass.",
            balancer=Balancer(policy=LbPolicy.IP_HASH),
            backends=BackendSpec(BackendBehaviour(max_http_buffer_size=SMALL_MESSAGE_LIMIT)),
            truth=GroundTruth(
                (FindingId.PAYLOAD_TOO_LARGE,),
                deep=True,
                clients=(
                    ClientTruth(
                        TransportOrder.WEBSOCKET_FIRST,
                        connects=True,
                        disconnect="transport close",
                        hold_s=1.0,
                        emit_size=100_000,
                        why="a 100 KB message on the WebSocket: the server closes it (engine.io 1009, "
                        "python-engineio 1000)",
                    ),
                    ClientTruth(
                        TransportOrder.POLLING_FIRST,
                        connects=True,
                        disconnect=("transport error", "transport close"),
                        hold_s=1.0,
                        emit_size=100_000,
                        why="the 100 KB emit right after connect goes out as a polling POST while the "
                        "upgrade is under way (the server refuses it: 'transport error'), or on the "
                        "WebSocket once the upgrade won the race (closed: 'transport close')",
                    ),
                ),
            ),
        ),
        Scenario(
            name="body-limit-at-balancer",
            description=f"nginx refuses request bodies above {SMALL_MESSAGE_LIMIT} bytes "
            "(client_max_body_size 64k): polling POSTs of an inscription's size get its 413; WebSocket "
            "messages pass.",
            balancer=Balancer(
                kind=BalancerKind.NGINX, policy=LbPolicy.IP_HASH, max_body_bytes=SMALL_MESSAGE_LIMIT
            ),
            truth=GroundTruth(
                (FindingId.PAYLOAD_TOO_LARGE,),
                deep=True,
                clients=(
                    ClientTruth(
                        TransportOrder.WEBSOCKET_FIRST,
                        connects=True,
                        hold_s=1.0,
                        emit_size=100_000,
                        why="client_max_body_size limits request bodies, not WebSocket frames",
                    ),
                ),
            ),
        ),
        Scenario(
            name="slow-heartbeat",
            description="inscribe-3's event loop is blocked 2 s after every 1 s of work: its PINGs "
            "(pingInterval 1 s) come 1-2 s late, and so does everything else it answers.",
            # First: the edge and the balancer reach inscribe-1 only; inscribe-3 is seen directly.
            balancer=Balancer(policy=LbPolicy.FIRST),
            backends=BackendSpec(
                overrides=(
                    ("inscribe-3", BackendBehaviour(ping_interval_ms=1_000, stall_event_loop_ms=2_000)),
                )
            ),
            truth=GroundTruth((FindingId.HEARTBEAT_LATE,), deep=True),
        ),
    )
}

DEFAULT_SCENARIO = "incident"


def get_scenario(name: str) -> Scenario:
    try:
        return SCENARIOS[name]
    except KeyError:
        known = ", ".join(SCENARIOS)
        raise UsageError(f"unknown scenario {name!r}; known scenarios: {known}") from None


def on_balancer(scenario: Scenario, kind: BalancerKind | None) -> Scenario:
    """``scenario`` with its balancer tier run by ``kind`` (``lab up --balancer``), every other
    setting kept; the scenario itself when ``kind`` is None. ConfigError, naming the scenario,
    when that kind cannot do what the scenario's balancer does."""
    if kind is None or kind is scenario.balancer.kind:
        return scenario
    try:
        balancer = dataclasses.replace(scenario.balancer, kind=kind)
    except ConfigError as exc:
        raise ConfigError(f"scenario {scenario.name} on {kind}: {exc}") from None
    return dataclasses.replace(scenario, balancer=balancer)


def network_ground_truth() -> dict[str, tuple[NetworkTruth, ...]]:
    """Per scenario whose per-network truth is established: what each lab network adds."""
    return {s.name: s.truth.networks for s in SCENARIOS.values() if s.truth.networks}


# --- the README's table ---------------------------------------------------------------------

TABLE_BEGIN = "<!-- scenario table: generated from kiloscribe_lab/lab/scenarios.py (make scenario-table) -->"
TABLE_END = "<!-- end of scenario table -->"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _diagnosis_cell(scenario: Scenario) -> str:
    text = ", ".join(f"`{f}`" for f in scenario.expected_findings)
    if scenario.truth.origin is not None:
        text = f"probed with `--origin {scenario.truth.origin}`: {text}"
    added = []
    for truth in scenario.truth.networks:
        if truth.adds:
            deadline = f" with a {truth.probe_timeout_s:g} s deadline" if truth.probe_timeout_s else ""
            ids = ", ".join(f"`{f}`" for f in truth.adds)
            added.append(f"on `{truth.network}`{deadline} + {ids} ({truth.severity})")
    return text + ("; " + "; ".join(added) if added else "")


def markdown_table(scenarios: Iterable[Scenario] | None = None) -> str:
    """The README's scenario table, from the entries."""
    rows = [
        "| scenario | balancer | what it sets up | a correct diagnosis | checked on |",
        "|---|---|---|---|---|",
    ]
    for s in SCENARIOS.values() if scenarios is None else scenarios:
        default = " (default)" if s.name == DEFAULT_SCENARIO else ""
        balancer = f"{s.balancer.kind}, `{s.balancer.policy}`"
        checked = f"{', '.join(map(str, s.balancers))} × {', '.join(map(str, s.servers))}"
        cells = (f"`{s.name}`{default}", balancer, _cell(s.description), _diagnosis_cell(s), checked)
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows) + "\n"


def replace_table(text: str, table: str) -> str:
    """``text`` (the README) with the lines between the table's markers replaced by ``table``."""
    begin, end = text.find(TABLE_BEGIN), text.find(TABLE_END)
    if begin < 0 or end < begin:
        raise UsageError("the scenario table's markers are missing (see scenarios.TABLE_BEGIN)")
    head = text[: begin + len(TABLE_BEGIN)]
    return f"{head}\n{table}{text[end:]}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kiloscribe_lab.lab.scenarios")
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--markdown", action="store_true", help="print the README's scenario table")
    group.add_argument("--readme", type=Path, metavar="FILE", help="rewrite the table in FILE")
    args = parser.parse_args(argv)
    if args.markdown:
        sys.stdout.write(markdown_table())
        return 0
    path: Path = args.readme
    path.write_text(replace_table(path.read_text(encoding="utf-8"), markdown_table()), encoding="utf-8")
    return 0


# --- JSON for the behaviour's fields --------------------------------------------------------


def _plain(value: object) -> object:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


def _decode(name: str, hint: Any, value: object) -> object:
    """``value`` read from JSON as the field's type ``hint``; ConfigError naming the field."""
    args = typing.get_args(hint)
    if typing.get_origin(hint) in {typing.Union, types.UnionType}:  # X | None
        if value is None and type(None) in args:
            return None
        (inner,) = (a for a in args if a is not type(None))
        return _decode(name, inner, value)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        try:
            return hint(value)
        except ValueError:
            raise ConfigError(
                f"backend behaviour {name}: {value!r} is not one of {[m.value for m in hint]}"
            ) from None
    if typing.get_origin(hint) is tuple and isinstance(value, list):
        return tuple(_decode(name, args[0], v) for v in value)
    ok = {
        bool: isinstance(value, bool),
        int: isinstance(value, int) and not isinstance(value, bool),
        float: isinstance(value, int | float) and not isinstance(value, bool),
        str: isinstance(value, str),
    }.get(hint, False)
    if not ok:
        raise ConfigError(
            f"backend behaviour {name}: expected {getattr(hint, '__name__', hint)}, got {value!r}"
        )
    return float(value) if hint is float else value  # type: ignore[arg-type]


if __name__ == "__main__":
    sys.exit(main())
