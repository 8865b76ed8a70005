"""The probes' detail shapes (kiloscribe_lab.details) against what probes really recorded."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from kiloscribe_lab.details import (
    DETAIL_SHAPES,
    EngineioOpenJson,
    StickySessionDetail,
    WebsocketPlainDetail,
    shape_problems,
)
from kiloscribe_lab.names import ProbeName
from kiloscribe_lab.results import ProbeResult, read_jsonl

pytestmark = pytest.mark.unit

FIXTURES = sorted((Path(__file__).parent / "fixtures").glob("*.jsonl"))


def test_every_probe_this_package_runs_has_a_shape() -> None:
    # The SDK replay's detail is the sdk module's (what the Node SDK run reported).
    assert set(DETAIL_SHAPES) == set(ProbeName) - {ProbeName.SDK_REPLAY}


def _probes(path: Path) -> list[ProbeResult]:
    return [r for r in read_jsonl(path.read_text()) if isinstance(r, ProbeResult)]


@pytest.mark.parametrize("path", FIXTURES, ids=[p.stem for p in FIXTURES])
def test_recorded_details_fit_their_shapes(path: Path) -> None:
    """The fixtures are recorded from real lab runs (make fixtures): what probes wrote."""
    results = [r for r in _probes(path) if r.probe in DETAIL_SHAPES]
    assert results
    for r in results:
        assert shape_problems(dict(r.detail), DETAIL_SHAPES[ProbeName(r.probe)], r.ref) == []


@pytest.mark.parametrize(
    ("value", "shape", "problems"),
    [
        ({"url": "u", "engineio_open": None}, WebsocketPlainDetail, []),
        ({"urll": "u"}, WebsocketPlainDetail, ["detail.urll: not declared"]),
        ({"url": 3}, WebsocketPlainDetail, ["detail.url: expected str, got int"]),
        (
            {"engineio_open": {"sid": "s", "upgrades": [], "pingInterval": 1, "pingTimeout": 2}},
            WebsocketPlainDetail,
            ["detail.engineio_open.maxPayload: missing"],
        ),
        (
            {
                "sid": "s",
                "upgrades": ["websocket", 4],
                "pingInterval": True,
                "pingTimeout": 2,
                "maxPayload": None,
            },
            EngineioOpenJson,
            ["detail.upgrades[1]: expected str, got int", "detail.pingInterval: expected int, got bool"],
        ),
        (
            {"answers": [{"status": 200, "backend": None, "session_unknown": False}], "opener": None},
            StickySessionDetail,
            [],
        ),
        (
            {"answers": [{"status": 200}]},
            StickySessionDetail,
            ["detail.answers[0].backend: missing", "detail.answers[0].session_unknown: missing"],
        ),
        ([], WebsocketPlainDetail, ["detail: expected an object, got list"]),
    ],
)
def test_shape_problems(value: Any, shape: Any, problems: list[str]) -> None:
    assert sorted(shape_problems(value, shape)) == sorted(problems)
