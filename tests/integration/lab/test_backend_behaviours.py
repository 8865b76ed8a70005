"""Each BackendBehaviour field on the wire, on both backends (python-socketio and Node
socket.io 4.8), each backend alone on loopback: what FACTS.md recorded for that switch.
The two implementations agree where the protocol does and differ where engine.io and
python-engineio do; each difference is asserted as what it is."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidMessage, InvalidStatus

from kiloscribe_lab.lab import node_backend, procs
from kiloscribe_lab.lab.backend_config import BACKEND_HEADER
from kiloscribe_lab.lab.scenarios import BackendBehaviour, BackendKind
from kiloscribe_lab.names import ContractEvent, Transport
from tests.integration.clients import INSCRIPTION_REQUEST
from tests.integration.eio import eio_websocket
from tests.integration.loopback import Running, lab_backend

pytestmark = pytest.mark.timeout(60)

KEY = "behaviour-test-key"
APP = "https://app.kiloscribe.test"
OTHER = "https://other.kiloscribe.test"
EVIL = "https://evil.example"
POLLING = {"EIO": "4", "transport": "polling"}
DEFAULT = BackendBehaviour()


@pytest.fixture(params=list(BackendKind), ids=str)
def kind(request: pytest.FixtureRequest) -> BackendKind:
    return BackendKind(request.param)


Start = Callable[..., AbstractContextManager[Running]]


@pytest.fixture
def backend(kind: BackendKind, tmp_path: Path) -> Start:
    """``backend(behaviour)``: that backend kind with ``behaviour``, stopped after the block."""
    counter = iter(range(100))

    def start(behaviour: BackendBehaviour = DEFAULT) -> AbstractContextManager[Running]:
        return lab_backend(kind, behaviour, tmp_path / f"b{next(counter)}", KEY)

    return start


def get(
    url: str, path: str, params: dict[str, str] | None = None, headers: dict[str, str] | None = None
) -> httpx.Response:
    return httpx.get(url + path, params=params, headers=headers, timeout=5, trust_env=False)


def sigterm_and_wait(pgid: int, limit_s: float = 3.0) -> float:
    """SIGTERM the group; how long until none of it runs (blocking: the server must not need us)."""
    started = time.monotonic()
    os.killpg(pgid, signal.SIGTERM)
    while procs.group_members(pgid) and time.monotonic() - started < limit_s:
        time.sleep(0.01)
    return time.monotonic() - started


def cmdline_of(pid: int) -> bytes:
    return Path(f"/proc/{pid}/cmdline").read_bytes()


# --- what every response carries; the key -----------------------------------------------------


async def test_every_answer_names_the_backend_and_the_key_stays_off_argv(
    backend: Start, kind: BackendKind
) -> None:
    with backend() as b:
        answers = {
            "root": get(b.url, "/"),
            "health": get(b.url, "/api/health"),
            "rest 404": get(b.url, "/nowhere"),
            "rest 401": get(b.url, "/api/inscriptions/websocket-servers"),
            "handshake": get(b.url, "/socket.io/", params=POLLING),
            "engine 400": get(b.url, "/socket.io/", params={"EIO": "4", "transport": "carrier"}),
        }
        for what, response in answers.items():
            assert response.headers.get(BACKEND_HEADER) == "inscribe-1", (what, dict(response.headers))
        assert answers["handshake"].status_code == 200 and answers["handshake"].text.startswith("0{")
        assert answers["engine 400"].status_code == 400
        assert answers["rest 401"].json() == {"message": "Invalid API key"}
        async with eio_websocket(b.url) as sock:
            assert sock.ws.response is not None
            assert sock.ws.response.headers.get_all(BACKEND_HEADER) == ["inscribe-1"]
            assert (await sock.connect_namespace({"apiKey": KEY})).startswith('40{"sid":')
        async with eio_websocket(b.url) as sock:
            refused = await sock.connect_namespace({"apiKey": "wrong"})
        assert json.loads(refused[2:]) == {"message": "Invalid API key"}
        cmdline = cmdline_of(b.record.pid)
        assert KEY.encode() not in cmdline and b"--api-key-env" in cmdline


async def test_the_node_backends_raw_upgrade_refusal_names_it_too(tmp_path: Path) -> None:
    """engine.io writes its upgrade refusals raw on the socket (abortUpgrade), past every hook:
    server.mjs tags that first write too."""
    with lab_backend(BackendKind.NODE, DEFAULT, tmp_path, KEY) as b, pytest.raises(InvalidStatus) as refused:
        async with connect(b.url.replace("http://", "ws://") + "/socket.io/", proxy=None, open_timeout=5):
            pass
    response = refused.value.response
    assert response.status_code == 400 and response.body == b"Transport unknown"
    assert response.headers.get_all(BACKEND_HEADER) == ["inscribe-1"]


async def test_sigterm_stops_the_backend_within_a_second_with_a_websocket_open(backend: Start) -> None:
    with backend() as b:
        async with eio_websocket(b.url) as sock:
            await sock.connect_namespace({"apiKey": KEY})
            stopped_s = sigterm_and_wait(b.record.pid)
    assert stopped_s < 1.0, f"stopped after {stopped_s:.2f} s"


# --- transports -------------------------------------------------------------------------------


async def test_websocket_only_refuses_polling(backend: Start, kind: BackendKind) -> None:
    with backend(BackendBehaviour(transports=(Transport.WEBSOCKET,))) as b:
        polling = get(b.url, "/socket.io/", params=POLLING)
        async with eio_websocket(b.url) as sock:
            assert sock.handshake["upgrades"] == []
            assert (await sock.connect_namespace({"apiKey": KEY})).startswith("40{")
    assert polling.status_code == 400
    if kind is BackendKind.NODE:
        assert polling.headers["content-type"].startswith("application/json")
        assert polling.json() == {"code": 0, "message": "Transport unknown"}
    else:
        assert polling.headers["content-type"].startswith("text/plain")
        assert polling.json() == "Invalid transport"


# --- acks_inscription -------------------------------------------------------------------------


@pytest.mark.parametrize("acks", [True, False], ids=["acks", "never-acks"])
async def test_start_inscription_is_acknowledged_only_when_the_backend_acks(
    backend: Start, acks: bool
) -> None:
    with backend(BackendBehaviour(acks_inscription=acks)) as b:
        async with eio_websocket(b.url) as sock:
            assert (await sock.connect_namespace({"apiKey": KEY})).startswith("40{")
            await sock.emit(ContractEvent.START_INSCRIPTION, INSCRIPTION_REQUEST, ack_id=1)
            packets = await sock.quiet_for(1.0 if not acks else 0.3)
            still_up = await sock.alive()
    acks_seen = [p for p in packets if p.startswith("431")]
    if acks:
        assert len(acks_seen) == 1 and json.loads(acks_seen[0][3:])[0]["success"] is True, packets
    else:
        assert packets == [], packets  # no ack, no progress: nothing at all
    assert still_up  # the session itself is fine: only the application is silent


# --- cors_origins -----------------------------------------------------------------------------


def handshake(b: Running, origin: str) -> httpx.Response:
    return get(b.url, "/socket.io/", params=POLLING, headers={"Origin": origin})


def test_any_origin_is_echoed_by_default(backend: Start) -> None:
    with backend() as b:
        foreign = handshake(b, EVIL)
    assert foreign.status_code == 200
    assert foreign.headers["access-control-allow-origin"] == EVIL
    assert foreign.headers["access-control-allow-credentials"] == "true"


@pytest.mark.parametrize("origins", [(APP,), (APP, OTHER)], ids=["one", "two"])
def test_cors_origins_allow_only_the_listed_origins(
    backend: Start, kind: BackendKind, origins: tuple[str, ...]
) -> None:
    with backend(BackendBehaviour(cors_origins=origins)) as b:
        allowed = handshake(b, APP)
        foreign = handshake(b, EVIL)
    assert allowed.status_code == 200 and allowed.headers["access-control-allow-origin"] == APP
    assert foreign.headers.get("access-control-allow-origin") != EVIL
    if kind is BackendKind.PYTHON:
        # python-engineio refuses the request itself.
        assert foreign.status_code == 400
        assert foreign.json() == f"{EVIL} is not an accepted origin."
    elif len(origins) == 1:
        # socket.io's string form: answered, the allowed origin named whatever the request's.
        assert foreign.status_code == 200 and foreign.headers["access-control-allow-origin"] == APP
    else:
        # its list form: answered without any Access-Control-Allow-Origin; the browser refuses.
        assert foreign.status_code == 200 and "access-control-allow-origin" not in foreign.headers


# --- path -------------------------------------------------------------------------------------


async def test_socketio_at_another_path(backend: Start) -> None:
    with backend(BackendBehaviour(path="/ws")) as b:
        there = get(b.url, "/ws/", params=POLLING)
        default = get(b.url, "/socket.io/", params=POLLING)
        async with eio_websocket(b.url, path="/ws") as sock:
            assert (await sock.connect_namespace({"apiKey": KEY})).startswith("40{")
    assert there.status_code == 200 and there.text.startswith("0{")
    assert default.status_code == 404 and default.json() == {"message": "Not found"}


# --- ping_interval_ms / ping_timeout_ms ---------------------------------------------------------


async def test_the_heartbeat_follows_ping_interval_and_timeout(backend: Start) -> None:
    with backend(BackendBehaviour(ping_interval_ms=1_000, ping_timeout_ms=2_000)) as b:
        async with eio_websocket(b.url) as sock:
            assert (sock.handshake["pingInterval"], sock.handshake["pingTimeout"]) == (1_000, 2_000)
            await sock.connect_namespace({"apiKey": KEY})
            await sock.quiet_for(1.5)
    assert len(sock.pings) == 1 and 0.9 <= sock.pings[0] <= 1.4, sock.pings


# --- max_http_buffer_size ---------------------------------------------------------------------


async def test_a_message_over_max_http_buffer_size_closes_the_session(
    backend: Start, kind: BackendKind
) -> None:
    with backend(BackendBehaviour(max_http_buffer_size=65_536)) as b:
        async with eio_websocket(b.url) as sock:
            assert sock.handshake["maxPayload"] == 65_536
            await sock.connect_namespace({"apiKey": KEY})
            await sock.emit("kiloscribe-lab-payload", "x" * 60_000)  # under the limit: passes
            assert await sock.alive()
            await sock.emit("kiloscribe-lab-payload", "x" * 100_000)
            with pytest.raises(ConnectionClosed) as closed:
                await sock.quiet_for(3)
                await sock.ws.send("3")  # still open after 3 s: this fails the test below
    assert closed.value.rcvd is not None
    # engine.io (ws): 1009 "message too big", no reason on the wire; python-engineio: 1000.
    assert closed.value.rcvd.code == (1009 if kind is BackendKind.NODE else 1000)


# --- stall_event_loop_ms ----------------------------------------------------------------------


async def test_a_stalled_event_loop_makes_the_heartbeat_late(backend: Start) -> None:
    behaviour = BackendBehaviour(ping_interval_ms=1_000, stall_event_loop_ms=2_000)
    with backend(behaviour) as b:
        async with eio_websocket(b.url) as sock:
            await sock.connect_namespace({"apiKey": KEY})
            await sock.quiet_for(3.3)
    # The loop is free 1 s, then blocked 2 s. The session opened in a free second, so its first
    # ping, due 1 s later, falls in a stall: it comes 2-3 s after the open instead of 1 s.
    assert sock.pings and sock.pings[0] >= 1.9, sock.pings


async def test_a_websocket_to_another_path_is_not_served(backend: Start, kind: BackendKind) -> None:
    """The reference difference the lab keeps: engine.io hangs up an unknown upgrade after 1 s;
    the python backend refuses it at once with 403 (as the mock contract's service does)."""
    with backend() as b:
        started = time.monotonic()
        if kind is BackendKind.NODE:
            with pytest.raises(InvalidMessage):  # no HTTP response at all: a FIN
                async with eio_websocket(b.url, path="/elsewhere"):
                    pass
            assert 0.9 <= time.monotonic() - started <= 2.5
        else:
            with pytest.raises(InvalidStatus) as refused:
                async with eio_websocket(b.url, path="/elsewhere"):
                    pass
            assert refused.value.response.status_code == 403


@pytest.mark.parametrize(
    ("field", "value"),
    [("ping_interval_ms", 2500), ("path", "/ws/"), ("cors_origins", []), ("transports", ["carrier"])],
)
def test_the_node_backend_refuses_a_behaviour_the_lab_would_not_write(
    tmp_path: Path, field: str, value: object
) -> None:
    """backends.json written by hand: server.mjs applies BackendBehaviour's checks (exit 2)."""
    behaviour = {**DEFAULT.to_json(), field: value}
    config = tmp_path / "backends.json"
    config.write_text(
        json.dumps({"scenario": "x", "servers": [], "recommended": "u", "backends": {"b": behaviour}})
    )
    node = node_backend.prepare(tmp_path, dict(os.environ))
    done = subprocess.run(
        node.argv(config, "b", 9, "NO_SUCH_KEY_VARIABLE"), capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 2 and f"backends.b.{field}: bad value" in done.stderr, done.stderr
