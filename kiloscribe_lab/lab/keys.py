"""The key a lab accepts: named by an environment variable, never passed as a value.

``$KILOSCRIBE_API_KEY`` when it is set; otherwise one generated into ``<lab>/lab.env`` (mode
0600) and reused by every later ``lab up`` in that directory. Lab processes get it in their
environment only (backends), or not at all (Caddy, the proxies).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from pathlib import Path

from kiloscribe_lab.lab.state import LAB_DIR_ENV, LabInfo

API_KEY_ENV = "KILOSCRIBE_API_KEY"
KEY_FILE = "lab.env"


def resolve_api_key(lab_dir: Path, environ: Mapping[str, str]) -> tuple[str, Path | None]:
    """The key the lab accepts: ``$KILOSCRIBE_API_KEY``, else one kept in ``lab.env`` (0600).

    A generated key is reused across ``lab up`` runs in the same directory, so a shell
    that sourced ``lab.env`` once keeps working.
    """
    from_env = environ.get(API_KEY_ENV, "")
    if from_env:
        return from_env, None
    key_file = lab_dir / KEY_FILE
    existing = read_env_file(key_file).get(API_KEY_ENV)
    if existing:
        return existing, key_file
    key = "lab-" + secrets.token_urlsafe(24)
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(f"{API_KEY_ENV}={key}\n")
    key_file.chmod(0o600)
    return key, key_file


def read_env_file(path: Path) -> dict[str, str]:
    """``NAME=value`` lines; a missing file is empty."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}
    values = {}
    for line in text.splitlines():
        name, sep, value = line.strip().partition("=")
        if sep and name and not name.startswith("#"):
            values[name.strip()] = value.strip()
    return values


def lab_environment(info: LabInfo, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """An environment in which clients find the lab's key under ``info.api_key_env`` and the
    lab itself under ``$KILOSCRIBE_LAB_DIR`` (so ``--network NAME`` finds its networks)."""
    env = dict(os.environ if base is None else base)
    if info.api_key_file is not None and not env.get(info.api_key_env):
        env.update(read_env_file(info.api_key_file))
    env[LAB_DIR_ENV] = str(info.lab_dir)
    return env
