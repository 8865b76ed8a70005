"""The user's Node.js runtime: find it, and learn whether it has a global ``WebSocket``.

Two quick runs of ``node -e`` (tens of milliseconds each): the runtime as the user has it
(their ``NODE_OPTIONS`` included), then, only when that one has no ``WebSocket`` global,
with ``--experimental-websocket`` to learn whether this Node offers the flag. A Node without
the flag gets the ``ws`` shim installed next to the SDK instead.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

from kiloscribe_lab.errors import ToolchainError
from kiloscribe_lab.toolchain.node import resolve_node
from kiloscribe_lab.toolchain.subproc import run_bounded

NODE_PROBE_TIMEOUT_S = 15.0
EXPERIMENTAL_WEBSOCKET_FLAG = "--experimental-websocket"
_PROBE_JS = (
    "process.stdout.write(JSON.stringify({version: process.version, "
    "websocket: typeof globalThis.WebSocket, xhr: typeof globalThis.XMLHttpRequest}))"
)


@dataclass(frozen=True, slots=True)
class NodeRuntime:
    path: str  # the executable, resolved
    version: str  # "v20.20.2"
    websocket_global: bool  # the runtime as the user runs it has globalThis.WebSocket
    websocket_flag: bool  # `--experimental-websocket` gives it one (meaningful when the above is False)


async def _probe(path: str, flags: list[str], environ: Mapping[str, str]) -> dict[str, str] | str:
    """The runtime's facts, or why it is not a usable Node.js."""
    try:
        done = await run_bounded([path, *flags, "-e", _PROBE_JS], env=environ, timeout_s=NODE_PROBE_TIMEOUT_S)
    except OSError as exc:
        return f"cannot run it ({exc.strerror or exc})"
    if done.timed_out:
        return f"no answer within {NODE_PROBE_TIMEOUT_S:g} s"
    if done.returncode != 0:
        return f"exit {done.returncode}" + (f": {done.stderr_tail(1)}" if done.stderr.strip() else "")
    try:
        data = json.loads(done.stdout)
    except json.JSONDecodeError:
        return "it does not answer like Node.js"
    if not isinstance(data, dict) or not str(data.get("version", "")).startswith("v"):
        return "it does not answer like Node.js"
    return {str(k): str(v) for k, v in data.items()}


async def inspect_node(node: str | None, environ: Mapping[str, str]) -> NodeRuntime:
    path = resolve_node(node, environ, purpose="sdk-check runs the SDK in Node.js")
    plain = await _probe(path, [], environ)
    if isinstance(plain, str):
        raise ToolchainError(f"--node {node or path}: not a usable Node.js ({plain})")
    has_global = plain.get("websocket") == "function"
    flag = False
    if not has_global:
        flagged = await _probe(path, [EXPERIMENTAL_WEBSOCKET_FLAG], environ)
        flag = isinstance(flagged, dict) and flagged.get("websocket") == "function"
    return NodeRuntime(path=path, version=plain["version"], websocket_global=has_global, websocket_flag=flag)
