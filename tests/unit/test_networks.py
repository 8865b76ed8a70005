"""Network profiles from TOML tables: what is accepted, and every way to get it wrong."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from kiloscribe_lab.errors import ConfigError
from kiloscribe_lab.networks import DIRECT, TRANSPORTS, NetworkProfile, parse_proxy, profile_from_mapping


def test_direct_is_the_default_profile() -> None:
    assert NetworkProfile() == DIRECT
    assert DIRECT.name == "direct" and DIRECT.transports == TRANSPORTS == ("websocket", "polling")
    assert DIRECT.proxy is None and DIRECT.ca_bundle is None
    assert DIRECT.allows("websocket") and DIRECT.allows("polling")


def test_full_profile() -> None:
    p = profile_from_mapping(
        "corporate",
        {
            "transports": ["polling"],
            "proxy": "http://proxy.corp.example:3128",
            "headers": {"X-Corp": "secret-token"},
            "ca_bundle": "/etc/corp/ca.pem",
            "resolve": {"inscribe.example.com:443": "127.0.0.1", "v6.example:8443": "::1"},
        },
    )
    assert p.name == "corporate"
    assert p.transports == ("polling",)
    assert p.allows("polling") and not p.allows("websocket")
    assert p.proxy == "http://proxy.corp.example:3128"
    assert p.headers == {"X-Corp": "secret-token"}
    assert p.ca_bundle == Path("/etc/corp/ca.pem")
    assert p.pinned_address("inscribe.example.com", 443) == "127.0.0.1"
    assert p.pinned_address("inscribe.example.com", 8443) is None
    assert p.pinned_address("v6.example", 8443) == "::1"
    data = p.to_json()
    assert data["headers"] == ["X-Corp"]  # names only
    assert "secret-token" not in repr(data)
    assert data["ca_bundle"] == "/etc/corp/ca.pem"
    assert data["transports"] == ["polling"]


def test_empty_table_is_direct_under_another_name() -> None:
    p = profile_from_mapping("home", {})
    assert p == NetworkProfile(name="home")


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"proxyy": "http://p:1"}, "unknown keys"),
        ({"transports": ["carrier-pigeon"]}, "transports"),
        ({"transports": []}, "transports"),
        ({"transports": "polling"}, "transports"),  # a string is not a list of transports
        ({"transports": 5}, "transports"),
        ({"transports": True}, "transports"),
        ({"proxy": 3128}, "proxy"),
        ({"proxy": "socks5://p:1080"}, "proxy"),
        ({"proxy": "https://p:3128"}, "proxy"),
        ({"proxy": "http://:3128"}, "proxy"),
        ({"proxy": "http://p:99999"}, "proxy"),
        ({"headers": ["X-A"]}, "headers"),
        ({"headers": {"X-A": 1}}, "headers"),
        ({"resolve": "h:443=127.0.0.1"}, "resolve"),
        ({"resolve": {"h": "127.0.0.1"}}, "resolve"),
        ({"resolve": {"h:https": "127.0.0.1"}}, "resolve"),
        ({"resolve": {":443": "127.0.0.1"}}, "resolve"),
        ({"resolve": {"h:443": "not-an-address"}}, "resolve"),
        ({"ca_bundle": 5}, "ca_bundle"),
        ({"ca_bundle": ["ca.pem"]}, "ca_bundle"),
    ],
)
def test_profile_errors_name_the_profile_and_the_key(data: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError, match=key) as info:
        profile_from_mapping("corp", data)
    assert "'corp'" in str(info.value)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://proxy.example:3128", ("proxy.example", 3128)),
        ("http://proxy.example", ("proxy.example", 80)),
        ("http://127.0.0.1:8888/", ("127.0.0.1", 8888)),
        ("http://[::1]:3128", ("::1", 3128)),
    ],
)
def test_parse_proxy(url: str, expected: tuple[str, int]) -> None:
    assert parse_proxy(url) == expected


@pytest.mark.parametrize("url", ["https://p:1", "p:3128", "http://", "http://p:port", ""])
def test_parse_proxy_rejects(url: str) -> None:
    with pytest.raises(ConfigError, match="proxy"):
        parse_proxy(url)
