"""npm installs into a cache directory of ours: locked, staged, bounded, on first use only.

The cache root is ``$KILOSCRIBE_LAB_CACHE``, else ``$XDG_CACHE_HOME/kiloscribe-lab``, else
``~/.cache/kiloscribe-lab``; npm's own cache and logs go to ``<root>/npm``, so npm writes nothing
under ``$HOME``. Every install (``install_once``) is built in a staging directory beside its
final place, under a lock file shared by every process, and renamed into place only once
complete: a killed install leaves nothing half-installed, parallel report workers or test
sessions install once. npm always runs with ``--ignore-scripts``: no package's install script
runs on this machine.

Two kinds of install use it: the SDK (``sdk/install.py``: ``npm install`` of one published
version) and the projects this package ships with their lock files (``NpmProject``: ``npm ci``,
keyed by the hash of ``package.json`` and ``package-lock.json``), such as the lab's Node backend.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from kiloscribe_lab.errors import ToolchainError
from kiloscribe_lab.results import utc_now
from kiloscribe_lab.toolchain.node import resolve_npm
from kiloscribe_lab.toolchain.subproc import Completed, run_bounded

CACHE_ENV = "KILOSCRIBE_LAB_CACHE"
NPM_TIMEOUT_S = 300.0
LOCK_TIMEOUT_S = NPM_TIMEOUT_S + 30.0
LOCK_FILE = ".install.lock"
PROJECT_MARKER = "kiloscribe-lab-npm.json"
_NPM_CODE_RE = re.compile(r"\bcode (E[A-Z0-9_]+)")
_UNREACHABLE = {"ENOTFOUND", "EAI_AGAIN", "ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "ENETUNREACH"}

T = TypeVar("T")
Notify = Callable[[str], None]


def default_cache_dir(environ: Mapping[str, str]) -> Path:
    """The cache root: $KILOSCRIBE_LAB_CACHE, else $XDG_CACHE_HOME/kiloscribe-lab, else ~/.cache/…"""
    if environ.get(CACHE_ENV):
        return Path(environ[CACHE_ENV]).expanduser().resolve()
    if environ.get("XDG_CACHE_HOME"):
        return Path(environ["XDG_CACHE_HOME"]).expanduser().resolve() / "kiloscribe-lab"
    home = environ.get("HOME") or str(Path.home())
    return Path(home) / ".cache" / "kiloscribe-lab"


def npm_environ(environ: Mapping[str, str], cache_dir: Path) -> dict[str, str]:
    return {
        **environ,
        "npm_config_cache": str(cache_dir / "npm"),
        "npm_config_update_notifier": "false",
        "npm_config_fund": "false",
        "npm_config_audit": "false",
    }


def npm_codes(done: Completed) -> list[str]:
    """npm's error codes (``E404``, ``EAI_AGAIN``...) in what it printed."""
    return _NPM_CODE_RE.findall(done.stderr + "\n" + done.stdout)


def npm_failure(command: str, done: Completed, timeout_s: float) -> ToolchainError:
    """What a failed npm ``command`` (e.g. ``npm install X@1``) means, as one line."""
    if done.timed_out:
        return ToolchainError(f"{command} did not finish within {timeout_s:g} s (stopped)")
    codes = npm_codes(done)
    if _UNREACHABLE & set(codes):
        unreachable = next(c for c in codes if c in _UNREACHABLE)
        return ToolchainError(f"{command}: the npm registry is unreachable (npm error {unreachable})")
    why = done.stderr_tail(2) or f"exit {done.returncode}"
    return ToolchainError(f"{command} failed: {why}")


@contextlib.asynccontextmanager
async def locked(path: Path, timeout_s: float) -> AsyncIterator[None]:
    """An exclusive lock on ``path`` (created), shared with every process; polled, so a
    cancelled waiter leaves at once."""
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


async def install_once(
    root: Path,
    found: Callable[[], T | None],
    build: Callable[[Path], Awaitable[None]],
    *,
    lock_timeout_s: float = LOCK_TIMEOUT_S,
) -> T:
    """The complete install at ``root`` (``found()`` says whether it is there and usable); else
    ``build(staging)`` fills a staging directory beside it, which is renamed to ``root``.
    Installs of everything under ``root.parent`` are serialised by one lock file there."""
    done = found()
    if done is not None:
        return done
    async with locked(root.parent / LOCK_FILE, lock_timeout_s):
        done = found()  # another process may have finished it meanwhile
        if done is not None:
            return done
        staging = root.parent / f".{root.name}.staging-{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        try:
            await build(staging)
            shutil.rmtree(root, ignore_errors=True)  # an incomplete earlier attempt, never a marked one
            staging.rename(root)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    done = found()
    if done is None:
        raise ToolchainError(f"the install in {root} is not usable")
    return done


# --- projects shipped with their lock files -------------------------------------------------


@dataclass(frozen=True, slots=True)
class NpmProject:
    """A directory of ours holding ``package.json`` (exact pins) and ``package-lock.json``."""

    name: str  # the cache's folder for it: node/<name>/<digest>
    source: Path

    @property
    def files(self) -> tuple[Path, Path]:
        return self.source / "package.json", self.source / "package-lock.json"

    def digest(self) -> str:
        """What the install is keyed by: both files' bytes (npm ci refuses them out of step)."""
        h = hashlib.sha256()
        for path in self.files:
            try:
                h.update(path.read_bytes())
            except OSError as exc:
                raise ToolchainError(f"{self.name}: cannot read {path}: {exc.strerror or exc}") from exc
            h.update(b"\0")
        return h.hexdigest()[:16]

    def pins(self) -> dict[str, str]:
        """``dependencies`` of package.json: name -> exact version."""
        try:
            manifest = json.loads(self.files[0].read_text(encoding="utf-8"))
            deps = manifest.get("dependencies") or {}
        except (OSError, ValueError, AttributeError) as exc:
            raise ToolchainError(f"{self.name}: {self.files[0]} is not a package manifest") from exc
        if not isinstance(deps, dict):
            raise ToolchainError(f"{self.name}: {self.files[0]}: dependencies is not an object")
        return {str(k): str(v) for k, v in deps.items()}


@dataclass(frozen=True, slots=True)
class NpmInstall:
    project: str
    root: Path  # node/<name>/<digest>

    @property
    def node_modules(self) -> Path:
        return self.root / "node_modules"


def project_root(cache_dir: Path, project: NpmProject) -> Path:
    return cache_dir.resolve() / "node" / project.name / project.digest()


def project_installed(cache_dir: Path, project: NpmProject) -> NpmInstall | None:
    """The complete install of ``project`` (its current files) in the cache, or None."""
    root = project_root(cache_dir, project)
    try:
        marker = json.loads((root / PROJECT_MARKER).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(marker, dict) or marker.get("digest") != root.name:
        return None
    if not (root / "node_modules").is_dir():
        return None
    return NpmInstall(project.name, root)


def installed_version(node_modules: Path, package: str) -> str | None:
    try:
        manifest = json.loads((node_modules / package / "package.json").read_text())
    except (OSError, ValueError):
        return None
    version = manifest.get("version") if isinstance(manifest, dict) else None
    return version if isinstance(version, str) else None


async def ensure_project(
    project: NpmProject,
    *,
    cache_dir: Path,
    environ: Mapping[str, str],
    timeout_s: float = NPM_TIMEOUT_S,
    notify: Notify | None = None,
) -> NpmInstall:
    """``project``'s packages from the cache; installed with ``npm ci`` first when they are not."""
    root = project_root(cache_dir, project)
    pins = project.pins()

    async def build(staging: Path) -> None:
        npm = resolve_npm(environ, purpose=f"to install {project.name}'s packages into {root}")
        for path in project.files:
            shutil.copyfile(path, staging / path.name)
        if notify is not None:
            notify(f"installing {project.name} ({', '.join(f'{k}@{v}' for k, v in pins.items())}) "
                   f"into {root} (first use only)")  # fmt: skip
        argv = [npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts", "--loglevel=error"]
        command = f"npm ci ({project.name})"
        try:
            done = await run_bounded(
                argv, env=npm_environ(environ, cache_dir), timeout_s=timeout_s, cwd=staging
            )
        except OSError as exc:
            raise ToolchainError(f"npm at {npm} cannot be run: {exc.strerror or exc}") from exc
        if done.returncode != 0:
            raise npm_failure(command, done, timeout_s)
        # The pins are exact: what npm put there must be what package.json names.
        for package, version in pins.items():
            got = installed_version(staging / "node_modules", package)
            if got != version:
                raise ToolchainError(f"{command} installed {package}@{got}, not {version}")
        marker = {"project": project.name, "digest": root.name, "pins": pins, "installed_at": utc_now()}
        (staging / PROJECT_MARKER).write_text(json.dumps(marker, indent=2))

    return await install_once(root, lambda: project_installed(cache_dir, project), build)


def stage(install: NpmInstall, directory: Path, files: Iterable[Path] = ()) -> Path:
    """``directory`` holding copies of ``files`` and a ``node_modules`` link to the install, so
    Node resolves the scripts' imports there (ES modules ignore NODE_PATH). Returns ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    for path in files:
        tmp = directory / f".{path.name}.{os.getpid()}.tmp"
        shutil.copyfile(path, tmp)
        tmp.replace(directory / path.name)
    link = directory / "node_modules"
    tmp_link = directory / f".node_modules.{os.getpid()}.tmp"
    tmp_link.unlink(missing_ok=True)
    tmp_link.symlink_to(install.node_modules, target_is_directory=True)
    tmp_link.replace(link)  # atomic: a concurrent reader sees the old link or the new one
    return directory
