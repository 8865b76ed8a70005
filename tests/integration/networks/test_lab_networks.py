"""The lab's networks against real labs: what each network does to each probe in every
scenario, the diagnosis that compares networks, the mobile link's delay measured, the CLI.

Every lab is the session's shared one (``labs``); each scenario × network is probed once,
on the targets whose outcomes are deterministic (the direct backend sites, and the edge
where its balancer is sticky), or on every target where the findings need them all.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from kiloscribe_lab import diagnosis
from kiloscribe_lab.lab import fleet
from kiloscribe_lab.lab.lab_networks import CORPORATE, LAB_NETWORKS, MOBILE, POLLING_ONLY
from kiloscribe_lab.lab.scenarios import BACKENDS, SCENARIOS, NetworkTruth, network_ground_truth
from kiloscribe_lab.names import FindingId, Outcome, ProbeName, Severity
from kiloscribe_lab.probes.runner import investigate
from kiloscribe_lab.results import ProbeResult
from kiloscribe_lab.settings import ProbeOptions
from tests.integration.conftest import InvestigationGetter, LabGetter
from tests.integration.investigation import PROBE_TIMEOUT_S

pytestmark = pytest.mark.timeout(180)

KILOSCRIBE_LAB = str(Path(sys.executable).parent / "kiloscribe-lab")
MOBILE_TIMEOUT_S = 5.0  # a deadline the mobile link's round trips fit in, with room on a busy CI
# mitmproxy's TLS interception costs CPU per connection: on two busy cores a handshake through the
# corporate proxy took over 3 s. The same room as mobile's, so a slow machine is not a finding.
CORPORATE_TIMEOUT_S = 5.0
PROXIED_NETWORKS = (POLLING_ONLY, CORPORATE, MOBILE)
# Targets whose outcomes do not depend on a balancer's draw (incident's round robin does).
DETERMINISTIC: dict[str, tuple[str, ...]] = {
    "healthy": ("edge", "inscribe-1"),
    "cookie-sticky": ("inscribe-1",),
    "incident": ("inscribe-1", "inscribe-2"),
    "all-down": ("inscribe-1",),
    "edge-blocks-websocket": ("edge", "inscribe-1"),
    "slow-backend": ("inscribe-1", "inscribe-3"),
    "auth-broken": ("inscribe-1",),
}
ALL_TARGETS = ("edge", "lb", *BACKENDS)
NETWORK_GROUND_TRUTH = network_ground_truth()  # per scenario where it is established
WEBSOCKET_PROBES = {
    (ProbeName.WEBSOCKET_PLAIN, "socket.io"),
    (ProbeName.ENGINEIO_UPGRADE, ""),
    (ProbeName.SDK_FLOW, ""),
}
ROOT_UPGRADES = {
    (ProbeName.HTTP_UPGRADE, "http1.1"),
    (ProbeName.WEBSOCKET_PLAIN, "as-given"),
}  # Upgrade: websocket at /

RunKey = tuple[str, str, float]  # scenario, network, probe deadline
NetworkRuns = Callable[[str, str, float], list[ProbeResult]]


def deadline_for(network: str) -> float:
    return {MOBILE: MOBILE_TIMEOUT_S, CORPORATE: CORPORATE_TIMEOUT_S}.get(network, PROBE_TIMEOUT_S)


def wants_websocket(r: ProbeResult) -> bool:
    return (r.probe, r.variant) in WEBSOCKET_PROBES or (
        r.probe == ProbeName.SOCKETIO_CONNECT and r.variant.startswith("websocket:")
    )


def labelled(results: list[ProbeResult], labels: tuple[str, ...]) -> dict[tuple[str, str, str], ProbeResult]:
    return {
        (str(r.detail["label"]), r.probe, r.variant): r
        for r in results
        if r.probe != ProbeName.DISCOVERY and r.detail.get("label") in labels
    }


@pytest.fixture(scope="module")
def on_network(labs: LabGetter, lab_key: str) -> NetworkRuns:
    """The probe suite through one lab network, run once per (scenario, network, deadline).

    One run at a time: the suite is CPU-bound on two cores, and runs started together would
    slow each other into the short deadlines some of them test."""
    cache: dict[RunKey, list[ProbeResult]] = {}

    def targets_for(scenario: str) -> tuple[str, ...]:
        return ALL_TARGETS if scenario in NETWORK_GROUND_TRUTH else DETERMINISTIC[scenario]

    def get(scenario: str, network: str, timeout_s: float) -> list[ProbeResult]:
        key = (scenario, network, timeout_s)
        if key not in cache:
            lab = labs(scenario)
            profiles = lab.network_profiles()
            urls = {"edge": lab.edge, "lb": lab.lb, **{b: lab.backend_url(b) for b in BACKENDS}}
            options = ProbeOptions(
                timeout_s=timeout_s,
                ca_bundle=lab.ca_bundle,
                api_key_env=fleet.API_KEY_ENV,
                network=profiles[network],
                strict=True,
            )
            cache[key] = asyncio.run(
                investigate(
                    [f"{label}={urls[label]}" for label in targets_for(scenario)],
                    options,
                    environ={**os.environ, fleet.API_KEY_ENV: lab_key},
                )
            )
        return cache[key]

    return get


# --- the lab reports its networks ------------------------------------------------------------


def test_lab_up_reports_and_status_checks_every_network(labs: LabGetter) -> None:
    lab = labs("healthy")
    assert list(lab.networks) == list(LAB_NETWORKS)
    assert lab.networks["direct"] is None and lab.networks[POLLING_ONLY] is None
    data = lab.to_json()
    assert data["networks"] == dict(lab.networks)
    assert data["mobile_link"] == {"rtt_ms": 150, "jitter_ms": 10}
    profiles = lab.network_profiles()
    assert set(profiles) == set(LAB_NETWORKS)
    assert profiles[CORPORATE].proxy == lab.networks[CORPORATE]
    assert profiles[MOBILE].proxy == lab.networks[MOBILE]
    assert profiles[POLLING_ONLY].transports == ("polling",)
    bundle = profiles[CORPORATE].ca_bundle
    assert bundle is not None and bundle.read_text().count("BEGIN CERTIFICATE") == 2  # mitmproxy CA + lab CA

    states = {c.name: c for c in fleet.status(lab.lab_dir).components}
    for name in ("proxies", CORPORATE, MOBILE):
        assert states[name].state == "running", states[name]
    assert lab.networks[MOBILE] in states[MOBILE].detail


# --- probe outcomes: every scenario × network --------------------------------------------------


def test_the_network_table_covers_the_designs_seven() -> None:
    # Issue 11's scenarios are checked direct, on every balancer and backend they are defined for
    # (test_diagnosis_lab.py); through the networks, the seven are.
    assert list(DETERMINISTIC) == list(SCENARIOS)[:7]


@pytest.mark.parametrize("network", PROXIED_NETWORKS)
@pytest.mark.parametrize("scenario", list(DETERMINISTIC))
def test_probe_outcomes_per_scenario_and_network(
    investigation: InvestigationGetter, on_network: NetworkRuns, scenario: str, network: str
) -> None:
    """What a network changes, probe by probe, against the same target probed direct:
    ``polling-only`` drops the WebSocket clients and changes nothing else; ``corporate-proxy``
    refuses every WebSocket upgrade itself (403 + its policy's words) and passes the rest;
    ``mobile`` is slower and changes no outcome."""
    labels = DETERMINISTIC[scenario]
    direct = labelled(investigation(scenario), labels)
    through = labelled(on_network(scenario, network, deadline_for(network)), labels)
    assert direct and all(r.network == network for r in through.values())

    if network == POLLING_ONLY:
        dropped = {k for k in direct if k[1] == ProbeName.SDK_FLOW or k[2].startswith("websocket:")}
        assert set(through) == set(direct) - dropped
    else:
        assert set(through) == set(direct)
    for key, r in through.items():
        expected = direct[key].outcome
        # engineio_upgrade asks for WebSocket only once its polling session opened
        reaches_upgrade = r.probe != ProbeName.ENGINEIO_UPGRADE or "upgrades_offered" in direct[key].detail
        if network == CORPORATE and wants_websocket(r) and reaches_upgrade:
            expected = Outcome.BLOCKED
        elif network == CORPORATE and (r.probe, r.variant) in ROOT_UPGRADES:
            expected = Outcome.HTTP_ERROR  # the proxy's 403, before the origin's 308 or 502
        assert r.outcome is expected, (key, r.outcome, r.error, direct[key].outcome, direct[key].error)
        if network == CORPORATE and expected in {Outcome.BLOCKED, Outcome.HTTP_ERROR} and r.status == 403:
            assert "corporate-proxy" in r.headers.get("via", ""), (key, r.headers)
        if network == CORPORATE and (r.probe, r.variant) == (ProbeName.WEBSOCKET_PLAIN, "socket.io"):
            assert r.status == 403 and r.headers["server"] == "corporate-proxy", r.headers


def test_mobile_timings_carry_the_added_round_trip(on_network: NetworkRuns) -> None:
    """Each measured phase of one round trip (CONNECT, TLS 1.3, request) takes at least the
    link's round trip on mobile, and a probe's total at least its round trips' sum. Lower
    bounds only: how much slower a busy machine makes it is not the link's doing."""
    rtt = 150 - 10  # the lab's link, less its jitter
    mobile = labelled(on_network("healthy", MOBILE, MOBILE_TIMEOUT_S), ("inscribe-1",))
    for (probe, variant), round_trips in {
        (ProbeName.ENGINEIO_HANDSHAKE, ""): 4,
        (ProbeName.WEBSOCKET_PLAIN, "socket.io"): 3,
    }.items():
        t = mobile[("inscribe-1", probe, variant)].timings
        for phase in ("connect", "tls", "first_byte", "handshake"):
            value = getattr(t, phase)
            assert value is not None and value >= rtt, (probe, phase, t)
        assert t.total is not None and t.total >= round_trips * rtt, (probe, t)
    sio = mobile[("inscribe-1", ProbeName.SOCKETIO_CONNECT, "websocket:valid")].timings
    assert sio.connect is not None and sio.connect >= 2 * rtt  # aiohttp: CONNECT and TLS together
    assert sio.first_byte is not None and sio.first_byte >= rtt  # the upgrade request -> its 101
    assert sio.handshake is not None and sio.handshake >= 4 * rtt  # + Socket.IO's CONNECT exchange


# --- findings: incident (and healthy) × every network ------------------------------------------


def truth_id(truth: NetworkTruth) -> str:
    return truth.network + (f"@{truth.probe_timeout_s:g}s" if truth.probe_timeout_s else "")


@pytest.mark.parametrize(
    ("scenario", "truth"),
    [(s, t) for s, truths in NETWORK_GROUND_TRUTH.items() for t in truths],
    ids=[f"{s}-{truth_id(t)}" for s, truths in NETWORK_GROUND_TRUTH.items() for t in truths],
)
def test_findings_per_network_equal_the_extended_ground_truth(
    investigation: InvestigationGetter, on_network: NetworkRuns, scenario: str, truth: NetworkTruth
) -> None:
    """Direct's results and the network's, diagnosed together (as the report's matrix does):
    the scenario's ground truth plus what the network adds, nothing else above info."""
    results = list(investigation(scenario))
    if truth.network != "direct":
        results += on_network(scenario, truth.network, truth.probe_timeout_s or deadline_for(truth.network))
    findings = {f.id: f for f in diagnosis.diagnose(results, fleet.API_KEY_ENV)}
    expected = set(SCENARIOS[scenario].expected_findings) | set(truth.adds)
    assert expected <= set(findings), f"missing {sorted(expected - set(findings))}"
    extra = {i for i, f in findings.items() if i not in expected and f.severity is not Severity.INFO}
    assert not extra, f"findings beyond the ground truth: {sorted(extra)}"
    for added in truth.adds:
        assert findings[added].severity.value == truth.severity
    down = {r.target for r in investigation(scenario) if r.detail.get("label") == "inscribe-2"}

    if FindingId.WEBSOCKET_BLOCKED in truth.adds:
        f = findings[FindingId.WEBSOCKET_BLOCKED]
        assert f.title == f"WebSocket is blocked only on network(s) {truth.network}"
        assert all(ref.endswith(f"#{truth.network}") for ref in f.evidence), f.evidence
        # the client-side remedies: a polling fallback, tryAllTransports, WSS on 443
        for remedy in ("transports: ['polling']", "tryAllTransports: true", "WSS on 443"):
            assert remedy in f.recommendation, remedy
        assert "via 1.1 corporate-proxy" in f.summary and "from direct" in f.summary
        if scenario == "incident":
            assert not set(f.targets) & down  # inscribe-2 is down everywhere, not blocked
    if FindingId.NETWORK_TIMEOUTS in truth.adds:
        f = findings[FindingId.NETWORK_TIMEOUTS]
        assert f.title.startswith(f"Timeouts on network(s) {truth.network} only")
        assert f.evidence and all(ref.endswith(f"#{truth.network}") for ref in f.evidence)
        assert f"deadline {truth.probe_timeout_s:g} s" in f.summary
        assert f"ms on {truth.network}" in f.summary and "ms on direct" in f.summary
        if scenario == "incident":
            assert not set(f.targets) & down
    else:
        assert FindingId.NETWORK_TIMEOUTS not in findings


# --- the mobile link, measured -----------------------------------------------------------------


class EchoServer:
    """A loopback echo server of the test's own: what the mobile link carries, end to end."""

    def __init__(self) -> None:
        self.handlers: set[asyncio.Task[None]] = set()
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> int:
        async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            assert task is not None
            self.handlers.add(task)
            try:
                while data := await reader.read(65536):
                    writer.write(data)
                    await writer.drain()
            except ConnectionError:
                pass
            finally:
                writer.close()

        self.server = await asyncio.start_server(echo, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        if self.handlers:  # each ends at its client's EOF; none is left to the loop's teardown
            await asyncio.wait(self.handlers, timeout=5)


async def _exchange(
    address: tuple[str, int], chunks: int, connect_to: str | None
) -> tuple[float | None, list[float], bytes, bytes]:
    """Send ``chunks`` small chunks 5 ms apart (through a CONNECT tunnel when ``connect_to``
    is given) while reading the echo; return the CONNECT time and each chunk's echo time (ms)."""
    reader, writer = await asyncio.open_connection(*address)
    connect_ms = None
    try:
        if connect_to is not None:
            began = time.perf_counter()
            writer.write(f"CONNECT {connect_to} HTTP/1.1\r\nHost: {connect_to}\r\n\r\n".encode())
            head = await reader.readuntil(b"\r\n\r\n")
            connect_ms = (time.perf_counter() - began) * 1000
            assert head.startswith(b"HTTP/1.1 200"), head
        pieces = [f"<{i:04d}>".encode() for i in range(chunks)]
        payload = b"".join(pieces)
        ends = [len(b"".join(pieces[: i + 1])) for i in range(chunks)]
        sent: list[float] = []
        arrived: list[float] = []
        received = b""

        async def read_all() -> None:
            nonlocal received
            while len(received) < len(payload):
                data = await reader.read(65536)
                assert data, "the tunnel closed early"
                received += data
                now = time.perf_counter()
                arrived.extend(now for e in ends[len(arrived) :] if e <= len(received))

        reading = asyncio.ensure_future(read_all())
        for piece in pieces:
            sent.append(time.perf_counter())
            writer.write(piece)
            await writer.drain()
            await asyncio.sleep(0.005)
        await asyncio.wait_for(reading, 10)
        return connect_ms, [(a - s) * 1000 for s, a in zip(sent, arrived, strict=True)], payload, received
    finally:
        writer.close()
        await writer.wait_closed()


async def test_mobile_adds_the_configured_round_trip_in_order(labs: LabGetter) -> None:
    """Through the mobile proxy every echo takes at least the configured round trip (less
    its jitter) more than direct, the CONNECT costs one, and bytes keep their order."""
    lab = labs("healthy")
    assert lab.mobile_link is not None
    rtt, jitter = lab.mobile_link.rtt_ms, lab.mobile_link.jitter_ms
    proxy_port = lab.proxy_ports()[MOBILE]
    async with EchoServer() as port:
        _, direct_ms, _, _ = await _exchange(("127.0.0.1", port), 20, None)
        connect_ms, mobile_ms, sent, received = await _exchange(
            ("127.0.0.1", proxy_port), 20, f"127.0.0.1:{port}"
        )
    assert received == sent  # nothing lost, nothing reordered
    assert connect_ms is not None and connect_ms >= rtt - jitter
    assert min(mobile_ms) >= rtt - jitter, mobile_ms
    assert statistics.median(mobile_ms) - statistics.median(direct_ms) >= rtt - jitter


# --- the CLI ------------------------------------------------------------------------------------


def probe_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [KILOSCRIBE_LAB, "probe", *args], capture_output=True, text=True, timeout=60, env=env
    )


def test_probe_network_finds_the_lab_networks(labs: LabGetter, lab_key: str) -> None:
    lab = labs("healthy")
    env = {k: v for k, v in os.environ.items() if k != fleet.LAB_DIR_ENV}
    env[fleet.API_KEY_ENV] = lab_key
    target = f"inscribe-1={lab.backend_url('inscribe-1')}"
    common = [
        "--ca-bundle",
        str(lab.ca_bundle),
        "--api-key-env",
        fleet.API_KEY_ENV,
        "--json",
        "--timeout",
        "3",
    ]

    corporate = probe_cli(target, "--network", CORPORATE, "--lab-dir", str(lab.lab_dir), *common, env=env)
    assert corporate.returncode in {0, 1}, corporate.stderr
    lines = [json.loads(line) for line in corporate.stdout.splitlines()]
    results = [x for x in lines if x["kind"] == "probe"]
    assert results and {r["network"] for r in results} == {CORPORATE}
    ws = next(r for r in results if (r["probe"], r["variant"]) == (ProbeName.WEBSOCKET_PLAIN, "socket.io"))
    assert ws["outcome"] == "blocked" and ws["status"] == 403
    assert lines[-1]["network"] == CORPORATE

    # $KILOSCRIBE_LAB_DIR is where it looks without --lab-dir
    polling = probe_cli(
        target, "--network", POLLING_ONLY, *common, env={**env, fleet.LAB_DIR_ENV: str(lab.lab_dir)}
    )
    assert polling.returncode == 0, polling.stderr
    variants = {
        (r["probe"], r["variant"])
        for r in map(json.loads, polling.stdout.splitlines())
        if r["kind"] == "probe"
    }
    assert (ProbeName.SOCKETIO_CONNECT, "polling:valid") in variants
    assert not any(v.startswith("websocket:") for _, v in variants)

    unknown = probe_cli(target, "--network", "vpn", "--lab-dir", str(lab.lab_dir), *common, env=env)
    assert unknown.returncode == 2 and unknown.stdout == ""
    [line] = unknown.stderr.splitlines()
    assert line.startswith("kiloscribe-lab: unknown network 'vpn'") and "corporate-proxy" in line


async def test_mobile_delivers_every_byte_before_a_close(labs: LabGetter) -> None:
    """A close travels behind the bytes sent before it: a server that speaks and hangs up at
    once is heard in full. (A client's half-close is not kept: mitmproxy turns half-closes
    inside a CONNECT tunnel into full closes, for its own TCP relay as for ours.)"""
    lab = labs("healthy")
    proxy_port = lab.proxy_ports()[MOBILE]

    async def speak_and_hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"hello " * 20000)  # several chunks
        await writer.drain()
        writer.close()

    speaker = await asyncio.start_server(speak_and_hang_up, "127.0.0.1", 0)
    port = speaker.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy_port)
    try:
        writer.write(f"CONNECT 127.0.0.1:{port} HTTP/1.1\r\n\r\n".encode())
        assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 200")
        got = await asyncio.wait_for(reader.read(), 10)  # up to EOF
    finally:
        writer.close()
        await writer.wait_closed()
        speaker.close()
    assert got == b"hello " * 20000
