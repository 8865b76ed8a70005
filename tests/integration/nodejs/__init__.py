"""The tests' Node instruments: software no one here wrote, pinned exactly in this folder's
``package.json`` and ``package-lock.json`` (socket.io-client, the reference socket.io server,
``ws``), installed with ``npm ci`` into the toolchain's cache as the lab's Node backend is, and
the scripts that drive them (``sioclient.mjs``, ``reference-server.mjs``, ``plain-ws.mjs``)."""

from __future__ import annotations

import os
from pathlib import Path

from kiloscribe_lab.toolchain.node import resolve_node
from kiloscribe_lab.toolchain.npm import NpmProject, default_cache_dir, ensure_project, stage
from kiloscribe_lab.toolchain.subproc import blocking

HERE = Path(__file__).resolve().parent
PROJECT = NpmProject("test-instruments", HERE)
SCRIPTS = ("sioclient.mjs", "reference-server.mjs", "plain-ws.mjs")


async def ensure_instruments() -> Path:
    """The directory the instruments' scripts run from (beside their node_modules)."""
    environ = dict(os.environ)
    install = await ensure_project(PROJECT, cache_dir=default_cache_dir(environ), environ=environ)
    return stage(install, install.root / "scripts", [HERE / name for name in SCRIPTS])


def instruments() -> Path:
    """``ensure_instruments`` for synchronous code (a fixture, a context manager in a test)."""
    return blocking(ensure_instruments)


def node() -> str:
    return resolve_node(None, os.environ, purpose="the tests' real clients and foreign servers run in it")
