"""The Vantage points section: per vantage × target, the connects that worked, p50/p95 and the
faults seen there; the backends per vantage; the chart once there are two vantages."""

from __future__ import annotations

from pathlib import Path

from kiloscribe_lab.diagnosis import diagnose
from kiloscribe_lab.names import FindingId, Outcome, ProbeName
from kiloscribe_lab.report.rundata import RunData
from kiloscribe_lab.report.sections import PARTS, vantages_section
from kiloscribe_lab.report.vantages import VANTAGES, backend_rates, nearest_rank, vantage_cells
from kiloscribe_lab.results import ProbeResult, Timings, replace
from tests.unit.diagnosis.helpers import LB, pr, working
from tests.unit.report.helpers import PNG, assert_inert_html, assert_inert_markdown

VIA = {"via": "1.1 corporate-proxy (kiloscribe-lab)", "server": "corporate-proxy"}


def blocked(target: str) -> list[ProbeResult]:
    """What a worker behind a proxy that refuses every WebSocket upgrade records."""
    return [
        pr(ProbeName.WEBSOCKET_PLAIN, "socket.io", target, "blocked", 403, headers=VIA),
        pr(ProbeName.ENGINEIO_UPGRADE, "", target, "blocked", 403, headers=VIA),
        pr(ProbeName.SOCKETIO_CONNECT, "websocket:valid", target, "blocked", 403, headers=VIA),
        pr(ProbeName.SDK_FLOW, "", target, "blocked", 403, headers=VIA),
        pr(ProbeName.ENGINEIO_HANDSHAKE, "", target, Outcome.OK, 200),
        pr(ProbeName.SOCKETIO_CONNECT, "polling:valid", target, Outcome.OK, 200),
    ]


def stats(
    vantage: str, runs: list[tuple[str, float]], by_backend: dict[str, dict[str, int]], transport: str
) -> ProbeResult:
    r = pr(
        ProbeName.CONNECT_STATS,
        transport,
        LB,
        Outcome.OK,
        runs=[{"outcome": o, "ms": ms} for o, ms in runs],
        by_backend=by_backend,
    )
    return replace(r, vantage=vantage)


def from_(vantage: str, results: list[ProbeResult], handshake: float) -> list[ProbeResult]:
    return [
        replace(r, vantage=vantage, timings=Timings(handshake=handshake, total=2 * handshake))
        for r in results
    ]


def two_vantages() -> list[ProbeResult]:
    return [
        *from_("eu-west", working(LB), 12.0),
        stats(
            "eu-west",
            [("ok", 10.0), ("ok", 11.0), ("ok", 30.0)],
            {"inscribe-1": {"ok": 2, "failed": 0}},
            "websocket",
        ),
        *from_("corp-office", blocked(LB), 40.0),
        stats(
            "corp-office", [("ok", 41.0), ("reset", 0.0)], {"inscribe-1": {"ok": 1, "failed": 1}}, "polling"
        ),
    ]


def test_the_section_is_a_part_of_the_report() -> None:
    assert VANTAGES in PARTS


def test_each_vantage_and_target_its_connects_latencies_and_faults(tmp_path: Path) -> None:
    results = two_vantages()
    findings = diagnose(results)
    assert FindingId.WEBSOCKET_BLOCKED in {f.id for f in findings}
    cells = {c.vantage: c for c in vantage_cells(results, findings)}
    eu, corp = cells["eu-west"], cells["corp-office"]
    assert (eu.successes, eu.attempts) == (5, 5)  # the valid connects (one a transport) and 3 stats runs
    assert eu.latencies_ms == (12.0, 12.0, 10.0, 11.0, 30.0)
    assert eu.p50_ms == 12.0 and eu.p95_ms == 30.0
    # websocket:valid refused; polling:valid worked; 1 of 2 stats runs
    assert (corp.successes, corp.attempts) == (2, 4)
    assert [f.id for f in corp.findings] == [FindingId.WEBSOCKET_BLOCKED]
    assert FindingId.WEBSOCKET_BLOCKED not in {f.id for f in eu.findings}
    assert backend_rates(results) == {
        ("corp-office", "inscribe-1"): (1, 2),
        ("eu-west", "inscribe-1"): (2, 2),
    }

    run = RunData(
        run_dir=tmp_path,
        vantages=("eu-west", "corp-office"),
        cluster={
            "scheduler": "tcp://127.0.0.1:8786",
            "workers": [{"name": "eu-west", "host": "vm-eu", "address": "tcp://10.0.0.1:1"}],
        },
    )
    section = vantages_section(run, results, findings)
    html, md = section.html(), section.markdown()
    assert_inert_html(html)
    assert_inert_markdown(md)
    assert "Each cell ran from 2 vantages" in md and "Dask worker on vm-eu" in md
    assert (
        "50 % (2/4)" in md
        and "100 % (5/5)" in md
        and "WebSocket is blocked only from vantage corp-office" in md
    )
    assert "Backends, per vantage" in md and "50 % (1/2)" in md
    [figure] = section.figures()
    assert figure.png.startswith(PNG) and "corp-office" in figure.alt and "below" in figure.alt


def test_one_vantage_says_how_to_add_others_and_draws_no_chart(tmp_path: Path) -> None:
    results = working(LB)
    section = vantages_section(RunData(run_dir=tmp_path), results, diagnose(results))
    md = section.markdown()
    assert "Every cell ran from one vantage, local" in md and "--cluster" in md
    assert section.figures() == []


def test_discovery_and_the_sdk_replay_are_no_vantage_cell() -> None:
    results = [*working(LB), replace(pr(ProbeName.SDK_REPLAY, "x", LB, Outcome.OK), vantage="local")]
    results = [replace(r, vantage="eu-west") for r in results[:-1]] + results[-1:]
    assert {c.vantage for c in vantage_cells(results, [])} == {"eu-west"}


def test_p95_is_a_measured_value() -> None:
    assert nearest_rank([], 0.95) is None
    assert nearest_rank([5.0], 0.95) == 5.0
    assert nearest_rank([float(v) for v in range(1, 21)], 0.95) == 19.0
    assert nearest_rank([1.0, 2.0, 3.0, 100.0], 0.95) == 100.0
