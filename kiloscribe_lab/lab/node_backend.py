"""The lab's Node backends (``lab up --backend node``): ``node/server.mjs``, the mock Kiloscribe
service on the reference Socket.IO server (Node socket.io 4.8), reading the same
``backends.json`` as ``backend.py``.

Its npm packages (``node/package.json``, exact pins, and the committed ``package-lock.json``) are
installed with ``npm ci`` into the toolchain's cache (``$KILOSCRIBE_LAB_CACHE``, else
``~/.cache/kiloscribe-lab``) under ``node/node-backend/<hash of both files>``, on first use,
within a deadline. Each lab runs its own copy of the script from ``<lab>/node/``, beside a
``node_modules`` link into the cache, so the lab directory shows what ran.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from kiloscribe_lab.toolchain.node import resolve_node
from kiloscribe_lab.toolchain.npm import NPM_TIMEOUT_S, NpmProject, default_cache_dir, ensure_project, stage
from kiloscribe_lab.toolchain.subproc import blocking

LOG = logging.getLogger(__name__)
SCRIPT = "server.mjs"
PROJECT_NAME = "node-backend"
DIRECTORY = "node"  # in the lab directory


def source_dir() -> Path:
    """The package's ``lab/node`` (package data in the wheel, the checkout's own files when editable)."""
    return Path(str(resources.files("kiloscribe_lab.lab").joinpath("node")))


def project() -> NpmProject:
    return NpmProject(PROJECT_NAME, source_dir())


@dataclass(frozen=True, slots=True)
class NodeBackend:
    node: str  # the executable
    script: Path  # <lab>/node/server.mjs

    def argv(self, config: Path, name: str, port: int, api_key_env: str) -> list[str]:
        return [
            self.node, str(self.script), "--config", str(config), "--name", name,
            "--port", str(port), "--api-key-env", api_key_env,
        ]  # fmt: skip


def prepare(lab_dir: Path, environ: Mapping[str, str], *, timeout_s: float = NPM_TIMEOUT_S) -> NodeBackend:
    """Node and the installed packages (npm ci on first use), the script staged in the lab.
    ToolchainMissingError when node or npm is not there, ToolchainError when npm fails."""
    node = resolve_node(None, environ, purpose="the lab's --backend node runs socket.io in Node.js")
    install = blocking(
        lambda: ensure_project(
            project(),
            cache_dir=default_cache_dir(environ),
            environ=environ,
            timeout_s=timeout_s,
            notify=LOG.warning,
        )
    )
    directory = stage(install, lab_dir / DIRECTORY, [source_dir() / SCRIPT])
    return NodeBackend(node, directory / SCRIPT)
