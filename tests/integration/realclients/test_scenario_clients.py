"""Real clients agree with every scenario: the SDK (with a WebSocket global), socket.io-client
(websocket-first and polling-first) and python-socketio each connect, or not, and are
acknowledged, or not, as the scenario's ``ClientTruth`` says. A scenario whose real clients
disagree with its ground truth is a broken scenario. The labs are the scenario table's: the
probes ran on them first (tests/integration/scenario_table.py)."""

from __future__ import annotations

import pytest

from kiloscribe_lab.lab.scenarios import SCENARIOS
from kiloscribe_lab.names import ClientKind, TransportOrder
from tests.integration.scenario_table import (
    CHECKED_ELSEWHERE,
    SLOW_FAULTS,
    Cell,
    Table,
    client_cases,
    client_cells,
)

pytestmark = pytest.mark.timeout(400)  # the first test to ask runs the whole table

CLIENT_CELLS = client_cells()


@pytest.mark.parametrize("cell", CLIENT_CELLS, ids=[c.id for c in CLIENT_CELLS])
def test_real_clients_agree_with_the_scenario(scenario_table: Table, cell: Cell) -> None:
    run = scenario_table[cell]
    assert run.error is None, run.error
    assert run.clients is not None and len(run.clients) == len(client_cases(cell))
    wrong = [w for c in run.clients for w in c.disagreements()]
    assert not wrong, wrong


def test_every_scenario_with_client_truth_is_checked_with_every_client() -> None:
    checked = {c.scenario for c in CLIENT_CELLS}
    assert checked == {n for n, s in SCENARIOS.items() if s.truth.clients} - CHECKED_ELSEWHERE
    # test_realclients.py: healthy on both backend kinds, the slow faults together
    assert {"healthy"} | SLOW_FAULTS == CHECKED_ELSEWHERE
    for cell in CLIENT_CELLS:
        kinds = {kind for _, kind in client_cases(cell)}
        assert {ClientKind.SOCKETIO_CLIENT, ClientKind.PYTHON_SOCKETIO} <= kinds, cell
        orders = {truth.order for truth, _ in client_cases(cell)}
        # every order where it is established; the rate limit draws polling-first's fate
        assert orders == set(TransportOrder) or cell.scenario == "edge-rate-limited", cell
        assert (ClientKind.SDK in kinds) is any(
            t.applies_to(ClientKind.SDK) for t in SCENARIOS[cell.scenario].truth.clients
        )
