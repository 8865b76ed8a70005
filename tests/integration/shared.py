"""The session's shared labs and their investigations (the fixtures ``labs`` and
``investigation`` in conftest.py hand them out)."""

from __future__ import annotations

import os

import pytest

from kiloscribe_lab.lab import fleet
from kiloscribe_lab.lab.keys import API_KEY_ENV
from kiloscribe_lab.lab.scenarios import BackendKind, BalancerKind, backend_kind, get_scenario
from kiloscribe_lab.lab.state import LabInfo
from kiloscribe_lab.results import ProbeResult
from tests.integration.investigation import investigate_lab

# The backends every shared lab runs (`lab up --backend`): KILOSCRIBE_LAB_TEST_BACKEND=node runs
# the lab tests on the reference Node socket.io server.
BACKEND_ENV = "KILOSCRIBE_LAB_TEST_BACKEND"


class Labs:
    """The session's shared labs, one per scenario, started on first use: ``labs(scenario)``.
    Each runs the scenario on ``--lab-balancer`` (else its own) with the backends of
    ``$KILOSCRIBE_LAB_TEST_BACKEND`` (else the scenario's): ``kinds`` says which, so a test
    that needs a scenario on given kinds (the scenario table) can tell whether this is it."""

    def __init__(
        self, tmp_path_factory: pytest.TempPathFactory, key: str, balancer: BalancerKind | None
    ) -> None:
        self._factory = tmp_path_factory
        self._key = key
        self._balancer = balancer
        self._backend = os.environ.get(BACKEND_ENV) or None
        self._started: dict[str, LabInfo] = {}

    def kinds(self, scenario: str) -> tuple[BalancerKind, BackendKind]:
        entry = get_scenario(scenario)
        return self._balancer or entry.balancer.kind, backend_kind(self._backend, entry.backends)

    def __call__(self, scenario: str) -> LabInfo:
        if scenario not in self._started:
            lab_dir = self._factory.mktemp(f"lab-{scenario}")
            environ = {**os.environ, API_KEY_ENV: self._key}
            self._started[scenario] = fleet.up(
                lab_dir, scenario, balancer=self._balancer, environ=environ, backend=self._backend
            )
        return self._started[scenario]

    def close(self) -> None:
        for info in self._started.values():
            fleet.down(info.lab_dir)


LabGetter = Labs


class Investigations:
    """The whole probe suite against one scenario's shared lab (``investigate_lab``), run once
    per session: ``investigation(scenario)``. ``remember`` keeps a run made elsewhere of the
    same lab (the scenario table runs many labs' investigations at once)."""

    def __init__(self, labs: Labs, key: str) -> None:
        self._labs = labs
        self._key = key
        self._cache: dict[str, list[ProbeResult]] = {}

    def __call__(self, scenario: str) -> list[ProbeResult]:
        if scenario not in self._cache:
            self._cache[scenario] = investigate_lab(self._labs(scenario), self._key)
        return self._cache[scenario]

    def cached(self, scenario: str) -> list[ProbeResult] | None:
        return self._cache.get(scenario)

    def remember(self, scenario: str, results: list[ProbeResult]) -> None:
        self._cache.setdefault(scenario, results)


InvestigationGetter = Investigations
