"""Where Node.js and npm are: an executable given by path, or a name looked up on the PATH of
the environment the child will run in (not ours: a caller may hand its child another PATH)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from pathlib import Path

from kiloscribe_lab.errors import ToolchainMissingError


def resolve_node(node: str | None, environ: Mapping[str, str], *, purpose: str) -> str:
    """The executable for ``--node`` (a path, or a name looked up on the environment's PATH).
    ``purpose`` ends the error's sentence: why Node.js is needed here."""
    name = node or "node"
    if os.sep in name:
        path = Path(name).expanduser()
        if not path.is_file() or not os.access(path, os.X_OK):
            raise ToolchainMissingError(f"--node {name}: no executable file there")
        return str(path.resolve())
    found = shutil.which(name, path=environ.get("PATH", os.defpath))
    if found is None:
        what = "Node.js (`node`) is not on PATH" if node is None else f"--node {name}: not found on PATH"
        raise ToolchainMissingError(f"{what}; {purpose}")
    return found


def resolve_npm(environ: Mapping[str, str], *, purpose: str) -> str:
    """npm on the environment's PATH; ``purpose`` says what it is needed for (once)."""
    found = shutil.which("npm", path=environ.get("PATH", os.defpath))
    if found is None:
        raise ToolchainMissingError(f"npm is not on PATH; it is needed once, {purpose}")
    return found
