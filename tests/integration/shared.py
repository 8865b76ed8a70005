"""The session's shared labs and their investigations (the fixtures ``labs`` and
``investigation`` in conftest.py hand them out)."""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, wait

import pytest

from kiloscribe_lab.lab import fleet
from kiloscribe_lab.lab.keys import API_KEY_ENV
from kiloscribe_lab.lab.scenarios import SCENARIOS, BackendKind, BalancerKind, backend_kind, get_scenario
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
        self._lock = threading.Lock()

    def kinds(self, scenario: str) -> tuple[BalancerKind, BackendKind]:
        entry = get_scenario(scenario)
        return self._balancer or entry.balancer.kind, backend_kind(self._backend, entry.backends)

    @property
    def started(self) -> Mapping[str, LabInfo]:
        return self._started

    def __call__(self, scenario: str) -> LabInfo:
        self.start([scenario])
        return self._started[scenario]

    def start(self, scenarios: Sequence[str]) -> None:
        """Start ``scenarios``' labs that are not up yet, at once: their start-ups overlap."""
        with self._lock:  # callers in threads (the scenario table) must not start one lab twice
            missing = [s for s in dict.fromkeys(scenarios) if s not in self._started]
            dirs = {s: self._factory.mktemp(f"lab-{s}") for s in missing}
            environ = {**os.environ, API_KEY_ENV: self._key}
            with ThreadPoolExecutor(max_workers=max(1, len(missing))) as pool:
                futures = {
                    s: pool.submit(
                        fleet.up, d, s, balancer=self._balancer, environ=environ, backend=self._backend
                    )
                    for s, d in dirs.items()
                }
                wait(futures.values())
                for s, future in futures.items():
                    if future.exception() is None:
                        self._started[s] = future.result()
                for future in futures.values():
                    future.result()  # the first failure, once every lab that started is recorded

    def close(self) -> None:
        """Together, as they started: each waits seconds on its processes' exits."""
        labs = list(self._started.values())
        with ThreadPoolExecutor(max_workers=max(1, len(labs))) as pool:
            list(pool.map(fleet.down, [info.lab_dir for info in labs]))


LabGetter = Labs


class Investigations:
    """The whole probe suite against one scenario's shared lab (``investigate_lab``), run once
    per session: ``investigation(scenario)``. The labs of the scenarios whose truth is the slow
    probes' (``--deep``) start together on the first ask for one of them; their investigations
    run one after another (two at once put some two hundred TLS handshakes on one event loop,
    and the probes' deadlines are real). ``remember`` keeps a run made elsewhere of the
    same lab (the scenario table runs many labs' investigations at once)."""

    def __init__(self, labs: Labs, key: str) -> None:
        self._labs = labs
        self._key = key
        self._cache: dict[str, list[ProbeResult]] = {}

    def __call__(self, scenario: str) -> list[ProbeResult]:
        if scenario not in self._cache:
            if SCENARIOS[scenario].truth.deep:  # the slow faults' labs start together
                self._labs.start([n for n, s in SCENARIOS.items() if s.truth.deep])
            self._cache[scenario] = investigate_lab(self._labs(scenario), self._key)
        return self._cache[scenario]

    def cached(self, scenario: str) -> list[ProbeResult] | None:
        return self._cache.get(scenario)

    def remember(self, scenario: str, results: list[ProbeResult]) -> None:
        self._cache.setdefault(scenario, results)


InvestigationGetter = Investigations
