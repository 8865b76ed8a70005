"""The lab's import rule: it imports the pure core and itself, never probes, report, sdk or
cli; and the lab's CLI side (fleet) does not load the backends' server libraries."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import kiloscribe_lab.lab

LAB = Path(kiloscribe_lab.lab.__file__).parent
FORBIDDEN = (
    "kiloscribe_lab.probes",
    "kiloscribe_lab.report",
    "kiloscribe_lab.report_sections",
    "kiloscribe_lab.sdk",
    "kiloscribe_lab.cli",
    "kiloscribe_lab.notebook",
    "kiloscribe_lab.output",
    "kiloscribe_lab.papermill_worker",
)


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def test_the_lab_imports_neither_probes_nor_report() -> None:
    modules = sorted(LAB.glob("*.py"))
    assert len(modules) >= 10
    bad = {
        path.name: sorted(m for m in imported_modules(path) if m.startswith(FORBIDDEN))
        for path in modules
        if any(m.startswith(FORBIDDEN) for m in imported_modules(path))
    }
    assert bad == {}


def test_fleet_does_not_load_the_backends_server_libraries() -> None:
    code = "import sys, kiloscribe_lab.lab.fleet; print(sorted({'socketio', 'uvicorn'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=True)
    assert out.stdout.strip() == "[]"
