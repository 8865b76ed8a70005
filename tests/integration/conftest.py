"""Real labs for integration tests: one per scenario, started on first use, always torn down."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest

from kiloscribe_lab.lab import fleet
from tests.integration.foreign import plain_ws_server as plain_ws_server  # fixtures, for every test
from tests.integration.foreign import python_socketio_cors_server as python_socketio_cors_server
from tests.integration.foreign import reference_socketio_server as reference_socketio_server
from tests.integration.investigation import PROBE_TIMEOUT_S as PROBE_TIMEOUT_S  # re-exported for tests
from tests.integration.investigation import lab_targets as lab_targets  # re-exported for tests
from tests.integration.reports import IncidentReports, incident_reports_in
from tests.integration.scenario_table import report_cost
from tests.integration.scenario_table import scenario_table as scenario_table  # a fixture
from tests.integration.shared import BACKEND_ENV as BACKEND_ENV
from tests.integration.shared import InvestigationGetter as InvestigationGetter
from tests.integration.shared import Investigations, Labs
from tests.integration.shared import LabGetter as LabGetter


@pytest.fixture(scope="session")
def lab_key() -> str:
    return "test-" + secrets.token_urlsafe(16)


@pytest.fixture(scope="session")
def labs(
    tmp_path_factory: pytest.TempPathFactory, lab_key: str, pytestconfig: pytest.Config
) -> Iterator[Labs]:
    """``--lab-balancer nginx|haproxy`` runs every scenario's balancer tier on that software
    (``lab up --balancer``): the same tests, another balancer."""
    option = pytestconfig.getoption("--lab-balancer")
    shared = Labs(tmp_path_factory, lab_key, None if option is None else fleet.BalancerKind(option))
    try:
        yield shared
    finally:
        shared.close()


@pytest.fixture(scope="session")
def investigation(labs: Labs, lab_key: str) -> Investigations:
    """The whole probe suite against one scenario's lab (``investigate_lab``), run once per session."""
    return Investigations(labs, lab_key)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    """What the scenario table cost, when it ran: the test-time budget is the scarce one."""
    report_cost(config, terminalreporter)


@pytest.fixture(scope="session")
def incident_reports(tmp_path_factory: pytest.TempPathFactory) -> IncidentReports:
    """Runs A and B of the incident report (tests/integration/reports.py), once per session:
    test_report.py and test_report_browser.py read them."""
    return incident_reports_in(tmp_path_factory.mktemp("reports"), tmp_path_factory.mktemp("report-lab"))
