"""backends.json: rendered from the scenario's entry, read back by each backend process."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kiloscribe_lab.errors import ConfigError
from kiloscribe_lab.lab.backend_config import load_backend_config, render_backends_json
from kiloscribe_lab.lab.scenarios import BACKENDS, SCENARIOS, BackendBehaviour

SOCKET_URL = "wss://127.0.0.1:41001"


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_each_backend_reads_back_its_behaviour_from_the_entry(tmp_path: Path, name: str) -> None:
    scenario = SCENARIOS[name]
    path = tmp_path / "backends.json"
    path.write_text(render_backends_json(scenario, SOCKET_URL))
    for backend in BACKENDS:
        config = load_backend_config(path, backend, "k")
        assert config.behaviour == scenario.backends.behaviour(backend)
        assert (config.name, config.scenario, config.api_key) == (backend, name, "k")
        assert config.recommended == SOCKET_URL
        assert [s["url"] for s in config.servers] == [SOCKET_URL]


def test_the_file_holds_no_key_and_is_plain_json() -> None:
    data = json.loads(render_backends_json(SCENARIOS["incident"], SOCKET_URL))
    assert set(data) == {"scenario", "servers", "recommended", "backends"}
    assert data["backends"]["inscribe-2"]["state"] == "down"
    first = data["backends"]["inscribe-1"]
    assert {k: first[k] for k in ("state", "root_redirect", "auth_broken")} == {
        "state": "up",
        "root_redirect": True,
        "auth_broken": False,
    }
    # Every field, the ones at engine.io's defaults too: both backends read the same file.
    assert first == BackendBehaviour(root_redirect=True).to_json()
    assert first["transports"] == ["polling", "websocket"] and first["cors_origins"] is None


@pytest.mark.parametrize(
    "content",
    ["{not json", "{}", '{"scenario": "x", "servers": [], "recommended": "u", "backends": {}}'],
)
def test_a_file_that_is_not_ours_is_a_config_error(tmp_path: Path, content: str) -> None:
    path = tmp_path / "backends.json"
    path.write_text(content)
    with pytest.raises(ConfigError, match="not a lab backends file for inscribe-1"):
        load_backend_config(path, "inscribe-1", "k")
    with pytest.raises(ConfigError, match="not a lab backends file"):
        load_backend_config(tmp_path / "missing.json", "inscribe-1", "k")
