"""Discovery's document check and the SDK's choice of server, as tables."""

from __future__ import annotations

from typing import Any

import pytest

from kiloscribe_lab.probes.discovery import check_servers, chosen_server


def server(url: Any, status: Any = "active", **extra: Any) -> dict[str, Any]:
    return {"url": url, "region": "eu", "status": status, "priority": 1, "activeJobs": 0, **extra}


@pytest.mark.parametrize(
    ("doc", "urls", "recommended", "problems", "chosen"),
    [
        pytest.param(
            {"servers": [server("wss://a"), server("wss://b", "inactive")], "recommended": "wss://a"},
            ["wss://a", "wss://b"],
            "wss://a",
            [],
            "wss://a",
            id="valid",
        ),
        pytest.param(
            {"servers": [server("wss://b", "inactive"), server("wss://a"), server("wss://c")]},
            ["wss://b", "wss://a", "wss://c"],
            None,
            [],
            "wss://a",
            id="recommended-absent-first-active",
        ),
        pytest.param(
            {"servers": [server("wss://a"), server("wss://c")], "recommended": None},
            ["wss://a", "wss://c"],
            None,
            [],
            "wss://a",
            id="recommended-null-first-active",
        ),
        pytest.param(
            {"servers": [server("wss://a", "inactive"), server("wss://b", "draining")]},
            ["wss://a", "wss://b"],
            None,
            ["no server has status 'active'"],
            None,
            id="no-active",
        ),
        pytest.param(
            {"servers": [], "recommended": None},
            [],
            None,
            ["no server has status 'active'"],
            None,
            id="empty-list",
        ),
        pytest.param(
            {"servers": [server("wss://a")], "recommended": "wss://z"},
            ["wss://a"],
            "wss://z",
            ["recommended wss://z is not in the server list"],
            "wss://z",  # the SDK trusts it anyway: that is the problem
            id="recommended-not-listed",
        ),
        pytest.param(
            {"servers": [server("wss://a")], "recommended": 7},
            ["wss://a"],
            None,
            ["'recommended' is not a string"],
            "wss://a",
            id="recommended-not-a-string",
        ),
        pytest.param(
            {"servers": {"url": "wss://a"}},
            [],
            None,
            ["'servers' is missing or not a list"],
            None,
            id="servers-not-a-list",
        ),
        pytest.param(
            {"recommended": "wss://a"},
            [],
            None,
            ["'servers' is missing or not a list"],
            None,
            id="servers-missing",
        ),
        pytest.param(
            [server("wss://a")], [], None, ["the answer is not a JSON object"], None, id="not-object"
        ),
        pytest.param(None, [], None, ["the answer is not a JSON object"], None, id="null"),
        pytest.param(
            {"servers": [{"status": "active"}, server(5), "wss://x", server("wss://a")]},
            ["wss://a"],
            None,
            [
                "servers[0] has no string 'url'",
                "servers[1] has no string 'url'",
                "servers[2] has no string 'url'",
            ],
            "wss://a",
            id="entries-without-url",
        ),
        pytest.param(
            {"servers": [{"url": "wss://a"}, server("wss://b", 1)]},
            ["wss://a", "wss://b"],
            None,
            [
                "servers[0] has no string 'status'",
                "servers[1] has no string 'status'",
                "no server has status 'active'",
            ],
            None,
            id="entries-without-status",
        ),
    ],
)
def test_check_servers_and_chosen_server(
    doc: Any, urls: list[str], recommended: str | None, problems: list[str], chosen: str | None
) -> None:
    servers, got_recommended, got_problems = check_servers(doc)
    assert [s["url"] for s in servers] == urls
    assert got_recommended == recommended
    assert got_problems == problems
    assert chosen_server(servers, got_recommended) == chosen


def test_check_servers_keeps_only_the_contract_fields() -> None:
    servers, _, problems = check_servers({"servers": [server("wss://a", secret="x", internal_ip="10.0.0.1")]})
    assert problems == []
    assert servers == [{"url": "wss://a", "region": "eu", "status": "active", "priority": 1, "activeJobs": 0}]


def test_chosen_server_recommended_wins_even_if_inactive() -> None:
    servers = [server("wss://a"), server("wss://b", "inactive")]
    assert chosen_server(servers, "wss://b") == "wss://b"
    assert chosen_server(servers, "") == "wss://a"  # an empty recommendation is none
    assert chosen_server([], None) is None


@pytest.mark.parametrize("url", ["javascript:alert(1)", "ftp://files.example/", "wss://a\x1b[31m", "data:,x"])
def test_a_listed_url_that_is_no_endpoint_is_recorded_and_never_probed(url: str) -> None:
    servers, _, problems = check_servers({"servers": [server(url), server("wss://ok")]})
    assert [s["url"] for s in servers] == ["wss://ok"]
    assert any(p.startswith("servers[0] url ") and p.endswith("not probed") for p in problems)
    assert not any("\x1b" in p for p in problems)


def test_a_recommended_url_that_is_no_endpoint_is_not_chosen() -> None:
    servers, recommended, problems = check_servers(
        {"servers": [server("wss://a")], "recommended": "javascript:alert(1)"}
    )
    assert recommended is None and chosen_server(servers, recommended) == "wss://a"
    assert any(p.startswith("recommended url ") for p in problems)


def test_a_list_of_a_thousand_servers_is_probed_sixteen_deep() -> None:
    servers, _, problems = check_servers({"servers": [server(f"wss://s{i}.example") for i in range(1000)]})
    assert len(servers) == 16
    assert any("more than 16 servers" in p for p in problems)


def test_nested_values_in_an_entry_are_not_copied() -> None:
    deep: Any = {"a": [[[[{"b": 1}]]]]}
    servers, _, _ = check_servers({"servers": [server("wss://a", region=deep)]})
    assert servers[0]["region"] == "<dict>"
