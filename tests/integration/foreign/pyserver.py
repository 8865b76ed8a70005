"""A bare python-socketio server, not the lab's mock: ``AsyncServer(cors_allowed_origins=...)``
under uvicorn, as its documentation starts one, with an ``echo`` event acknowledged with its
data. Run with this project's venv:

    python pyserver.py --cors-origin https://app.kiloscribe.test [--cors-origin ...] [--port P]

Bound to loopback; port 0 (the default) lets the kernel pick, printed in a JSON "listening" line.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
from typing import Any

import socketio
import uvicorn


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--cors-origin", action="append", required=True)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    sio = socketio.AsyncServer(async_mode="asgi", cors_allowed_origins=args.cors_origin)

    @sio.on("echo")  # type: ignore[untyped-decorator]
    async def echo(sid: str, data: Any = None) -> Any:
        return data

    sock = socket.create_server(("127.0.0.1", args.port))
    port = sock.getsockname()[1]
    print(json.dumps({"event": "listening", "server": "python-socketio", "port": port}), flush=True)
    config = uvicorn.Config(
        socketio.ASGIApp(sio), log_level="warning", lifespan="off", timeout_graceful_shutdown=1
    )
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    main(sys.argv[1:])
