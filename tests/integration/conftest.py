"""Real labs for integration tests: one per scenario, started on first use, always torn down."""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Callable, Iterator

import pytest

from kiloscribe_lab.lab import fleet
from kiloscribe_lab.lab.scenarios import BACKENDS
from kiloscribe_lab.probes.runner import investigate
from kiloscribe_lab.results import ProbeResult
from kiloscribe_lab.settings import ProbeOptions

LabGetter = Callable[[str], fleet.LabInfo]
InvestigationGetter = Callable[[str], list[ProbeResult]]
PROBE_TIMEOUT_S = 3.0


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


def lab_targets(lab: fleet.LabInfo) -> list[str]:
    """Every public endpoint of a lab, labelled as the findings should name them."""
    return [f"edge={lab.edge}", f"lb={lab.lb}", *(f"{b}={lab.backend_url(b)}" for b in BACKENDS)]


@pytest.fixture(scope="session")
def investigation(labs: LabGetter, lab_key: str) -> InvestigationGetter:
    """The whole probe suite against one scenario's lab, run once per session."""
    cache: dict[str, list[ProbeResult]] = {}

    def get(scenario: str) -> list[ProbeResult]:
        if scenario not in cache:
            lab = labs(scenario)
            options = ProbeOptions(
                timeout_s=PROBE_TIMEOUT_S, ca_bundle=lab.ca_bundle, api_key_env=fleet.API_KEY_ENV, strict=True
            )
            environ = {**os.environ, fleet.API_KEY_ENV: lab_key}
            cache[scenario] = asyncio.run(
                investigate(lab_targets(lab), options, discover=lab.api, environ=environ)
            )
        return cache[scenario]

    return get
