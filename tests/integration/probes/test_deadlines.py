"""Whatever a server does, every probe returns by its deadline: a listener that never answers."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from kiloscribe_lab.names import Outcome, ProbeName
from kiloscribe_lab.probes.runner import investigate, suite
from kiloscribe_lab.settings import ProbeOptions
from tests.integration.servers import silent_server

pytestmark = pytest.mark.timeout(60)

DEADLINE_S = 1.0


@pytest.fixture
def silent_listener() -> Iterator[int]:
    """Accepts TCP connections, reads nothing, answers nothing, until the test ends."""
    with silent_server() as port:
        yield port


@pytest.mark.parametrize("scheme", ["https", "http"])
def test_every_probe_times_out_by_its_deadline(silent_listener: int, scheme: str) -> None:
    options = ProbeOptions(timeout_s=DEADLINE_S, api_key_env="SILENT_KEY", strict=True)
    url = f"{scheme}://127.0.0.1:{silent_listener}"
    results = asyncio.run(investigate([url], options, environ={"SILENT_KEY": "k"}))
    assert len(results) == len(suite(options, tls=scheme == "https"))
    for r in results:
        assert r.outcome is Outcome.TIMEOUT, (r.ref, r.outcome, r.error)
        # the SDK replay words it as the SDK's user would read it
        expected = "WebSocket connection timeout" if r.probe == ProbeName.SDK_FLOW else "no answer within 1 s"
        assert r.error and expected in r.error, r.ref
        # the deadline is ours: a probe's own record never exceeds it by more than cleanup
        assert r.timings.total is not None and r.timings.total <= DEADLINE_S * 1000 + 300, r.ref
        # it connected: the stall is the server's, and the record says where it stalled
        assert r.detail.get("stalled_during"), r.ref
