"""JupyterLab smoke test: the server starts on loopback, lists the notebooks and opens them."""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.timeout(120)

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
EXPECTED = {"probe_endpoint.ipynb", "findings_report.ipynb", "investigate.ipynb"}


def test_jupyterlab_lists_and_opens_the_notebooks(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # a first choice: jupyter moves on if it was taken since
    token = secrets.token_hex(16)
    env = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(tmp_path / "config"),
        "JUPYTER_DATA_DIR": str(tmp_path / "data"),
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
        "HOME": str(tmp_path),
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyterlab",
            "--no-browser",
            "--ip=127.0.0.1",
            f"--port={port}",
            f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={NOTEBOOKS}",
            "--ServerApp.port_retries=20",
            *(["--allow-root"] if os.geteuid() == 0 else []),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
        start_new_session=True,
    )
    headers = {"Authorization": f"token {token}"}
    try:
        deadline = time.monotonic() + 60
        listing = None
        with httpx.Client(timeout=2, trust_env=False) as client:
            while time.monotonic() < deadline and proc.poll() is None:
                # The server's runtime file says where it really listens.
                try:
                    (found,) = (tmp_path / "runtime").glob("jpserver-*.json")
                    base = f"http://127.0.0.1:{json.loads(found.read_text())['port']}"
                except ValueError:  # not written yet, or half-written
                    time.sleep(0.2)
                    continue
                try:
                    listing = client.get(f"{base}/api/contents", headers=headers)
                    break
                except httpx.TransportError:
                    time.sleep(0.2)
            assert listing is not None and listing.status_code == 200, "JupyterLab did not start"
            names = {item["name"] for item in listing.json()["content"]}
            assert names >= EXPECTED
            for name in EXPECTED:
                opened = client.get(f"{base}/api/contents/{name}", headers=headers)
                assert opened.status_code == 200 and opened.json()["type"] == "notebook"
                assert opened.json()["content"]["cells"], name
            lab_page = client.get(f"{base}/lab", headers=headers)
            assert lab_page.status_code == 200 and "JupyterLab" in lab_page.text
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
