"""Is the lab up? The readiness wait of ``lab up`` and the checks of ``lab status``.

Every component is asked over loopback under a short deadline: a backend its health path, a
site its ready path (Caddy's sites, and the balancer's, served by nginx or HAProxy when one is
the balancer), a proxied network a CONNECT through it to the edge. A down backend is healthy
while its port stays reserved; a stalled one while its process answers its health path.

These checks trust the lab's intermediate as well as its root: a site that serves an
incomplete chain on purpose (``Scenario.tls``) is up, though clients that trust the root
alone refuse it.
"""

from __future__ import annotations

import contextlib
import ssl
import subprocess
import time
from collections.abc import Mapping

import httpx

from kiloscribe_lab.errors import LabStartError
from kiloscribe_lab.lab import balancer, lab_networks, pki, procs
from kiloscribe_lab.lab.backend_config import HEALTH_PATH
from kiloscribe_lab.lab.caddyfile import READY_PATH
from kiloscribe_lab.lab.ports import HOLDER, PortTaken
from kiloscribe_lab.lab.scenarios import BACKENDS, BalancerKind, get_scenario
from kiloscribe_lab.lab.state import ComponentStatus, LabInfo, https

PROXIES = lab_networks.PROXY_COMPONENT
READY_TIMEOUT_S = 20.0

Running = Mapping[str, tuple[subprocess.Popen[bytes], procs.ProcessRecord]]


def _ssl_context(info: LabInfo) -> ssl.SSLContext:
    """The lab's root and, for sites that leave it out on purpose, its intermediate."""
    context = ssl.create_default_context(cafile=str(info.ca_bundle))
    intermediate = pki.intermediate_file(info.lab_dir)
    if intermediate.is_file():
        context.load_verify_locations(cafile=str(intermediate))
    return context


def _sites(info: LabInfo) -> dict[str, tuple[str, str]]:
    """The lab's HTTPS sites by component name: their URL and the process that serves them."""
    caddy = balancer.component(BalancerKind.CADDY)
    return {
        "edge": (info.edge, caddy),
        "lb": (info.lb, balancer.component(info.balancer)),
        "api": (https(info.ports.api), caddy),
        **{f"site:{n}": (info.backend_url(n), caddy) for n in BACKENDS},
    }


# --- lab up: wait until every component answers ------------------------------------------------


def wait_ready(info: LabInfo, running: Running, timeout_s: float) -> None:
    """Poll every endpoint until it answers.

    Fails fast when a process exits (``PortTaken`` when its log says its port was taken),
    and with every component still silent named when ``timeout_s`` passes."""
    scenario = get_scenario(info.scenario)
    deadline = time.monotonic() + timeout_s
    pending = {name: info.upstream_url(name) + HEALTH_PATH for name in BACKENDS if name not in scenario.down}
    pending.update({name: url + READY_PATH for name, (url, _) in _sites(info).items()})
    # A proxy is ready when a CONNECT through it to the edge is granted (non-blocking checks:
    # the mobile proxy answers only after its round trip).
    proxy_checks = {
        name: lab_networks.ConnectCheck(port, info.ports.edge) for name, port in info.proxy_ports().items()
    }
    proxy_problems: dict[str, str] = {}
    plain = httpx.Client(timeout=0.5, trust_env=False)
    tls = httpx.Client(timeout=0.5, trust_env=False, verify=_ssl_context(info))
    try:
        while pending or proxy_checks:
            for name, (proc, record) in running.items():
                if proc.poll() is not None:
                    last = procs.tail(record.log)
                    error = PortTaken if "address already in use" in last.lower() else LabStartError
                    raise error(
                        f"{name} exited with code {proc.returncode} during start-up; "
                        f"last lines of {record.log}:\n{last}"
                    )
            for name, url in list(pending.items()):
                client = plain if url.startswith("http://") else tls
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
        tls.close()
        for check in proxy_checks.values():
            check.close()


# --- lab status: each component's health --------------------------------------------------------


def check(info: LabInfo, records: list[procs.ProcessRecord]) -> tuple[ComponentStatus, ...]:
    """Each component's health; a process that died on its own shows as ``crashed``."""
    scenario = get_scenario(info.scenario)
    by_name = {r.name: r for r in records}
    components: list[ComponentStatus] = []
    with (
        httpx.Client(timeout=1.0, trust_env=False) as plain,
        httpx.Client(timeout=1.0, trust_env=False, verify=_ssl_context(info)) as tls,
    ):
        holder = by_name.get(HOLDER)
        for name in BACKENDS:
            if name in scenario.down:
                components.append(_down_component(name, holder))
                continue
            components.append(
                _component(
                    by_name.get(name),
                    name,
                    plain,
                    info.upstream_url(name) + HEALTH_PATH,
                    stalled=name in scenario.stalled,
                )
            )
        sites = _sites(info)
        # Each serving process, checked by the ready path of the first site it serves.
        servers: dict[str, ComponentStatus] = {}
        for url, server in sites.values():
            if server not in servers:
                servers[server] = _component(by_name.get(server), server, tls, url + READY_PATH)
        components += servers.values()
        for site, (url, server) in sites.items():
            serving = servers[server]
            if serving.state != "running":
                components.append(ComponentStatus(site, "running", f"down ({server})", None))
                continue
            problem = _probe_ok(tls, url + READY_PATH)
            components.append(
                ComponentStatus(site, "running", "unhealthy" if problem else "running", serving.pid, problem)
            )
    components += _proxy_components(by_name.get(PROXIES), info)
    return tuple(components)


def _probe_ok(client: httpx.Client, url: str) -> str:
    try:
        response = client.get(url)
    except httpx.TimeoutException:
        return "no answer within 1 s"
    except (httpx.HTTPError, ssl.SSLError, OSError) as exc:
        return f"{type(exc).__name__}: {exc}"
    return "" if response.status_code == 200 else f"HTTP {response.status_code}"


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
