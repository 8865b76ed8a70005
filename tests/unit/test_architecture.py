"""The folder layout is the architecture: a pure core in the middle, I/O at the edges.

Every import in every module (function-level and TYPE_CHECKING ones included) is read with
``ast`` and checked against the layers below, so a shortcut through the layers fails here,
not in review.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "kiloscribe_lab"

# The pure core: data, vocabulary, codecs, rules. No I/O, nothing from the edges.
CORE = (
    "names",
    "errors",
    "results",
    "protocol",
    "session",
    "details",
    "endpoints",
    "credentials",
    "untrusted",
    "files",
    "outcomes",
    "settings",
    "networks",
    "config",
    "diagnosis",
)
# Libraries that do I/O (or exist to): the core must not import them.
IO_MODULES = (
    "socket",
    "ssl",
    "asyncio",
    "subprocess",
    "selectors",
    "threading",
    "multiprocessing",
    "http",
    "urllib.request",
    "h11",
    "h2",
    "httpx",
    "aiohttp",
    "socketio",
    "engineio",
    "websockets",
    "uvicorn",
    "papermill",
    "nbconvert",
    "nbformat",
    "nbclient",
    "jupyter_client",
    "matplotlib",
    "tqdm",
    "distributed",
    "dask",
)
# Each edge may import the core and itself, plus what is listed here; never upwards.
EDGES: dict[str, tuple[str, ...]] = {
    "probes": (),
    # Finding node and npm, bounded child processes, npm installs into our cache: shared below
    # the two edges that run Node (the SDK replay, the lab's Node backends).
    "toolchain": (),
    "lab": ("toolchain",),
    "sdk": ("toolchain",),
    "report": ("probes", "lab", "sdk", "notebook"),
    "notebook": ("probes", "lab", "report", "sdk", "output"),
    "output": ("probes", "report"),
    "cli": ("*",),
}


def _modules() -> Iterator[tuple[str, Path]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).with_suffix("")
        parts = [p for p in rel.parts if p != "__init__"]
        yield ".".join(parts), path


def _imports(path: Path) -> Iterator[str]:
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module
            if node.module == "kiloscribe_lab":  # from kiloscribe_lab import diagnosis
                yield from (f"kiloscribe_lab.{alias.name}" for alias in node.names)


def _top(module: str) -> str:
    """``probes.wire`` -> ``probes``; ``diagnosis.rules.auth`` -> ``diagnosis``."""
    return module.split(".", 1)[0]


def _ours(imported: str) -> str | None:
    if imported == "kiloscribe_lab" or not imported.startswith("kiloscribe_lab."):
        return None
    return _top(imported.removeprefix("kiloscribe_lab."))


MODULES = [m for m in _modules() if m[0] and m[0] != "__main__"]


def test_every_module_is_placed_in_a_layer() -> None:
    unplaced = {_top(name) for name, _ in MODULES} - set(CORE) - set(EDGES)
    assert not unplaced, f"modules in no layer (add them to CORE or EDGES): {sorted(unplaced)}"


@pytest.mark.parametrize(("name", "path"), [m for m in MODULES if _top(m[0]) in CORE], ids=lambda v: str(v))
def test_the_core_imports_no_io_and_no_edge(name: str, path: Path) -> None:
    bad = []
    for imported in _imports(path):
        ours = _ours(imported)
        if (ours is not None and ours not in CORE) or (
            ours is None and any(imported == io or imported.startswith(io + ".") for io in IO_MODULES)
        ):
            bad.append(imported)
    assert not bad, f"{name} is pure core but imports {bad}"


@pytest.mark.parametrize(("name", "path"), [m for m in MODULES if _top(m[0]) in EDGES], ids=lambda v: str(v))
def test_edges_import_only_the_core_and_what_lies_below_them(name: str, path: Path) -> None:
    layer = _top(name)
    allowed = set(CORE) | {layer} | set(EDGES[layer])
    if "*" in allowed:
        return
    bad = [imported for imported in _imports(path) if (ours := _ours(imported)) and ours not in allowed]
    assert not bad, f"{name} ({layer}) imports {bad}; it may import {sorted(allowed)}"


# Dask is for the vantages alone, and only when a cluster is used: a report without --cluster,
# and the core, never import it.
CLUSTER_MODULES = {"report.cluster"}
CLUSTER_LIBRARIES = ("distributed", "dask")


def _top_level_imports(path: Path) -> Iterator[str]:
    """Imports that run when the module is imported: module level, ``if`` blocks included, not
    inside a function or under ``if TYPE_CHECKING``."""
    tree = ast.parse(path.read_text(), str(path))

    def walk(nodes: list[ast.stmt]) -> Iterator[str]:
        for node in nodes:
            if isinstance(node, ast.Import):
                yield from (alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                yield node.module
            elif isinstance(node, ast.If) and not (
                isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"
            ):
                yield from walk(node.body)
                yield from walk(node.orelse)
            elif isinstance(node, ast.Try):
                yield from walk(node.body)

    yield from walk(tree.body)


def _is_cluster_library(imported: str) -> bool:
    return any(imported == lib or imported.startswith(lib + ".") for lib in CLUSTER_LIBRARIES)


@pytest.mark.parametrize(("name", "path"), MODULES, ids=lambda v: str(v))
def test_only_the_vantage_code_imports_dask_and_only_when_a_cluster_is_used(name: str, path: Path) -> None:
    if name in CLUSTER_MODULES:
        eager = [i for i in _top_level_imports(path) if _is_cluster_library(i)]
        assert not eager, (
            f"{name} imports {eager} at import time: only inside the functions that use a cluster"
        )
    else:
        used = [i for i in _imports(path) if _is_cluster_library(i)]
        assert not used, f"{name} imports {used}: Dask belongs to {sorted(CLUSTER_MODULES)}"


def test_the_vantage_code_is_placed_where_the_report_is() -> None:
    assert all(_top(m) == "report" for m in CLUSTER_MODULES)
    assert {m for m, _ in MODULES} >= CLUSTER_MODULES
