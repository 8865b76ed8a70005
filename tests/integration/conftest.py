"""Real labs for integration tests: one per scenario, started on first use, always torn down."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, wait

import pytest

from kiloscribe_lab.lab import fleet
from kiloscribe_lab.lab.keys import API_KEY_ENV
from kiloscribe_lab.lab.scenarios import SCENARIOS
from kiloscribe_lab.lab.state import LabInfo
from kiloscribe_lab.results import ProbeResult
from tests.integration.foreign import plain_ws_server as plain_ws_server  # fixtures, for every test
from tests.integration.foreign import python_socketio_cors_server as python_socketio_cors_server
from tests.integration.foreign import reference_socketio_server as reference_socketio_server
from tests.integration.investigation import PROBE_TIMEOUT_S as PROBE_TIMEOUT_S  # re-exported for tests
from tests.integration.investigation import investigate_lab
from tests.integration.investigation import lab_targets as lab_targets  # re-exported for tests
from tests.integration.reports import IncidentReports, incident_reports_in

InvestigationGetter = Callable[[str], list[ProbeResult]]
# The backends every shared lab runs (`lab up --backend`): KILOSCRIBE_LAB_TEST_BACKEND=node runs
# the lab tests, the diagnosis table among them, on the reference Node socket.io server.
BACKEND_ENV = "KILOSCRIBE_LAB_TEST_BACKEND"


@pytest.fixture(scope="session")
def lab_key() -> str:
    return "test-" + secrets.token_urlsafe(16)


class Labs:
    """The session's labs, one per scenario, each started on first use (``labs("healthy")``);
    ``start`` starts several at once, their start-ups overlapping."""

    def __init__(
        self, tmp_path_factory: pytest.TempPathFactory, key: str, balancer: fleet.BalancerKind | None
    ):
        self._tmp, self._key, self._balancer = tmp_path_factory, key, balancer
        self.started: dict[str, LabInfo] = {}

    def __call__(self, scenario: str) -> LabInfo:
        self.start([scenario])
        return self.started[scenario]

    def start(self, scenarios: Sequence[str]) -> None:
        missing = [s for s in dict.fromkeys(scenarios) if s not in self.started]
        dirs = {s: self._tmp.mktemp(f"lab-{s}") for s in missing}  # one at a time: mktemp numbers them
        environ = {**os.environ, API_KEY_ENV: self._key}
        with ThreadPoolExecutor(max_workers=max(1, len(missing))) as pool:
            futures = {
                s: pool.submit(
                    fleet.up,
                    d,
                    s,
                    balancer=self._balancer,
                    environ=environ,
                    backend=os.environ.get(BACKEND_ENV),
                )
                for s, d in dirs.items()
            }
            wait(futures.values())
            for s, future in futures.items():
                if future.exception() is None:
                    self.started[s] = future.result()
            for future in futures.values():
                future.result()  # the first failure, once every lab that started is recorded


LabGetter = Labs


@pytest.fixture(scope="session")
def labs(
    tmp_path_factory: pytest.TempPathFactory, lab_key: str, pytestconfig: pytest.Config
) -> Iterator[LabGetter]:
    """``--lab-balancer nginx|haproxy`` runs every scenario's balancer tier on that software
    (``lab up --balancer``): the same tests, another balancer."""
    option = pytestconfig.getoption("--lab-balancer")
    getter = Labs(tmp_path_factory, lab_key, None if option is None else fleet.BalancerKind(option))
    try:
        yield getter
    finally:
        # Together, as they started: each waits seconds on its processes' exits.
        with ThreadPoolExecutor(max_workers=max(1, len(getter.started))) as pool:
            list(pool.map(fleet.down, [info.lab_dir for info in getter.started.values()]))


@pytest.fixture(scope="session")
def investigation(labs: LabGetter, lab_key: str) -> InvestigationGetter:
    """The whole probe suite against one scenario's lab (``investigate_lab``), run once per session.
    The labs of the scenarios whose truth is the slow probes' (``--deep``) start together on the
    first ask for one of them. Their investigations run one after another: two at once put some
    two hundred TLS handshakes on one event loop, and the probes' deadlines are real."""
    cache: dict[str, list[ProbeResult]] = {}

    def get(scenario: str) -> list[ProbeResult]:
        if scenario not in cache:
            if SCENARIOS[scenario].truth.deep:
                labs.start([n for n, s in SCENARIOS.items() if s.truth.deep])
            cache[scenario] = investigate_lab(labs(scenario), lab_key)
        return cache[scenario]

    return get


@pytest.fixture(scope="session")
def incident_reports(tmp_path_factory: pytest.TempPathFactory) -> IncidentReports:
    """Runs A and B of the incident report (tests/integration/reports.py), once per session:
    test_report.py and test_report_browser.py read them."""
    return incident_reports_in(tmp_path_factory.mktemp("reports"), tmp_path_factory.mktemp("report-lab"))
