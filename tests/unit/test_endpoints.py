"""Endpoint parsing: the one place a user's URL is accepted or refused."""

from __future__ import annotations

import pytest

from kiloscribe_lab.endpoints import Endpoint, parse_endpoint, parse_origin, parse_target, split_label
from kiloscribe_lab.errors import UsageError


@pytest.mark.parametrize(
    ("url", "scheme", "host", "port", "path", "authority"),
    [
        ("wss://inscribe.example.com", "https", "inscribe.example.com", 443, "/", "inscribe.example.com"),
        ("ws://inscribe.example.com", "http", "inscribe.example.com", 80, "/", "inscribe.example.com"),
        ("https://h.example", "https", "h.example", 443, "/", "h.example"),
        ("http://h.example", "http", "h.example", 80, "/", "h.example"),
        ("https://h.example:443/x", "https", "h.example", 443, "/x", "h.example"),
        ("http://h.example:80", "http", "h.example", 80, "/", "h.example"),
        ("wss://h.example:8443/socket.io/", "https", "h.example", 8443, "/socket.io/", "h.example:8443"),
        (
            "ws://127.0.0.1:3000/socket.io/?EIO=4&transport=websocket",
            "http",
            "127.0.0.1",
            3000,
            "/socket.io/?EIO=4&transport=websocket",
            "127.0.0.1:3000",
        ),
        ("https://[::1]:8443/api", "https", "::1", 8443, "/api", "[::1]:8443"),
        ("https://[2001:db8::1]/", "https", "2001:db8::1", 443, "/", "[2001:db8::1]"),
        ("WSS://Inscribe.Example.COM/", "https", "inscribe.example.com", 443, "/", "inscribe.example.com"),
        ("  https://h.example/a?b=c  ", "https", "h.example", 443, "/a?b=c", "h.example"),
    ],
)
def test_parse_endpoint(url: str, scheme: str, host: str, port: int, path: str, authority: str) -> None:
    ep = parse_endpoint(url)
    assert (ep.scheme, ep.host, ep.port, ep.path) == (scheme, host, port, path)
    assert ep.authority == authority
    assert ep.origin == f"{scheme}://{authority}"
    assert ep.tls is (scheme == "https")
    assert ep.url == url  # as the user gave it


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("inscribe.example.com", "scheme"),
        ("", "scheme"),
        ("ftp://h.example/file", "scheme"),
        ("file:///etc/passwd", "scheme"),
        ("https://", "no host"),
        ("https:///socket.io/", "no host"),
        ("https://h.example:99999", "malformed URL"),
        ("https://h.example:port", "malformed URL"),
        ("https://h.example/a b", "white space"),
        ("https://h.ex ample", "white space"),
        ("https://[::1/", "malformed URL"),
    ],
)
def test_parse_endpoint_rejects_malformed_urls(url: str, reason: str) -> None:
    with pytest.raises(UsageError, match=reason):
        parse_endpoint(url)


def test_resolve_location_relative_and_absolute() -> None:
    ep = parse_endpoint("https://h.example:8443/socket.io/?EIO=4")
    rel = ep.resolve_location("/api/health")
    assert (rel.host, rel.port, rel.path, rel.url) == (
        "h.example",
        8443,
        "/api/health",
        "https://h.example:8443/api/health",
    )
    sibling = ep.resolve_location("health?x=1")
    assert sibling.path == "/socket.io/health?x=1"
    absolute = ep.resolve_location("https://other.example/landing")
    assert (absolute.host, absolute.port, absolute.path) == ("other.example", 443, "/landing")
    ws = ep.resolve_location("wss://ws.example:9000/")
    assert (ws.scheme, ws.port) == ("https", 9000)


def test_with_path_keeps_origin() -> None:
    ep = parse_endpoint("wss://h.example:8443/ignored")
    sub = ep.with_path("/socket.io/?EIO=4&transport=polling")
    assert sub == Endpoint(
        "https://h.example:8443/socket.io/?EIO=4&transport=polling",
        "https",
        "h.example",
        8443,
        "/socket.io/?EIO=4&transport=polling",
    )


@pytest.mark.parametrize(
    ("arg", "url", "label"),
    [
        ("inscribe-2=https://h.example", "https://h.example", "inscribe-2"),
        ("https://h.example/?a=b", "https://h.example/?a=b", None),
        ("a/b=https://h.example", "a/b=https://h.example", None),
    ],
)
def test_split_label_takes_a_label_only_before_a_url(arg: str, url: str, label: str | None) -> None:
    assert split_label(arg) == (url, label)


def test_parse_target_parses_the_url_after_its_label() -> None:
    endpoint, label = parse_target("inscribe-2=wss://h.example:8443")
    assert (endpoint.scheme, endpoint.port, label) == ("https", 8443, "inscribe-2")
    with pytest.raises(UsageError):
        parse_target("a/b=https://h.example")  # not a label: the whole argument is the URL


@pytest.mark.parametrize(
    ("text", "origin"),
    [
        ("https://app.example.com", "https://app.example.com"),
        ("https://App.Example.COM/", "https://app.example.com"),
        ("https://app.example.com:443", "https://app.example.com"),
        ("http://localhost:3000", "http://localhost:3000"),
        ("http://[::1]:8080", "http://[::1]:8080"),
    ],
)
def test_parse_origin(text: str, origin: str) -> None:
    assert parse_origin(text) == origin


@pytest.mark.parametrize(
    "text",
    [
        "app.example.com",
        "wss://app.example.com",
        "https://app.example.com/page",
        "https://u:p@a.example",
        "https://",
    ],
)
def test_parse_origin_rejects(text: str) -> None:
    with pytest.raises(UsageError, match="origin"):
        parse_origin(text)
