"""Software no one here wrote, started on loopback for the diagnosis tests: a plain ``ws``
server (no Engine.IO), the reference Node socket.io 4.8 server with default options, and a bare
python-socketio server with ``cors_allowed_origins``. Each is a context manager that always
stops its process group; the pytest fixtures of the same names (``tests/integration/conftest.py``
imports them) give one per module."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from tests.integration import nodejs
from tests.integration.loopback import Running, listening_port, serving

HERE = Path(__file__).resolve().parent
APP_ORIGIN = "https://app.kiloscribe.test"


def _serve(name: str, argv: list[str], workdir: Path) -> contextlib.AbstractContextManager[Running]:
    workdir.mkdir(parents=True, exist_ok=True)
    log = workdir / f"{name}.log"
    return serving(name, argv, log=log, env=dict(os.environ), ready=lambda: listening_port(log))


@contextlib.contextmanager
def plain_ws(workdir: Path, greeting: str | None = None) -> Iterator[Running]:
    """npm ``ws``: 426 to plain requests, 101 on any path, then ``greeting`` (if any) and echoes."""
    scripts = nodejs.instruments()
    argv = [nodejs.node(), str(scripts / "plain-ws.mjs")]
    if greeting is not None:
        argv += ["--greeting", greeting]
    with _serve("plain-ws", argv, workdir) as running:
        yield running


@contextlib.contextmanager
def reference_socketio(
    workdir: Path, *, ping_interval_ms: int | None = None, max_http_buffer_size: int | None = None
) -> Iterator[Running]:
    """socket.io 4.8 as documented: ``new Server(httpServer)``, every option at its default but
    the heartbeat and the message limit when given."""
    scripts = nodejs.instruments()
    argv = [nodejs.node(), str(scripts / "reference-server.mjs")]
    if ping_interval_ms is not None:
        argv += ["--ping-interval", str(ping_interval_ms)]
    if max_http_buffer_size is not None:
        argv += ["--max-http-buffer-size", str(max_http_buffer_size)]
    with _serve("reference-socketio", argv, workdir) as running:
        yield running


@contextlib.contextmanager
def python_socketio_cors(workdir: Path, origins: Sequence[str] = (APP_ORIGIN,)) -> Iterator[Running]:
    """python-socketio with ``cors_allowed_origins=origins``: other Origins get 400 (polling), 403 (WS)."""
    argv = [sys.executable, str(HERE / "pyserver.py")]
    for origin in origins:
        argv += ["--cors-origin", origin]
    with _serve("python-socketio-cors", argv, workdir) as running:
        yield running


@pytest.fixture(scope="module")
def plain_ws_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    with plain_ws(tmp_path_factory.mktemp("plain-ws")) as running:
        yield running


@pytest.fixture(scope="module")
def reference_socketio_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    with reference_socketio(tmp_path_factory.mktemp("reference-socketio")) as running:
        yield running


@pytest.fixture(scope="module")
def python_socketio_cors_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    with python_socketio_cors(tmp_path_factory.mktemp("python-socketio-cors")) as running:
        yield running
