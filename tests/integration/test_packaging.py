"""The wheel: built as a user's `pip wheel .` builds it, it carries the notebooks, and the code
installed from it (not this checkout) finds them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from kiloscribe_lab.report.packaged import NOTEBOOKS

ROOT = Path(__file__).parents[2]
COPY_IGNORED = (
    ".git",
    ".venv",
    ".cache",
    ".lab",
    ".hypothesis",
    "build",
    "*.egg-info",
    "__pycache__",
    "*_cache",
    "reports",
)

pytestmark = pytest.mark.timeout(240)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("wheel")
    # From a copy: setuptools builds in the source tree, and a build/ left there would carry
    # stale modules into later wheels. The copy keeps kiloscribe_lab/notebooks a link.
    source = tmp_path_factory.mktemp("source") / "kiloscribe-lab"
    shutil.copytree(ROOT, source, symlinks=True, ignore=shutil.ignore_patterns(*COPY_IGNORED))
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "-w", str(out), "-v"],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    [built] = out.glob("kiloscribe_lab-*.whl")
    return built, proc.stdout + proc.stderr


def archive_bytes(wheel: Path, name: str) -> bytes:
    with zipfile.ZipFile(wheel) as archive:
        return archive.read(name)


def test_the_wheel_carries_the_notebooks_and_the_licence(wheel: tuple[Path, str]) -> None:
    built, log = wheel
    with zipfile.ZipFile(built) as archive:
        names = archive.namelist()
        metadata = archive.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
        for name in NOTEBOOKS:
            packaged = archive.read(f"kiloscribe_lab/notebooks/{name}")
            assert packaged == (ROOT / "notebooks" / name).read_bytes(), name
    assert "kiloscribe_lab/report/worker.py" in names
    for name in ("server.mjs", "package.json", "package-lock.json"):  # the lab's --backend node
        packaged = archive_bytes(built, f"kiloscribe_lab/lab/node/{name}")
        assert packaged == (ROOT / "kiloscribe_lab" / "lab" / "node" / name).read_bytes(), name
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert "License-Expression: MIT" in metadata
    assert "deprecated" not in log.lower()  # setuptools' licence warnings are gone


def test_code_installed_from_the_wheel_finds_its_notebooks(wheel: tuple[Path, str], tmp_path: Path) -> None:
    built, _ = wheel
    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(site), str(built)],
        check=True,
        timeout=120,
    )
    # The wheel's copy first on the path (this venv's editable finder comes after it); the
    # dependencies from this venv. Run from elsewhere, so the checkout is not on the path.
    env = {**os.environ, "PYTHONPATH": str(site)}
    probe = (
        "import kiloscribe_lab, sys\n"
        "from kiloscribe_lab.report.packaged import NOTEBOOKS, notebook\n"
        "print(kiloscribe_lab.__file__)\n"
        "for name in NOTEBOOKS: print(notebook(name))\n"
    )
    shown = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert shown.returncode == 0, shown.stderr[-2000:]
    paths = [Path(line) for line in shown.stdout.splitlines()]
    assert len(paths) == 1 + len(NOTEBOOKS)
    assert all(p.is_relative_to(site) and p.is_file() for p in paths), paths
    helped = subprocess.run(
        [sys.executable, "-m", "kiloscribe_lab.cli", "report", "--help"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert helped.returncode == 0 and "--config" in helped.stdout, helped.stderr[-2000:]
