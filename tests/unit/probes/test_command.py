"""``probe`` validation: bad input fails before any traffic, with the right error."""

from __future__ import annotations

from pathlib import Path

import certifi
import pytest

from kiloscribe_lab.errors import ConfigError, SecretError, UsageError
from kiloscribe_lab.networks import DIRECT
from kiloscribe_lab.probes.command import ProbeRequest, validate
from kiloscribe_lab.settings import ProbeSettings

KEY = "KILOSCRIBE_API_KEY"
ENV = {KEY: "not-a-real-key"}


def req(*urls: str, **settings: object) -> ProbeRequest:
    return ProbeRequest(urls=urls, settings=ProbeSettings(**settings))  # type: ignore[arg-type]


def test_valid_request_gives_probe_options(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_bytes(Path(certifi.where()).read_bytes())  # a real PEM bundle
    request = ProbeRequest(
        urls=("inscribe-2=https://h.example", "wss://e.example"),
        discover="https://api.example/api",
        settings=ProbeSettings(api_key_env=KEY, timeout_s=2.0, attempts=3, ca_bundle=ca),
    )
    options = validate(request, ENV)
    assert (options.timeout_s, options.attempts, options.ca_bundle) == (2.0, 3, ca)
    assert options.api_key_env == KEY
    assert options.network == DIRECT
    assert "not-a-real-key" not in repr(options)  # the key's name travels, never its value


@pytest.mark.parametrize(
    ("flag", "in_config", "inscription"),
    [
        (True, None, True),
        (False, None, False),
        (True, False, False),
        (False, True, False),
        (True, True, True),
    ],
)
def test_inscription_is_off_when_the_flag_or_the_config_says_so(
    tmp_path: Path, flag: bool, in_config: bool | None, inscription: bool
) -> None:
    config = None
    if in_config is not None:
        config = tmp_path / "investigation.toml"
        setting = "true" if in_config else "false"
        config.write_text(f'[investigation]\nendpoints = ["https://h.example"]\ninscription = {setting}\n')
    request = ProbeRequest(
        urls=("https://h.example",), config=config, settings=ProbeSettings(inscription=flag)
    )
    assert validate(request, {}).inscription is inscription


def test_discovery_alone_is_enough() -> None:
    assert validate(ProbeRequest(urls=(), discover="https://api.example/api"), {}).api_key_env is None


@pytest.mark.parametrize(
    ("request_", "match"),
    [
        (ProbeRequest(urls=()), "at least one URL"),
        (ProbeRequest(urls=("inscribe.example.com",)), "scheme"),
        (ProbeRequest(urls=("https://ok.example", "https://bad.example:99999")), "malformed URL"),
        (ProbeRequest(urls=("edge=ftp://h.example",)), "scheme"),
        (ProbeRequest(urls=("https://h.example",), discover="api.example/api"), "scheme"),
        (req("https://h.example", ca_bundle=Path("/nonexistent/ca.pem")), "CA bundle"),
        (req("https://h.example", api_key_env="KEY-NAME"), "variable NAME"),
        (req("https://h.example", api_key_env="$KEY"), "variable NAME"),
        (ProbeRequest(urls=("https://h.example",), network="corporate"), "unknown network 'corporate'"),
    ],
)
def test_usage_errors(request_: ProbeRequest, match: str) -> None:
    with pytest.raises(UsageError, match=match):
        validate(request_, ENV)


@pytest.mark.parametrize("environ", [{}, {KEY: ""}, {"OTHER": "x"}])
def test_unset_or_empty_key_variable_is_a_secret_error(environ: dict[str, str]) -> None:
    with pytest.raises(SecretError, match=KEY) as info:
        validate(req("https://h.example", api_key_env=KEY), environ)
    assert info.value.exit_code == 2


def test_network_from_config(tmp_path: Path) -> None:
    config = tmp_path / "inv.toml"
    config.write_text(
        '[investigation]\nendpoints = ["https://h.example"]\n'
        '[networks.corp]\ntransports = ["polling"]\nproxy = "http://127.0.0.1:3128"\n'
    )
    options = validate(ProbeRequest(urls=("https://h.example",), network="corp", config=config), {})
    assert options.network.name == "corp"
    assert options.network.transports == ("polling",)
    direct = validate(ProbeRequest(urls=("https://h.example",), config=config), {})
    assert direct.network == DIRECT
    with pytest.raises(UsageError, match="unknown network 'mobile'"):
        validate(ProbeRequest(urls=("https://h.example",), network="mobile", config=config), {})


def test_network_ca_bundle_must_exist(tmp_path: Path) -> None:
    config = tmp_path / "inv.toml"
    config.write_text('[investigation]\nendpoints = ["https://h"]\n[networks.corp]\nca_bundle = "corp.pem"\n')
    request = ProbeRequest(urls=("https://h.example",), network="corp", config=config)
    with pytest.raises(UsageError, match=r"corp\.pem does not exist"):
        validate(request, {})
    (tmp_path / "corp.pem").write_text("x")
    assert validate(request, {}).network.ca_bundle == tmp_path / "corp.pem"


def test_broken_config_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        validate(ProbeRequest(urls=("https://h.example",), config=tmp_path / "missing.toml"), {})


def test_a_ca_bundle_that_is_not_pem_is_a_usage_error(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("not a certificate")
    with pytest.raises(UsageError, match="not a PEM file"):
        validate(req("https://h.example", ca_bundle=ca), {})


@pytest.mark.parametrize("value", ["s3cr3t-v4lue\r", " s3cr3t-v4lue", "s3cr3t-v4lue ", "s3cr3t\x00v4lue"])
def test_a_key_with_white_space_or_controls_is_refused_without_echoing_it(value: str) -> None:
    with pytest.raises(SecretError) as excinfo:
        validate(req("https://h.example", api_key_env="K"), {"K": value})
    assert "s3cr3t" not in str(excinfo.value)
