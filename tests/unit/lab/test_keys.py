"""The key a lab accepts: the key file, generated and reused, and the environment clients get."""

from __future__ import annotations

import stat
from pathlib import Path

from kiloscribe_lab.lab import keys
from kiloscribe_lab.lab.state import LAB_DIR_ENV
from tests.unit.lab.samples import lab_info

# --- read_env_file ----------------------------------------------------------------------


def test_read_env_file_missing_is_empty(tmp_path: Path) -> None:
    assert keys.read_env_file(tmp_path / "lab.env") == {}


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
    assert keys.read_env_file(path) == {
        "KILOSCRIBE_API_KEY": "lab-abc=def",
        "SPACED": "value with spaces",
    }


# --- resolve_api_key --------------------------------------------------------------------


def test_resolve_api_key_generates_a_0600_key_file_and_reuses_it(tmp_path: Path) -> None:
    key, key_file = keys.resolve_api_key(tmp_path, {})
    assert key_file == tmp_path / keys.KEY_FILE
    assert key.startswith("lab-") and len(key) > 20
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert key_file.read_text() == f"KILOSCRIBE_API_KEY={key}\n"

    again, again_file = keys.resolve_api_key(tmp_path, {"OTHER": "x"})
    assert (again, again_file) == (key, key_file)


def test_resolve_api_key_generates_a_new_key_per_lab_dir(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    key_a, _ = keys.resolve_api_key(tmp_path / "a", {})
    key_b, _ = keys.resolve_api_key(tmp_path / "b", {})
    assert key_a != key_b


def test_resolve_api_key_prefers_the_environment_and_writes_nothing(tmp_path: Path) -> None:
    key, key_file = keys.resolve_api_key(tmp_path, {keys.API_KEY_ENV: "from-env"})
    assert (key, key_file) == ("from-env", None)
    assert list(tmp_path.iterdir()) == []


def test_an_empty_environment_value_counts_as_unset(tmp_path: Path) -> None:
    key, key_file = keys.resolve_api_key(tmp_path, {keys.API_KEY_ENV: ""})
    assert key and key_file == tmp_path / keys.KEY_FILE


def test_lab_environment_adds_the_generated_key_unless_already_set(tmp_path: Path) -> None:
    key, key_file = keys.resolve_api_key(tmp_path, {})
    info = lab_info(tmp_path, key_file)
    assert keys.lab_environment(info, {"PATH": "/bin"}) == {
        "PATH": "/bin",
        keys.API_KEY_ENV: key,
        LAB_DIR_ENV: str(tmp_path),  # where `--network NAME` finds the lab's networks
    }
    assert keys.lab_environment(info, {keys.API_KEY_ENV: "mine"})[keys.API_KEY_ENV] == "mine"
    no_file = lab_info(tmp_path, None)
    assert keys.API_KEY_ENV not in keys.lab_environment(no_file, {"PATH": "/bin"})
