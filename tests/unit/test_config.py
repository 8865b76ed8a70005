"""Investigation config: a valid file, and every error a ConfigError naming the key."""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path
from typing import Any

import pytest

from kiloscribe_lab.config import ClusterSpec, InvestigationConfig, load_config, parse_config
from kiloscribe_lab.errors import ConfigError, KiloscribeLabError
from kiloscribe_lab.networks import DIRECT

VALID_TOML = """
[investigation]
endpoints = ["wss://inscribe.example.com", "https://inscribe-1.example.com"]
api_base = "https://api.example.com/api"
api_key_env = "KILOSCRIBE_API_KEY"
networks = ["direct", "corporate"]
attempts = 3
timeout = 2.5

[networks.corporate]
proxy = "http://proxy.corp.example:3128"
transports = ["polling"]
"""
VALID: dict[str, Any] = tomllib.loads(VALID_TOML)


def with_(path: tuple[str, ...], value: Any) -> dict[str, Any]:
    """VALID with one key set (or removed, for value ...)."""
    data = copy.deepcopy(VALID)
    node = data
    for key in path[:-1]:
        node = node.setdefault(key, {})
    if value is ...:
        node.pop(path[-1], None)
    else:
        node[path[-1]] = value
    return data


def test_valid_config() -> None:
    cfg = parse_config(VALID)
    assert cfg.endpoints == ("wss://inscribe.example.com", "https://inscribe-1.example.com")
    assert cfg.api_base == "https://api.example.com/api"
    assert cfg.settings.api_key_env == "KILOSCRIBE_API_KEY"
    assert cfg.run_networks == ("direct", "corporate")
    assert set(cfg.networks) == {"direct", "corporate"}
    assert cfg.networks["direct"] == DIRECT
    assert cfg.networks["corporate"].transports == ("polling",)
    assert cfg.networks["corporate"].proxy == "http://proxy.corp.example:3128"
    assert (cfg.settings.attempts, cfg.settings.timeout_s) == (3, 2.5)
    assert cfg.settings.inscription is True
    assert parse_config(with_(("investigation", "inscription"), False)).settings.inscription is False
    assert cfg.settings.ca_bundle is None and cfg.source is None


def test_minimal_configs_take_defaults() -> None:
    cfg = parse_config({"investigation": {"endpoints": ["https://h.example"]}})
    assert cfg == InvestigationConfig(endpoints=("https://h.example",))
    assert cfg.run_networks == ("direct",) and cfg.settings.attempts == 1 and cfg.settings.timeout_s == 5.0
    only_api = parse_config({"investigation": {"api_base": "https://api.example/api"}})
    assert only_api.endpoints == () and only_api.api_base == "https://api.example/api"
    assert (
        parse_config(with_(("investigation", "timeout"), 5)).settings.timeout_s == 5.0
    )  # an int is a number


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({**VALID, "investigations": {}}, "unknown tables"),
        (with_(("investigation", "endpoint"), ["https://h"]), "unknown keys"),
        ({"investigation": 5}, r"\[investigation\]"),
        ({"investigation": {}}, "endpoints, api_base"),
        (with_(("investigation", "endpoints"), "https://h.example"), "endpoints"),
        (with_(("investigation", "endpoints"), ["ftp://h.example"]), "scheme"),
        (with_(("investigation", "endpoints"), ["https://h.example:99999"]), "malformed URL"),
        (with_(("investigation", "endpoints"), ["https://"]), "no host"),
        (with_(("investigation", "endpoints"), ["https://h/a b"]), "white space"),
        (with_(("investigation", "endpoints"), [5]), "endpoint"),
        (with_(("investigation", "api_base"), "api.example.com"), "scheme"),
        (with_(("investigation", "api_base"), 5), "api_base"),
        (with_(("investigation", "api_key_env"), "KEY-NAME"), "api_key_env"),
        (with_(("investigation", "api_key_env"), ""), "api_key_env"),
        (with_(("investigation", "api_key_env"), 5), "api_key_env"),
        (with_(("investigation", "networks"), ["direct", "mobile"]), "mobile"),
        (with_(("investigation", "networks"), []), "networks"),
        (with_(("investigation", "networks"), "direct"), "networks"),
        (with_(("investigation", "attempts"), 0), "attempts"),
        (with_(("investigation", "attempts"), 1001), "attempts"),
        (with_(("investigation", "attempts"), 2.5), "attempts"),
        (with_(("investigation", "attempts"), True), "attempts"),  # bool where int
        (with_(("investigation", "attempts"), "3"), "attempts"),
        (with_(("investigation", "timeout"), 0), "timeout"),
        (with_(("investigation", "timeout"), -1.0), "timeout"),
        (with_(("investigation", "timeout"), 601), "timeout"),
        (with_(("investigation", "timeout"), float("nan")), "timeout"),
        (with_(("investigation", "timeout"), False), "timeout"),
        (with_(("investigation", "timeout"), "5"), "timeout"),
        (with_(("investigation", "ca_bundle"), 5), "ca_bundle"),
        (with_(("investigation", "inscription"), "no"), "inscription"),
        (with_(("investigation", "inscription"), 0), "inscription"),
        (with_(("investigation", "ca_bundle"), "/nonexistent/ca.pem"), "ca_bundle"),
        ({**VALID, "networks": []}, r"\[networks\]"),
        (with_(("networks", "corporate"), "http://proxy:3128"), r"\[networks.corporate\]"),
        (with_(("networks", "corporate", "transports"), ["pigeon"]), "transports"),
        (with_(("networks", "corporate", "proxy"), "socks5://p:1"), "proxy"),
        (with_(("networks", "corporate", "color"), "red"), "unknown keys"),
    ],
)
def test_config_errors_name_the_key(data: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError, match=key):
        parse_config(data)


def test_config_error_names_the_file(tmp_path: Path) -> None:
    source = tmp_path / "investigation.toml"
    with pytest.raises(ConfigError, match=str(source)):
        parse_config(with_(("investigation", "attempts"), 0), source)


@pytest.mark.parametrize("bound", [1, 1000])
def test_attempts_bounds_are_inclusive(bound: int) -> None:
    assert parse_config(with_(("investigation", "attempts"), bound)).settings.attempts == bound


def test_timeout_upper_bound_is_inclusive() -> None:
    assert parse_config(with_(("investigation", "timeout"), 600)).settings.timeout_s == 600.0


def test_relative_ca_paths_resolve_against_the_config_folder(tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_text("not really a certificate")
    (tmp_path / "certs").mkdir()
    source = tmp_path / "investigation.toml"
    data = with_(("investigation", "ca_bundle"), "ca.pem")
    data["networks"]["corporate"]["ca_bundle"] = "certs/corp.pem"
    cfg = parse_config(data, source)
    assert cfg.settings.ca_bundle == tmp_path / "ca.pem"
    assert cfg.networks["corporate"].ca_bundle == tmp_path / "certs" / "corp.pem"
    assert cfg.networks["corporate"].transports == ("polling",)  # the rest of the profile kept
    assert cfg.source == source


def test_relative_ca_path_missing_next_to_the_config(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"ca_bundle .*ca\.pem does not exist"):
        parse_config(with_(("investigation", "ca_bundle"), "ca.pem"), tmp_path / "investigation.toml")


def test_absolute_ca_path_is_kept(tmp_path: Path) -> None:
    ca = tmp_path / "abs.pem"
    ca.write_text("x")
    cfg = parse_config(with_(("investigation", "ca_bundle"), str(ca)), Path("/elsewhere/inv.toml"))
    assert cfg.settings.ca_bundle == ca


def test_load_config_reads_a_file(tmp_path: Path) -> None:
    path = tmp_path / "investigation.toml"
    path.write_text(VALID_TOML)
    cfg = load_config(path)
    assert cfg.source == path
    assert cfg.run_networks == ("direct", "corporate")


def test_load_config_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(path)


@pytest.mark.parametrize(
    "text",
    [
        "[investigation\nendpoints = []",
        'endpoints = ["a"',
        "x = = 1",
        "[investigation]\nattempts = 1\nattempts = 2",
    ],
)
def test_load_config_invalid_toml(tmp_path: Path, text: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match="not valid TOML") as info:
        load_config(path)
    assert isinstance(info.value, KiloscribeLabError) and info.value.exit_code == 2


def test_load_config_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes(b'[investigation]\nendpoints = ["https://h\xe9"]\n')
    with pytest.raises(ConfigError, match=str(path)):
        load_config(path)


def test_origin_is_read_and_normalised() -> None:
    cfg = parse_config(with_(("investigation", "origin"), "HTTPS://App.Example.com:443/"))
    assert cfg.settings.origin == "https://app.example.com"
    assert parse_config(VALID).settings.origin is None


@pytest.mark.parametrize("origin", ["app.example.com", "https://app.example.com/page", "ftp://x", 3])
def test_a_bad_origin_is_a_config_error(origin: object) -> None:
    with pytest.raises(ConfigError, match="origin"):
        parse_config(with_(("investigation", "origin"), origin))


# --- [cluster]: where the matrix runs --------------------------------------------------------


def test_no_cluster_table_runs_locally() -> None:
    assert parse_config(VALID).cluster is None


def test_cluster_table_is_read() -> None:
    data = with_(("cluster",), {"scheduler": "tcp://scheduler.example:8786", "vantages": ["eu-west", "corp"]})
    assert parse_config(data).cluster == ClusterSpec("tcp://scheduler.example:8786", ("eu-west", "corp"))
    every = parse_config(with_(("cluster",), {"scheduler": "tcp://s:8786"})).cluster
    assert every == ClusterSpec("tcp://s:8786", None)  # omitted: every worker


@pytest.mark.parametrize(
    ("table", "words"),
    [
        ({"vantages": ["eu-west"]}, "needs scheduler"),
        ({"scheduler": 8786}, "scheduler"),
        ({"scheduler": "tcp://s:1", "workers": []}, "unknown keys"),
        ({"scheduler": "tcp://s:1", "vantages": "eu-west"}, "vantages"),
        ({"scheduler": "tcp://s:1", "vantages": []}, "at least one vantage"),
        ({"scheduler": "tcp://s:1", "vantages": ["a", "a"]}, "given twice"),
        ({"scheduler": "tcp://s:1", "vantages": [""]}, "worker's name"),
        ({"scheduler": "tcp://s:1", "vantages": ["local"]}, "this machine's vantage"),
    ],
)
def test_cluster_errors_name_what_is_wrong(table: dict[str, Any], words: str) -> None:
    with pytest.raises(ConfigError, match=words) as info:
        parse_config(with_(("cluster",), table))
    assert "[cluster]" in str(info.value)
