"""Hold a down backend's port for the life of the lab: bound, never listening.

A scenario takes a backend down by not starting it. Its port must stay reserved all the
same: left free, the kernel hands it to the next ``bind(0)`` (another lab, any test server)
and the "down" backend starts answering. A socket that is bound but not listening keeps the
port and still refuses connections (RST), which is exactly what a dead backend does.

The bound sockets are created by ``ports.hold`` (called by ``fleet.up``) and inherited here
(``pass_fds``), so the port is never free while the lab runs; the short window between picking
it and binding it is the one every component has, covered by ``up``'s retry on fresh ports.
Run as ``python -m kiloscribe_lab.lab.holder --lab DIR FD...``
(``--lab`` only names the lab, so ``ps`` and leak checks can tell whose holder it is).
"""

from __future__ import annotations

import signal
import socket
import sys


def main(argv: list[str]) -> int:
    if argv[:1] == ["--lab"]:
        argv = argv[2:]
    held = []
    for arg in argv:
        sock = socket.socket(fileno=int(arg))  # raises at once when the fd is not a socket
        held.append(sock)
        print(f"holding {sock.getsockname()[0]}:{sock.getsockname()[1]}", flush=True)
    if not held:
        print("usage: python -m kiloscribe_lab.lab.holder [--lab DIR] FD...", file=sys.stderr)
        return 2
    while True:  # SIGTERM's default action ends us; nothing to clean up
        signal.pause()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
