"""The Node backend without Node: its files ship with exact pins, its argv carries no key, and
server.mjs reads exactly BackendBehaviour's fields with BackendBehaviour's checks."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest

from kiloscribe_lab.errors import UsageError
from kiloscribe_lab.lab import node_backend, scenarios
from kiloscribe_lab.lab.scenarios import BackendBehaviour, BackendKind, BackendSpec, backend_kind

SERVER = node_backend.source_dir() / node_backend.SCRIPT


def test_the_package_ships_the_script_and_its_npm_project_pinned_exactly() -> None:
    source = node_backend.source_dir()
    assert {p.name for p in source.iterdir()} >= {"server.mjs", "package.json", "package-lock.json"}
    pins = node_backend.project().pins()
    assert pins == {"socket.io": "4.8.4", "ws": "8.23.0"}
    assert all(re.fullmatch(r"\d+\.\d+\.\d+", v) for v in pins.values())
    lock = json.loads((source / "package-lock.json").read_text())
    assert lock["packages"][""]["dependencies"] == pins  # the lock is of this manifest
    assert lock["packages"]["node_modules/socket.io"]["version"] == "4.8.4"
    assert len(node_backend.project().digest()) == 16


def test_argv_names_the_key_variable_never_the_key(tmp_path: Path) -> None:
    backend = node_backend.NodeBackend("/usr/bin/node", tmp_path / "node" / "server.mjs")
    argv = backend.argv(tmp_path / "backends.json", "inscribe-2", 4242, "KILOSCRIBE_API_KEY")
    assert argv[:2] == ["/usr/bin/node", str(tmp_path / "node" / "server.mjs")]
    assert argv[argv.index("--name") + 1] == "inscribe-2" and argv[argv.index("--port") + 1] == "4242"
    assert argv[argv.index("--api-key-env") + 1] == "KILOSCRIBE_API_KEY"


def test_server_reads_exactly_the_behaviours_fields() -> None:
    text = SERVER.read_text()
    block = text[text.index("const BEHAVIOUR_KEYS") : text.index("});", text.index("const BEHAVIOUR_KEYS"))]
    keys = re.findall(r"^  (\w+): \[", block, flags=re.MULTILINE)
    assert sorted(keys) == sorted(f.name for f in dataclasses.fields(BackendBehaviour))
    assert len(keys) == len(set(keys))


def test_server_checks_paths_and_origins_as_the_behaviour_does() -> None:
    text = SERVER.read_text().replace("\\/", "/")
    assert f"const PATH_RE = /{scenarios._PATH_RE.pattern}/;" in text
    assert f"const ORIGIN_RE = /{scenarios._ORIGIN_RE.pattern}/;" in text


def test_server_defaults_are_the_behaviours() -> None:
    text = SERVER.read_text()
    defaults = BackendBehaviour()
    for js, value in [
        ("path", json.dumps(defaults.path)),
        ("pingIntervalMs", str(defaults.ping_interval_ms)),
        ("pingTimeoutMs", str(defaults.ping_timeout_ms)),
        ("maxHttpBufferSize", "1e6"),
        ("acksInscription", "true"),
        ("corsOrigins", "null"),
        ("stallEventLoopMs", "0"),
    ]:
        assert re.search(rf"^  {js}: {re.escape(value)},$", text, flags=re.MULTILINE), js
    assert defaults.max_http_buffer_size == 1_000_000


def test_the_backend_kind_is_the_command_lines_else_the_scenarios_else_python() -> None:
    assert backend_kind(None, BackendSpec()) is BackendKind.PYTHON
    assert backend_kind(None, BackendSpec(kind=BackendKind.NODE)) is BackendKind.NODE
    assert backend_kind("python", BackendSpec(kind=BackendKind.NODE)) is BackendKind.PYTHON
    assert backend_kind(BackendKind.NODE, BackendSpec()) is BackendKind.NODE
    with pytest.raises(UsageError, match="unknown backend 'ruby'; known backends: python, node"):
        backend_kind("ruby", BackendSpec())
    assert all(s.backends.kind is None for s in scenarios.SCENARIOS.values())  # none needs one yet
