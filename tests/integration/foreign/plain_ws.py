"""A plain WebSocket server (the ``websockets`` library, no Engine.IO) on every path; run as a
script by ``servers.py``.

    python plain_ws.py --port P [--greeting TEXT]

It accepts any WebSocket handshake, sends ``--greeting`` first when given (else stays silent
until spoken to) and echoes; a plain HTTP request gets ``426 Upgrade Required``, as the ``ws``
library answers (FACTS.md §2).
"""

from __future__ import annotations

import argparse
import asyncio
import http

from websockets.asyncio.server import ServerConnection, serve
from websockets.http11 import Request, Response


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--greeting", default="")
    args = parser.parse_args()

    async def handler(ws: ServerConnection) -> None:
        if args.greeting:
            await ws.send(args.greeting)
        async for message in ws:
            await ws.send(message)

    def plain_http(ws: ServerConnection, request: Request) -> Response | None:
        if "websocket" in request.headers.get("Upgrade", "").lower():
            return None
        return ws.respond(http.HTTPStatus.UPGRADE_REQUIRED, "Upgrade Required")

    async def run() -> None:
        async with serve(handler, "127.0.0.1", args.port, process_request=plain_http) as server:
            await server.serve_forever()

    asyncio.run(run())


if __name__ == "__main__":
    main()
