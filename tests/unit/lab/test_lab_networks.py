"""The lab networks' pure parts: the mobile link, mitmdump's command line, the profiles file,
and ``probe --network NAME`` finding them in a lab directory (files only, no processes)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from kiloscribe_lab.config import parse_config
from kiloscribe_lab.errors import ConfigError, LabStartError, UsageError
from kiloscribe_lab.lab import fleet, lab_networks, state
from kiloscribe_lab.lab.keys import API_KEY_ENV
from kiloscribe_lab.lab.lab_networks import CORPORATE, LAB_NETWORKS, MOBILE, POLLING_ONLY, MobileLink
from kiloscribe_lab.lab.scenarios import SCENARIOS, network_ground_truth
from kiloscribe_lab.names import NetworkName
from kiloscribe_lab.networks import NetworkProfile
from kiloscribe_lab.probes.command import ProbeRequest, validate
from tests.unit.lab.samples import lab_info

PROXY_PORTS = {CORPORATE: 43001, MOBILE: 43002}


# --- the mobile link --------------------------------------------------------------------


def test_mobile_link_defaults_to_150_ms_and_reads_the_environment() -> None:
    assert MobileLink() == MobileLink(150, 10)
    assert MobileLink.from_environ({}) == MobileLink(150, 10)
    env = {lab_networks.RTT_ENV: "300", lab_networks.JITTER_ENV: " 0 "}
    assert MobileLink.from_environ(env) == MobileLink(300, 0)
    assert MobileLink(80, 5).to_json() == {"rtt_ms": 80, "jitter_ms": 5}


@pytest.mark.parametrize(
    ("env", "match"),
    [
        ({lab_networks.RTT_ENV: "fast"}, "whole number"),
        ({lab_networks.RTT_ENV: "-1"}, "rtt_ms"),
        ({lab_networks.RTT_ENV: "100", lab_networks.JITTER_ENV: "101"}, "jitter_ms"),
    ],
)
def test_mobile_link_rejects_nonsense(env: dict[str, str], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        MobileLink.from_environ(env)


# --- mitmdump ---------------------------------------------------------------------------


def test_one_mitmdump_serves_both_networks_with_our_addon(tmp_path: Path) -> None:
    argv = lab_networks.proxy_argv(
        "/x/mitmdump",
        PROXY_PORTS,
        tmp_path,
        upstream_ca=tmp_path / "root.crt",
        corporate_ports=[41001, 41002, 41001],
        link=MobileLink(200, 20),
    )
    text = " ".join(argv)
    assert argv[0] == "/x/mitmdump"
    assert "--mode regular@127.0.0.1:43001" in text and "--mode regular@127.0.0.1:43002" in text
    assert f"confdir={tmp_path / 'mitmproxy'}" in text  # its CA stays in the lab
    assert f"ssl_verify_upstream_trusted_ca={tmp_path / 'root.crt'}" in text
    assert f"-s {lab_networks.ADDON}" in text and lab_networks.ADDON.is_file()
    assert "lab_networks=corporate-proxy=43001,mobile=43002" in text
    assert "corporate_ports=41001,41002" in text
    assert "mobile_rtt_ms=200" in text and "mobile_jitter_ms=20" in text


def test_mitmdump_is_found_or_the_error_says_how_to_install_it(tmp_path: Path) -> None:
    fake = tmp_path / "mitmdump"
    fake.write_text("#!/bin/sh\n")
    assert lab_networks.mitmdump_binary({lab_networks.MITMDUMP_ENV: str(fake)}) == str(fake)
    with pytest.raises(LabStartError, match="no such file"):
        lab_networks.mitmdump_binary({lab_networks.MITMDUMP_ENV: str(tmp_path / "missing")})


def test_the_proxy_gets_no_python_path_of_ours() -> None:
    env = lab_networks.proxy_environment({"PATH": "/bin", "PYTHONPATH": "/ours", "HOME": "/h"})
    assert env == {"PATH": "/bin", "HOME": "/h"}


def test_network_urls_name_every_lab_network() -> None:
    assert lab_networks.network_urls(PROXY_PORTS) == {
        "direct": None,
        "polling-only": None,
        "corporate-proxy": "http://127.0.0.1:43001",
        "mobile": "http://127.0.0.1:43002",
    }


# --- networks.toml ----------------------------------------------------------------------


def _networks_toml(lab_dir: Path) -> str:
    return lab_networks.render_networks_toml(
        endpoints=["https://127.0.0.1:41001", "https://127.0.0.1:41011"],
        api_base="https://127.0.0.1:41003/api",
        api_key_env=API_KEY_ENV,
        ca_bundle=lab_dir / "ca.pem",
        proxy_ports=PROXY_PORTS,
        corporate_ca=lab_dir / "corporate-ca.pem",
        scenario="incident",
        link=MobileLink(),
    )


def test_networks_toml_is_an_investigation_config_with_every_lab_network(tmp_path: Path) -> None:
    import tomllib

    (tmp_path / "ca.pem").write_text("x")
    cfg = parse_config(tomllib.loads(_networks_toml(tmp_path)), tmp_path / "networks.toml")
    assert cfg.run_networks == LAB_NETWORKS
    assert set(cfg.networks) == set(LAB_NETWORKS)
    assert cfg.networks[POLLING_ONLY].transports == ("polling",)
    assert cfg.networks[POLLING_ONLY].proxy is None
    corporate = cfg.networks[CORPORATE]
    assert corporate.proxy == "http://127.0.0.1:43001"
    assert corporate.ca_bundle == tmp_path / "corporate-ca.pem"
    assert cfg.networks[MOBILE].proxy == "http://127.0.0.1:43002"
    assert cfg.networks[MOBILE].ca_bundle is None  # the tunnel is not intercepted: the lab CA is enough
    assert cfg.settings.api_key_env == API_KEY_ENV and cfg.settings.ca_bundle == tmp_path / "ca.pem"


def test_a_path_with_quotes_survives_the_toml(tmp_path: Path) -> None:
    import tomllib

    odd = tmp_path / 'a "quoted" dir'
    odd.mkdir()
    (odd / "ca.pem").write_text("x")
    cfg = parse_config(tomllib.loads(_networks_toml(odd)), odd / "networks.toml")
    assert cfg.networks[CORPORATE].ca_bundle == odd / "corporate-ca.pem"


def test_corporate_bundle_is_the_mitmproxy_ca_then_the_lab_ca(tmp_path: Path) -> None:
    (tmp_path / "mitmproxy").mkdir()
    (tmp_path / "mitmproxy" / "mitmproxy-ca-cert.pem").write_text("MITM\n")
    (tmp_path / "ca.pem").write_text("LAB")
    bundle = lab_networks.write_corporate_bundle(tmp_path, tmp_path / "ca.pem")
    assert bundle == tmp_path / "corporate-ca.pem"
    assert bundle.read_text() == "MITM\nLAB\n"


# --- probe --network NAME from a lab directory -------------------------------------------


def _fake_running_lab(lab_dir: Path, *, phase: str = "running") -> None:
    """A lab directory as `lab up` leaves it, without any process (nothing is probed)."""
    (lab_dir / "ca.pem").write_text("x")
    (lab_dir / "corporate-ca.pem").write_text("x")
    (lab_dir / lab_networks.NETWORKS_FILE).write_text(_networks_toml(lab_dir))
    info = dataclasses.replace(
        lab_info(lab_dir),
        networks=lab_networks.network_urls(PROXY_PORTS),
        networks_config=lab_dir / lab_networks.NETWORKS_FILE,
        mobile_link=MobileLink(),
    )
    state.write_state(lab_dir, info, [], phase=phase)


def test_lab_state_round_trips_the_networks(tmp_path: Path) -> None:
    _fake_running_lab(tmp_path)
    info = fleet.attach(tmp_path)
    assert info.networks == lab_networks.network_urls(PROXY_PORTS)
    assert info.proxy_ports() == PROXY_PORTS
    assert info.mobile_link == MobileLink()
    data = json.loads(json.dumps(info.to_json()))
    assert data["networks_config"] == str(tmp_path / "networks.toml")
    assert data["mobile_link"] == {"rtt_ms": 150, "jitter_ms": 10}


def _probe_network(
    name: str, lab_dir: Path | None, env: dict[str, str], config: Path | None = None
) -> NetworkProfile:
    known, source = state.known_networks(lab_dir, env)
    request = ProbeRequest(
        urls=("https://127.0.0.1:41001",),
        network=name,
        config=config,
        known_networks=known,
        known_networks_source=source,
    )
    return validate(request, env).network


def test_probe_network_resolves_from_the_running_lab(tmp_path: Path) -> None:
    _fake_running_lab(tmp_path)
    mobile = _probe_network(NetworkName.MOBILE, tmp_path, {})
    assert mobile.name == NetworkName.MOBILE and mobile.proxy == "http://127.0.0.1:43002"
    # $KILOSCRIBE_LAB_DIR is where it looks by default
    env = {state.LAB_DIR_ENV: str(tmp_path)}
    corporate = _probe_network(NetworkName.CORPORATE_PROXY, None, env)
    assert corporate.proxy == "http://127.0.0.1:43001"
    assert corporate.ca_bundle == tmp_path / "corporate-ca.pem"
    assert _probe_network(NetworkName.POLLING_ONLY, None, env).transports == ("polling",)


def test_a_config_network_wins_over_the_labs(tmp_path: Path) -> None:
    _fake_running_lab(tmp_path)
    config = tmp_path / "inv.toml"
    config.write_text(
        '[investigation]\nendpoints = ["https://h"]\n[networks.mobile]\ntransports = ["polling"]\n'
    )
    assert _probe_network(NetworkName.MOBILE, tmp_path, {}, config).proxy is None


def test_unknown_network_names_what_the_lab_has(tmp_path: Path) -> None:
    _fake_running_lab(tmp_path)
    with pytest.raises(
        UsageError, match=r"unknown network 'vpn' \(the lab in .* has corporate-proxy, mobile"
    ):
        _probe_network("vpn", tmp_path, {})
    with pytest.raises(UsageError, match=r"unknown network 'vpn' \(.*no lab runs in"):
        _probe_network("vpn", tmp_path / "elsewhere", {})


def test_no_lab_or_a_stopped_one_has_no_networks(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"unknown network 'mobile' .*no lab runs in"):
        _probe_network(NetworkName.MOBILE, tmp_path, {})
    _fake_running_lab(tmp_path, phase="starting")  # not ready yet: its proxies may not answer
    with pytest.raises(UsageError, match="unknown network 'mobile'"):
        _probe_network(NetworkName.MOBILE, tmp_path, {})


# --- ground truth per network -------------------------------------------------------------


def test_network_ground_truth_covers_every_lab_network() -> None:
    for scenario, truths in network_ground_truth().items():
        assert scenario in SCENARIOS
        assert {t.network for t in truths} == set(LAB_NETWORKS)
        for truth in truths:
            assert not set(truth.adds) & set(SCENARIOS[scenario].expected_findings)
            assert truth.why
