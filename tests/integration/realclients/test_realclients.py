"""The real clients against a healthy lab, on python and on Node backends: each connects and is
acknowledged as the scenario's client ground truth says, and each is refused a wrong key."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator

import pytest

from kiloscribe_lab.lab import fleet
from kiloscribe_lab.lab.keys import API_KEY_ENV
from kiloscribe_lab.lab.scenarios import SCENARIOS, BackendKind, ClientTruth
from kiloscribe_lab.lab.state import LabInfo
from kiloscribe_lab.names import ClientKind, Transport
from tests.integration import scenario_table
from tests.integration.conftest import BACKEND_ENV, LabGetter
from tests.integration.realclients import ClientOutcome, run_client

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module", params=list(BackendKind), ids=str)
def healthy(
    request: pytest.FixtureRequest, labs: LabGetter, lab_key: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LabInfo]:
    """The healthy lab on each backend kind (the session's own lab for the session's kind)."""
    kind = BackendKind(request.param)
    if kind is BackendKind(os.environ.get(BACKEND_ENV) or BackendKind.PYTHON):
        yield labs("healthy")
        return
    lab_dir = tmp_path_factory.mktemp(f"healthy-{kind}")
    info = fleet.up(lab_dir, "healthy", environ={**os.environ, API_KEY_ENV: lab_key}, backend=kind)
    try:
        yield info
    finally:
        fleet.down(lab_dir)


async def run_truth(lab: LabInfo, key: str, truth: ClientTruth, kind: ClientKind) -> ClientOutcome:
    return await run_client(
        kind,
        lab.edge,
        environ={**os.environ, API_KEY_ENV: key},
        transports=truth.transports,
        api_key_env=API_KEY_ENV,
        ca=lab.ca_bundle,
        hold_s=truth.hold_s,
        emit_size=truth.emit_size,
        inscribe=truth.acked is not None,
    )


async def test_real_clients_agree_with_the_healthy_ground_truth(healthy: LabInfo, lab_key: str) -> None:
    truths = SCENARIOS["healthy"].truth.clients
    cases = [(truth, kind) for truth in truths for kind in ClientKind if truth.applies_to(kind)]
    assert len(cases) == 5  # both orders for the two libraries, websocket-first for the SDK
    outcomes = await asyncio.gather(*(run_truth(healthy, lab_key, truth, kind) for truth, kind in cases))
    wrong = []
    for (truth, kind), outcome in zip(cases, outcomes, strict=True):
        wrong += truth.disagreements(
            kind, connected=outcome.connected, acked=outcome.acked, disconnect=outcome.disconnect_reason
        )
        # Sticky sessions: a polling-first client upgrades, so every library ends on WebSocket.
        if outcome.connected and kind is not ClientKind.SDK and outcome.transport_at_end != "websocket":
            wrong.append(f"{kind} {truth.order}: ended on {outcome.transport_at_end}")
    assert not wrong, (wrong, outcomes)


@pytest.mark.parametrize("transports", [(Transport.WEBSOCKET, Transport.POLLING), (Transport.POLLING,)])
async def test_every_client_is_refused_a_wrong_key(
    healthy: LabInfo, transports: tuple[Transport, ...]
) -> None:
    kinds = [k for k in ClientKind if k is not ClientKind.SDK or len(transports) == 2]
    outcomes = await asyncio.gather(
        *(
            run_client(
                kind,
                healthy.edge,
                environ={**os.environ, API_KEY_ENV: "not-the-key"},
                transports=transports,
                api_key_env=API_KEY_ENV,
                ca=healthy.ca_bundle,
                # python-socketio's refused polling connect hangs until our deadline: keep it short.
                connect_timeout_s=2.0,
            )
            for kind in kinds
        )
    )
    for outcome in outcomes:
        assert not outcome.connected, outcome
        assert outcome.error is not None and "Invalid API key" in outcome.error, outcome


# Issue 12's slow faults: held sessions and large messages, which real clients see too.
SLOW_FAULTS = sorted(scenario_table.SLOW_FAULTS)


async def test_real_clients_agree_with_the_slow_faults_ground_truth(labs: LabGetter, lab_key: str) -> None:
    """socket.io-client is cut with 'transport close' through HAProxy's 2 s idle timeout and after a
    100 KB message above maxHttpBufferSize; its WebSocket passes nginx's client_max_body_size. Every
    scenario's clients at once, their holds overlapping."""
    assert {"proxy-idle-timeout", "small-message-limit", "body-limit-at-balancer"} <= set(SLOW_FAULTS)
    labs.start(SLOW_FAULTS)
    cases = [
        (name, truth, kind)
        for name in SLOW_FAULTS
        for truth in SCENARIOS[name].truth.clients
        for kind in ClientKind
        if truth.applies_to(kind)
    ]
    assert {kind for _, _, kind in cases} == {ClientKind.SOCKETIO_CLIENT, ClientKind.PYTHON_SOCKETIO}
    outcomes = await asyncio.gather(
        *(run_truth(labs(name), lab_key, truth, kind) for name, truth, kind in cases)
    )
    wrong = []
    for (name, truth, kind), outcome in zip(cases, outcomes, strict=True):
        wrong += [
            f"{name}: {w}"
            for w in truth.disagreements(
                kind, connected=outcome.connected, acked=outcome.acked, disconnect=outcome.disconnect_reason
            )
        ]
    assert not wrong, (wrong, outcomes)
