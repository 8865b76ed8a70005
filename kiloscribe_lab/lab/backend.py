"""One lab backend (``inscribe-N``): a python-socketio ASGI server with the mock Kiloscribe API.

Run as ``python -m kiloscribe_lab.lab.backend --config FILE --name inscribe-1 --port P``.
The accepted API key comes from the environment (``KILOSCRIBE_API_KEY`` unless
``--api-key-env`` names another variable), never from the command line. What this backend
does in the lab's scenario (stall, redirect ``/``, refuse every key) is its behaviour in the
config file (``backend_config.py``). Otherwise it follows
``shared/reference/kiloscribe-contract.md``:

* Socket.IO at ``/socket.io/``: the CONNECT auth payload ``{apiKey}`` is checked; a wrong key
  is refused with CONNECT_ERROR ``{"message": "Invalid API key"}``. ``start-inscription`` is
  acknowledged with ``{success, transactionBytes, jobId, tx_id}`` and followed by
  ``inscription-progress`` events and ``inscription-complete``.
* REST under ``/api/``: ``websocket-servers``, ``start-inscription``, ``retrieve-inscription``,
  each checking ``x-api-key``; ``/api/health`` is the lab's readiness check and needs no key.
* Every response names the backend in ``x-lab-backend`` so tests see where a request landed.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import sys
import time
import urllib.parse
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

import socketio
import uvicorn

from kiloscribe_lab.lab.backend_config import BACKEND_HEADER, HEALTH_PATH, BackendConfig, load_backend_config
from kiloscribe_lab.lab.scenarios import BackendState
from kiloscribe_lab.names import ContractEvent

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

INVALID_KEY_MESSAGE = "Invalid API key"
# One line per accepted start-inscription in the backend's log (main() sends it to stdout).
JOBS_LOG = logging.getLogger("kiloscribe_lab.lab.backend.jobs")
# Progress events are spaced so a client sees them arrive, yet a flow ends well within a second.
PROGRESS_STEPS = (25, 50, 75, 100)
PROGRESS_INTERVAL_S = 0.02

# A Hedera account or transaction id as the SDK sends it: 0.0.X, or 0.0.X@S.N as 0.0.X-S-N.
ACCOUNT_RE = re.compile(r"^\d+\.\d+\.\d+$")
RETRIEVE_ID_RE = re.compile(r"^(\d+\.\d+\.\d+)-(\d+)-(\d+)$")
INSCRIPTION_MODES = {"file", "upload", "hashinal", "hashinal-collection", "bulk-files"}


class InscriptionStore:
    """The jobs a backend has started; in memory, as a mock needs no more."""

    def __init__(self) -> None:
        self._by_tx: dict[str, dict[str, Any]] = {}
        self._counter = 0

    def start(self, request: dict[str, Any]) -> dict[str, Any]:
        self._counter += 1
        now = time.time_ns()
        tx_id = f"{request['holderId']}@{now // 1_000_000_000}.{now % 1_000_000_000:09d}"
        digest = hashlib.sha256(tx_id.encode()).digest()
        job = {
            "tx_id": tx_id,
            "jobId": f"job-{digest[:6].hex()}",
            "topic_id": f"0.0.{int.from_bytes(digest[:3], 'big') + 1_000_000}",
            # Not a real Hedera transaction: a recognisable placeholder the SDK can decode.
            "transactionBytes": base64.b64encode(b"kiloscribe-lab:" + digest).decode(),
            "mode": request.get("mode"),
            "network": request.get("network"),
        }
        self._by_tx[tx_id] = job
        return job

    def get(self, tx_id: str) -> dict[str, Any] | None:
        return self._by_tx.get(tx_id)


def validate_inscription_request(data: Any, *, need_file: bool = True) -> str | None:
    """The contract's required fields; returns the user-facing error message or None."""
    if not isinstance(data, dict):
        return "Request body must be a JSON object"
    holder = data.get("holderId")
    if not isinstance(holder, str) or not ACCOUNT_RE.match(holder):
        return "holderId must be a Hedera account id such as 0.0.12345"
    if data.get("mode") not in INSCRIPTION_MODES:
        return f"mode must be one of {', '.join(sorted(INSCRIPTION_MODES))}"
    if data.get("network") not in {"mainnet", "testnet"}:
        return "network must be mainnet or testnet"
    if need_file:
        has_url = isinstance(data.get("fileURL"), str) and data["fileURL"]
        has_b64 = all(
            isinstance(data.get(k), str) and data[k] for k in ("fileBase64", "fileName", "fileMimeType")
        )
        if not (has_url or has_b64 or _sdk_file(data.get("file"))):
            return "Provide fileURL, or fileBase64 with fileName and fileMimeType"
    return None


def _sdk_file(file: Any) -> bool:
    """The SDK's socket request carries ``file: {type: "url", url}`` or
    ``file: {type: "base64", base64, fileName, mimeType}`` instead of the REST fields."""
    if not isinstance(file, dict):
        return False
    if file.get("type") == "url":
        return isinstance(file.get("url"), str) and bool(file["url"])
    if file.get("type") == "base64":
        return all(isinstance(file.get(k), str) and file[k] for k in ("base64", "fileName", "mimeType"))
    return False


def key_matches(config: BackendConfig, candidate: object) -> bool:
    if config.behaviour.auth_broken or not isinstance(candidate, str):
        return False
    return hmac.compare_digest(candidate.encode(), config.api_key.encode())


def build_socketio(config: BackendConfig, store: InscriptionStore) -> socketio.AsyncServer:
    b = config.behaviour
    sio = socketio.AsyncServer(
        async_mode="asgi",
        # "*": any Origin echoed, with credentials (engineio's default cors_credentials=True).
        cors_allowed_origins="*" if b.cors_origins is None else list(b.cors_origins),
        transports=[str(t) for t in b.transports],
        # python-engineio counts in seconds; the behaviour holds whole seconds (checked there).
        ping_interval=b.ping_interval_ms // 1000,
        ping_timeout=b.ping_timeout_ms // 1000,
        max_http_buffer_size=b.max_http_buffer_size,
        logger=False,
    )

    @sio.event  # type: ignore[untyped-decorator]
    async def connect(sid: str, environ: dict[str, Any], auth: Any) -> None:
        api_key = auth.get("apiKey") if isinstance(auth, dict) else None
        if not key_matches(config, api_key):
            raise socketio.exceptions.ConnectionRefusedError(INVALID_KEY_MESSAGE)

    @sio.on(ContractEvent.START_INSCRIPTION)  # type: ignore[untyped-decorator]
    async def start_inscription(sid: str, data: Any = None) -> dict[str, Any]:
        if not b.acks_inscription:
            # Never return: python-socketio acknowledges a handler that returns None with an
            # empty ack (`43[]`). Each event runs in its own task, so this blocks nothing else.
            await asyncio.Event().wait()
        error = validate_inscription_request(data)
        if error is not None:
            return {"success": False, "error": error}
        job = store.start(data)
        # One line per job in the backend's log: where a request landed, and that it did.
        JOBS_LOG.info("start-inscription: job %s", job["jobId"])
        sio.start_background_task(_emit_progress, sio, sid, job)
        return {
            "success": True,
            "transactionBytes": job["transactionBytes"],
            "jobId": job["jobId"],
            "tx_id": job["tx_id"],
        }

    return sio


async def _emit_progress(sio: socketio.AsyncServer, sid: str, job: dict[str, Any]) -> None:
    for progress in PROGRESS_STEPS:
        await asyncio.sleep(PROGRESS_INTERVAL_S)
        status = "completed" if progress == 100 else "processing"
        await sio.emit(
            ContractEvent.PROGRESS,
            {
                "jobId": job["jobId"],
                "status": status,
                "progress": progress,
                "topicId": job["topic_id"],
            },
            to=sid,
        )
    await sio.emit(ContractEvent.COMPLETE, {"topicId": job["topic_id"]}, to=sid)


async def _read_body(receive: Receive, limit: int = 8 * 1024 * 1024) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise ValueError("request body too large")
        chunks.append(chunk)
        if not message.get("more_body"):
            break
    return b"".join(chunks)


async def _respond(
    send: Send,
    status: int,
    body: Any,
    *,
    content_type: str = "application/json",
    headers: tuple[tuple[bytes, bytes], ...] = (),
) -> None:
    payload = body if isinstance(body, bytes) else json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type.encode()),
                (b"content-length", str(len(payload)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


async def _refuse_websocket(scope: Scope, send: Send, config: BackendConfig) -> None:
    """Answer a plain WebSocket handshake with an HTTP response, as ``/`` answers a GET.

    The ASGI denial-response extension (uvicorn supports it) lets the refusal carry
    ``x-lab-backend`` and, where ``/`` redirects, the 308 wscat saw in the incident.
    """
    if "websocket.http.response" not in (scope.get("extensions") or {}):
        await send({"type": "websocket.close", "code": 1008})
        return
    if scope["path"] == "/" and config.behaviour.root_redirect:
        status, body = 308, b"Permanent Redirect"
        headers = [(b"content-type", b"text/plain"), (b"location", HEALTH_PATH.encode())]
    else:
        status = 403
        served_at = f"{config.behaviour.path}/"
        body = json.dumps({"message": f"WebSocket connections are served at {served_at}"}).encode()
        headers = [(b"content-type", b"application/json")]
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "websocket.http.response.start", "status": status, "headers": headers})
    await send({"type": "websocket.http.response.body", "body": body})


def build_rest(config: BackendConfig, store: InscriptionStore) -> ASGIApp:
    """The mock REST API; a handful of routes needs no framework."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            # A plain WebSocket to anything but /socket.io/: refuse the handshake, as the
            # production service does for wscat pointed at "/".
            if scope["type"] == "websocket":
                await _refuse_websocket(scope, send, config)
            return
        path: str = scope["path"]
        method: str = scope["method"]
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        query = urllib.parse.parse_qs(scope.get("query_string", b"").decode("latin-1"))

        if path == "/":
            if config.behaviour.root_redirect:
                await _respond(
                    send,
                    308,
                    b"Permanent Redirect",
                    content_type="text/plain",
                    headers=((b"location", HEALTH_PATH.encode()),),
                )
            else:
                await _respond(
                    send, 200, b"Kiloscribe inscription service (lab)\n", content_type="text/plain"
                )
            return
        if path == HEALTH_PATH:
            await _respond(send, 200, {"status": "ok", "backend": config.name, "scenario": config.scenario})
            return
        if not path.startswith("/api/inscriptions/"):
            await _respond(send, 404, {"message": "Not found"})
            return
        if not key_matches(config, headers.get("x-api-key")):
            await _respond(send, 401, {"message": INVALID_KEY_MESSAGE})
            return

        route = path.removeprefix("/api/inscriptions/")
        if route == "websocket-servers" and method == "GET":
            await _respond(send, 200, {"servers": config.servers, "recommended": config.recommended})
        elif route == "start-inscription" and method == "POST":
            try:
                data = json.loads(await _read_body(receive) or b"null")
            except (ValueError, UnicodeDecodeError):
                await _respond(send, 400, {"message": "Request body is not valid JSON"})
                return
            error = validate_inscription_request(data)
            if error is not None:
                await _respond(send, 400, {"message": error})
                return
            job = store.start(data)
            await _respond(send, 200, {"transactionBytes": job["transactionBytes"], "tx_id": job["tx_id"]})
        elif route == "retrieve-inscription" and method == "GET":
            raw_id = (query.get("id") or [""])[0]
            match = RETRIEVE_ID_RE.match(raw_id)
            if match is None:
                await _respond(send, 400, {"message": "id must look like 0.0.X-S-N"})
                return
            tx_id = f"{match[1]}@{match[2]}.{match[3]}"
            found = store.get(tx_id)
            if found is None:
                await _respond(send, 404, {"message": f"Inscription {tx_id} not found"})
                return
            await _respond(
                send,
                200,
                {
                    "id": tx_id,
                    "status": "completed",
                    "completed": True,
                    "topic_id": found["topic_id"],
                    "mode": found["mode"],
                    "network": found["network"],
                },
            )
        elif route in {"websocket-servers", "start-inscription", "retrieve-inscription"}:
            await _respond(send, 405, {"message": "Method not allowed"})
        else:
            await _respond(send, 404, {"message": "Not found"})

    return app


def with_identity(app: ASGIApp, name: str) -> ASGIApp:
    """Add ``x-lab-backend: <name>`` to every HTTP response, WebSocket accept and refusal."""
    header = (BACKEND_HEADER.encode(), name.encode())

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_identity(message: Message) -> None:
            if message["type"] in {
                "http.response.start",
                "websocket.accept",
                "websocket.http.response.start",
            }:
                message = dict(message)
                message["headers"] = [*message.get("headers", []), header]
            await send(message)

        await app(scope, receive, send_with_identity)

    return wrapped


def with_stall(app: ASGIApp) -> ASGIApp:
    """Accept the connection, then never answer: the slow-backend scenario.

    The health path is spared so the lab can tell "stalled on purpose" from "not started".
    """

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in {"http", "websocket"} and scope.get("path") != HEALTH_PATH:
            await asyncio.Event().wait()
        await app(scope, receive, send)

    return wrapped


def build_app(config: BackendConfig) -> ASGIApp:
    store = InscriptionStore()
    sio = build_socketio(config, store)
    rest = build_rest(config, store)
    app: ASGIApp = socketio.ASGIApp(sio, other_asgi_app=rest, socketio_path=config.behaviour.path.strip("/"))
    if config.behaviour.state is BackendState.STALLED:
        app = with_stall(app)
    return with_identity(app, config.name)


class _DenialLogFilter(logging.Filter):
    """Drop the error uvicorn's websockets-sansio protocol logs after every denial response.

    It sends the refusal correctly but never marks the handshake done, then reports the app
    as broken (Kludex/uvicorn#3138); a lab log must not cry "ERROR" for a plain-WS probe.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != "ASGI callable returned without completing handshake."


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--api-key-env", default="KILOSCRIBE_API_KEY")
    args = parser.parse_args(argv)
    api_key = os.environ.get(args.api_key_env) or ""
    if not api_key:
        # A backend with no key would accept nothing; a random one keeps that explicit.
        api_key = secrets.token_urlsafe(24)
    config = load_backend_config(args.config, args.name, api_key)
    logging.getLogger("uvicorn.error").addFilter(_DenialLogFilter())
    jobs = logging.StreamHandler(sys.stdout)
    jobs.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    JOBS_LOG.addHandler(jobs)
    JOBS_LOG.setLevel(logging.INFO)
    server = uvicorn.Server(
        uvicorn.Config(
            build_app(config),
            host="127.0.0.1",
            port=args.port,
            log_level="warning",
            access_log=False,
            lifespan="off",
            server_header=True,
            # Open long-polls and WebSockets would hold a graceful shutdown forever: a lab
            # backend has nothing to drain, so SIGTERM means stop within a second.
            timeout_graceful_shutdown=1,
        )
    )
    asyncio.run(_serve(server, config))


async def _serve(server: uvicorn.Server, config: BackendConfig) -> None:
    b = config.behaviour
    stall = None
    if b.stall_event_loop_ms > 0:
        stall = asyncio.create_task(stall_event_loop(b.stall_event_loop_ms / 1000, b.ping_interval_ms / 1000))
    try:
        await server.serve()
    finally:
        if stall is not None:
            stall.cancel()


async def stall_event_loop(stall_s: float, every_s: float) -> None:
    """Block the event loop for ``stall_s`` after every ``every_s`` of free time: engineio's
    ping timer, like every other callback, then fires late (the slow-heartbeat scenario)."""
    while True:
        await asyncio.sleep(every_s)
        time.sleep(stall_s)  # noqa: ASYNC251  (the point: nothing else on this loop runs meanwhile)


if __name__ == "__main__":
    main()
