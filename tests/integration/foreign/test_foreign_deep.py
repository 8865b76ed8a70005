"""The slow probes (``--deep``) against software no one here wrote, exactly (issue 12's bars): the
reference Node socket.io 4.8 server with a short heartbeat gives no lifetime finding; the same
server with a 64 KiB maxHttpBufferSize gives payload-too-large (the ``ws`` library's 1009); a
hand-written HAProxy whose timeouts (client/server/tunnel 1 s) are below the server's 3 s
heartbeat gives idle-timeout, naming HAProxy and its setting. The three start and are probed
at once: their holds overlap."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from kiloscribe_lab import diagnosis
from kiloscribe_lab.names import FindingId, ProbeName, Severity
from kiloscribe_lab.probes.runner import investigate
from kiloscribe_lab.results import Finding, ProbeResult
from kiloscribe_lab.settings import ProbeOptions
from tests.integration.foreign import reference_socketio
from tests.integration.foreign.servers import haproxy

pytestmark = pytest.mark.timeout(90)

LIMIT = 65_536
# pingInterval 3 s + the hold's margin, and the sessions' opening on a busy machine.
OPTIONS = ProbeOptions(timeout_s=6.0, deep=True, inscription=False, strict=True)
LIFETIME = {FindingId.IDLE_TIMEOUT, FindingId.HEARTBEAT_LATE, FindingId.PAYLOAD_TOO_LARGE}


@contextlib.contextmanager
def the_servers(tmp: Path) -> Iterator[dict[str, str]]:
    with contextlib.ExitStack() as stack:
        short = stack.enter_context(reference_socketio(tmp / "short", ping_interval_ms=1_000))
        small = stack.enter_context(
            reference_socketio(tmp / "small", ping_interval_ms=1_000, max_http_buffer_size=LIMIT)
        )
        slow = stack.enter_context(reference_socketio(tmp / "slow", ping_interval_ms=3_000))
        lb = stack.enter_context(haproxy(tmp, [slow.port], balance="source", idle_s=1))
        yield {"short": short.url, "small": small.url, "haproxy": f"http://127.0.0.1:{lb}"}


def serious(findings: list[Finding]) -> dict[FindingId, Finding]:
    return {FindingId(f.id): f for f in findings if f.severity is not Severity.INFO}


@pytest.fixture(scope="module")
def investigated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[ProbeResult]]:
    async def probe_all(urls: dict[str, str]) -> list[list[ProbeResult]]:
        return await asyncio.gather(*(investigate([f"{n}={u}"], OPTIONS) for n, u in urls.items()))

    with the_servers(tmp_path_factory.mktemp("foreign-deep")) as urls:
        return dict(zip(urls, asyncio.run(probe_all(urls)), strict=True))


def test_a_healthy_server_with_a_short_heartbeat_gives_no_lifetime_finding(
    investigated: dict[str, list[ProbeResult]],
) -> None:
    results = investigated["short"]
    holds = [r for r in results if r.probe == ProbeName.HOLD]
    assert len(holds) == 2 and all(r.detail["end"]["how"] == "held" and r.detail["pings"] for r in holds), (
        holds
    )
    payloads = [r for r in results if r.probe == ProbeName.PAYLOAD]
    assert len(payloads) == 2 and all(r.detail["file_passes"] for r in payloads), payloads
    assert not set(serious(diagnosis.diagnose(results))) & LIFETIME


def test_a_64_kib_message_limit_gives_payload_too_large(investigated: dict[str, list[ProbeResult]]) -> None:
    results = investigated["small"]
    found = serious(diagnosis.diagnose(results))
    assert set(found) == {FindingId.PAYLOAD_TOO_LARGE}, found
    finding = found[FindingId.PAYLOAD_TOO_LARGE]
    assert finding.severity is Severity.CRITICAL  # no transport passes a 512 KiB file
    assert "maxHttpBufferSize" in finding.recommendation
    ws = next(r for r in results if r.probe == ProbeName.PAYLOAD and r.variant == "websocket")
    assert ws.detail["largest_passed"] <= LIMIT < ws.detail["smallest_failed"], ws.detail
    assert (ws.detail["failure"]["how"], ws.detail["failure"]["code"]) == ("close-frame", 1009), ws.detail
    # Never more than the cap, never start-inscription: every attempt is within the cap.
    assert all(a["bytes"] <= ws.detail["cap"] for a in ws.detail["attempts"])


def test_haproxy_cutting_idle_connections_below_the_heartbeat_gives_idle_timeout(
    investigated: dict[str, list[ProbeResult]],
) -> None:
    results = investigated["haproxy"]
    found = serious(diagnosis.diagnose(results))
    assert set(found) == {FindingId.IDLE_TIMEOUT}, found
    finding = found[FindingId.IDLE_TIMEOUT]
    assert finding.severity is Severity.CRITICAL
    assert "through HAProxy" in finding.title and "3 s heartbeat" in finding.title, finding.title
    assert "timeout tunnel" in finding.recommendation, finding.recommendation
