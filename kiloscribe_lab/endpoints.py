"""Endpoints: the URLs users give, parsed and normalised. Pure: no I/O.

``parse_endpoint`` is the one place a URL is accepted or refused (a UsageError with the
reason); ``split_label`` reads ``LABEL=URL``, the form every command takes for a target.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
import urllib.parse
from dataclasses import dataclass

from kiloscribe_lab.errors import UsageError
from kiloscribe_lab.untrusted import one_line


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
        # A label is printed in every finding and verdict: a short name, nothing a terminal obeys.
        if len(label) > MAX_TARGET_LABEL or any(
            c.isspace() or unicodedata.category(c) in ("Cc", "Cf") for c in label
        ):
            raise UsageError(
                f"malformed target label {one_line(label, 40)}: give at most {MAX_TARGET_LABEL} "
                "visible characters, no white space"
            )
        return rest, label
    return arg, None


MAX_TARGET_LABEL = 64
MAX_URL = 8192  # servers refuse request lines longer than this; no real endpoint needs one
MAX_HOST = 253  # DNS: a name of at most 253 characters, in labels of at most 63
MAX_LABEL = 63
_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?")
_USERINFO = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*://)([^/?#@]*)@")


def shown(url: str, limit: int = 80) -> str:
    """A URL as an error message may quote it: user-info masked (``user:***@``), control
    characters escaped, at most ``limit`` characters. Never the raw input."""

    def mask(m: re.Match[str]) -> str:
        user, colon, _ = m.group(2).partition(":")
        # user:password@ keeps the user; a lone user@ may itself be the token (x-token@host).
        return f"{m.group(1)}{user[:20]}:***@" if colon else f"{m.group(1)}***@"

    return one_line(_USERINFO.sub(mask, url.strip(), count=1), limit)


def _check_host(host: str, what: str) -> None:
    """A host name the resolver and TLS can take: an IP address, or a DNS name whose labels
    (IDNA-encoded) are at most 63 characters, 253 in all."""
    try:
        ipaddress.ip_address(host)
        return
    except ValueError:
        pass
    if len(host) > MAX_HOST:
        raise UsageError(f"{what}: the host name is {len(host)} characters; DNS allows {MAX_HOST}")
    try:
        ascii_host = host.encode("idna").decode("ascii")
    except UnicodeError:
        raise UsageError(f"{what}: the host name is not a valid internationalised (IDNA) name") from None
    labels = ascii_host.rstrip(".").split(".")
    if len(ascii_host) > MAX_HOST or any(not 0 < len(label) <= MAX_LABEL for label in labels):
        raise UsageError(f"{what}: a host name label is empty or longer than {MAX_LABEL} characters")
    if not all(_LABEL.fullmatch(label.lower()) for label in labels):
        raise UsageError(f"{what}: the host name holds characters a DNS name cannot")


def parse_endpoint(url: str) -> Endpoint:
    """Parse a user's URL (or a server's Location); a malformed one is a UsageError with the
    reason. The message quotes the URL only as ``shown``: user-info masked, escaped, short."""
    text = url.strip()
    what = f"malformed URL {shown(text)}"
    if len(text) > MAX_URL:
        raise UsageError(f"{what}: longer than {MAX_URL} characters")
    if any(c.isspace() or unicodedata.category(c) in ("Cc", "Cf") for c in text):
        raise UsageError(f"{what}: contains white space or control characters")
    try:
        parts = urllib.parse.urlsplit(text)
        port = parts.port
    except ValueError as exc:
        reason = "port out of range 1-65535" if "range" in str(exc) else "not a valid URL"
        raise UsageError(f"{what}: {reason}") from exc
    scheme = _SCHEMES.get(parts.scheme.lower())
    if scheme is None:
        raise UsageError(f"{what}: scheme must be https, wss, http or ws")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise UsageError(
            f"{what}: user:password@ in a URL is not used and would be recorded; "
            "name the API key with --api-key-env instead"
        )
    if not parts.hostname:
        raise UsageError(f"{what}: no host")
    _check_host(parts.hostname, what)
    if port == 0:
        raise UsageError(f"{what}: port out of range 1-65535")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    if not path.isascii():
        raise UsageError(f"{what}: the path holds characters that are not ASCII (percent-encode them)")
    default_port = 443 if scheme == "https" else 80
    return Endpoint(url, scheme, parts.hostname, port or default_port, path)


def parse_target(arg: str) -> tuple[Endpoint, str | None]:
    """``URL`` or ``LABEL=URL`` (a label names a target in findings: ``inscribe-2=https://…``)."""
    url, label = split_label(arg)
    return parse_endpoint(url), label


def parse_origin(text: str) -> str:
    """A web origin as a browser sends it in ``Origin``: ``https://app.example.com[:port]``,
    lower-cased, no path (a trailing ``/`` is dropped). Anything else is a UsageError."""
    what = f"malformed origin {shown(text)}"
    if any(c.isspace() or unicodedata.category(c) in ("Cc", "Cf") for c in text.strip()):
        raise UsageError(f"{what}: contains white space or control characters")
    try:
        parts = urllib.parse.urlsplit(text.strip())
        port = parts.port
    except ValueError as exc:
        raise UsageError(f"{what}: not a valid origin") from exc
    scheme = parts.scheme.lower()
    if scheme not in {"http", "https"} or not parts.hostname:
        raise UsageError(f"{what}: give scheme://host[:port], e.g. https://app.example.com")
    if parts.path not in {"", "/"} or parts.query or parts.fragment or parts.username or parts.password:
        raise UsageError(f"{what}: an origin has no path, query or credentials")
    _check_host(parts.hostname, what)
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    default = 443 if scheme == "https" else 80
    return f"{scheme}://{host}" + ("" if port in {None, default} else f":{port}")
