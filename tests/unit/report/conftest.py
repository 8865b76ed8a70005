"""Fixtures of the report's unit tests: the recorded incident, as a run directory and as evidence."""

from __future__ import annotations

from pathlib import Path

import pytest

from kiloscribe_lab.diagnosis import TargetVerdict, diagnose, verdicts
from kiloscribe_lab.report.rundata import RunData, load_run
from kiloscribe_lab.results import Finding, ProbeResult
from tests.unit.report.helpers import KEY_ENV, fixture, make_run_dir


@pytest.fixture
def incident_run(tmp_path: Path) -> RunData:
    return load_run(make_run_dir(tmp_path / "run", fixture("incident")))


@pytest.fixture
def incident() -> tuple[list[ProbeResult], list[Finding], list[TargetVerdict]]:
    results = fixture("incident")
    return results, diagnose(results, KEY_ENV), verdicts(results)
