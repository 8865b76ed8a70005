"""The scenario table: every scenario on every (balancer, backend) its ground truth holds for
(``Scenario.matrix()``), each lab investigated as the lab tests do and, where the scenario says
how real clients fare, its real clients run against it.

One cell's lab serves both: the probes first, then the clients, together, except behind a
round robin, where they run one after another (the rotation is part of what a polling-first
client meets, and a client beside it would change its draw). Cells run concurrently in one
asyncio loop, a few at a time: their labs start in threads, their investigations and clients
overlap, and each lab is stopped once its cell is done (memory: a lab is ~300 MB). A cell that
is the session's shared lab (same scenario, balancer and backend) uses that lab (starting it
if need be: the other lab tests use it too) and its investigation, and leaves it running; the
table's own labs start no network proxies (``fleet.up(networks=False)``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import traceback
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from kiloscribe_lab.lab import fleet
from kiloscribe_lab.lab.keys import API_KEY_ENV
from kiloscribe_lab.lab.scenarios import SCENARIOS, BackendKind, BalancerKind, ClientTruth, LbPolicy, Scenario
from kiloscribe_lab.lab.state import LabInfo
from kiloscribe_lab.names import ClientKind
from kiloscribe_lab.results import ProbeResult
from tests.integration.investigation import investigate_lab_async
from tests.integration.realclients import ClientOutcome, run_client
from tests.integration.shared import Investigations, Labs

# Cells in flight at once. Two cores: more and the probes' 3 s deadlines start to measure the
# machine rather than the lab (4 at once, under load, lost SDK and sticky evidence in a third
# of the cells; 2 in one of 36). $CELLS_ENV overrides it.
CELLS_ENV = "KILOSCRIBE_LAB_TEST_TABLE_CELLS"
CONCURRENT_CELLS = 2
CONNECT_TIMEOUT_S = 5.0  # a client the truth says connects
REFUSED_TIMEOUT_S = 2.0  # one it says does not (python-socketio waits out a long-poll otherwise)
ACK_TIMEOUT_S = 3.0  # the mock acknowledges within milliseconds


# The slow faults' real clients hold sessions for seconds: a test of their own starts their labs
# together and runs them at once (realclients/test_realclients.py).
SLOW_FAULTS = frozenset(n for n, s in SCENARIOS.items() if s.truth.deep and s.truth.clients)
# Their real clients are checked by tests of their own (realclients/test_realclients.py):
# healthy's on both backend kinds, the slow faults' together.
CHECKED_ELSEWHERE = frozenset({"healthy"}) | SLOW_FAULTS


@dataclass(frozen=True, order=True)
class Cell:
    scenario: str
    balancer: BalancerKind
    backend: BackendKind

    @property
    def id(self) -> str:
        return f"{self.scenario}@{self.balancer}+{self.backend}"

    @property
    def entry(self) -> Scenario:
        return SCENARIOS[self.scenario]


def cells() -> list[Cell]:
    """Every scenario × (balancer, backend) its ground truth is asserted on."""
    return [Cell(name, b, k) for name, s in SCENARIOS.items() for b, k in s.matrix()]


def client_cells() -> list[Cell]:
    """Where the real clients run: each scenario with client truths on its own balancer and
    first backend kind, and on every other backend kind that has truths of its own (python-
    socketio and engine.io differ on a foreign Origin). The balancer is the same everywhere
    it forwards what clients send; the clients' outcome differs where the servers answer
    differently."""
    chosen = []
    for name, s in SCENARIOS.items():
        if not s.truth.clients or name in CHECKED_ELSEWHERE:
            continue
        own = s.balancers[0]
        kinds = [s.servers[0]] + [
            k for k in s.servers[1:] if any(set(t.backends) != set(BackendKind) for t in s.truth.clients)
        ]
        chosen += [Cell(name, own, k) for k in kinds]
    return chosen


@dataclass(frozen=True)
class ClientRun:
    truth: ClientTruth
    kind: ClientKind
    outcome: ClientOutcome

    def disagreements(self) -> list[str]:
        o = self.outcome
        said = self.truth.disagreements(
            self.kind, connected=o.connected, acked=o.acked, disconnect=o.disconnect_reason
        )
        return [f"{w} ({o.error or o.ack_error or 'no error'})" for w in said]


@dataclass
class CellRun:
    cell: Cell
    results: list[ProbeResult] = field(default_factory=list)
    clients: list[ClientRun] | None = None  # None: not a client cell
    seconds: dict[str, float] = field(default_factory=dict)  # up, probes, clients, down
    error: str | None = None  # the cell could not be run: its tests fail with this


def client_cases(cell: Cell) -> list[tuple[ClientTruth, ClientKind]]:
    return [
        (truth, kind)
        for truth in cell.entry.truth.clients
        for kind in ClientKind
        if truth.applies_to(kind, cell.backend)
    ]


async def _client(lab: LabInfo, key: str, truth: ClientTruth, kind: ClientKind) -> ClientRun:
    url = {"edge": lab.edge, "lb": lab.lb}.get(truth.site) or lab.backend_url(truth.site)
    outcome = await run_client(
        kind,
        url,
        environ={**os.environ, API_KEY_ENV: key},
        transports=truth.transports,
        api_key_env=API_KEY_ENV,
        ca=lab.ca_bundle,
        origin=truth.origin,
        hold_s=truth.hold_s,
        inscribe=truth.acked is not None,
        connect_timeout_s=CONNECT_TIMEOUT_S if truth.connects else REFUSED_TIMEOUT_S,
        ack_timeout_s=ACK_TIMEOUT_S,
    )
    return ClientRun(truth, kind, outcome)


async def _clients(cell: Cell, lab: LabInfo, key: str) -> list[ClientRun]:
    cases = client_cases(cell)
    if cell.entry.balancer.policy is LbPolicy.ROUND_ROBIN:
        # One at a time: the rotation is what a polling-first client meets (see above).
        return [await _client(lab, key, truth, kind) for truth, kind in cases]
    return list(await asyncio.gather(*(_client(lab, key, truth, kind) for truth, kind in cases)))


class Table:
    """The runs of every cell asked for, made once per session (``run``), read by cell."""

    def __init__(self, labs: Labs, investigation: Investigations, key: str, root: Path) -> None:
        self._labs = labs
        self._investigation = investigation
        self._key = key
        self._root = root
        self.runs: dict[Cell, CellRun] = {}
        self.wall_s = 0.0

    def run(self, wanted: Iterable[Cell], with_clients: Sequence[Cell]) -> None:
        todo = sorted(set(wanted) - set(self.runs))
        if not todo:
            return
        began = time.monotonic()
        runs = asyncio.run(self._all(todo, set(with_clients)))
        self.runs.update({r.cell: r for r in runs})
        self.wall_s += time.monotonic() - began

    def __getitem__(self, cell: Cell) -> CellRun:
        """The cell's run; the first cell asked for runs the whole table (its clients too)."""
        if cell not in self.runs:
            self.run(cells(), client_cells())
        return self.runs[cell]

    async def _all(self, todo: list[Cell], with_clients: set[Cell]) -> list[CellRun]:
        gate = asyncio.Semaphore(int(os.environ.get(CELLS_ENV) or CONCURRENT_CELLS))
        # The slow probes' investigations one at a time: each holds sessions through a heartbeat
        # under real deadlines, and two at once put hundreds of handshakes on one event loop.
        deep = asyncio.Semaphore(1)

        async def one(cell: Cell) -> CellRun:
            async with gate, deep if cell.entry.truth.deep else contextlib.nullcontext():
                try:
                    return await self._cell(cell, cell in with_clients)
                except Exception:  # one broken cell fails its own tests, not the table's
                    return CellRun(cell, error=traceback.format_exc(limit=8))

        return list(await asyncio.gather(*(one(c) for c in todo)))

    async def _cell(self, cell: Cell, clients: bool) -> CellRun:
        run = CellRun(cell)
        # The session's lab of this scenario when it runs this cell's kinds: started here if it is
        # not up yet (other tests use it too), and left running.
        shared = self._labs.kinds(cell.scenario) == (cell.balancer, cell.backend)
        t = time.monotonic()
        if shared:
            lab = await asyncio.to_thread(self._labs, cell.scenario)
        else:
            lab_dir = self._root / cell.id.replace("@", "-").replace("+", "-")
            environ = {**os.environ, API_KEY_ENV: self._key}
            lab = await asyncio.to_thread(
                fleet.up,
                lab_dir,
                cell.scenario,
                balancer=cell.balancer,
                environ=environ,
                backend=cell.backend,
                networks=False,  # direct only: no proxies to start
            )
        try:
            run.seconds["up"] = time.monotonic() - t
            t = time.monotonic()
            cached = self._investigation.cached(cell.scenario) if shared else None
            run.results = cached if cached is not None else await investigate_lab_async(lab, self._key)
            if shared:
                self._investigation.remember(cell.scenario, run.results)
            run.seconds["probes"] = time.monotonic() - t
            if clients:
                t = time.monotonic()
                run.clients = await _clients(cell, lab, self._key)
                run.seconds["clients"] = time.monotonic() - t
        finally:
            if not shared:
                t = time.monotonic()
                stubborn = await asyncio.to_thread(fleet.down, lab.lab_dir)
                run.seconds["down"] = time.monotonic() - t
                if stubborn:
                    raise RuntimeError(f"{cell.id}: would not stop: {stubborn}")
        return run

    def summary(self) -> str:
        """What the table cost: its wall time, and each phase summed over the cells."""
        phases: dict[str, float] = {}
        for run in self.runs.values():
            for phase, seconds in run.seconds.items():
                phases[phase] = phases.get(phase, 0.0) + seconds
        slowest = sorted(self.runs.values(), key=lambda r: -sum(r.seconds.values()))[:3]
        return (
            f"scenario table: {len(self.runs)} cells in {self.wall_s:.1f} s wall ("
            + ", ".join(f"{p} {s:.0f} s" for p, s in phases.items())
            + " summed); slowest: "
            + ", ".join(f"{r.cell.id} {sum(r.seconds.values()):.1f} s" for r in slowest)
        )


@pytest.fixture(scope="session")
def scenario_table(
    labs: Labs,
    investigation: Investigations,
    lab_key: str,
    tmp_path_factory: pytest.TempPathFactory,
    pytestconfig: pytest.Config,
) -> Iterator[Table]:
    """The whole table, run on first use: every cell's probes and every client cell's clients.
    Its cost is reported at the end of the session (the test-time budget is the scarce one)."""
    table = Table(labs, investigation, lab_key, tmp_path_factory.mktemp("table"))
    pytestconfig.stash[TABLE_KEY] = table
    yield table


# The session's table, for the terminal summary (conftest.py's pytest_terminal_summary).
TABLE_KEY = pytest.StashKey[Table]()


def report_cost(config: pytest.Config, reporter: pytest.TerminalReporter) -> None:
    table = config.stash.get(TABLE_KEY, None)
    if table is not None and table.runs:
        reporter.write_line(table.summary())
