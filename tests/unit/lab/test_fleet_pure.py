"""The lab's pure parts: the key file, the JSON a running lab is described by, its state file."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from kiloscribe_lab.errors import LabStateError
from kiloscribe_lab.lab import fleet, procs
from kiloscribe_lab.names import FindingId
from tests.unit.lab.samples import lab_info

CLI_KEYS = {"scenario", "edge", "lb", "backends", "api", "ca_bundle", "api_key_env", "networks"}


# --- read_env_file ----------------------------------------------------------------------


def test_read_env_file_missing_is_empty(tmp_path: Path) -> None:
    assert fleet.read_env_file(tmp_path / "lab.env") == {}


def test_read_env_file_parses_name_value_lines(tmp_path: Path) -> None:
    path = tmp_path / "lab.env"
    path.write_text(
        "# a comment=ignored\n"
        "\n"
        "KILOSCRIBE_API_KEY=lab-abc=def\n"
        "  SPACED = value with spaces  \n"
        "no separator here\n"
        "=no-name\n"
    )
    assert fleet.read_env_file(path) == {
        "KILOSCRIBE_API_KEY": "lab-abc=def",
        "SPACED": "value with spaces",
    }


# --- resolve_api_key --------------------------------------------------------------------


def test_resolve_api_key_generates_a_0600_key_file_and_reuses_it(tmp_path: Path) -> None:
    key, key_file = fleet.resolve_api_key(tmp_path, {})
    assert key_file == tmp_path / fleet.KEY_FILE
    assert key.startswith("lab-") and len(key) > 20
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert key_file.read_text() == f"KILOSCRIBE_API_KEY={key}\n"

    again, again_file = fleet.resolve_api_key(tmp_path, {"OTHER": "x"})
    assert (again, again_file) == (key, key_file)


def test_resolve_api_key_generates_a_new_key_per_lab_dir(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    key_a, _ = fleet.resolve_api_key(tmp_path / "a", {})
    key_b, _ = fleet.resolve_api_key(tmp_path / "b", {})
    assert key_a != key_b


def test_resolve_api_key_prefers_the_environment_and_writes_nothing(tmp_path: Path) -> None:
    key, key_file = fleet.resolve_api_key(tmp_path, {fleet.API_KEY_ENV: "from-env"})
    assert (key, key_file) == ("from-env", None)
    assert list(tmp_path.iterdir()) == []


def test_an_empty_environment_value_counts_as_unset(tmp_path: Path) -> None:
    key, key_file = fleet.resolve_api_key(tmp_path, {fleet.API_KEY_ENV: ""})
    assert key and key_file == tmp_path / fleet.KEY_FILE


def test_lab_environment_adds_the_generated_key_unless_already_set(tmp_path: Path) -> None:
    key, key_file = fleet.resolve_api_key(tmp_path, {})
    info = lab_info(tmp_path, key_file)
    assert fleet.lab_environment(info, {"PATH": "/bin"}) == {
        "PATH": "/bin",
        fleet.API_KEY_ENV: key,
        fleet.LAB_DIR_ENV: str(tmp_path),  # where `--network NAME` finds the lab's networks
    }
    assert fleet.lab_environment(info, {fleet.API_KEY_ENV: "mine"})[fleet.API_KEY_ENV] == "mine"
    no_file = lab_info(tmp_path, None)
    assert fleet.API_KEY_ENV not in fleet.lab_environment(no_file, {"PATH": "/bin"})


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


def test_lab_info_names_the_key_variable_never_a_value(tmp_path: Path) -> None:
    key, key_file = fleet.resolve_api_key(tmp_path, {})
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


# --- state file -------------------------------------------------------------------------


def test_state_file_round_trip(tmp_path: Path) -> None:
    info = lab_info(tmp_path, tmp_path / "lab.env")
    records = [
        procs.ProcessRecord("inscribe-1", 101, 5001, "/l/1.log", ("python", "-m", "x")),
        procs.ProcessRecord("caddy", 102, 5002, "/l/caddy.log", ("caddy", "run")),
    ]
    fleet._write_state(tmp_path, info, records, phase="running")
    assert not (tmp_path / "lab.json.tmp").exists()
    again, again_records, phase = fleet._read_state(tmp_path)
    assert again == info
    assert again_records == records
    assert phase == "running"
    assert fleet.attach(tmp_path) == info


def test_no_lab_is_a_state_error_and_down_is_a_no_op(tmp_path: Path) -> None:
    with pytest.raises(LabStateError, match="no lab in"):
        fleet.attach(tmp_path)
    with pytest.raises(LabStateError):
        fleet.status(tmp_path)
    assert fleet.down(tmp_path) == []


@pytest.mark.parametrize("content", ["{not json", "{}", '{"scenario": "healthy", "ports": 3}'])
def test_unreadable_state_is_a_state_error_not_a_traceback(tmp_path: Path, content: str) -> None:
    (tmp_path / fleet.STATE_FILE).write_text(content)
    with pytest.raises(LabStateError, match="unreadable lab state"):
        fleet.attach(tmp_path)
    with pytest.raises(LabStateError):
        fleet.down(tmp_path)  # never silently forget processes it cannot read
