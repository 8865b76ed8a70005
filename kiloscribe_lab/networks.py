"""Network profiles: how a probe's connections travel.

A profile applies to every probe alike: the raw streams of the HTTP/WebSocket probes and
the aiohttp session python-socketio uses. It can restrict the transports a client may use,
send everything through an HTTP CONNECT proxy, add headers, trust a CA bundle, and pin a
host to an address (curl's ``--resolve``).

A profile that names no proxy takes the proxy of the process that runs the probes, as curl
does (``EnvProxies``): ``https_proxy``/``HTTPS_PROXY``, ``http_proxy`` (lower case only, as
curl: an upper-case ``HTTP_PROXY`` can be set by a CGI request's ``Proxy:`` header),
``all_proxy``/``ALL_PROXY`` and ``no_proxy``/``NO_PROXY``, the lower-case spelling first. So
a probe sees what the user's own clients see on that machine, a Dask worker's vantage too.
"""

from __future__ import annotations

import base64
import dataclasses
import ipaddress
import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kiloscribe_lab.endpoints import shown
from kiloscribe_lab.errors import ConfigError
from kiloscribe_lab.names import NetworkName, Transport
from kiloscribe_lab.untrusted import one_line

TRANSPORTS: tuple[Transport, ...] = (Transport.WEBSOCKET, Transport.POLLING)  # socket.io-client's order
DEFAULT_PROXY_PORT = 1080  # curl's, for a proxy variable that gives no port


@dataclass(frozen=True, slots=True)
class Proxy:
    """The HTTP CONNECT proxy one connection goes through, and where that was decided."""

    url: str = field(repr=False)  # as configured: it may carry user:password, never recorded as is
    source: str  # "network corporate-proxy", or the variable it came from ("HTTPS_PROXY")
    host: str
    port: int
    username: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)

    @property
    def shown(self) -> str:
        """The proxy without its credentials: what a result records."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def authorization(self) -> str | None:
        """``Proxy-Authorization`` for credentials in the URL (what curl and aiohttp send)."""
        if self.username is None:
            return None
        pair = f"{self.username}:{self.password or ''}".encode()
        return "Basic " + base64.b64encode(pair).decode("ascii")

    def secrets(self) -> tuple[str, ...]:
        """What a result must never show: the password, and the header it becomes."""
        auth = self.authorization()
        return tuple(v for v in (self.password, auth, auth and auth.split(" ", 1)[1]) if v)

    def to_json(self) -> dict[str, str]:
        return {"url": self.shown, "source": self.source}


def proxy_from_url(url: str, source: str, *, default_port: int = 80) -> Proxy:
    """An ``http://[user:password@]host[:port]`` proxy; anything else is a ConfigError that
    names ``source`` and never echoes credentials."""
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ConfigError(f"{source}: not a proxy URL ({exc})") from None
    if parts.scheme != "http" or not parts.hostname:
        shown = f"{parts.scheme}://{parts.hostname or ''}" if parts.scheme else "its value"
        raise ConfigError(
            f"{source}: the probes go through http:// CONNECT proxies only, not {shown} "
            "(an https:// or SOCKS proxy cannot be used)"
        )
    user = None if parts.username is None else urllib.parse.unquote(parts.username)
    password = None if parts.password is None else urllib.parse.unquote(parts.password)
    return Proxy(url, source, parts.hostname, port or default_port, user, password)


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def no_proxy_matches(host: str, no_proxy: str) -> bool:
    """curl's ``NO_PROXY`` rule: a comma-separated list; ``*`` alone matches every host; a name
    matches itself and its subdomains (a leading dot changes nothing); an IP address matches
    an equal address or a CIDR range (``10.0.0.0/8``); ports are not compared."""
    if not host or not no_proxy.strip():
        return False
    if no_proxy.strip() == "*":
        return True
    name = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    address = _ip(name)
    if address is None:
        name = name.rstrip(".").lower()
    for raw in no_proxy.split(","):
        token = raw.strip()
        if not token:
            continue
        if address is not None:
            network, _, bits = token.partition("/")
            network = network.strip("[]")
            try:
                net = ipaddress.ip_network(f"{network}/{bits or address.max_prefixlen}", strict=False)
            except ValueError:
                continue
            if address.version == net.version and address in net:
                return True
            continue
        token = token.rstrip(".").lstrip(".").lower()
        if token and (name == token or name.endswith("." + token)):
            return True
    return False


@dataclass(frozen=True, slots=True)
class EnvProxies:
    """The proxy variables of one process, read as curl reads them. Pure: built from a mapping."""

    https: Proxy | None = None
    http: Proxy | None = None
    all: Proxy | None = None
    no_proxy: str = ""

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> EnvProxies:
        """Raises ConfigError for a proxy the probes cannot use (https://, SOCKS), naming the variable."""

        def first(*names: str) -> Proxy | None:
            for name in names:
                value = environ.get(name, "").strip()
                if value:
                    url = value if "://" in value else f"http://{value}"  # curl: no scheme is http
                    return proxy_from_url(url, name, default_port=DEFAULT_PROXY_PORT)
            return None

        no_proxy = next((v for n in ("no_proxy", "NO_PROXY") if (v := environ.get(n, "").strip())), "")
        return cls(
            https=first("https_proxy", "HTTPS_PROXY"),
            http=first("http_proxy"),
            all=first("all_proxy", "ALL_PROXY"),
            no_proxy=no_proxy,
        )

    def for_host(self, host: str, *, tls: bool) -> Proxy | None:
        """The proxy a connection to ``host`` takes (``tls``: an https/wss URL), or None."""
        chosen = (self.https if tls else self.http) or self.all
        if chosen is None or no_proxy_matches(host, self.no_proxy):
            return None
        return chosen


NO_ENV_PROXIES = EnvProxies()


@dataclass(frozen=True, slots=True)
class NetworkProfile:
    name: str = NetworkName.DIRECT
    transports: tuple[Transport, ...] = TRANSPORTS
    proxy: str | None = None  # http://host:port of an HTTP CONNECT proxy
    headers: Mapping[str, str] = field(default_factory=dict)
    ca_bundle: Path | None = None
    resolve: Mapping[str, str] = field(default_factory=dict)  # "host:port" -> address
    # The proxy variables of the process that runs the probes, used when ``proxy`` is None
    # (``in_environment``); never read from a config file.
    environment: EnvProxies = field(default=NO_ENV_PROXIES, compare=False)

    def in_environment(self, environ: Mapping[str, str]) -> NetworkProfile:
        """This profile as a process with ``environ`` runs it: its own proxy if it names one,
        else the environment's (curl's rules). Raises ConfigError for an unusable variable."""
        if self.proxy is not None:
            return self
        return dataclasses.replace(self, environment=EnvProxies.from_environ(environ))

    def proxy_for(self, host: str, *, tls: bool) -> Proxy | None:
        """The proxy a connection to ``host`` goes through: the profile's, else the environment's."""
        if self.proxy is not None:
            return proxy_from_url(self.proxy, f"network {self.name}")
        return self.environment.for_host(host, tls=tls)

    def pinned_address(self, host: str, port: int) -> str | None:
        return self.resolve.get(f"{host}:{port}")

    def allows(self, transport: Transport) -> bool:
        return transport in self.transports

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "transports": [str(t) for t in self.transports],
            "proxy": self.proxy,
            "headers": sorted(self.headers),  # names only: values may carry credentials
            "ca_bundle": None if self.ca_bundle is None else str(self.ca_bundle),
            "resolve": dict(self.resolve),
        }


DIRECT = NetworkProfile()


def parse_proxy(url: str) -> tuple[str, int]:
    """``http://host:port`` of a CONNECT proxy -> (host, port). Errors quote the URL only as
    ``endpoints.shown`` does (a proxy URL may carry a password)."""
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port or 80
    except ValueError as exc:
        raise ConfigError(f"proxy {shown(url)}: not an http://host:port URL") from exc
    if parts.scheme != "http" or not parts.hostname:
        raise ConfigError(f"proxy must be an http://host:port URL, got {shown(url)}")
    if parts.username is not None or parts.password is not None:
        raise ConfigError(f"proxy {shown(url)}: proxy credentials (user:password@) are not supported")
    return parts.hostname, port


# RFC 9110 §5.6.2: a header name is a token.
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
MAX_HEADER_VALUE = 8192
# Headers the probes write themselves (framing, the upgrade): a profile must not change them.
_RESERVED_HEADERS = frozenset(
    {"host", "connection", "upgrade", "content-length", "transfer-encoding", "te", "trailer", "keep-alive"}
    | {"sec-websocket-key", "sec-websocket-version", "sec-websocket-extensions", "sec-websocket-accept"}
)


def check_headers(name: str, headers: Mapping[Any, Any]) -> dict[str, str]:
    """A profile's extra headers, each a valid HTTP field: a token name, a value without CR, LF,
    NUL or another control character. A value may be a credential: it is never quoted."""
    checked: dict[str, str] = {}
    for key, value in headers.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise ConfigError(f"network {name!r}: headers must be a table of strings")
        if not _TOKEN.fullmatch(key):
            raise ConfigError(f"network {name!r}: header name {one_line(key, 60)!r} is not an HTTP token")
        if key.lower() in _RESERVED_HEADERS:
            raise ConfigError(f"network {name!r}: header {key} is the probes' own; a profile cannot set it")
        if any((ord(c) < 0x20 and c != "\t") or ord(c) == 0x7F for c in value):
            raise ConfigError(
                f"network {name!r}: header {key} holds a line break or a control character "
                "(the value is not shown)"
            )
        if len(value) > MAX_HEADER_VALUE or value != value.strip(" \t"):
            raise ConfigError(
                f"network {name!r}: header {key} is longer than {MAX_HEADER_VALUE} characters or "
                "has white space around it (the value is not shown)"
            )
        checked[key] = value
    return checked


def profile_from_mapping(name: str, data: Mapping[str, Any]) -> NetworkProfile:
    """Build a profile from a TOML table; every error names the profile and the key."""
    keys = {"transports", "proxy", "headers", "ca_bundle", "resolve"}
    unknown = set(data) - keys
    if unknown:
        raise ConfigError(f"network {name!r}: unknown keys {sorted(unknown)}")
    raw_transports = data.get("transports", TRANSPORTS)
    listed = tuple(raw_transports) if isinstance(raw_transports, list | tuple) else ()
    if not listed or any(t not in TRANSPORTS for t in listed):
        known = ", ".join(TRANSPORTS)
        raise ConfigError(f"network {name!r}: transports must be a non-empty list of {known}")
    transports = tuple(Transport(t) for t in listed)
    proxy = data.get("proxy")
    if proxy is not None:
        if not isinstance(proxy, str):
            raise ConfigError(f"network {name!r}: proxy must be a string")
        try:
            parse_proxy(proxy)
        except ConfigError as exc:
            raise ConfigError(f"network {name!r}: {exc}") from exc
    raw_headers = data.get("headers", {})
    if not isinstance(raw_headers, Mapping):
        raise ConfigError(f"network {name!r}: headers must be a table of strings")
    headers = check_headers(name, raw_headers)
    resolve = data.get("resolve", {})
    if not isinstance(resolve, Mapping):
        raise ConfigError(f"network {name!r}: resolve must be a table of 'host:port' = 'address'")
    for key, address in resolve.items():
        host, sep, port = str(key).rpartition(":")
        if not sep or not host or not port.isdigit():
            raise ConfigError(f"network {name!r}: resolve key {key!r} is not host:port")
        try:
            ipaddress.ip_address(str(address))
        except ValueError as exc:
            raise ConfigError(f"network {name!r}: resolve {key!r}: {exc}") from exc
    ca = data.get("ca_bundle")
    if ca is not None and not isinstance(ca, str):
        raise ConfigError(f"network {name!r}: ca_bundle must be a path string")
    return NetworkProfile(
        name=name,
        transports=transports,
        proxy=proxy,
        headers=dict(headers),
        ca_bundle=None if ca is None else Path(ca),
        resolve={str(k): str(v) for k, v in resolve.items()},
    )
