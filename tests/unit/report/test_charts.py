"""The report's charts: PNGs for the recorded evidence, and no exception on odd input."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from kiloscribe_lab.report.charts import PngImage, latency_chart, success_heatmap
from kiloscribe_lab.report.summary import summarize
from tests.unit.report.helpers import PNG, fixture, hostile_results


def test_charts_render_png_for_fixture_data(incident: Any) -> None:
    results, findings, tv = incident
    heat = success_heatmap(summarize(results, findings, tv))
    latency = latency_chart(results)
    for chart in (heat, latency):
        assert chart.data.startswith(PNG)
        data, meta = chart._repr_png_()
        assert data == chart.data and meta["alt"]
        assert len(chart.data) > 2000


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
def test_charts_do_not_raise_on_empty_or_odd_input(make: Callable[[], PngImage]) -> None:
    assert make().data.startswith(PNG)
