"""Real labs for integration tests: one per scenario, started on first use, always torn down."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator

import pytest

from kiloscribe_lab.lab import fleet

LabGetter = Callable[[str], fleet.LabInfo]


@pytest.fixture(scope="session")
def lab_key() -> str:
    return "test-" + secrets.token_urlsafe(16)


@pytest.fixture(scope="session")
def labs(tmp_path_factory: pytest.TempPathFactory, lab_key: str) -> Iterator[LabGetter]:
    started: dict[str, fleet.LabInfo] = {}

    def get(scenario: str) -> fleet.LabInfo:
        if scenario not in started:
            lab_dir = tmp_path_factory.mktemp(f"lab-{scenario}")
            environ = {**os.environ, fleet.API_KEY_ENV: lab_key}
            started[scenario] = fleet.up(lab_dir, scenario, environ=environ)
        return started[scenario]

    try:
        yield get
    finally:
        for info in started.values():
            fleet.down(info.lab_dir)
