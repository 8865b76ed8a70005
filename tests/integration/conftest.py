"""Real labs for integration tests: one per scenario, started on first use, always torn down."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator

import pytest

from kiloscribe_lab.lab import fleet
from kiloscribe_lab.lab.keys import API_KEY_ENV
from kiloscribe_lab.lab.state import LabInfo
from kiloscribe_lab.results import ProbeResult
from tests.integration.foreign import plain_ws_server as plain_ws_server  # fixtures, for every test
from tests.integration.foreign import python_socketio_cors_server as python_socketio_cors_server
from tests.integration.foreign import reference_socketio_server as reference_socketio_server
from tests.integration.investigation import PROBE_TIMEOUT_S as PROBE_TIMEOUT_S  # re-exported for tests
from tests.integration.investigation import investigate_lab
from tests.integration.investigation import lab_targets as lab_targets  # re-exported for tests
from tests.integration.reports import IncidentReports, incident_reports_in

LabGetter = Callable[[str], LabInfo]
InvestigationGetter = Callable[[str], list[ProbeResult]]
# The backends every shared lab runs (`lab up --backend`): KILOSCRIBE_LAB_TEST_BACKEND=node runs
# the lab tests, the diagnosis table among them, on the reference Node socket.io server.
BACKEND_ENV = "KILOSCRIBE_LAB_TEST_BACKEND"


@pytest.fixture(scope="session")
def lab_key() -> str:
    return "test-" + secrets.token_urlsafe(16)


@pytest.fixture(scope="session")
def labs(
    tmp_path_factory: pytest.TempPathFactory, lab_key: str, pytestconfig: pytest.Config
) -> Iterator[LabGetter]:
    """``--lab-balancer nginx|haproxy`` runs every scenario's balancer tier on that software
    (``lab up --balancer``): the same tests, another balancer."""
    started: dict[str, LabInfo] = {}
    option = pytestconfig.getoption("--lab-balancer")
    balancer = None if option is None else fleet.BalancerKind(option)

    def get(scenario: str) -> LabInfo:
        if scenario not in started:
            lab_dir = tmp_path_factory.mktemp(f"lab-{scenario}")
            environ = {**os.environ, API_KEY_ENV: lab_key}
            started[scenario] = fleet.up(
                lab_dir, scenario, balancer=balancer, environ=environ, backend=os.environ.get(BACKEND_ENV)
            )
        return started[scenario]

    try:
        yield get
    finally:
        for info in started.values():
            fleet.down(info.lab_dir)


@pytest.fixture(scope="session")
def investigation(labs: LabGetter, lab_key: str) -> InvestigationGetter:
    """The whole probe suite against one scenario's lab (``investigate_lab``), run once per session."""
    cache: dict[str, list[ProbeResult]] = {}

    def get(scenario: str) -> list[ProbeResult]:
        if scenario not in cache:
            cache[scenario] = investigate_lab(labs(scenario), lab_key)
        return cache[scenario]

    return get


@pytest.fixture(scope="session")
def incident_reports(tmp_path_factory: pytest.TempPathFactory) -> IncidentReports:
    """Runs A and B of the incident report (tests/integration/reports.py), once per session:
    test_report.py and test_report_browser.py read them."""
    return incident_reports_in(tmp_path_factory.mktemp("reports"), tmp_path_factory.mktemp("report-lab"))
