"""Markers follow the directory: tests/unit is pure and fast, tests/integration runs a real lab."""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        parts = Path(str(item.fspath)).relative_to(HERE).parts
        if parts[0] == "unit":
            item.add_marker(pytest.mark.unit)
        elif parts[0] in {"integration", "notebooks"}:
            item.add_marker(pytest.mark.lab)
