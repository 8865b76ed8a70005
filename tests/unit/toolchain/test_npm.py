"""The toolchain's npm installs without npm: cache location, npm's environment and failures,
the staged install under its lock, a lock-file project's key and marker, the staged scripts."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from kiloscribe_lab.errors import ToolchainError
from kiloscribe_lab.toolchain.npm import (
    PROJECT_MARKER,
    NpmInstall,
    NpmProject,
    default_cache_dir,
    install_once,
    npm_environ,
    npm_failure,
    project_installed,
    project_root,
    stage,
)
from kiloscribe_lab.toolchain.subproc import Completed, blocking


def test_cache_dir_env_then_xdg_then_home(tmp_path: Path) -> None:
    assert default_cache_dir({"KILOSCRIBE_LAB_CACHE": str(tmp_path / "c"), "HOME": "/h"}) == tmp_path / "c"
    assert default_cache_dir({"XDG_CACHE_HOME": str(tmp_path), "HOME": "/h"}) == tmp_path / "kiloscribe-lab"
    assert default_cache_dir({"HOME": "/h"}) == Path("/h/.cache/kiloscribe-lab")


def test_npm_gets_its_cache_under_ours(tmp_path: Path) -> None:
    env = npm_environ({"PATH": "/bin"}, tmp_path)
    assert env["npm_config_cache"] == str(tmp_path / "npm") and env["PATH"] == "/bin"


def done(stderr: str, returncode: int | None = 1) -> Completed:
    return Completed(("npm", "ci"), returncode, "", stderr, 1.0)


def test_npm_failures_are_one_line() -> None:
    offline = npm_failure("npm ci (x)", done("npm ERR! code EAI_AGAIN\nnpm ERR! request failed"), 300)
    assert str(offline) == "npm ci (x): the npm registry is unreachable (npm error EAI_AGAIN)"
    assert "within 9 s" in str(npm_failure("npm ci (x)", done("", None), 9))
    other = npm_failure("npm ci (x)", done("npm error code EUSAGE\nnpm error lock file out of sync"), 300)
    assert "\n" not in str(other) and str(other).endswith("lock file out of sync")


def project(tmp_path: Path, pins: dict[str, str], lock: str = "{}") -> NpmProject:
    source = tmp_path / "src"
    source.mkdir(exist_ok=True)
    (source / "package.json").write_text(json.dumps({"name": "p", "dependencies": pins}))
    (source / "package-lock.json").write_text(lock)
    return NpmProject("demo", source)


def test_a_project_is_keyed_by_both_files(tmp_path: Path) -> None:
    first = project(tmp_path, {"ws": "8.23.0"}).digest()
    assert project(tmp_path, {"ws": "8.23.0"}).digest() == first
    assert project(tmp_path, {"ws": "8.23.0"}, lock='{"v": 2}').digest() != first
    assert project(tmp_path, {"ws": "8.18.0"}).digest() != first
    assert project(tmp_path, {"ws": "8.23.0", "a": "1.0.0"}).pins() == {"ws": "8.23.0", "a": "1.0.0"}
    with pytest.raises(ToolchainError, match="cannot read"):
        NpmProject("gone", tmp_path / "nowhere").digest()


def test_installed_needs_the_marker_of_these_files_and_node_modules(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    p = project(tmp_path, {"ws": "8.23.0"})
    root = project_root(cache, p)
    assert root.parent == cache.resolve() / "node" / "demo"
    (root / "node_modules").mkdir(parents=True)
    assert project_installed(cache, p) is None
    (root / PROJECT_MARKER).write_text(json.dumps({"digest": "another"}))
    assert project_installed(cache, p) is None
    (root / PROJECT_MARKER).write_text(json.dumps({"digest": root.name}))
    assert project_installed(cache, p) == NpmInstall("demo", root)
    changed = project(tmp_path, {"ws": "8.18.0"})  # its files changed: a new install is due
    assert project_installed(cache, changed) is None


def test_install_once_renames_a_complete_build_and_leaves_nothing_of_a_failed_one(tmp_path: Path) -> None:
    root = tmp_path / "things" / "v1"
    builds: list[Path] = []

    def found() -> Path | None:
        return root if (root / "done").exists() else None

    async def build(staging: Path) -> None:
        builds.append(staging)
        (staging / "done").write_text("yes")

    async def broken(staging: Path) -> None:
        (staging / "half").write_text("x")
        raise ToolchainError("npm failed")

    with pytest.raises(ToolchainError, match="npm failed"):
        asyncio.run(install_once(root, found, broken))
    assert sorted(p.name for p in root.parent.iterdir()) == [".install.lock"]

    async def twice() -> list[Path]:
        return list(await asyncio.gather(install_once(root, found, build), install_once(root, found, build)))

    assert asyncio.run(twice()) == [root, root]
    assert len(builds) == 1 and not builds[0].exists()  # the second waited, then found it
    assert sorted(p.name for p in root.parent.iterdir()) == [".install.lock", "v1"]


def test_stage_copies_the_scripts_and_links_node_modules(tmp_path: Path) -> None:
    install = NpmInstall("demo", tmp_path / "cache" / "x")
    install.node_modules.mkdir(parents=True)
    script = tmp_path / "server.mjs"
    script.write_text("export {}")
    into = stage(install, tmp_path / "run", [script])
    assert (into / "server.mjs").read_text() == "export {}"
    assert (into / "node_modules").resolve() == install.node_modules.resolve()
    stage(install, into, [script])  # again, over the old link: no error, same result
    assert sorted(p.name for p in into.iterdir()) == ["node_modules", "server.mjs"]


def test_blocking_runs_a_coroutine_with_or_without_a_running_loop() -> None:
    async def answer() -> int:
        await asyncio.sleep(0)
        return 42

    assert blocking(answer) == 42

    async def inside() -> int:
        return blocking(answer)  # a notebook's kernel runs a loop already

    assert asyncio.run(inside()) == 42

    async def fails() -> int:
        raise ToolchainError("no")

    async def inside_failing() -> int:
        return blocking(fails)

    with pytest.raises(ToolchainError, match="no"):
        asyncio.run(inside_failing())
