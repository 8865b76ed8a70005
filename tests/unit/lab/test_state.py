"""Where a lab is: the JSON a running lab is described by, and its state file."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from kiloscribe_lab.errors import LabStateError
from kiloscribe_lab.lab import procs, state
from kiloscribe_lab.lab.keys import resolve_api_key
from kiloscribe_lab.lab.scenarios import SCENARIOS, BalancerKind
from kiloscribe_lab.names import FindingId
from tests.unit.lab.samples import lab_info

CLI_KEYS = {"scenario", "edge", "lb", "backends", "api", "ca_bundle", "api_key_env", "networks"}


# --- LabInfo ----------------------------------------------------------------------------


def test_lab_info_to_json_has_the_cli_contracts_keys(tmp_path: Path) -> None:
    data = json.loads(json.dumps(lab_info(tmp_path, tmp_path / "lab.env").to_json()))
    assert set(data) >= CLI_KEYS
    assert data["scenario"] == "incident"
    assert data["edge"] == "https://127.0.0.1:41001"
    assert data["lb"] == "https://127.0.0.1:41002"
    assert data["api"] == "https://127.0.0.1:41003/api"
    assert data["ca_bundle"] == str(tmp_path / "ca.pem")
    assert data["api_key_env"] == "KILOSCRIBE_API_KEY"
    assert data["api_key_file"] == str(tmp_path / "lab.env")
    assert data["networks"] == {"direct": None}
    assert data["backends"] == [
        {"name": "inscribe-1", "url": "https://127.0.0.1:41011", "upstream": "http://127.0.0.1:42001"},
        {"name": "inscribe-2", "url": "https://127.0.0.1:41012", "upstream": "http://127.0.0.1:42002"},
        {"name": "inscribe-3", "url": "https://127.0.0.1:41013", "upstream": "http://127.0.0.1:42003"},
    ]
    assert data["expected_findings"][0] == FindingId.BACKEND_DOWN
    assert data["expected_findings"] == list(SCENARIOS["incident"].truth.findings)  # from the entry
    assert data["caddyfile"] == str(tmp_path / "Caddyfile")
    assert data["balancer"] == "caddy"
    assert data["balancer_config"] == str(tmp_path / "Caddyfile")


@pytest.mark.parametrize(
    ("kind", "config"), [(BalancerKind.NGINX, "nginx.conf"), (BalancerKind.HAPROXY, "haproxy.cfg")]
)
def test_lab_info_names_its_balancer_and_the_file_that_configures_it(
    tmp_path: Path, kind: BalancerKind, config: str
) -> None:
    info = dataclasses.replace(lab_info(tmp_path), balancer=kind)
    data = info.to_json()
    assert data["balancer"] == str(kind)
    assert data["balancer_config"] == str(tmp_path / config)
    assert data["caddyfile"] == str(tmp_path / "Caddyfile")  # Caddy still serves the edge and the sites
    state.write_state(tmp_path, info, [], phase="running")
    assert state.read_state(tmp_path)[0] == info


def test_a_state_file_from_before_the_balancers_is_a_caddy_lab(tmp_path: Path) -> None:
    state.write_state(tmp_path, lab_info(tmp_path), [], phase="running")
    data = json.loads((tmp_path / state.STATE_FILE).read_text())
    assert data.pop("balancer") == "caddy"
    (tmp_path / state.STATE_FILE).write_text(json.dumps(data))
    assert state.read_state(tmp_path)[0].balancer is BalancerKind.CADDY


def test_lab_info_names_the_key_variable_never_a_value(tmp_path: Path) -> None:
    key, key_file = resolve_api_key(tmp_path, {})
    text = json.dumps(lab_info(tmp_path, key_file).to_json())
    assert key not in text


def test_targets_and_socket_url(tmp_path: Path) -> None:
    info = lab_info(tmp_path)
    assert info.targets() == [
        "https://127.0.0.1:41001",
        "https://127.0.0.1:41002",
        "https://127.0.0.1:41011",
        "https://127.0.0.1:41012",
        "https://127.0.0.1:41013",
    ]
    assert info.socket_url == "wss://127.0.0.1:41001"


def test_default_lab_dir_is_the_environments_or_dot_lab(tmp_path: Path) -> None:
    assert state.default_lab_dir({state.LAB_DIR_ENV: str(tmp_path)}) == tmp_path
    assert state.default_lab_dir({}) == Path(".lab").resolve()


# --- state file -------------------------------------------------------------------------


def test_state_file_round_trip(tmp_path: Path) -> None:
    info = lab_info(tmp_path, tmp_path / "lab.env")
    records = [
        procs.ProcessRecord("inscribe-1", 101, 5001, "/l/1.log", ("python", "-m", "x")),
        procs.ProcessRecord("caddy", 102, 5002, "/l/caddy.log", ("caddy", "run")),
    ]
    state.write_state(tmp_path, info, records, phase="running")
    assert not (tmp_path / "lab.json.tmp").exists()
    again, again_records, phase = state.read_state(tmp_path)
    assert again == info
    assert again_records == records
    assert phase == "running"


def test_no_lab_is_a_state_error(tmp_path: Path) -> None:
    with pytest.raises(LabStateError, match="no lab in"):
        state.read_state(tmp_path)


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("{not json", "Expecting property name"),
        ("{}", "missing 'scenario'"),
        ("[]", "expected a JSON object"),
        ('{"scenario": "healthy", "ports": 3}', "not subscriptable"),
        (
            '{"scenario": "healthy", "ports": {"edge": 1, "lb": 2, "api": 3, "direct": 4}}',
            "expected name -> port",
        ),
        ("PROCESSES_NOT_A_LIST", "processes: expected a list"),
        ("A_PROCESS_WITHOUT_A_PID", "process record without pid"),
        ("A_BAD_MOBILE_LINK", "mobile link: rtt_ms"),
        ("A_BAD_BALANCER", "'traefik' is not a valid BalancerKind"),
    ],
)
def test_unreadable_state_is_a_state_error_saying_why(tmp_path: Path, content: str, reason: str) -> None:
    if content.isupper():  # a state file as write_state writes it, with one thing wrong
        state.write_state(tmp_path, lab_info(tmp_path), [], phase="running")
        data = json.loads((tmp_path / state.STATE_FILE).read_text())
        if content == "PROCESSES_NOT_A_LIST":
            data["processes"] = {"caddy": 1}
        elif content == "A_PROCESS_WITHOUT_A_PID":
            data["processes"] = [{"name": "caddy", "start_ticks": 1, "log": "l"}]
        elif content == "A_BAD_BALANCER":
            data["balancer"] = "traefik"
        else:
            data["mobile_link"] = {"rtt_ms": -5, "jitter_ms": 0}
        content = json.dumps(data)
    (tmp_path / state.STATE_FILE).write_text(content)
    with pytest.raises(LabStateError, match="unreadable lab state") as excinfo:
        state.read_state(tmp_path)
    assert reason in str(excinfo.value)


# --- which backends ---------------------------------------------------------------------------


def test_the_backend_kind_survives_the_state_file(tmp_path: Path) -> None:
    import dataclasses

    from kiloscribe_lab.lab.scenarios import BackendKind

    info = dataclasses.replace(lab_info(tmp_path), backend=BackendKind.NODE)
    assert info.to_json()["backend"] == "node"
    state.write_state(tmp_path, info, [], "running")
    assert state.read_state(tmp_path)[0].backend is BackendKind.NODE
    # A lab.json from before the choice ran python backends.
    raw = json.loads((tmp_path / state.STATE_FILE).read_text())
    del raw["backend"]
    (tmp_path / state.STATE_FILE).write_text(json.dumps(raw))
    assert state.read_state(tmp_path)[0].backend is BackendKind.PYTHON
    raw["backend"] = "cobol"
    (tmp_path / state.STATE_FILE).write_text(json.dumps(raw))
    with pytest.raises(LabStateError, match="unreadable lab state"):
        state.read_state(tmp_path)


def test_an_unreadable_lab_state_is_no_lab_and_says_why(tmp_path: Path) -> None:
    """`probe https://elsewhere` must not fail because ./.lab/lab.json is broken."""
    (tmp_path / "lab.json").write_text("{not json")
    profiles, source = state.known_networks(tmp_path)
    assert profiles == {}
    assert "unreadable" in source and str(tmp_path) in source
