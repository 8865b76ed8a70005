"""Endpoints: the URLs users give, parsed and normalised. Pure: no I/O.

``parse_endpoint`` is the one place a URL is accepted or refused (a UsageError with the
reason); ``split_label`` reads ``LABEL=URL``, the form every command takes for a target.
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass

from kiloscribe_lab.errors import UsageError


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A target URL, normalised: ws/wss become http/https (same ports, same handshake)."""

    url: str
    scheme: str
    host: str
    port: int
    path: str = "/"  # path and query as given

    @property
    def tls(self) -> bool:
        return self.scheme == "https"

    @property
    def authority(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.tls else 80
        return host if self.port == default else f"{host}:{self.port}"

    @property
    def origin(self) -> str:
        return f"{self.scheme}://{self.authority}"

    def with_path(self, path: str) -> Endpoint:
        return Endpoint(self.origin + path, self.scheme, self.host, self.port, path)

    def resolve_location(self, location: str) -> Endpoint:
        return parse_endpoint(urllib.parse.urljoin(self.origin + self.path, location))


_SCHEMES = {"http": "http", "https": "https", "ws": "http", "wss": "https"}


def split_label(arg: str) -> tuple[str, str | None]:
    """``URL`` or ``LABEL=URL`` -> (url, label). A label names a target in findings
    (``inscribe-2=https://...``); an ``=`` inside a URL's query is not one."""
    label, sep, rest = arg.partition("=")
    if sep and label and "://" in rest and "/" not in label and ":" not in label:
        return rest, label
    return arg, None


def parse_endpoint(url: str) -> Endpoint:
    """Parse a user's URL; a malformed one is a UsageError with the reason."""
    try:
        parts = urllib.parse.urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise UsageError(f"malformed URL {url!r}: {exc}") from exc
    scheme = _SCHEMES.get(parts.scheme.lower())
    if scheme is None:
        raise UsageError(f"malformed URL {url!r}: scheme must be https, wss, http or ws")
    if not parts.hostname:
        raise UsageError(f"malformed URL {url!r}: no host")
    if any(c.isspace() for c in url.strip()):
        raise UsageError(f"malformed URL {url!r}: contains white space")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    default_port = 443 if scheme == "https" else 80
    return Endpoint(url, scheme, parts.hostname, port or default_port, path)


def parse_target(arg: str) -> tuple[Endpoint, str | None]:
    """``URL`` or ``LABEL=URL`` (a label names a target in findings: ``inscribe-2=https://…``)."""
    url, label = split_label(arg)
    return parse_endpoint(url), label


def parse_origin(text: str) -> str:
    """A web origin as a browser sends it in ``Origin``: ``https://app.example.com[:port]``,
    lower-cased, no path (a trailing ``/`` is dropped). Anything else is a UsageError."""
    try:
        parts = urllib.parse.urlsplit(text.strip())
        port = parts.port
    except ValueError as exc:
        raise UsageError(f"malformed origin {text!r}: {exc}") from exc
    scheme = parts.scheme.lower()
    if scheme not in {"http", "https"} or not parts.hostname:
        raise UsageError(
            f"malformed origin {text!r}: give scheme://host[:port], e.g. https://app.example.com"
        )
    if parts.path not in {"", "/"} or parts.query or parts.fragment or parts.username or parts.password:
        raise UsageError(f"malformed origin {text!r}: an origin has no path, query or credentials")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    default = 443 if scheme == "https" else 80
    return f"{scheme}://{host}" + ("" if port in {None, default} else f":{port}")
