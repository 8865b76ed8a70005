"""Where a lab is and what it runs: ``LabInfo``, the component statuses, and ``lab.json``.

All of a lab's state lives in one lab directory (certificates, logs, the generated key file,
``lab.json``); nothing touches the system trust store or ``$HOME``. ``lab.json`` is rewritten
(atomically) each time ``lab up`` starts a process, so ``lab down`` can stop a lab even when
``up`` was interrupted or killed.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kiloscribe_lab.errors import ConfigError, LabStateError
from kiloscribe_lab.lab import procs
from kiloscribe_lab.lab.balancer import config_file
from kiloscribe_lab.lab.caddyfile import FILE as CADDYFILE
from kiloscribe_lab.lab.lab_networks import MobileLink
from kiloscribe_lab.lab.ports import LOOPBACK, LabPorts
from kiloscribe_lab.lab.scenarios import (
    BACKENDS,
    DEFAULT_BACKEND_KIND,
    BackendKind,
    BalancerKind,
    get_scenario,
)
from kiloscribe_lab.names import NetworkName
from kiloscribe_lab.networks import NetworkProfile
from kiloscribe_lab.results import utc_now

LAB_DIR_ENV = "KILOSCRIBE_LAB_DIR"
STATE_FILE = "lab.json"
STATE_VERSION = 1
STARTING = "starting"  # lab.json's phase while `up` brings components up
RUNNING = "running"  # every component answered


def default_lab_dir(environ: Mapping[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    return Path(env.get(LAB_DIR_ENV, ".lab")).resolve()


def https(port: int) -> str:
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
    networks: Mapping[str, str | None] = field(default_factory=lambda: {NetworkName.DIRECT.value: None})
    networks_config: Path | None = None  # the lab's network profiles, as an investigation config
    mobile_link: MobileLink | None = None
    backend: BackendKind = DEFAULT_BACKEND_KIND  # the Socket.IO server the backends run
    balancer: BalancerKind = BalancerKind.CADDY  # what runs the balancer tier (``lab up --balancer``)

    @property
    def balancer_config(self) -> Path:
        """The file that configures the balancer tier: the Caddyfile, nginx.conf or haproxy.cfg."""
        return config_file(self.lab_dir, self.balancer)

    @property
    def edge(self) -> str:
        return https(self.ports.edge)

    @property
    def lb(self) -> str:
        return https(self.ports.lb)

    @property
    def api(self) -> str:
        return https(self.ports.api) + "/api"

    def backend_url(self, name: str) -> str:
        return https(self.ports.direct[name])

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
            "backend": str(self.backend),
            "caddyfile": str(self.lab_dir / CADDYFILE),
            "balancer": str(self.balancer),
            "balancer_config": str(self.balancer_config),
            "expected_findings": [str(f) for f in get_scenario(self.scenario).expected_findings],
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


# --- lab.json ---------------------------------------------------------------------------------


def write_state(lab_dir: Path, info: LabInfo, records: list[procs.ProcessRecord], phase: str) -> None:
    state = {
        "version": STATE_VERSION,
        "phase": phase,
        "scenario": info.scenario,
        "balancer": str(info.balancer),
        "written_at": utc_now(),
        "ports": info.ports.to_json(),
        "ca_bundle": str(info.ca_bundle),
        "api_key_env": info.api_key_env,
        "api_key_file": None if info.api_key_file is None else str(info.api_key_file),
        "networks": dict(info.networks),
        "networks_config": None if info.networks_config is None else str(info.networks_config),
        "mobile_link": None if info.mobile_link is None else info.mobile_link.to_json(),
        "backend": str(info.backend),
        "processes": [r.to_json() for r in records],
    }
    tmp = lab_dir / (STATE_FILE + ".tmp")
    tmp.write_text(json.dumps(state, indent=2))
    tmp.replace(lab_dir / STATE_FILE)  # atomic: a reader never sees half a file


def read_state(lab_dir: Path) -> tuple[LabInfo, list[procs.ProcessRecord], str]:
    """The lab in ``lab_dir``, its processes and its phase; LabStateError when there is
    none, or when ``lab.json`` is not what ``write_state`` writes (saying what is wrong)."""
    path = lab_dir / STATE_FILE
    if not path.exists():
        raise LabStateError(f"no lab in {lab_dir} (run `kiloscribe-lab lab up` first)")
    try:
        state = json.loads(path.read_text())
        if not isinstance(state, dict):
            raise TypeError(f"expected a JSON object, got {type(state).__name__}")
        info = LabInfo(
            scenario=str(state["scenario"]),
            lab_dir=lab_dir,
            ports=LabPorts.from_json(state["ports"]),
            ca_bundle=Path(state["ca_bundle"]),
            api_key_env=str(state["api_key_env"]),
            api_key_file=None if state.get("api_key_file") is None else Path(state["api_key_file"]),
            networks=_networks(state.get("networks")),
            networks_config=None if not state.get("networks_config") else Path(state["networks_config"]),
            mobile_link=_mobile_link(state.get("mobile_link")),
            # A lab from before the choice ran python backends.
            backend=BackendKind(state.get("backend") or DEFAULT_BACKEND_KIND),
            balancer=BalancerKind(state.get("balancer", BalancerKind.CADDY)),
        )
        processes = state["processes"]
        if not isinstance(processes, list):
            raise TypeError(f"processes: expected a list, got {type(processes).__name__}")
        records = [procs.ProcessRecord.from_json(r) for r in processes]
        return info, records, str(state.get("phase", RUNNING))
    except (ValueError, KeyError, TypeError, ConfigError, LabStateError) as exc:
        reason = f"missing {exc}" if isinstance(exc, KeyError) else str(exc)
        raise LabStateError(f"unreadable lab state {path}: {reason}") from exc


def _networks(value: object) -> dict[str, str | None]:
    if value is None or value == {}:
        return {NetworkName.DIRECT.value: None}
    if not isinstance(value, dict) or not all(v is None or isinstance(v, str) for v in value.values()):
        raise TypeError(f"networks: expected name -> proxy URL or null, got {value!r}")
    return {str(k): v for k, v in value.items()}


def _mobile_link(value: object) -> MobileLink | None:
    if not value:
        return None
    if not isinstance(value, dict):
        raise TypeError(f"mobile_link: expected an object, got {value!r}")
    return MobileLink(rtt_ms=int(value["rtt_ms"]), jitter_ms=int(value["jitter_ms"]))


def lab_network_profiles(lab_dir: Path) -> dict[str, NetworkProfile]:
    """The network profiles of the lab running in ``lab_dir``; empty when none runs there."""
    lab_dir = lab_dir.resolve()
    if not (lab_dir / STATE_FILE).exists():
        return {}
    info, _, phase = read_state(lab_dir)
    return info.network_profiles() if phase == RUNNING else {}


def known_networks(
    lab_dir: Path | None, environ: Mapping[str, str] | None = None
) -> tuple[dict[str, NetworkProfile], str]:
    """The networks of the lab running in ``lab_dir`` (default ``$KILOSCRIBE_LAB_DIR`` or
    ``./.lab``), and a phrase naming where they were looked for: what ``probe --network``
    knows beyond its config. A lab state that cannot be read is no lab here, said in the phrase:
    it must not stop a probe of a target that has nothing to do with the lab."""
    where = lab_dir.resolve() if lab_dir is not None else default_lab_dir(environ)
    try:
        profiles = lab_network_profiles(where)
    except (LabStateError, ConfigError) as exc:
        return {}, f"the lab state in {where} is unreadable ({exc})"
    return profiles, (f"the lab in {where}" if profiles else f"no lab runs in {where}")
