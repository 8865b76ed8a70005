"""A real python-socketio client pointed at a target; prints one JSON line of what happened.

    python pyclient.py URL [--transports websocket,polling] [--api-key-env NAME] [--ca PEM]
        [--origin ORIGIN] [--path socket.io] [--hold-s N] [--emit-size BYTES] [--inscribe]
        [--namespace-check] [--connect-timeout-s S] [--ack-timeout-s S]

Run with the project venv (/work/main/.venv/bin/python): python-socketio 5.18, python-engineio 4.x.
Reconnection is off, so the first outcome is the one a test compares with the ground truth.
The whole run is bounded by our own deadline (connect + hold + acks + 2 s): python-socketio's
polling connect can wait far past its wait_timeout (see kiloscribe-contract.md). Exit 0 when it
connected, 1 when it did not, 2 on usage.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import threading
import time
from importlib.metadata import version
from typing import Any

import requests
import socketio

# An event no application handles: a size probe that never creates a job.
PAYLOAD_EVENT = "kiloscribe-lab-payload"
CHECK_NAMESPACE = "/kiloscribe-lab-check"
T0 = time.monotonic()


def now() -> float:
    return round(time.monotonic() - T0, 3)


class _Collect(logging.Handler):
    """The libraries' warnings and errors: they carry what the exceptions leave out."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{now()} {record.name}: {record.getMessage()}"[:400])


def inscription_request() -> dict[str, Any]:
    """A start-inscription request the mock contract accepts."""
    return {
        "holderId": "0.0.12345",
        "mode": "file",
        "network": "testnet",
        "onlyJSONCollection": 0,
        "creator": "kiloscribe-lab",
        "description": "real-client check",
        "fileStandard": "1",
        "metadataObject": {},
        "file": {"type": "url", "url": "https://example.invalid/lab.txt"},
    }


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="python-socketio real-client harness")
    p.add_argument("url")
    p.add_argument("--transports", default="websocket,polling")
    p.add_argument("--api-key-env")
    p.add_argument("--ca")
    p.add_argument("--origin")
    p.add_argument("--path", default="socket.io")
    p.add_argument("--hold-s", type=float, default=0.0)
    p.add_argument("--emit-size", type=int)
    p.add_argument("--inscribe", action="store_true")
    p.add_argument("--namespace-check", action="store_true")
    p.add_argument("--connect-timeout-s", type=float, default=10.0)
    p.add_argument("--ack-timeout-s", type=float, default=10.0)
    return p.parse_args(argv)


class Harness:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.logs = _Collect()
        for name in ("socketio.client", "engineio.client"):
            logging.getLogger(name).addHandler(self.logs)
        session = requests.Session()
        if args.ca:
            # python-engineio hands a string `verify` to websocket-client as its ca_certs, but its polling
            # requests pass verify=True explicitly, which requests resolves through REQUESTS_CA_BUNDLE.
            session.verify = args.ca
            os.environ["REQUESTS_CA_BUNDLE"] = args.ca
        self.sio = socketio.Client(
            reconnection=False,
            http_session=session,
            logger=logging.getLogger("socketio.client"),
            engineio_logger=logging.getLogger("engineio.client"),
        )
        self.result: dict[str, Any] = {
            "client": "python-socketio",
            "version": version("python-socketio"),
            "engineio_version": version("python-engineio"),
            "url": args.url,
            "transports": args.transports.split(","),
            "connected": False,
            "connect_error": None,
            "transport": None,
            "pings": [],
            "disconnect": None,
        }
        self.disconnected = threading.Event()
        self.check_answer: list[dict[str, Any]] = []
        self.check_event = threading.Event()
        self._watch_pings()
        self._register()

    def _watch_pings(self) -> None:
        # The client answers pings inside engineio; wrap its packet handler to time their arrival.
        eio = self.sio.eio
        original = eio._receive_packet

        def receive(pkt: Any) -> None:
            if pkt.packet_type == 2:  # engine.io PING
                self.result["pings"].append(now())
            original(pkt)

        eio._receive_packet = receive

    def _register(self) -> None:
        sio, result = self.sio, self.result

        @sio.event  # type: ignore[untyped-decorator]
        def connect() -> None:
            result["connected_at_s"] = now()

        @sio.event  # type: ignore[untyped-decorator]
        def connect_error(data: Any) -> None:
            result["connect_error"] = {"at_s": now(), "data": data}

        @sio.event  # type: ignore[untyped-decorator]
        def disconnect(reason: Any = None) -> None:
            result["disconnect"] = {"reason": str(reason), "at_s": now()}
            self.disconnected.set()

        def check_error(data: Any) -> None:
            self.check_answer.append({"at_s": now(), "answer": "connect_error", "data": data})
            self.check_event.set()

        def check_connect() -> None:
            self.check_answer.append({"at_s": now(), "answer": "connect"})
            self.check_event.set()

        sio.on("connect_error", check_error, namespace=CHECK_NAMESPACE)
        sio.on("connect", check_connect, namespace=CHECK_NAMESPACE)

    def namespace_check(self) -> dict[str, Any]:
        """CONNECT to a namespace that does not exist: the server refuses it without app code."""
        self.check_event.clear()
        self.check_answer.clear()
        # Raw Socket.IO CONNECT (`40/ns,` on the wire): python-socketio connects namespaces only at connect().
        self.sio.eio.send(f"0{CHECK_NAMESPACE},")
        if not self.check_event.wait(3.0):
            return {"at_s": now(), "answer": "none within 3 s"}
        return self.check_answer[0]

    def run(self) -> dict[str, Any]:
        args, sio, result = self.args, self.sio, self.result
        auth = {"apiKey": os.environ.get(args.api_key_env, "")} if args.api_key_env else {"apiKey": ""}
        headers = {"Origin": args.origin} if args.origin else {}
        try:
            sio.connect(
                args.url,
                headers=headers,
                auth=auth,
                transports=result["transports"],
                # Only "/": the check namespace has handlers, so connect() would also try it.
                namespaces=["/"],
                socketio_path=args.path,
                wait_timeout=args.connect_timeout_s,
            )
        except socketio.exceptions.ConnectionError as exc:
            result["connect_exception"] = f"{type(exc).__name__}: {exc}"
        result["connected"] = sio.connected
        if sio.connected:
            result["transport"] = sio.transport()
            if args.namespace_check:
                result["namespace_check"] = self.namespace_check()
            if args.emit_size is not None:
                sio.emit(PAYLOAD_EVENT, "x" * args.emit_size)
                result["emit"] = {"size": args.emit_size, "at_s": now()}
                result["namespace_check_after_emit"] = self.namespace_check()
            if args.inscribe:
                inscription: dict[str, Any] = {"sent_at_s": now()}
                try:
                    ack = sio.call("start-inscription", inscription_request(), timeout=args.ack_timeout_s)
                    keys = sorted(ack) if isinstance(ack, dict) else None
                    success = ack.get("success") if isinstance(ack, dict) else None
                    inscription["ack"] = {"at_s": now(), "success": success, "keys": keys}
                except socketio.exceptions.TimeoutError:
                    inscription["ack_error"] = {"at_s": now(), "message": "TimeoutError"}
                except socketio.exceptions.BadNamespaceError as exc:
                    inscription["ack_error"] = {"at_s": now(), "message": f"BadNamespaceError: {exc}"}
                result["inscription"] = inscription
            if args.hold_s > 0:
                self.disconnected.wait(args.hold_s)
            if sio.connected:
                result["transport_at_end"] = sio.transport()
        result["logs"] = self.logs.lines
        result["elapsed_s"] = now()
        return result


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    harness = Harness(args)
    # Acks are waited for only when asked for: a refused polling connect can hang (seen through
    # the lab's edge), and the harness must not wait out ack time it never needs.
    acks = 2 * args.ack_timeout_s if args.inscribe else 0.0
    deadline = args.connect_timeout_s + args.hold_s + acks + 2
    outcome: list[dict[str, Any]] = []

    def work() -> None:
        try:
            outcome.append(harness.run())
        except Exception as exc:  # a client library bug is a result here, not a crash
            outcome.append(
                {**harness.result, "exception": f"{type(exc).__name__}: {exc}", "elapsed_s": now()}
            )

    worker = threading.Thread(target=work, daemon=True)
    worker.start()
    worker.join(deadline)
    result = outcome[0] if outcome else {**harness.result, "harness_deadline_s": deadline, "elapsed_s": now()}
    result.setdefault("logs", harness.logs.lines)
    sys.stdout.write(json.dumps(result, default=str) + "\n")
    sys.stdout.flush()
    # os._exit: python-socketio's background threads may still be waiting on a dead socket.
    os._exit(0 if result["connected"] else 1)


if __name__ == "__main__":
    main(sys.argv[1:])
