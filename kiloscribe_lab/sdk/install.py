"""The pinned SDK, installed with npm into a cache directory of ours, on first use only.

Layout under the cache root (``toolchain.npm.default_cache_dir``)::

    sdk/<version>/              package.json, node_modules/ (the SDK and the ``ws`` shim),
                                kiloscribe-lab-sdk.json (written last: the install is complete)
    sdk/.install.lock           serialises installs (parallel report workers): one at a time
    npm/                        npm's own cache and logs, so npm writes nothing under $HOME

The locking, staging and npm's environment are the toolchain's (``toolchain.npm``); what is
the SDK's own is here: the version's form, the package's entry point and its marker. An
unknown version is a UsageError (exit 2).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kiloscribe_lab.errors import KiloscribeLabError, ToolchainError, ToolchainMissingError, UsageError
from kiloscribe_lab.results import utc_now
from kiloscribe_lab.toolchain.node import resolve_npm
from kiloscribe_lab.toolchain.npm import NPM_TIMEOUT_S, Notify, install_once, npm_codes, npm_environ
from kiloscribe_lab.toolchain.npm import npm_failure as _npm_failure
from kiloscribe_lab.toolchain.subproc import Completed, run_bounded

SDK_PACKAGE = "@kiloscribe/inscription-sdk"
DEFAULT_SDK_VERSION = "2.0.9"
# The WebSocket shim for a Node without `--experimental-websocket`; installed beside the SDK.
WS_SHIM_SPEC = "ws@^8.18.0"
MARKER = "kiloscribe-lab-sdk.json"
# An exact version, as npm publishes them: no ranges, tags, paths or URLs reach npm.
VERSION_RE = re.compile(r"^\d{1,4}\.\d{1,4}\.\d{1,6}(?:-[0-9A-Za-z][0-9A-Za-z.-]{0,60})?$")


@dataclass(frozen=True, slots=True)
class SdkInstall:
    version: str
    root: Path  # sdk/<version>
    entry: Path  # the ES module build the SDK's package.json exports for `import`

    @property
    def ws_shim(self) -> Path:
        return self.root / "node_modules" / "ws"


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
    """What a failed `npm install` means, as one line: an unknown version is the user's."""
    spec = f"{SDK_PACKAGE}@{version}"
    codes = npm_codes(done)
    if not done.timed_out and ("ETARGET" in codes or "E404" in codes):
        return UsageError(f"--sdk-version {version}: npm has no {spec} (npm error {codes[0]})")
    return _npm_failure(f"npm install {spec}", done, timeout_s)


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
    root = sdk_root(cache_dir, version)

    async def build(staging: Path) -> None:
        await _install(version, staging, root, cache_dir, environ, timeout_s, notify)

    return await install_once(root, lambda: installed(cache_dir, version), build)


async def _install(
    version: str,
    staging: Path,
    root: Path,
    cache_dir: Path,
    environ: Mapping[str, str],
    timeout_s: float,
    notify: Notify | None,
) -> None:
    npm = resolve_npm(environ, purpose=f"to install {SDK_PACKAGE}@{version} into {cache_dir}")
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
        done = await run_bounded(argv, env=npm_environ(environ, cache_dir), timeout_s=timeout_s, cwd=staging)
    except OSError as exc:
        raise ToolchainMissingError(f"npm at {npm} cannot be run: {exc.strerror or exc}") from exc
    if done.returncode != 0:
        raise npm_failure(version, done, timeout_s)
    package_dir = staging / "node_modules" / SDK_PACKAGE
    try:
        manifest = json.loads((package_dir / "package.json").read_text())
    except (OSError, ValueError) as exc:
        raise ToolchainError(f"npm install {SDK_PACKAGE}@{version} left no readable package.json") from exc
    if manifest.get("version") != version:
        raise ToolchainError(f"npm installed {SDK_PACKAGE}@{manifest.get('version')}, not {version}")
    entry = (package_dir / sdk_entry(manifest)).resolve()
    if not entry.is_file():
        raise ToolchainError(f"{SDK_PACKAGE}@{version}: its entry point {entry} is missing")
    relative = entry.relative_to(staging)  # staging is under the resolved cache_dir
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
