"""Labs of ad-hoc scenarios: entries built by a test (a balancer setting, an edge behaviour),
started together, always taken down.

The lab finds a scenario by name, so an ad-hoc entry is registered in ``SCENARIOS`` while its
labs run: use ``adhoc_labs`` from a module-scoped fixture, never a session-scoped one, so the
tests that list the registered scenarios never see them.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from pathlib import Path

import pytest

from kiloscribe_lab.lab import fleet
from kiloscribe_lab.lab.keys import API_KEY_ENV
from kiloscribe_lab.lab.scenarios import SCENARIOS, GroundTruth, Scenario
from kiloscribe_lab.lab.state import LabInfo

NO_TRUTH = GroundTruth(())  # these labs show wire behaviour; no diagnosis is asserted on them


@contextlib.contextmanager
def adhoc_labs(root: Path, scenarios: Sequence[Scenario], key: str) -> Iterator[dict[str, LabInfo]]:
    """Each scenario's lab under ``root``, started (and stopped) in parallel: their start-ups
    overlap. Every lab is taken down, also when another failed to start."""
    environ = {**os.environ, API_KEY_ENV: key}
    started: dict[str, LabInfo] = {}
    with pytest.MonkeyPatch.context() as patch:
        for scenario in scenarios:
            assert scenario.name not in SCENARIOS, scenario.name
            patch.setitem(SCENARIOS, scenario.name, scenario)
        dirs = {s.name: root / s.name for s in scenarios}
        with ThreadPoolExecutor(max_workers=len(scenarios)) as pool:
            futures = {name: pool.submit(fleet.up, d, name, environ=environ) for name, d in dirs.items()}
            try:
                for name, future in futures.items():
                    started[name] = future.result()
                yield started
            finally:
                wait(futures.values())  # a lab still starting is stopped only once it is up
                stubborn = [name for names in pool.map(fleet.down, dirs.values()) for name in names]
                assert not stubborn, stubborn
