"""The report's charts: the data each is drawn from, its text alternative, and PNGs for the
recorded evidence without an exception on odd input."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from typing import Any

import pytest

from kiloscribe_lab.names import Outcome, ProbeName
from kiloscribe_lab.report.charts import (
    latency_alt,
    latency_chart,
    latency_samples,
    latency_table,
    success_alt,
    success_grid,
    success_heatmap,
)
from kiloscribe_lab.report.document import Figure, render_html, render_markdown
from kiloscribe_lab.report.summary import summarize
from kiloscribe_lab.results import ProbeResult, Timings
from tests.unit.report.helpers import PNG, fixture, hostile_results


def test_charts_render_png_with_a_text_alternative(incident: Any) -> None:
    results, findings, tv = incident
    for chart in (success_heatmap(summarize(results, findings, tv)), latency_chart(results)):
        assert chart.png.startswith(PNG) and len(chart.png) > 2000
        assert chart.alt and chart.caption
        html = render_html([chart])
        assert "data:image/png;base64," in html and 'alt="' in html and "<figcaption>" in html
        md = render_markdown([chart])
        assert md.startswith("![") and f"]({chart.path})" in md
        assert chart.path.startswith("findings_files/") and chart.path.endswith(".png")


def test_success_grid_counts_and_alt_name_the_lowest_cells(incident: Any) -> None:
    results, findings, tv = incident
    summary = summarize(results, findings, tv)
    targets, networks, grid = success_grid(summary)
    assert targets == ["edge", "lb", "inscribe-1", "inscribe-2", "inscribe-3"] and networks == ["direct"]
    cell = summary["targets"]["inscribe-2"]["networks"]["direct"]
    assert (grid[("inscribe-2", "direct")].successes, grid[("inscribe-2", "direct")].attempts) == (
        cell["successes"],
        cell["attempts"],
    )
    alt = success_alt(summary)
    assert "inscribe-2 on direct 0 %" in alt and "at 100 %" in alt
    # Below 100 %, lowest first.
    assert alt.index("inscribe-2 on direct") < alt.index("lb on direct")


def _connect(target: str, network: str, ms: float | None, outcome: Outcome = Outcome.OK) -> ProbeResult:
    return ProbeResult(
        probe=ProbeName.SOCKETIO_CONNECT,
        variant="websocket:valid",
        target=target,
        network=network,
        outcome=outcome,
        timings=Timings(handshake=ms),
        detail={"label": target.split("//")[1].split(".")[0]},
    )


def test_latency_samples_per_network_target_and_transport() -> None:
    results = [
        _connect("https://a.example", "direct", 3.0),
        _connect("https://a.example", "direct", 5.0),
        _connect("https://a.example", "mobile", 620.0),
        _connect("https://b.example", "direct", None, Outcome.UPSTREAM_ERROR),
        ProbeResult(
            probe=ProbeName.CONNECT_STATS,
            variant="polling",
            target="https://a.example",
            outcome=Outcome.OK,
            detail={
                "label": "a",
                "transport": "polling",
                "runs": [{"outcome": "ok", "ms": 7.0}, {"outcome": "timeout"}],
            },
        ),
    ]
    samples = latency_samples(results)
    assert samples == {
        ("direct", "a", "websocket"): [3.0, 5.0],
        ("mobile", "a", "websocket"): [620.0],
        ("direct", "b", "websocket"): [],
        ("direct", "a", "polling"): [7.0],
    }
    alt = latency_alt(samples)
    assert (
        "log scale" in alt
        and "from 4.0 ms (a websocket, direct)" in alt
        and "to 620 ms" in alt
        and "no handshake: b on direct" in alt
    )
    table = latency_table(results)
    assert list(map(str, table.rows[0]))[:5] == [
        "direct",
        "a",
        "websocket",
        "2",
        str(statistics.median([3.0, 5.0])),
    ]
    assert table.rows[2][5] == "no handshake"


@pytest.mark.parametrize(
    "make",
    [
        lambda: success_heatmap({}),
        lambda: success_heatmap({"targets": {"a": {"networks": {"direct": {"success_rate": None}}}}}),
        lambda: success_heatmap({"targets": "nonsense"}),
        lambda: latency_chart([]),
        lambda: latency_chart(fixture("all-down")),
        lambda: latency_chart(hostile_results()),
        lambda: success_heatmap(summarize(hostile_results(), [], [])),
    ],
)
def test_charts_do_not_raise_on_empty_or_odd_input(make: Callable[[], Figure]) -> None:
    chart = make()
    assert chart.png.startswith(PNG) and chart.alt
