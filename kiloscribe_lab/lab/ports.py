"""Which loopback ports a lab listens on: picked free, and kept for the down backends.

Ports are picked free (``free_ports``) and bound by the components a moment later; another
process may take one in between. ``PortTaken`` says so, and ``fleet.up`` retries once on
fresh ports. A down backend's port is bound here and handed to a holder process
(``holder.py``), so it stays reserved, and refusing, for the life of the lab.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kiloscribe_lab.errors import LabStartError
from kiloscribe_lab.lab import procs
from kiloscribe_lab.lab.scenarios import BACKENDS

LOOPBACK = "127.0.0.1"
HOLDER = "held-ports"  # the process that keeps the down backends' ports reserved


@dataclass(frozen=True, slots=True)
class LabPorts:
    edge: int
    lb: int
    api: int
    direct: dict[str, int]  # public site per backend, like inscribe-N.<domain>
    backend: dict[str, int]  # where each backend's uvicorn listens (plain HTTP, loopback)

    def all_tcp(self) -> list[int]:
        return [self.edge, self.lb, self.api, *self.direct.values(), *self.backend.values()]

    def to_json(self) -> dict[str, object]:
        return {
            "edge": self.edge,
            "lb": self.lb,
            "api": self.api,
            "direct": self.direct,
            "backend": self.backend,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> LabPorts:
        """What ``to_json`` wrote; KeyError, TypeError or ValueError when it is not that."""
        return cls(
            edge=int(data["edge"]),
            lb=int(data["lb"]),
            api=int(data["api"]),
            direct=_port_map(data["direct"]),
            backend=_port_map(data["backend"]),
        )


def _port_map(value: object) -> dict[str, int]:
    if not isinstance(value, Mapping):
        raise TypeError(f"expected name -> port, got {value!r}")
    return {str(k): int(v) for k, v in value.items()}


class PortTaken(LabStartError):
    """A port picked for the lab was taken by another process before a component bound it."""


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


def allocate(extra: int) -> tuple[LabPorts, list[int]]:
    """The fleet's ports and ``extra`` more, all distinct (one ``free_ports`` call)."""
    n = len(BACKENDS)
    ports = free_ports(3 + 2 * n + extra)
    edge, lb, api = ports[:3]
    direct = dict(zip(BACKENDS, ports[3 : 3 + n], strict=True))
    backend = dict(zip(BACKENDS, ports[3 + n : 3 + 2 * n], strict=True))
    return LabPorts(edge=edge, lb=lb, api=api, direct=direct, backend=backend), ports[3 + 2 * n :]


def hold(
    ports: list[int], lab_dir: Path, env: Mapping[str, str]
) -> tuple[subprocess.Popen[bytes], procs.ProcessRecord]:
    """Bind ``ports`` (never listen) and hand them to a holder process, which keeps them
    until the lab stops: a bound, non-listening socket refuses connections as a dead backend does."""
    sockets: list[socket.socket] = []
    try:
        for port in ports:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sockets.append(sock)
            try:
                sock.bind((LOOPBACK, port))
            except OSError as exc:
                raise PortTaken(f"cannot reserve port {port} for a down backend: {exc}") from exc
        fds = [s.fileno() for s in sockets]
        argv = [sys.executable, "-m", "kiloscribe_lab.lab.holder", "--lab", str(lab_dir), *map(str, fds)]
        log = lab_dir / "logs" / f"{HOLDER}.log"
        return procs.spawn(HOLDER, argv, log=log, env=env, pass_fds=fds)
    finally:
        for sock in sockets:
            sock.close()  # the holder has its own copies
