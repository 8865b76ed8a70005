"""Network profiles from TOML tables: what is accepted, and every way to get it wrong."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest

from kiloscribe_lab.errors import ConfigError
from kiloscribe_lab.networks import (
    DEFAULT_PROXY_PORT,
    DIRECT,
    TRANSPORTS,
    EnvProxies,
    NetworkProfile,
    no_proxy_matches,
    parse_proxy,
    profile_from_mapping,
)


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


# --- the environment's proxies: curl's rules ------------------------------------------------


def test_a_profile_without_a_proxy_takes_the_environments() -> None:
    env = {"HTTPS_PROXY": "http://proxy.corp:3128"}
    chosen = DIRECT.in_environment(env).proxy_for("inscribe.example", tls=True)
    assert chosen is not None
    assert (chosen.host, chosen.port, chosen.source) == ("proxy.corp", 3128, "HTTPS_PROXY")
    assert DIRECT.proxy_for("inscribe.example", tls=True) is None  # not in an environment: direct


def test_a_profile_that_names_a_proxy_keeps_it_whatever_the_environment() -> None:
    profile = NetworkProfile(name="office", proxy="http://10.0.0.1:8080")
    routed = profile.in_environment({"HTTPS_PROXY": "http://elsewhere:1", "NO_PROXY": "*"})
    chosen = routed.proxy_for("inscribe.example", tls=True)
    assert chosen is not None and chosen.shown == "http://10.0.0.1:8080"
    assert chosen.source == "network office"


@pytest.mark.parametrize(
    ("env", "tls", "expected"),
    [
        # the lower-case spelling wins, as in curl
        ({"https_proxy": "http://low:1", "HTTPS_PROXY": "http://up:2"}, True, "low"),
        ({"HTTPS_PROXY": "http://up:2"}, True, "up"),
        # http_proxy exists in lower case only (an upper-case HTTP_PROXY can come from a CGI header)
        ({"HTTP_PROXY": "http://up:2"}, False, None),
        ({"http_proxy": "http://low:1"}, False, "low"),
        # each scheme its own variable; ALL_PROXY when the scheme's is not set
        ({"http_proxy": "http://plain:1"}, True, None),
        ({"https_proxy": "http://secure:1"}, False, None),
        ({"ALL_PROXY": "http://every:1"}, True, "every"),
        ({"all_proxy": "http://every:1"}, False, "every"),
        ({"ALL_PROXY": "http://every:1", "HTTPS_PROXY": "http://secure:1"}, True, "secure"),
        # an empty variable is no proxy
        ({"HTTPS_PROXY": "  "}, True, None),
    ],
)
def test_which_variable_applies(env: dict[str, str], tls: bool, expected: str | None) -> None:
    chosen = EnvProxies.from_environ(env).for_host("inscribe.example", tls=tls)
    assert (chosen.host if chosen else None) == expected


def test_a_proxy_without_scheme_or_port_is_http_on_curls_port() -> None:
    chosen = EnvProxies.from_environ({"https_proxy": "proxy.corp"}).for_host("x.example", tls=True)
    assert chosen is not None and chosen.shown == f"http://proxy.corp:{DEFAULT_PROXY_PORT}"


@pytest.mark.parametrize(
    ("host", "no_proxy", "bypass"),
    [
        ("inscribe.example.com", "*", True),
        ("inscribe.example.com", "example.com", True),  # a domain covers its subdomains
        ("inscribe.example.com", ".example.com", True),  # a leading dot changes nothing
        ("example.com", ".example.com", True),
        ("notexample.com", "example.com", False),  # ... but not a name that merely ends alike
        ("INSCRIBE.Example.com.", "inscribe.example.com", True),  # case and a trailing dot
        ("inscribe.example.com", "other.example, inscribe.example.com", True),  # a list, spaces
        ("inscribe.example.com", "other.example,,", False),
        ("127.0.0.1", "127.0.0.1", True),
        ("127.0.0.1", "127.0.0.0/8", True),  # CIDR
        ("10.1.2.3", "127.0.0.0/8", False),
        ("127.0.0.1", "localhost", False),  # names and addresses are not resolved into each other
        ("::1", "::1", True),
        ("[::1]", "[::1]", True),
        ("::1", "127.0.0.1", False),
        ("inscribe.example.com", "*.example.com", False),  # no globs, as curl
        ("inscribe.example.com", "", False),
    ],
)
def test_no_proxy_follows_curl(host: str, no_proxy: str, bypass: bool) -> None:
    assert no_proxy_matches(host, no_proxy) is bypass
    env = EnvProxies.from_environ({"https_proxy": "http://p:1", "no_proxy": no_proxy})
    assert (env.for_host(host, tls=True) is None) is bypass


def test_no_proxy_upper_case_is_read_too_and_lower_case_wins() -> None:
    base = {"https_proxy": "http://p:1"}
    assert EnvProxies.from_environ({**base, "NO_PROXY": "x.example"}).for_host("x.example", tls=True) is None
    both = EnvProxies.from_environ({**base, "no_proxy": "y.example", "NO_PROXY": "x.example"})
    assert both.for_host("x.example", tls=True) is not None


def test_credentials_are_sent_but_never_shown() -> None:
    env = {"HTTPS_PROXY": "http://alice:s%40cret-pass@proxy.corp:3128"}
    chosen = EnvProxies.from_environ(env).for_host("x.example", tls=True)
    assert chosen is not None
    assert chosen.to_json() == {"url": "http://proxy.corp:3128", "source": "HTTPS_PROXY"}
    assert chosen.authorization() == "Basic " + base64.b64encode(b"alice:s@cret-pass").decode()
    assert "s@cret-pass" in chosen.secrets()
    assert "cret" not in repr(chosen)


@pytest.mark.parametrize("value", ["socks5://proxy:1080", "https://proxy:443", "http://proxy:port"])
def test_a_proxy_the_probes_cannot_use_is_refused_naming_the_variable(value: str) -> None:
    with pytest.raises(ConfigError, match="HTTPS_PROXY"):
        DIRECT.in_environment({"HTTPS_PROXY": value})
