"""The backends' config, ``<lab>/backends.json``: written by ``lab up`` from the scenario's
entry, read by each backend process (``backend.py``).

Pure, and free of the backend's server libraries, so the lab's CLI can write it (and know the
backends' health path) without importing python-socketio or uvicorn.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kiloscribe_lab.errors import ConfigError
from kiloscribe_lab.lab.scenarios import BackendBehaviour, Scenario
from kiloscribe_lab.names import BackendHeader

BACKEND_HEADER: str = BackendHeader.LAB
HEALTH_PATH = "/api/health"  # the lab's readiness check: answered by every backend, stalled ones too
FILE = "backends.json"


@dataclass(frozen=True, slots=True)
class BackendConfig:
    name: str
    scenario: str
    api_key: str
    servers: list[dict[str, Any]]
    recommended: str
    behaviour: BackendBehaviour


def render_backends_json(scenario: Scenario, socket_url: str) -> str:
    """``backends.json``: what discovery answers (the edge, as production lists its CDN
    host) and each backend's behaviour, from the scenario's entry."""
    server = {"url": socket_url, "region": "lab-local", "status": "active", "priority": 1, "activeJobs": 0}
    config = {
        "scenario": scenario.name,
        "servers": [server],
        "recommended": socket_url,
        "backends": {name: b.to_json() for name, b in scenario.backends.by_name().items()},
    }
    return json.dumps(config, indent=2) + "\n"


def load_backend_config(path: Path, name: str, api_key: str) -> BackendConfig:
    """Backend ``name``'s config from ``path``; ConfigError when it is not what ``lab up`` wrote."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return BackendConfig(
            name=name,
            scenario=str(data["scenario"]),
            api_key=api_key,
            servers=list(data["servers"]),
            recommended=str(data["recommended"]),
            behaviour=BackendBehaviour.from_json(data["backends"][name]),
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(
            f"{path}: not a lab backends file for {name} ({type(exc).__name__}: {exc})"
        ) from exc
