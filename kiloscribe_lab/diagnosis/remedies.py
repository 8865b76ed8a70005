"""The fixes, in the words of the component that needs them: one table, finding x component. Pure.

A rule that hands its ``Draft`` a fingerprint of the path (``Draft.path``) gets, in its
recommendation, the fix of the component it believes is there, followed by that belief and its
evidence ("... (The balancer looks like nginx: Server: nginx/1.22.1, on 9 answers.)"). When no
component of the finding's tier left a mark, every component's words are given, each under its
name. The rule's own text (client-side advice, what to look at first) goes before or after it
(``Draft.fix_last``); no rule writes a component's directive itself.

``<ORIGIN>`` and ``<ALLOWED>`` in a text are filled from the rule's ``Draft.fill``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from kiloscribe_lab.diagnosis.fingerprint import Fingerprint
from kiloscribe_lab.names import Component, FindingId, Tier

__all__ = ["FIXES", "Fix", "remedy"]

_NOUN = {Tier.EDGE: "edge", Tier.BALANCER: "balancer", Tier.SERVER: "server"}


@dataclass(frozen=True, slots=True)
class Fix:
    """Where a finding's fix is made (tiers, in the order they are looked for) and how, per
    component; ``otherwise`` replaces the list of every component's words when none is known.
    ``instead``: another way, made on the server (a shorter heartbeat instead of a longer proxy
    timeout), in the words of the server the path shows, else ``instead_otherwise``."""

    tiers: tuple[Tier, ...]
    words: Mapping[Component, str]
    otherwise: str | None = None
    instead: Mapping[Component, str] | None = None
    instead_otherwise: str | None = None


_STICKY = Fix(
    (Tier.BALANCER,),
    {
        Component.CADDY: "Make the balancer sticky. In Caddy: `lb_policy ip_hash` in the reverse_proxy "
        "block — behind a CDN use `lb_policy client_ip_hash` with `trusted_proxies` set to the CDN's "
        "ranges, since ip_hash would hash the CDN's addresses. `lb_policy cookie` is not enough: the "
        "SDK's Node client drops cookies.",
        Component.NGINX: "Make the upstream sticky. In nginx: `hash $remote_addr consistent;` (or "
        "`ip_hash;`) in the `upstream` block — behind a CDN hash the client's address instead "
        "(`hash $http_cf_connecting_ip consistent;`, or `real_ip_header CF-Connecting-IP` with "
        "`set_real_ip_from` the CDN's ranges), since $remote_addr is the CDN's. A sticky cookie is not "
        "enough: the SDK's Node client drops cookies.",
        Component.HAPROXY: "Make the backend sticky. In HAProxy: `balance source` with `hash-type "
        "consistent` in the backend section — behind a CDN `balance hdr(CF-Connecting-IP)`, since the "
        "source is the CDN's. `cookie SERVERID insert` is not enough: the SDK's Node client drops cookies.",
    },
)

_COOKIE_ONLY = Fix(
    (Tier.BALANCER,),
    {
        Component.CADDY: "Use stickiness that needs nothing from the client: `lb_policy ip_hash` "
        "(`client_ip_hash` with `trusted_proxies` behind a CDN). `lb_policy cookie` works for browsers only.",
        Component.NGINX: "Use stickiness that needs nothing from the client: `hash $remote_addr "
        "consistent;` in the upstream (the client's address header behind a CDN) instead of a sticky "
        "cookie, which works for browsers only.",
        Component.HAPROXY: "Use stickiness that needs nothing from the client: `balance source` (`balance "
        "hdr(CF-Connecting-IP)` behind a CDN) instead of `cookie ... insert`, which works for browsers only.",
    },
)

_UPGRADE_HEADERS = Fix(
    (Tier.BALANCER,),
    {
        Component.NGINX: "In the `location` that proxies /socket.io/: `proxy_http_version 1.1; "
        "proxy_set_header Upgrade $http_upgrade; proxy_set_header Connection $connection_upgrade;`, with "
        "`map $http_upgrade $connection_upgrade { default upgrade; '' close; }` in `http {}`: nginx speaks "
        "HTTP/1.0 to upstreams and drops the hop-by-hop Upgrade and Connection headers unless told.",
        Component.HAPROXY: "HAProxy in `mode http` forwards WebSocket upgrades by itself: remove what "
        "strips them on this path (`http-request del-header Connection`/`Upgrade`, `option httpclose`) "
        "and give tunnels `timeout tunnel 1h`.",
        Component.CADDY: "Caddy's reverse_proxy forwards upgrades by itself: remove `header_up "
        "-Connection` / `-Upgrade` (or a fixed `header_up Connection`) from the site, and check any proxy "
        "in front of it.",
    },
    otherwise="Forward the upgrade to the backend. nginx: `proxy_http_version 1.1; proxy_set_header "
    "Upgrade $http_upgrade; proxy_set_header Connection $connection_upgrade;` with `map $http_upgrade "
    "$connection_upgrade { default upgrade; '' close; }`; Apache: `ProxyPass /socket.io/ "
    "http://BACKEND/socket.io/ upgrade=websocket` (mod_proxy_wstunnel); HAProxy and Caddy forward "
    "upgrades unless a rule strips Connection/Upgrade.",
)

_WEBSOCKET_BLOCKED = Fix(
    (Tier.EDGE, Tier.BALANCER),
    {
        Component.CLOUDFLARE: "Turn on WebSocket proxying at the edge (Cloudflare: Network → WebSockets on), "
        "and check no WAF rule blocks `Upgrade: websocket` on /socket.io/.",
        Component.NGINX: "Let nginx pass the upgrade: remove what refuses it (a `return 403` or `deny` "
        "matching $http_upgrade) and proxy it with `proxy_http_version 1.1` and the Upgrade/Connection "
        "headers.",
        Component.HAPROXY: "Let HAProxy pass the upgrade: remove the `http-request deny` that matches "
        "`hdr(upgrade)` / `hdr(connection)` on this path.",
        Component.CADDY: "Let Caddy pass the upgrade: remove the matcher that answers it (`@ws header "
        "Connection *Upgrade*` with a `respond 403`); reverse_proxy forwards WebSockets by itself.",
    },
    otherwise="Let the proxy pass Upgrade/Connection headers to the origin.",
)

_CDN_CHALLENGE = Fix(
    (Tier.EDGE,),
    {
        Component.CLOUDFLARE: "Exempt the Socket.IO path from the challenge: Security → WAF → Custom rules, "
        'a rule matching `starts_with(http.request.uri.path, "/socket.io/")` with action Skip (managed '
        "rules, Bot Fight Mode / Super Bot Fight Mode, Security Level); or lower the Security Level for "
        "this host.",
    },
    otherwise="Exempt /socket.io/ (and the API) from the edge's bot check or WAF challenge.",
)

_RATE_LIMITED = Fix(
    (Tier.EDGE, Tier.BALANCER),
    {
        Component.CLOUDFLARE: "Raise or scope the edge's rate limit (Security → WAF → Rate limiting rules) "
        "so /socket.io/ is exempt or allows a polling session's traffic.",
        Component.NGINX: "Raise nginx's `limit_req` for /socket.io/ (a larger `burst=` with `nodelay`, or "
        "a zone of its own), or exempt the path from it.",
        Component.HAPROXY: "Raise HAProxy's rate limit for /socket.io/ (the `http-request deny deny_status "
        "429 if { sc_http_req_rate(0) gt N }` threshold), or exempt the path.",
        Component.CADDY: "Raise the `rate_limit` zone (caddy-ratelimit) for /socket.io/, or exempt the path.",
    },
)

_POLLING_DISABLED = Fix(
    (Tier.SERVER,),
    {
        Component.ENGINEIO: "Enable polling on the server again: `new Server(httpServer, { transports: "
        "['polling', 'websocket'] })` (socket.io's default).",
        Component.PYTHON_ENGINEIO: "Enable polling on the server again: `socketio.AsyncServer(transports="
        "['polling', 'websocket'])` (the default when transports is not given).",
    },
)

_WEBSOCKET_DISABLED = Fix(
    (Tier.SERVER,),
    {
        Component.ENGINEIO: "Enable WebSocket on the server: `new Server(httpServer, { transports: "
        "['polling', 'websocket'] })` (socket.io's default).",
        Component.PYTHON_ENGINEIO: "Enable WebSocket on the server: `socketio.AsyncServer(transports="
        "['polling', 'websocket'])`, served by an ASGI server with WebSocket support (uvicorn with "
        "`websockets` or `wsproto` installed).",
    },
)

_CORS = Fix(
    (Tier.SERVER,),
    {
        Component.ENGINEIO: "Add the page's origin to the server's list: `new Server(httpServer, { cors: { "
        "origin: [<ALLOWED>'<ORIGIN>'] } })` (exact origins; with `credentials: true` a browser needs an "
        "exact origin, never '*'). socket.io never refuses an origin itself: only the missing "
        "Access-Control-Allow-Origin stops the browser.",
        Component.PYTHON_ENGINEIO: "Add the page's origin to the server's list: `socketio.AsyncServer("
        "cors_allowed_origins=[<ALLOWED>'<ORIGIN>'])`. python-socketio refuses other origins itself, on "
        "polling (400) and on WebSocket (403).",
    },
)

_NOT_ACKNOWLEDGED = Fix(
    (Tier.SERVER,),
    {
        Component.ENGINEIO: "Make the start-inscription handler call its ack on every path, errors "
        "included: `socket.on('start-inscription', async (req, ack) => { try { ack(await start(req)); } "
        "catch (e) { ack({ success: false, error: String(e) }); } })`.",
        Component.PYTHON_ENGINEIO: "Make the start-inscription handler return its answer on every path, "
        "errors included (`return {'success': False, 'error': str(e)}`): its return value is the ack, and "
        "a handler that awaits something that never finishes never acknowledges.",
    },
)

_BACKEND_DOWN = Fix(
    (Tier.BALANCER,),
    {
        Component.CADDY: "Caddy's error log says 'dial tcp ... connection refused' for it. Until it is back, "
        "stop routing to it: add health checks to the reverse_proxy (active: health_uri "
        "/socket.io/?EIO=4&transport=polling, health_interval 5s; passive: fail_duration 30s) so Caddy "
        "skips a dead upstream.",
        Component.NGINX: "nginx's error log says 'connect() failed (111: Connection refused) while "
        "connecting to upstream' for it. Until it is back, stop routing to it: `max_fails=1 "
        "fail_timeout=30s` on its `server` line (passive checks; active `health_check` is nginx Plus) so "
        "nginx skips a dead upstream.",
        Component.HAPROXY: "HAProxy logs the server going DOWN only if it checks it: `option httpchk GET "
        "/socket.io/?EIO=4&transport=polling` in the backend and `check` on each `server` line, so "
        "HAProxy skips a dead upstream.",
    },
)

_ALL_DOWN = Fix(
    (Tier.BALANCER,),
    {
        Component.CADDY: "Caddy's log says 'dial tcp ...: connection refused' for each. Add active health "
        "checks to the reverse_proxy (health_uri /socket.io/?EIO=4&transport=polling) so a recovering "
        "fleet is detected, and alert on 5xx at the balancer.",
        Component.NGINX: "nginx's error log says 'connect() failed (111: Connection refused) while "
        "connecting to upstream' for each. Alert on 502s at nginx; `max_fails`/`fail_timeout` on the "
        "`server` lines bring a recovering upstream back in.",
        Component.HAPROXY: "HAProxy answers 503 'No server is available' once its checks mark them DOWN: "
        "`option httpchk GET /socket.io/?EIO=4&transport=polling` and `check` on each server, and alert "
        "on the backend having no server up.",
    },
)

_TIMEOUT = Fix(
    (Tier.BALANCER,),
    {
        Component.CADDY: "In Caddy, bound the wait with `transport http { response_header_timeout 10s }` "
        "and passive health checks (fail_duration 30s) so the balancer stops sending clients to a "
        "stalled upstream.",
        Component.NGINX: "In nginx, `proxy_next_upstream error timeout` with `max_fails`/`fail_timeout` on "
        "the server lines stops sending clients to a stalled upstream; keep `proxy_read_timeout` above "
        "pingInterval + pingTimeout (45 s by default) or healthy WebSockets are cut.",
        Component.HAPROXY: "In HAProxy, `option httpchk` with `check` on each server takes a stalled "
        "upstream out; keep `timeout server` above pingInterval + pingTimeout (45 s by default) and "
        "`timeout tunnel 1h` for WebSockets.",
    },
)

_TLS = Fix(
    (Tier.BALANCER, Tier.EDGE),
    {
        Component.NGINX: "In nginx, `ssl_certificate` must name a file holding the leaf followed by the "
        "intermediate(s) (fullchain.pem, not cert.pem).",
        Component.HAPROXY: "In HAProxy, the PEM on `bind ... ssl crt` must hold the leaf, the "
        "intermediate(s) and the key.",
        Component.CADDY: "Caddy serves the chain it obtained; with your own files, the certificate file of "
        "`tls CERT KEY` must hold the leaf followed by the intermediate(s).",
    },
)

_IDLE_TIMEOUT = Fix(
    (Tier.BALANCER, Tier.EDGE),
    {
        Component.HAPROXY: "Raise HAProxy's idle timeouts above pingInterval + pingTimeout (<BUDGET>): "
        "`timeout tunnel 1h` for WebSockets (after the 101 only it applies) and `timeout server` (and "
        "`timeout client`) above <BUDGET> for the long-polls, in `defaults` or the backend/frontend.",
        Component.NGINX: "Raise nginx's `proxy_read_timeout` and `proxy_send_timeout` above pingInterval "
        "+ pingTimeout (<BUDGET>; nginx's default is 60 s) in the location that proxies /socket.io/: a "
        "long-poll waits up to pingInterval for its answer, and a WebSocket is silent as long between "
        "heartbeats.",
        Component.CADDY: "Remove (or raise above <BUDGET>) `read_timeout`/`write_timeout` in the "
        "reverse_proxy's `transport http` block, and any `stream_timeout`: Caddy's defaults never cut an "
        "idle WebSocket.",
        Component.AWS_ALB: "Raise the load balancer's idle timeout above pingInterval + pingTimeout "
        "(<BUDGET>): Attributes → Connection idle timeout (`idle_timeout.timeout_seconds`, 60 s by default).",
        Component.CLOUDFLARE: "Cloudflare closes a WebSocket silent for 100 s and a request waiting as long "
        "(524); keep the server's heartbeat well inside it.",
    },
    otherwise="Raise the idle timeout of whatever cuts it above pingInterval + pingTimeout (<BUDGET>): nginx "
    "`proxy_read_timeout`/`proxy_send_timeout`; HAProxy `timeout tunnel` (WebSocket) and `timeout server` "
    "(long-polls); an AWS ALB's idle timeout (60 s by default); Caddy's `transport http { read_timeout }`; "
    "Heroku's router cuts at 55 s of idle, which only a shorter heartbeat avoids.",
    instead={
        Component.ENGINEIO: "Or beat faster than the cut: `new Server(httpServer, { pingInterval: "
        "<SHORTER_MS> })` (ms; 25000 by default), below <IDLE>.",
        Component.PYTHON_ENGINEIO: "Or beat faster than the cut: `socketio.AsyncServer(ping_interval="
        "<SHORTER_S>)` (seconds, whole ones; 25 by default), below <IDLE>.",
    },
    instead_otherwise="Or beat faster than the cut: a pingInterval below <IDLE> (engine.io `pingInterval` in "
    "ms, python-socketio `ping_interval` in seconds).",
)

_HEARTBEAT_LATE = Fix(
    (Tier.SERVER,),
    {
        Component.ENGINEIO: "Find what blocks Node's event loop: a synchronous call (fs.*Sync, crypto, "
        "JSON of a large object) or CPU-heavy work in a handler; `node --cpu-prof`, or watch "
        "`perf_hooks.monitorEventLoopDelay()`; move that work to a worker thread or another process.",
        Component.PYTHON_ENGINEIO: "Find what blocks the asyncio loop: a blocking call in a handler "
        "(requests, time.sleep, file or CPU work); run with PYTHONASYNCIODEBUG=1 (it logs every callback "
        "slower than 100 ms) or `py-spy dump --pid`, and move the work to `asyncio.to_thread` or a worker.",
    },
)

_PAYLOAD = Fix(
    (Tier.BALANCER, Tier.EDGE, Tier.SERVER),
    {
        Component.NGINX: "Raise nginx's `client_max_body_size` (1m by default) above the largest "
        "inscription message (<NEEDED> bytes; e.g. `client_max_body_size 10m;`) where it proxies "
        "/socket.io/: it answers a larger polling POST 413 before the server sees it.",
        Component.HAPROXY: "Remove or raise the rule that refuses large bodies (`http-request deny "
        "deny_status 413 if { req.hdr_val(content-length) gt N }`) above <NEEDED> bytes.",
        Component.CADDY: "Raise `request_body { max_size }` above the largest inscription message "
        "(<NEEDED> bytes; e.g. `max_size 10MB`).",
        Component.CLOUDFLARE: "Cloudflare refuses request bodies above the plan's limit (100 MB on Free "
        "and Pro) with 413; a WebSocket message has no such limit.",
        Component.ENGINEIO: "Raise the server's limit above the largest inscription message (<NEEDED> "
        "bytes): `new Server(httpServer, { maxHttpBufferSize: <ROUND_JS> })` (1e6 by default); above it "
        "engine.io closes a WebSocket with 1009 and answers a POST 413.",
        Component.PYTHON_ENGINEIO: "Raise the server's limit above the largest inscription message "
        "(<NEEDED> bytes): `socketio.AsyncServer(max_http_buffer_size=<ROUND>)` (1_000_000 by default); "
        "above it python-engineio closes a WebSocket (1000) and answers a POST 400.",
    },
)

FIXES: Mapping[FindingId, Fix] = MappingProxyType(
    {
        FindingId.STICKY_SESSIONS_MISSING: _STICKY,
        FindingId.STICKY_SESSIONS_COOKIE_ONLY: _COOKIE_ONLY,
        FindingId.UPGRADE_HEADERS_DROPPED: _UPGRADE_HEADERS,
        FindingId.WEBSOCKET_BLOCKED: _WEBSOCKET_BLOCKED,
        FindingId.CDN_CHALLENGE: _CDN_CHALLENGE,
        FindingId.RATE_LIMITED: _RATE_LIMITED,
        FindingId.POLLING_DISABLED: _POLLING_DISABLED,
        FindingId.WEBSOCKET_DISABLED: _WEBSOCKET_DISABLED,
        FindingId.CORS_ORIGIN_REJECTED: _CORS,
        FindingId.INSCRIPTION_NOT_ACKNOWLEDGED: _NOT_ACKNOWLEDGED,
        FindingId.BACKEND_DOWN: _BACKEND_DOWN,
        FindingId.ALL_BACKENDS_DOWN: _ALL_DOWN,
        FindingId.BACKEND_TIMEOUT: _TIMEOUT,
        FindingId.TLS_PROBLEM: _TLS,
        FindingId.IDLE_TIMEOUT: _IDLE_TIMEOUT,
        FindingId.HEARTBEAT_LATE: _HEARTBEAT_LATE,
        FindingId.PAYLOAD_TOO_LARGE: _PAYLOAD,
    }
)


def _fill(text: str, fill: Mapping[str, str]) -> str:
    for key, value in fill.items():
        text = text.replace(f"<{key}>", value)
    return text


def remedy(finding: FindingId, path: Fingerprint, fill: Mapping[str, str] | None = None) -> str | None:
    """The fix for ``finding`` in the words of the component believed to be on ``path``, with
    the belief's evidence; every component's words when none is recognised; None when the
    finding has no entry in the table."""
    fix = FIXES.get(finding)
    if fix is None:
        return None
    values = fill or {}
    return " ".join(part for part in (_main(fix, path, values), _instead(fix, path, values)) if part)


def _main(fix: Fix, path: Fingerprint, values: Mapping[str, str]) -> str:
    for tier in fix.tiers:
        belief = next(
            (b for b in path.beliefs if b.component.tier is tier and b.component in fix.words), None
        )
        if belief is not None:
            words = _fill(fix.words[belief.component], values)
            return f"{words} (The {_NOUN[tier]} looks like {belief.component}: {belief.why()}.)"
    if fix.otherwise is not None:
        return _fill(fix.otherwise, values)
    nouns = " or ".join(_NOUN[t] for t in fix.tiers)
    each = " ".join(f"{c}: {_fill(text, values)}" for c, text in fix.words.items())
    return f"The {nouns} was not recognised from its answers. {each}"


def _instead(fix: Fix, path: Fingerprint, values: Mapping[str, str]) -> str | None:
    if fix.instead is None:
        return None
    server = next((b for b in path.beliefs if b.component in fix.instead), None)
    if server is not None:
        return _fill(fix.instead[server.component], values)
    return None if fix.instead_otherwise is None else _fill(fix.instead_otherwise, values)
