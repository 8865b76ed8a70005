"""Network profiles: how a probe's connections travel.

A profile applies to every probe alike: the raw streams of the HTTP/WebSocket probes and
the aiohttp session python-socketio uses. It can restrict the transports a client may use,
send everything through an HTTP CONNECT proxy, add headers, trust a CA bundle, and pin a
host to an address (curl's ``--resolve``).
"""

from __future__ import annotations

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


@dataclass(frozen=True, slots=True)
class NetworkProfile:
    name: str = NetworkName.DIRECT
    transports: tuple[Transport, ...] = TRANSPORTS
    proxy: str | None = None  # http://host:port of an HTTP CONNECT proxy
    headers: Mapping[str, str] = field(default_factory=dict)
    ca_bundle: Path | None = None
    resolve: Mapping[str, str] = field(default_factory=dict)  # "host:port" -> address

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
