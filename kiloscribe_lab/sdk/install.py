"""The pinned SDK, installed with npm into a cache directory of ours, on first use only.

Layout under the cache root (``$KILOSCRIBE_LAB_CACHE``, else ``$XDG_CACHE_HOME/kiloscribe-lab``,
else ``~/.cache/kiloscribe-lab``)::

    sdk/<version>/              package.json, node_modules/ (the SDK and the ``ws`` shim),
                                kiloscribe-lab-sdk.json (written last: the install is complete)
    sdk/.install.lock           serialises installs (parallel report workers): one at a time
    npm/                        npm's own cache and logs, so npm writes nothing under $HOME

npm runs with ``--ignore-scripts`` (no package's install script runs on this machine) into a
staging directory that is renamed into place once complete, so a killed install leaves no
half-installed SDK behind. An unknown version is a UsageError (exit 2).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import re
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kiloscribe_lab.errors import KiloscribeLabError, ToolchainError, ToolchainMissingError, UsageError
from kiloscribe_lab.results import utc_now
from kiloscribe_lab.sdk.subproc import Completed, run_bounded

SDK_PACKAGE = "@kiloscribe/inscription-sdk"
DEFAULT_SDK_VERSION = "2.0.9"
# The WebSocket shim for a Node without `--experimental-websocket`; installed beside the SDK.
WS_SHIM_SPEC = "ws@^8.18.0"
MARKER = "kiloscribe-lab-sdk.json"
NPM_TIMEOUT_S = 300.0
LOCK_TIMEOUT_S = NPM_TIMEOUT_S + 30.0
CACHE_ENV = "KILOSCRIBE_LAB_CACHE"
# An exact version, as npm publishes them: no ranges, tags, paths or URLs reach npm.
VERSION_RE = re.compile(r"^\d{1,4}\.\d{1,4}\.\d{1,6}(?:-[0-9A-Za-z][0-9A-Za-z.-]{0,60})?$")
_NPM_CODE_RE = re.compile(r"\bcode (E[A-Z0-9_]+)")
_UNREACHABLE = {"ENOTFOUND", "EAI_AGAIN", "ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "ENETUNREACH"}

Notify = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class SdkInstall:
    version: str
    root: Path  # sdk/<version>
    entry: Path  # the ES module build the SDK's package.json exports for `import`

    @property
    def ws_shim(self) -> Path:
        return self.root / "node_modules" / "ws"


def default_cache_dir(environ: Mapping[str, str]) -> Path:
    """The cache root: $KILOSCRIBE_LAB_CACHE, else $XDG_CACHE_HOME/kiloscribe-lab, else ~/.cache/…"""
    if environ.get(CACHE_ENV):
        return Path(environ[CACHE_ENV]).expanduser().resolve()
    if environ.get("XDG_CACHE_HOME"):
        return Path(environ["XDG_CACHE_HOME"]).expanduser().resolve() / "kiloscribe-lab"
    home = environ.get("HOME") or str(Path.home())
    return Path(home) / ".cache" / "kiloscribe-lab"


def check_version(version: str) -> str:
    if not VERSION_RE.match(version):
        raise UsageError(
            f"--sdk-version takes an exact version such as {DEFAULT_SDK_VERSION}, got {version!r}"
        )
    return version


def absolute(path: Path) -> Path:
    """npm runs in another directory: every path we hand it must be absolute."""
    return path.resolve()


def sdk_root(cache_dir: Path, version: str) -> Path:
    return cache_dir / "sdk" / version


def sdk_entry(package_json: Mapping[str, Any]) -> str:
    """The file `import '@kiloscribe/inscription-sdk'` loads, from the package's own manifest."""
    exports = package_json.get("exports")
    if isinstance(exports, dict):
        dot = exports.get(".", exports)
        if isinstance(dot, str):
            return dot
        if isinstance(dot, dict):
            imp = dot.get("import", dot.get("default"))
            if isinstance(imp, dict):
                imp = imp.get("default")
            if isinstance(imp, str):
                return imp
    for key in ("module", "main"):
        value = package_json.get(key)
        if isinstance(value, str) and value:
            return value
    return "index.js"


def installed(cache_dir: Path, version: str) -> SdkInstall | None:
    """The complete install of ``version`` in the cache, or None."""
    root = sdk_root(cache_dir.resolve(), version)
    try:
        marker = json.loads((root / MARKER).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(marker, dict) or marker.get("version") != version:
        return None
    entry = root / str(marker.get("entry", ""))
    if not entry.is_file():
        return None
    return SdkInstall(version, root, entry)


def npm_failure(version: str, done: Completed, timeout_s: float) -> KiloscribeLabError:
    """What a failed `npm install` means, as one line."""
    spec = f"{SDK_PACKAGE}@{version}"
    if done.timed_out:
        return ToolchainError(f"npm install {spec} did not finish within {timeout_s:g} s (stopped)")
    codes = _NPM_CODE_RE.findall(done.stderr + "\n" + done.stdout)
    if "ETARGET" in codes or "E404" in codes:
        return UsageError(f"--sdk-version {version}: npm has no {spec} (npm error {codes[0]})")
    if _UNREACHABLE & set(codes):
        return ToolchainError(f"npm install {spec}: the npm registry is unreachable (npm error {codes[0]})")
    why = done.stderr_tail(2) or f"exit {done.returncode}"
    return ToolchainError(f"npm install {spec} failed: {why}")


def npm_environ(environ: Mapping[str, str], cache_dir: Path) -> dict[str, str]:
    return {
        **environ,
        "npm_config_cache": str(cache_dir / "npm"),
        "npm_config_update_notifier": "false",
        "npm_config_fund": "false",
        "npm_config_audit": "false",
    }


@contextlib.asynccontextmanager
async def _locked(path: Path, timeout_s: float) -> Any:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+") as fh:
        waited = 0.0
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if waited >= timeout_s:
                    raise ToolchainError(f"another process holds {path} for over {timeout_s:g} s") from None
                await asyncio.sleep(0.2)
                waited += 0.2
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


async def ensure_sdk(
    version: str = DEFAULT_SDK_VERSION,
    *,
    cache_dir: Path,
    environ: Mapping[str, str],
    timeout_s: float = NPM_TIMEOUT_S,
    notify: Notify | None = None,
) -> SdkInstall:
    """The SDK ``version`` from the cache; installed with npm first when it is not there yet."""
    check_version(version)
    cache_dir = absolute(cache_dir)
    found = installed(cache_dir, version)
    if found is not None:
        return found
    async with _locked(cache_dir / "sdk" / ".install.lock", LOCK_TIMEOUT_S):
        found = installed(cache_dir, version)  # another process may have finished it meanwhile
        if found is not None:
            return found
        return await _install(version, cache_dir, environ, timeout_s, notify)


async def _install(
    version: str, cache_dir: Path, environ: Mapping[str, str], timeout_s: float, notify: Notify | None
) -> SdkInstall:
    npm = shutil.which("npm", path=environ.get("PATH", os.defpath))
    if npm is None:
        raise ToolchainMissingError(
            f"npm is not on PATH; it is needed once, to install {SDK_PACKAGE}@{version} into {cache_dir}"
        )
    root = sdk_root(cache_dir, version)
    staging = root.parent / f".{version}.staging-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    (staging / "package.json").write_text(
        json.dumps(
            {"name": "kiloscribe-lab-sdk-replay", "private": True, "description": "written by kiloscribe-lab"}
        )
    )
    if notify is not None:
        notify(f"installing {SDK_PACKAGE}@{version} into {root} (first use only)")
    argv = [
        npm,
        "install",
        "--no-audit",
        "--no-fund",
        "--ignore-scripts",
        "--loglevel=error",
        f"{SDK_PACKAGE}@{version}",
        WS_SHIM_SPEC,
    ]
    try:
        try:
            done = await run_bounded(
                argv, env=npm_environ(environ, cache_dir), timeout_s=timeout_s, cwd=staging
            )
        except OSError as exc:
            raise ToolchainMissingError(f"npm at {npm} cannot be run: {exc.strerror or exc}") from exc
        if done.returncode != 0:
            raise npm_failure(version, done, timeout_s)
        package_dir = staging / "node_modules" / SDK_PACKAGE
        try:
            manifest = json.loads((package_dir / "package.json").read_text())
        except (OSError, ValueError) as exc:
            raise ToolchainError(
                f"npm install {SDK_PACKAGE}@{version} left no readable package.json"
            ) from exc
        if manifest.get("version") != version:
            raise ToolchainError(f"npm installed {SDK_PACKAGE}@{manifest.get('version')}, not {version}")
        entry = (package_dir / sdk_entry(manifest)).resolve()
        if not entry.is_file():
            raise ToolchainError(f"{SDK_PACKAGE}@{version}: its entry point {entry} is missing")
        relative = entry.relative_to(staging.resolve())
        (staging / MARKER).write_text(
            json.dumps(
                {
                    "package": SDK_PACKAGE,
                    "version": version,
                    "entry": str(relative),
                    "ws_shim": WS_SHIM_SPEC,
                    "installed_at": utc_now(),
                },
                indent=2,
            )
        )
        shutil.rmtree(root, ignore_errors=True)  # an incomplete earlier attempt, never a marked one
        staging.rename(root)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    result = installed(cache_dir, version)
    if result is None:
        raise ToolchainError(f"{SDK_PACKAGE}@{version}: the install in {root} is not usable")
    return result
