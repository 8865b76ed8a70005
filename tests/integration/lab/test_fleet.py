"""The lab's lifecycle: up, status, down, failure and secrets, with real processes.

Tests that kill or break things run their own lab in ``tmp_path`` and always take it down;
tests that only look use the shared ``labs`` fixture.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import ssl
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from kiloscribe_lab import cli
from kiloscribe_lab.errors import LabStartError, LabStateError
from kiloscribe_lab.lab import fleet, health, ports, procs
from kiloscribe_lab.lab.backend_config import HEALTH_PATH
from kiloscribe_lab.lab.scenarios import BACKENDS
from tests.integration.clients import http, sio_session
from tests.integration.conftest import LabGetter

pytestmark = pytest.mark.timeout(60)

KILOSCRIBE_LAB = str(Path(sys.executable).parent / "kiloscribe-lab")


def environ_without_key(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != fleet.API_KEY_ENV}
    env.update(extra)
    return env


def recorded(lab_dir: Path) -> list[procs.ProcessRecord]:
    state = json.loads((lab_dir / fleet.STATE_FILE).read_text())
    return [procs.ProcessRecord.from_json(r) for r in state["processes"]]


def lab_pids(records: list[procs.ProcessRecord]) -> list[int]:
    """Every live process of the lab: each component's whole process group."""
    return sorted({pid for r in records for pid in procs.group_members(r.pid)})


def backends_running_in(lab_dir: Path, marker: bytes = b"kiloscribe_lab.lab.backend") -> list[int]:
    """Backend processes whose command line points into ``lab_dir``, found by scanning /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        fields = procs._stat_fields(int(entry.name))
        if fields is None or fields[0] in {"Z", "X"}:
            continue
        if any(marker in a for a in argv) and any(str(lab_dir).encode() in a for a in argv):
            found.append(int(entry.name))
    return found


def proxies_running_in(lab_dir: Path) -> list[int]:
    """mitmdump processes (the lab networks' proxies) whose command line points into ``lab_dir``."""
    return backends_running_in(lab_dir, marker=b"mitmdump")


def holders_running_in(lab_dir: Path) -> list[int]:
    """The processes holding a lab's down backends' ports."""
    return backends_running_in(lab_dir, marker=b"kiloscribe_lab.lab.holder")


def gone(pid: int, ticks: int | None) -> bool:
    """The process ``pid`` started at ``ticks`` no longer runs (an orphan's zombie counts as gone)."""
    fields = procs._stat_fields(pid)
    return fields is None or fields[0] in {"Z", "X"} or int(fields[19]) != ticks


def refuses_connections(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return False
    except ConnectionRefusedError:
        return True


def wait_until_dead(record: procs.ProcessRecord, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while procs.is_alive(record) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not procs.is_alive(record)


def api_status(info: fleet.LabInfo, key: str) -> int:
    with http(info) as client:
        response = client.get(info.api + "/inscriptions/websocket-servers", headers={"x-api-key": key})
    return response.status_code


@pytest.fixture
def own_lab(tmp_path: Path) -> Iterator[Path]:
    """A lab directory (with a space in its name, as real ones sometimes have) torn down after."""
    lab_dir = tmp_path / "on call lab"
    try:
        yield lab_dir
    finally:
        fleet.down(lab_dir)


# --- down -------------------------------------------------------------------------------


def test_up_records_each_process_as_it_starts_and_down_leaves_nothing_behind(
    own_lab: Path, lab_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """lab.json names every process the moment it is spawned, so a `down` after an `up` that
    was killed part-way finds them all; a `down` leaves no process, port or file behind."""
    seen: list[set[str]] = []
    real_spawn = procs.spawn

    def spawn_then_read_state(*args: Any, **kwargs: Any) -> Any:
        if (own_lab / fleet.STATE_FILE).exists():
            seen.append({r.name for r in recorded(own_lab)})
        return real_spawn(*args, **kwargs)

    monkeypatch.setattr(procs, "spawn", spawn_then_read_state)
    info = fleet.up(own_lab, "incident", environ={**os.environ, fleet.API_KEY_ENV: lab_key})
    # Before each spawn after the first, the state file already named every earlier one.
    assert [len(s) for s in seen] == list(range(1, len(seen) + 1))
    assert seen[-1] | {"proxies"} == {r.name for r in recorded(own_lab)}
    monkeypatch.undo()

    records = recorded(own_lab)
    # 2 is down, its port held; "proxies" is the mitmdump behind the corporate-proxy and mobile networks
    assert {r.name for r in records} == {"inscribe-1", "inscribe-3", "caddy", "proxies", fleet.HOLDER}
    members = {pid: procs.start_ticks(pid) for pid in lab_pids(records)}
    assert len(members) >= len(records)
    ports = info.ports.all_tcp() + list(info.proxy_ports().values())
    assert not refuses_connections(info.ports.edge)
    assert all(not refuses_connections(p) for p in info.proxy_ports().values())
    assert len(proxies_running_in(own_lab)) >= 1

    assert fleet.down(own_lab) == []

    for record in records:
        assert procs.group_members(record.pid) == [], record
        assert not procs.is_alive(record)
    assert [pid for pid, ticks in members.items() if not gone(pid, ticks)] == []
    assert [p for p in ports if not refuses_connections(p)] == []
    assert can_bind(info.ports.backend["inscribe-2"])  # the held port is released with the lab
    assert not (own_lab / fleet.STATE_FILE).exists()
    assert backends_running_in(own_lab) == []
    assert proxies_running_in(own_lab) == []  # no proxy left behind
    assert not (own_lab / "networks.toml").exists()  # its profiles named proxies that are gone
    # A second down is a no-op; status says there is no lab.
    assert fleet.down(own_lab) == []
    assert not (own_lab / fleet.STATE_FILE).exists()
    with pytest.raises(LabStateError, match="no lab in"):
        fleet.status(own_lab)


def test_up_over_a_running_lab_refuses_unless_told_to_replace_it(own_lab: Path, lab_key: str) -> None:
    environ = {**os.environ, fleet.API_KEY_ENV: lab_key}
    first = fleet.up(own_lab, "healthy", environ=environ)
    old = recorded(own_lab)
    state_before = (own_lab / fleet.STATE_FILE).read_text()
    with pytest.raises(fleet.LabRunning, match=r"already running .*\(scenario healthy, balancer caddy\)"):
        fleet.up(own_lab, "auth-broken", environ=environ)
    assert (own_lab / fleet.STATE_FILE).read_text() == state_before  # untouched, still answering
    assert all(procs.is_alive(r) for r in old)
    assert api_status(first, lab_key) == 200
    second = fleet.up(own_lab, "auth-broken", environ=environ, replace=True)
    assert all(procs.group_members(r.pid) == [] for r in old)
    assert refuses_connections(first.ports.edge)
    assert fleet.attach(own_lab) == second
    assert api_status(second, lab_key) == 401  # the new scenario is the one answering


# --- up failures ------------------------------------------------------------------------


@pytest.fixture
def spawned(monkeypatch: pytest.MonkeyPatch) -> list[procs.ProcessRecord]:
    """Every process ``fleet.up`` spawns, recorded as it starts."""
    records: list[procs.ProcessRecord] = []
    real_spawn = procs.spawn

    def recording_spawn(*args: Any, **kwargs: Any) -> Any:
        proc, record = real_spawn(*args, **kwargs)
        records.append(record)
        return proc, record

    monkeypatch.setattr(procs, "spawn", recording_spawn)
    return records


def fake_caddy(tmp_path: Path, body: str) -> str:
    path = tmp_path / "fake-caddy"
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)
    return str(path)


def assert_nothing_left(lab_dir: Path, spawned: list[procs.ProcessRecord]) -> None:
    assert spawned, "the test should have seen fleet.up start processes"
    for record in spawned:
        assert procs.group_members(record.pid) == [], record
        assert not procs.is_alive(record), record
    assert backends_running_in(lab_dir) == []
    assert proxies_running_in(lab_dir) == []
    assert holders_running_in(lab_dir) == []
    assert not (lab_dir / fleet.STATE_FILE).exists()
    assert fleet.down(lab_dir) == []


@pytest.mark.parametrize(
    ("scenario", "started"),
    [
        ("healthy", {*BACKENDS, "caddy", "proxies"}),
        ("incident", {"inscribe-1", "inscribe-3", fleet.HOLDER, "caddy", "proxies"}),
    ],
)
def test_up_failure_when_caddy_exits_leaves_nothing_running(
    own_lab: Path,
    lab_key: str,
    spawned: list[procs.ProcessRecord],
    monkeypatch: pytest.MonkeyPatch,
    scenario: str,
    started: set[str],
) -> None:
    monkeypatch.setattr(fleet, "caddy_binary", lambda: "/bin/false")
    environ = {**os.environ, fleet.API_KEY_ENV: lab_key}
    with pytest.raises(LabStartError) as excinfo:
        fleet.up(own_lab, scenario, environ=environ)
    message = str(excinfo.value)
    assert "caddy exited with code 1 during start-up" in message
    assert str(own_lab / "logs" / "caddy.log") in message  # where to look next
    assert {r.name for r in spawned} == started
    assert_nothing_left(own_lab, spawned)


@pytest.mark.parametrize("kind", ["missing", "not-executable"])
def test_up_failure_when_caddy_cannot_be_spawned_is_a_lab_error(
    tmp_path: Path,
    own_lab: Path,
    lab_key: str,
    spawned: list[procs.ProcessRecord],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    kind: str,
) -> None:
    """A Caddy that cannot be executed is the lab failing to start (exit 3), not bad usage;
    the backends already started are stopped."""
    caddy = tmp_path / "caddy"
    if kind == "not-executable":
        caddy.write_text("#!/bin/sh\n")
        caddy.chmod(0o644)
    monkeypatch.setattr(fleet, "caddy_binary", lambda: str(caddy))
    monkeypatch.setenv(fleet.API_KEY_ENV, lab_key)
    assert cli.main(["lab", "up", "--dir", str(own_lab), "--scenario", "healthy"]) == 3
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("kiloscribe-lab: cannot start caddy: ") and line.endswith(str(caddy)), line
    assert {r.name for r in spawned} == set(BACKENDS)  # started before caddy, and stopped
    assert_nothing_left(own_lab, spawned)


def test_up_timeout_stops_a_hanging_component_and_its_children(
    tmp_path: Path,
    own_lab: Path,
    lab_key: str,
    spawned: list[procs.ProcessRecord],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A "caddy" that never listens, and forks a child that would outlive a naive kill.
    monkeypatch.setattr(fleet, "caddy_binary", lambda: fake_caddy(tmp_path, "sleep 30 &\nsleep 30"))
    environ = {**os.environ, fleet.API_KEY_ENV: lab_key}
    with pytest.raises(LabStartError) as excinfo:
        fleet.up(own_lab, "healthy", environ=environ, ready_timeout_s=1.0)
    message = str(excinfo.value)
    assert "lab not ready after 1 s" in message
    # Every site of the Caddy that never listened is named; so are the proxies, which run but
    # cannot reach the edge. (A backend may be named too on a loaded machine: 1 s is short.)
    pending = {p.split(" ", 1)[0] for p in message.split("still waiting for: ", 1)[1].split(", ")}
    sites = {"api", "edge", "lb", *(f"site:{n}" for n in BACKENDS)}
    assert sites | {"corporate-proxy", "mobile"} <= pending
    assert pending <= sites | {"corporate-proxy", "mobile", *BACKENDS}
    assert_nothing_left(own_lab, spawned)


def test_interrupted_up_stops_what_it_started(
    own_lab: Path,
    lab_key: str,
    spawned: list[procs.ProcessRecord],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def interrupted(*args: Any, **kwargs: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(health, "wait_ready", interrupted)
    with pytest.raises(KeyboardInterrupt):
        fleet.up(own_lab, "healthy", environ={**os.environ, fleet.API_KEY_ENV: lab_key})
    assert len(spawned) == len(BACKENDS) + 2  # + caddy + the proxies' mitmdump
    assert_nothing_left(own_lab, spawned)


def can_bind(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def test_a_down_backends_port_stays_reserved_and_refuses(labs: LabGetter) -> None:
    """Left free, the port of a backend that is down went to the next bind(0) (another lab's
    backend) and the "down" backend answered: CI saw exactly that. It is held, and refuses."""
    for scenario, down in [("incident", ["inscribe-2"]), ("all-down", list(BACKENDS))]:
        info = labs(scenario)
        for name in down:
            port = info.ports.backend[name]
            assert not can_bind(port), (scenario, name)
            assert refuses_connections(port), (scenario, name)
            with http(info) as client:
                response = client.get(info.backend_url(name) + "/socket.io/?EIO=4&transport=polling")
            assert response.status_code == 502, (scenario, name)


def test_status_notices_when_a_down_backends_port_is_released(own_lab: Path, lab_key: str) -> None:
    info = fleet.up(own_lab, "incident", environ={**os.environ, fleet.API_KEY_ENV: lab_key})
    holder = next(r for r in recorded(own_lab) if r.name == fleet.HOLDER)
    assert fleet.status(own_lab).healthy
    os.killpg(holder.pid, signal.SIGKILL)
    wait_until_dead(holder)
    assert can_bind(info.ports.backend["inscribe-2"])
    states = {c.name: c for c in fleet.status(own_lab).components}
    assert states["inscribe-2"].state == "crashed"
    assert "no longer reserved" in states["inscribe-2"].detail
    assert fleet.down(own_lab) == []


@pytest.mark.parametrize("clash", ["edge", "backend"])
def test_up_retries_with_fresh_ports_when_one_is_taken_in_between(
    own_lab: Path, lab_key: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, clash: str
) -> None:
    """Another process binds one of the picked ports before the component does: the lab
    comes up on fresh ports instead of failing."""
    squatter = socket.socket()
    squatter.bind(("127.0.0.1", 0))
    squatter.listen()
    taken = squatter.getsockname()[1]
    real = ports.free_ports
    calls: list[list[int]] = []

    def first_one_clashes(count: int) -> list[int]:
        ports = real(count)
        if not calls:  # edge is ports[0]; inscribe-1's upstream follows the direct sites
            ports[0 if clash == "edge" else 3 + len(BACKENDS)] = taken
        calls.append(ports)
        return ports

    monkeypatch.setattr(ports, "free_ports", first_one_clashes)
    with squatter:
        info = fleet.up(own_lab, "incident", environ={**os.environ, fleet.API_KEY_ENV: lab_key})
        assert len(calls) == 2
        assert taken not in info.ports.all_tcp()
        assert fleet.status(own_lab).healthy
        # It says so, and keeps the first attempt's logs: the one that failed names the port.
        assert any("retrying on fresh ports" in r.getMessage() for r in caplog.records)
        kept = own_lab / "logs" / "port-clash"
        clashed = [p.name for p in kept.glob("*.log") if "address already in use" in p.read_text().lower()]
        assert clashed == ["caddy.log" if clash == "edge" else "inscribe-1.log"]
    assert fleet.down(own_lab) == []


# --- status -----------------------------------------------------------------------------


def test_status_notices_each_crashed_component(own_lab: Path, lab_key: str) -> None:
    """One lab, three victims in turn (a backend, the proxies, then Caddy, the one whose loss
    downs the rest): each crash is seen by status and by `lab status`, and none blocks down."""
    environ = {**os.environ, fleet.API_KEY_ENV: lab_key}
    fleet.up(own_lab, "healthy", environ=environ)
    before = fleet.status(own_lab)
    assert before.healthy, before.to_json()
    assert all(c.state == "running" for c in before.components)

    for victim in ("inscribe-2", "proxies", "caddy"):
        record = next(r for r in recorded(own_lab) if r.name == victim)
        os.killpg(record.pid, signal.SIGKILL)
        wait_until_dead(record)

        after = fleet.status(own_lab)
        states = {c.name: c for c in after.components}
        assert states[victim].state == "crashed", victim
        assert states[victim].healthy is False, victim
        assert after.healthy is False, victim
        assert after.to_json()["healthy"] is False, victim
        if victim == "caddy":
            assert {states[s].state for s in ("edge", "lb", "api")} == {"down (caddy)"}
        elif victim == "proxies":  # the networks they carried are down with them
            assert {states[s].state for s in ("corporate-proxy", "mobile")} == {"down (proxies)"}
            assert states["edge"].state == "running"
        else:
            assert states["inscribe-1"].state == states["inscribe-3"].state == "running"

        cli = subprocess.run(
            [KILOSCRIBE_LAB, "lab", "status", "--dir", str(own_lab)],
            capture_output=True,
            text=True,
            timeout=30,
            env=environ,
        )
        assert cli.returncode == 3, (victim, cli)
        assert "NOT HEALTHY" in cli.stdout, victim
        victim_line = next(line for line in cli.stdout.splitlines() if line.split()[:1] == [victim])
        assert "crashed" in victim_line, victim

    assert fleet.down(own_lab) == []  # crashed components do not block down


def test_status_of_the_healthy_shared_labs(labs: LabGetter) -> None:
    for scenario, expected in [
        ("incident", {"inscribe-2": "down (scenario)", "inscribe-1": "running"}),
        ("slow-backend", {"inscribe-3": "stalled (scenario)", "inscribe-1": "running"}),
    ]:
        st = fleet.status(labs(scenario).lab_dir)
        assert st.healthy, st.to_json()
        states = {c.name: c.state for c in st.components}
        assert {name: states[name] for name in expected} == expected
        assert states["caddy"] == states["edge"] == states["lb"] == "running"


# --- the API key ------------------------------------------------------------------------


def files_holding(lab_dir: Path, secret: str) -> list[str]:
    return sorted(
        str(path.relative_to(lab_dir))
        for path in lab_dir.rglob("*")
        if path.is_file() and secret.encode() in path.read_bytes()
    )


def environ_holds(pid: int, secret: str) -> bool:
    variables = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return f"{fleet.API_KEY_ENV}={secret}".encode() in variables


def cmdlines_holding(pids: list[int], secret: str) -> list[int]:
    return [pid for pid in pids if secret.encode() in Path(f"/proc/{pid}/cmdline").read_bytes()]


async def test_generated_key_is_kept_in_lab_env_only_and_reused(own_lab: Path) -> None:
    environ = environ_without_key()
    info = fleet.up(own_lab, "healthy", environ=environ)
    key_file = own_lab / fleet.KEY_FILE
    assert info.api_key_file == key_file
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    key = fleet.read_env_file(key_file)[fleet.API_KEY_ENV]
    assert key_file.read_text() == f"{fleet.API_KEY_ENV}={key}\n"

    # The lab accepts that key (REST and Socket.IO) and nothing else...
    assert api_status(info, key) == 200
    assert api_status(info, key + "x") == 401
    outcome = await sio_session(info.edge, str(info.ca_bundle), key, "websocket")
    assert outcome.connected, outcome
    # ...and the key reaches the backends through their environment, never their argv.
    records = recorded(own_lab)
    pids = lab_pids(records)
    assert cmdlines_holding(pids, key) == []
    for record in records:
        # Only the backends check keys: neither Caddy nor the proxies are given it.
        assert environ_holds(record.pid, key) is (record.name in BACKENDS), record.name
    assert files_holding(own_lab, key) == [fleet.KEY_FILE]

    again = fleet.up(own_lab, "incident", environ=environ, replace=True)
    assert again.api_key_file == key_file
    assert fleet.read_env_file(key_file) == {fleet.API_KEY_ENV: key}
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert api_status(again, key) == 200
    assert cmdlines_holding(lab_pids(recorded(own_lab)), key) == []
    assert files_holding(own_lab, key) == [fleet.KEY_FILE]


def test_key_from_the_environment_writes_no_key_file(own_lab: Path, lab_key: str) -> None:
    info = fleet.up(own_lab, "healthy", environ=environ_without_key(KILOSCRIBE_API_KEY=lab_key))
    assert info.api_key_file is None
    assert info.to_json()["api_key_file"] is None
    assert not (own_lab / fleet.KEY_FILE).exists()
    assert api_status(info, lab_key) == 200
    assert files_holding(own_lab, lab_key) == []
    assert cmdlines_holding(lab_pids(recorded(own_lab)), lab_key) == []


# --- two labs at once -------------------------------------------------------------------


def test_two_labs_run_at_once_without_clashing(labs: LabGetter) -> None:
    a, b = labs("healthy"), labs("incident")
    assert a.lab_dir != b.lab_dir
    assert not set(a.ports.all_tcp()) & set(b.ports.all_tcp())
    assert fleet.status(a.lab_dir).healthy and fleet.status(b.lab_dir).healthy
    for lab in (a, b):
        with http(lab) as client:
            health = client.get(lab.backend_url("inscribe-1") + HEALTH_PATH)
        assert health.json()["scenario"] == lab.scenario
    # Each lab has its own CA: one lab's bundle does not vouch for the other's sites.
    with (
        httpx.Client(
            verify=ssl.create_default_context(cafile=str(a.ca_bundle)), trust_env=False, timeout=3
        ) as client_a,
        pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"),
    ):
        client_a.get(b.edge + HEALTH_PATH)
