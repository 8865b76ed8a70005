"""``sdk_check``: run the published SDK, in the user's Node runtime, against one endpoint.

It runs the replay program (``replay.mjs``) twice, concurrently:

* ``plain``: the runtime as the user has it (``--node``, default ``node`` on PATH, with the
  caller's environment, ``NODE_OPTIONS`` included);
* ``websocket``: the same Node with a global ``WebSocket`` provided — ``--experimental-websocket``
  where this Node has the flag, else the ``ws`` package installed beside the SDK — so the
  runtime's effect is isolated. Skipped when the plain runtime already has the global.

Validation comes first and costs nothing (one line, exit 2): the URL, the CA file, the key
variable, the version's form, then Node itself; the SDK is installed (first use only) last.
The API key reaches Node through the environment variable the caller names, never argv.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from kiloscribe_lab.credentials import INVALID_KEY, is_env_name, read_key
from kiloscribe_lab.endpoints import parse_endpoint, split_label
from kiloscribe_lab.errors import UsageError
from kiloscribe_lab.names import SdkMode, SdkStep
from kiloscribe_lab.results import ProbeResult
from kiloscribe_lab.sdk.install import DEFAULT_SDK_VERSION, SdkInstall, absolute, ensure_sdk
from kiloscribe_lab.sdk.node import EXPERIMENTAL_WEBSOCKET_FLAG, NodeRuntime, inspect_node
from kiloscribe_lab.sdk.parse import ReplayRun, results_from_run
from kiloscribe_lab.toolchain.npm import Notify, default_cache_dir
from kiloscribe_lab.toolchain.subproc import run_bounded

PROGRAM = "replay.mjs"
NETWORK = "testnet"
# Any REST call the SDK might make without --api-base fails here, on loopback, instead of
# reaching the SDK's hard-coded production API.
NO_API_BASE = "http://127.0.0.1:9/kiloscribe-lab-no-api-base"
PROBE_FILE_URL = "https://example.invalid/kiloscribe-lab-sdk-check.png"
INSCRIPTION_REQUEST: dict[str, Any] = {
    # What an SDK user passes (StartInscriptionRequest); the SDK emits it as is, plus `network`.
    "file": {"type": "url", "url": PROBE_FILE_URL, "mimeType": "image/png"},
    "holderId": "0.0.1",
    "mode": "file",
    "creator": "kiloscribe-lab",
    "description": "kiloscribe-lab sdk-check: stopped at the ack, no transaction is executed",
}


@dataclass(frozen=True, slots=True)
class Deadlines:
    """Ours, in milliseconds, each above the SDK timer it bounds; node itself gets a backstop."""

    connect_ms: int = 11_000  # connectWebSocket's own timer is 10 s
    detect_ms: int = 4_000  # detectBestConnection's is 3 s
    discover_ms: int = 5_000
    check_ms: int = 2_000  # the upgrade check after a transport error
    ack_ms: int = 5_000  # start-inscription to its ack (the SDK would wait 60 s)
    startup_ms: int = 15_000  # node start + importing the SDK (about 0.5 s measured)

    @property
    def node_total_ms(self) -> int:
        first = max(self.connect_ms + self.check_ms, self.detect_ms, self.discover_ms)
        return self.startup_ms + first + self.ack_ms + 1_000

    @property
    def process_s(self) -> float:
        """When we kill node's process group, if its own backstop did not end it."""
        return self.node_total_ms / 1000 + 2.0

    def to_json(self) -> dict[str, int]:
        return {
            "connect_ms": self.connect_ms,
            "detect_ms": self.detect_ms,
            "discover_ms": self.discover_ms,
            "check_ms": self.check_ms,
            "ack_ms": self.ack_ms,
            "total_ms": self.node_total_ms,
        }


DEADLINES = Deadlines()


def program_path() -> Path:
    return Path(str(resources.files("kiloscribe_lab.sdk").joinpath(PROGRAM)))


def _split_label(url: str, label: str | None) -> tuple[str, str | None]:
    """``LABEL=URL`` names a target in findings, as for ``probe``."""
    target, name = split_label(url)
    return target, label or name


def validate(
    url: str,
    *,
    api_base: str | None,
    api_key_env: str | None,
    ca_bundle: Path | None,
    environ: Mapping[str, str],
) -> None:
    parse_endpoint(url)
    if api_base is not None:
        parse_endpoint(api_base)
    if ca_bundle is not None and not ca_bundle.is_file():
        raise UsageError(f"CA bundle {ca_bundle} does not exist")
    if api_key_env is not None:
        if not is_env_name(api_key_env):
            raise UsageError("--api-key-env takes an environment variable NAME such as KILOSCRIBE_API_KEY")
        read_key(api_key_env, environ)


def plan_modes(rt: NodeRuntime, runtimes: Sequence[str], websocket_provider: str) -> dict[SdkMode, str]:
    """{mode: how the WebSocket global comes about}; ``websocket`` is dropped when redundant."""
    unknown = [m for m in runtimes if m not in set(SdkMode)]
    if unknown:
        raise UsageError(f"unknown runtime {unknown[0]!r}; known: {', '.join(SdkMode)}")
    if websocket_provider not in {"auto", "flag", "shim"}:
        raise UsageError(f"websocket_provider must be auto, flag or shim, got {websocket_provider!r}")
    plan: dict[SdkMode, str] = {}
    if SdkMode.PLAIN in runtimes:
        plan[SdkMode.PLAIN] = "as-is"
    if SdkMode.WEBSOCKET in runtimes and not (rt.websocket_global and SdkMode.PLAIN in runtimes):
        if rt.websocket_global:
            plan[SdkMode.WEBSOCKET] = "as-is"
        elif websocket_provider == "flag" and not rt.websocket_flag:
            raise UsageError(f"node {rt.version} has no {EXPERIMENTAL_WEBSOCKET_FLAG} flag")
        elif websocket_provider == "shim" or not rt.websocket_flag:
            plan[SdkMode.WEBSOCKET] = "shim"
        else:
            plan[SdkMode.WEBSOCKET] = "flag"
    return plan


def replay_config(
    *,
    mode: str,
    provider: str,
    url: str,
    api_base: str | None,
    api_key_env: str | None,
    install: SdkInstall,
    deadlines: Deadlines,
    inscription: bool = True,
) -> dict[str, Any]:
    """The program's argv config. No secret: the key is read from ``api_key_env`` in its env."""
    return {
        "mode": mode,
        "websocket": provider,
        "ws_url": url,
        "api_base": api_base,
        "no_api_base": NO_API_BASE,
        "api_key_env": api_key_env,
        "invalid_key": INVALID_KEY,
        "network": NETWORK,
        "sdk_version": install.version,
        "sdk_entry": str(install.entry),
        "sdk_root": str(install.root),
        "start_inscription": inscription,
        "request": INSCRIPTION_REQUEST,
        "deadlines": deadlines.to_json(),
    }


async def _replay(
    rt: NodeRuntime,
    argv: list[str],
    env: Mapping[str, str],
    run: ReplayRun,
    deadlines: Deadlines,
    cwd: Path,
) -> list[ProbeResult]:
    done = await run_bounded(argv, env=env, timeout_s=deadlines.process_s, cwd=cwd)
    return results_from_run(
        dataclasses.replace(
            run,
            stdout=done.stdout,
            returncode=done.returncode,
            deadline_s=deadlines.process_s,
            stderr_tail=done.stderr_tail(),
            node_version=rt.version,
            node_path=rt.path,
        )
    )


async def sdk_check(
    url: str,
    *,
    api_base: str | None = None,
    api_key_env: str | None = None,
    sdk_version: str = DEFAULT_SDK_VERSION,
    node: str | None = None,
    ca_bundle: Path | None = None,
    environ: Mapping[str, str] | None = None,
    cache_dir: Path | None = None,
    label: str | None = None,
    runtimes: Sequence[str] = tuple(SdkMode),
    websocket_provider: str = "auto",
    deadlines: Deadlines = DEADLINES,
    notify: Notify | None = None,
    inscription: bool = True,
) -> list[ProbeResult]:
    """ProbeResults of probe ``sdk_replay`` for ``url`` (``LABEL=URL`` accepted), one per runtime
    and step. Raises UsageError/SecretError for bad input, ToolchainMissingError when node or
    npm is not there, ToolchainError when they fail; never for what the endpoint does."""
    env = dict(os.environ if environ is None else environ)
    target, label = _split_label(url, label)
    validate(target, api_base=api_base, api_key_env=api_key_env, ca_bundle=ca_bundle, environ=env)
    rt = await inspect_node(node, env)
    modes = plan_modes(rt, runtimes, websocket_provider)
    install = await ensure_sdk(
        sdk_version, cache_dir=cache_dir or default_cache_dir(env), environ=env, notify=notify
    )
    node_env = dict(env)
    if ca_bundle is not None:
        node_env["NODE_EXTRA_CA_CERTS"] = str(absolute(ca_bundle))
    secret = env.get(api_key_env, "") if api_key_env else ""
    expected: tuple[SdkStep, ...] = (SdkStep.CONNECT_VALID,) if api_key_env else ()
    expected += (SdkStep.CONNECT_INVALID, SdkStep.DETECT) + ((SdkStep.DISCOVER,) if api_base else ())
    jobs = []
    for mode, provider in modes.items():
        config = replay_config(
            mode=mode,
            provider=provider,
            url=target,
            api_base=api_base,
            api_key_env=api_key_env,
            install=install,
            deadlines=deadlines,
            inscription=inscription,
        )
        flags = [EXPERIMENTAL_WEBSOCKET_FLAG] if provider == "flag" else []
        argv = [rt.path, *flags, str(program_path()), json.dumps(config, separators=(",", ":"))]
        run = ReplayRun(
            mode=mode,
            target=target,
            stdout="",
            expected_steps=expected,
            inscription=inscription,
            label=label,
            sdk_version=install.version,
            secrets=(secret,) if secret else (),
        )
        jobs.append(_replay(rt, argv, node_env, run, deadlines, install.root))
    per_mode = await asyncio.gather(*jobs)
    return [r for results in per_mode for r in results]
