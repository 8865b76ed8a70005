"""A bare python-socketio server (the real library, served by uvicorn) with the switches the
foreign-server tests need; run as a script by ``servers.py``, never imported by the package.

    python pysio_server.py --port P [--transports websocket] [--cors ORIGIN,...] [--no-ack] [--path ws]

It serves the Kiloscribe contract's Socket.IO side: CONNECT auth ``{apiKey}`` must equal the
key in ``$KILOSCRIBE_API_KEY`` (refused with "Invalid API key"); ``start-inscription`` is
acknowledged and followed by progress and complete events, or, with ``--no-ack``, never
acknowledged: the handler waits forever, because python-socketio acknowledges a handler that
returns None with an empty ack (FACTS.md §3.4).
"""

from __future__ import annotations

import argparse
import asyncio
import os
from typing import Any

import socketio
import uvicorn


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--transports", default="polling,websocket")
    parser.add_argument("--cors", default="*", help="'*' or a comma-separated list of origins")
    parser.add_argument("--no-ack", action="store_true")
    parser.add_argument("--path", default="socket.io", help="the Engine.IO path, without slashes")
    args = parser.parse_args()
    key = os.environ.get("KILOSCRIBE_API_KEY", "")
    cors: Any = "*" if args.cors == "*" else args.cors.split(",")
    sio = socketio.AsyncServer(
        async_mode="asgi", cors_allowed_origins=cors, transports=args.transports.split(",")
    )

    @sio.event  # type: ignore[untyped-decorator]
    async def connect(sid: str, environ: dict[str, Any], auth: Any) -> None:
        if not isinstance(auth, dict) or not key or auth.get("apiKey") != key:
            raise socketio.exceptions.ConnectionRefusedError("Invalid API key")

    async def progress(sid: str) -> None:
        for step in range(1, 5):
            await asyncio.sleep(0.02)
            await sio.emit("inscription-progress", {"jobId": "job-1", "progress": 25 * step}, to=sid)
        await sio.emit("inscription-complete", {"topicId": "0.0.1"}, to=sid)

    @sio.on("start-inscription")  # type: ignore[untyped-decorator]
    async def start_inscription(sid: str, data: Any = None) -> Any:
        if args.no_ack:
            await asyncio.Event().wait()  # never returns: no ack at all
        sio.start_background_task(progress, sid)
        return {"success": True, "transactionBytes": "eA==", "jobId": "job-1", "tx_id": "0.0.1@1.000000001"}

    app = socketio.ASGIApp(sio, socketio_path=args.path)
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        lifespan="off",
        timeout_graceful_shutdown=1,
    )


if __name__ == "__main__":
    main()
