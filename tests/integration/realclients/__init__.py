"""Real clients as test instruments: a scenario is right only when the clients users run fare
as its ground truth says. One typed API over three clients:

    outcome = await run_client(ClientKind.SOCKETIO_CLIENT, lab.edge, transports=..., api_key_env=...,
                               environ=..., ca=lab.ca_bundle, inscribe=True)

* ``socket.io-client``: Node socket.io-client 4.8 (``nodejs/sioclient.mjs``);
* ``python-socketio``: python-socketio 5.x in a subprocess of this venv (``pyclient.py``);
* ``sdk``: the published Kiloscribe SDK in Node with a WebSocket global (``sdk_check``,
  runtime ``websocket``): websocket first, always; no origin, hold or payload.

Each run is bounded by our own deadline (the harnesses' own timers are inside it); the key is
named by ``api_key_env`` and read from ``environ`` by the client, never passed on argv.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kiloscribe_lab.names import ClientKind, Outcome, SdkMode, SdkStep, Transport
from kiloscribe_lab.sdk import sdk_check
from kiloscribe_lab.toolchain.subproc import run_bounded
from tests.integration.nodejs import ensure_instruments, node

HERE = Path(__file__).resolve().parent
PYCLIENT = HERE / "pyclient.py"
DEFAULT_ORDER = (Transport.WEBSOCKET, Transport.POLLING)
DEADLINE_MARGIN_S = 10.0  # interpreter start, imports, closing: beyond the harness's own timers


@dataclass(frozen=True)
class ClientOutcome:
    """What one real client did, in the same words for every kind."""

    kind: ClientKind
    transports: tuple[Transport, ...]
    connected: bool
    transport: str | None = None  # on connect
    transport_at_end: str | None = None  # still connected at the end: the transport then
    error: str | None = None  # why it did not connect (the client's own message)
    error_detail: Mapping[str, Any] = field(default_factory=dict)  # HTTP status, body, close code
    disconnect_reason: str | None = None  # the session ended on its own (within the hold)
    disconnect_after_s: float | None = None  # seconds after the client started
    acked: bool | None = None  # start-inscription acknowledged with success (None: not tried)
    ack_error: str | None = None
    pings: tuple[float, ...] = ()  # arrival times (s after start)
    elapsed_s: float = 0.0
    raw: Mapping[str, Any] = field(default_factory=dict)  # the harness's whole answer


def _harness_flags(
    transports: Sequence[Transport],
    api_key_env: str | None,
    ca: Path | None,
    origin: str | None,
    hold_s: float,
    emit_size: int | None,
    inscribe: bool,
    connect_timeout_s: float,
    ack_timeout_s: float,
) -> list[str]:
    flags = ["--transports", ",".join(str(t) for t in transports)]
    flags += ["--connect-timeout-s", f"{connect_timeout_s:g}", "--ack-timeout-s", f"{ack_timeout_s:g}"]
    flags += ["--hold-s", f"{hold_s:g}"]
    if api_key_env:
        flags += ["--api-key-env", api_key_env]
    if ca is not None:
        flags += ["--ca", str(ca)]
    if origin:
        flags += ["--origin", origin]
    if emit_size is not None:
        flags += ["--emit-size", str(emit_size)]
    if inscribe:
        flags.append("--inscribe")
    return flags


def _last_json(stdout: str) -> dict[str, Any] | None:
    for line in reversed(stdout.splitlines()):
        if line.startswith("{"):
            try:
                data = json.loads(line)
            except ValueError:
                return None
            return data if isinstance(data, dict) else None
    return None


def _inscription(raw: Mapping[str, Any]) -> tuple[bool | None, str | None]:
    inscription = raw.get("inscription")
    if not isinstance(inscription, dict):
        return None, None
    ack = inscription.get("ack")
    if isinstance(ack, dict):
        return ack.get("success") is True, None
    error = inscription.get("ack_error")
    return False, str(error.get("message")) if isinstance(error, dict) else "no ack"


def _from_harness(kind: ClientKind, transports: tuple[Transport, ...], raw: dict[str, Any]) -> ClientOutcome:
    error: str | None = None
    detail: dict[str, Any] = {}
    connect_error = raw.get("connect_error")
    if raw.get("harness_failure"):
        error = str(raw["harness_failure"])
    elif kind is ClientKind.PYTHON_SOCKETIO:
        # python-socketio: the exception's text ("One or more namespaces failed to connect")
        # and the server's CONNECT_ERROR data, which says why.
        parts = [str(raw["connect_exception"])] if raw.get("connect_exception") else []
        if isinstance(connect_error, dict):
            parts.append(json.dumps(connect_error.get("data")))
        error = ": ".join(parts) or None
        if raw.get("exception"):
            error = str(raw["exception"])
        if raw.get("logs"):
            detail["logs"] = raw["logs"]
    elif isinstance(connect_error, dict):
        error = str(connect_error.get("message"))
        detail = {k: v for k, v in connect_error.items() if k != "message"}
    if not raw.get("connected") and error is None:
        error = "harness deadline" if "harness_deadline_s" in raw else "did not connect"
    disconnect = raw.get("disconnect") if isinstance(raw.get("disconnect"), dict) else None
    acked, ack_error = _inscription(raw)
    return ClientOutcome(
        kind=kind,
        transports=transports,
        connected=bool(raw.get("connected")),
        transport=raw.get("transport"),
        transport_at_end=raw.get("transport_at_end"),
        error=error,
        error_detail=detail,
        disconnect_reason=None if disconnect is None else str(disconnect.get("reason")),
        disconnect_after_s=None if disconnect is None else float(disconnect.get("at_s") or 0.0),
        acked=acked,
        ack_error=ack_error,
        pings=tuple(float(p) for p in raw.get("pings") or ()),
        elapsed_s=float(raw.get("elapsed_s") or 0.0),
        raw=raw,
    )


async def _sdk(
    url: str,
    *,
    transports: tuple[Transport, ...],
    api_key_env: str | None,
    environ: Mapping[str, str],
    ca: Path | None,
    inscribe: bool,
) -> ClientOutcome:
    if transports != DEFAULT_ORDER:
        raise ValueError(f"the SDK tries websocket first, always; {list(transports)} cannot be asked of it")
    ws_url = url.replace("https://", "wss://", 1).replace("http://", "ws://", 1)
    results = await sdk_check(
        ws_url,
        api_key_env=api_key_env,
        ca_bundle=ca,
        environ=environ,
        runtimes=(SdkMode.WEBSOCKET,),
        inscription=inscribe,
    )
    by_step = {r.variant.rsplit(":", 1)[-1]: r for r in results}
    connect = by_step.get(SdkStep.CONNECT_VALID)
    connected = connect is not None and connect.outcome is Outcome.OK
    acked: bool | None = None
    ack_error = None
    if inscribe and connected:
        step = by_step.get(SdkStep.START_INSCRIPTION)
        acked = step is not None and step.outcome is Outcome.OK
        ack_error = None if acked or step is None else step.error
    return ClientOutcome(
        kind=ClientKind.SDK,
        transports=transports,
        connected=connected,
        transport=str(Transport.WEBSOCKET) if connected else None,
        error=None if connected else (connect.error if connect is not None else "no connect-valid step"),
        acked=acked,
        ack_error=ack_error,
        elapsed_s=(connect.timings.total or 0) / 1000 if connect is not None else 0.0,
        raw={"results": [r.to_json() for r in results]},
    )


async def run_client(
    kind: ClientKind,
    url: str,
    *,
    environ: Mapping[str, str],
    transports: Sequence[Transport] = DEFAULT_ORDER,
    api_key_env: str | None = None,
    ca: Path | None = None,
    origin: str | None = None,
    hold_s: float = 0.0,
    emit_size: int | None = None,
    inscribe: bool = False,
    connect_timeout_s: float = 5.0,
    ack_timeout_s: float = 5.0,
) -> ClientOutcome:
    """Point one real client of ``kind`` at ``url`` (http(s)://host:port) and say what it did."""
    order = tuple(Transport(t) for t in transports)
    if kind is ClientKind.SDK:
        if origin is not None or hold_s or emit_size is not None:
            raise ValueError("the SDK replay takes no origin, hold or payload")
        return await _sdk(
            url, transports=order, api_key_env=api_key_env, environ=environ, ca=ca, inscribe=inscribe
        )
    flags = _harness_flags(
        order, api_key_env, ca, origin, hold_s, emit_size, inscribe, connect_timeout_s, ack_timeout_s
    )
    if kind is ClientKind.SOCKETIO_CLIENT:
        argv = [node(), str(await ensure_instruments() / "sioclient.mjs"), url, *flags]
    else:
        argv = [sys.executable, str(PYCLIENT), url, *flags]
    deadline_s = connect_timeout_s + hold_s + 2 * ack_timeout_s + DEADLINE_MARGIN_S
    done = await run_bounded(argv, env=dict(environ), timeout_s=deadline_s)
    raw = _last_json(done.stdout)
    if raw is None:
        why = "killed at our deadline" if done.timed_out else f"exit {done.returncode}: {done.stderr_tail()}"
        raw = {"connected": False, "harness_failure": f"no harness output ({why})"}
    return _from_harness(kind, order, raw)
