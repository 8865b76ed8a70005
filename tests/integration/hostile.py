"""Hostile servers on loopback: one listener per behaviour, a thread per connection.

A behaviour is a function of the connection and the request head it sent; it answers as a
broken, careless or malicious server would (garbage, a reset, an endless body, a 101 that is
no WebSocket, a reflected key...). ``hostile_server`` starts one and yields its URL; the
listener and every connection it accepted are closed when the block ends.

``refusing_socketio`` is the other kind: the real python-socketio server (aiohttp), whose
connect handler refuses every client with a message chosen by the test (5 MB long, with
ESC/C1 bytes, or quoting the key the client sent).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

READ_HEAD_S = 2.0
# A loaded machine (2 cores, the suite and other work at once) wakes a timer late; the 10 % of a
# 2 s deadline is less than one such delay, so a deadline's bar is 10 % or this, whichever is more.
SCHEDULER_SLACK_S = 0.5


@dataclass
class Conn:
    """One accepted connection and the request head read from it (empty if none came)."""

    sock: socket.socket
    head: bytes = b""
    rest: bytes = b""  # bytes read past the head (a body, WebSocket frames)

    @property
    def request_line(self) -> str:
        return self.head.split(b"\r\n", 1)[0].decode("latin-1")

    @property
    def path(self) -> str:
        parts = self.request_line.split(" ")
        return parts[1] if len(parts) > 1 else ""

    @property
    def method(self) -> str:
        return self.request_line.split(" ", 1)[0]

    def header(self, name: str) -> str | None:
        wanted = name.lower().encode()
        for line in self.head.split(b"\r\n")[1:]:
            key, _, value = line.partition(b":")
            if key.strip().lower() == wanted:
                return value.strip().decode("latin-1")
        return None

    @property
    def upgrade(self) -> bool:
        return (self.header("upgrade") or "").lower() == "websocket"

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def reset(self) -> None:
        """Close with a TCP RST (SO_LINGER 0), not a FIN."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()

    def read_more(self, timeout_s: float = 1.0) -> bytes:
        """What the client sends next (a WebSocket frame, a POST body), or b"" by ``timeout_s``."""
        self.sock.settimeout(timeout_s)
        try:
            return self.sock.recv(65536)
        except OSError:
            return b""


Behaviour = Callable[[Conn], None]


def _read_head(sock: socket.socket) -> tuple[bytes, bytes]:
    sock.settimeout(READ_HEAD_S)
    buf = b""
    try:
        while b"\r\n\r\n" not in buf and len(buf) < 65536:
            chunk = sock.recv(65536)
            if not chunk:
                break
            buf += chunk
    except OSError:
        pass
    head, _, rest = buf.partition(b"\r\n\r\n")
    return head, rest


@dataclass
class _Listener:
    behaviour: Behaviour
    server: socket.socket = field(default_factory=lambda: socket.create_server(("127.0.0.1", 0), backlog=256))
    stop: threading.Event = field(default_factory=threading.Event)
    conns: list[socket.socket] = field(default_factory=list)

    def serve(self) -> None:
        self.server.settimeout(0.05)
        while not self.stop.is_set():
            try:
                sock, _ = self.server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.conns.append(sock)
            threading.Thread(target=self._handle, args=(sock,), daemon=True).start()

    def _handle(self, sock: socket.socket) -> None:
        with contextlib.suppress(OSError):
            head, rest = _read_head(sock)
            sock.settimeout(30)
            self.behaviour(Conn(sock, head, rest))
        with contextlib.suppress(OSError):
            sock.close()


@contextlib.contextmanager
def hostile_server(behaviour: Behaviour) -> Iterator[str]:
    """Yield ``http://127.0.0.1:PORT``, where every connection meets ``behaviour``."""
    listener = _Listener(behaviour)
    thread = threading.Thread(target=listener.serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.server.getsockname()[1]}"
    finally:
        listener.stop.set()
        thread.join(2)
        listener.server.close()
        for sock in listener.conns:
            with contextlib.suppress(OSError):
                sock.close()


# --- building blocks ------------------------------------------------------------------------


def response(status: str, body: bytes = b"", *headers: str | bytes, length: bool = True) -> bytes:
    lines: list[bytes] = [f"HTTP/1.1 {status}".encode()]
    lines += [h if isinstance(h, bytes) else h.encode("latin-1") for h in headers]
    if length:
        lines.append(f"Content-Length: {len(body)}".encode())
    lines.append(b"Connection: close")
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def server_frame(opcode: int, payload: bytes, *, fin: bool = True) -> bytes:
    """An unmasked (server) WebSocket frame."""
    head = bytes([(0x80 if fin else 0) | opcode])
    n = len(payload)
    if n < 126:
        head += bytes([n])
    elif n < 1 << 16:
        head += bytes([126]) + n.to_bytes(2, "big")
    else:
        head += bytes([127]) + n.to_bytes(8, "big")
    return head + payload


def accept_for(conn: Conn) -> str:
    import base64
    import hashlib

    key = conn.header("sec-websocket-key") or ""
    digest = hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()
    return base64.b64encode(digest).decode()


def switching(conn: Conn, accept: str | None = None) -> bytes:
    return (
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Accept: {accept if accept is not None else accept_for(conn)}\r\n\r\n"
    ).encode()


def stream_body(conn: Conn, total: int, chunk: int = 1 << 20) -> None:
    """A 200 whose Content-Length says ``total`` bytes, sent as fast as the client reads."""
    conn.send(response("200 OK", b"", "Content-Type: text/plain; charset=UTF-8", length=False)[:-4])
    conn.send(f"\r\nContent-Length: {total}\r\n\r\n".encode())
    block = b"4" * chunk
    sent = 0
    while sent < total:
        piece = block[: min(chunk, total - sent)]
        conn.send(piece)
        sent += len(piece)


def trickle(conn: Conn, data: bytes, every_s: float) -> None:
    for i in range(len(data)):
        conn.send(data[i : i + 1])
        time.sleep(every_s)


OPEN_PACKET = (
    '0{"sid":"hostile-sid","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,'
    '"maxPayload":1000000}'
)


# --- the real python-socketio, refusing ------------------------------------------------------


@contextlib.contextmanager
def refusing_socketio(message: Callable[[Any], str]) -> Iterator[str]:
    """python-socketio (aiohttp) on loopback whose connect handler refuses every client with
    ``message(auth)``: the Socket.IO refusal (CONNECT_ERROR) carries whatever the test says."""
    import socketio
    from aiohttp import web

    ready = threading.Event()
    holder: dict[str, Any] = {}

    # Its complaint about our Engine.IO v3 check (or a client gone mid-answer) is the server's
    # business, not the test's output.
    for name in ("engineio.server", "socketio.server", "aiohttp.server"):
        logging.getLogger(name).setLevel(logging.CRITICAL)

    async def main() -> None:
        sio = socketio.AsyncServer(async_mode="aiohttp", max_http_buffer_size=16 << 20)

        @sio.event  # type: ignore[untyped-decorator]
        async def connect(sid: str, environ: dict[str, Any], auth: Any) -> None:
            raise socketio.exceptions.ConnectionRefusedError(message(auth))

        app = web.Application()
        sio.attach(app)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        holder["port"] = runner.addresses[0][1]
        holder["stop"] = asyncio.Event()
        holder["loop"] = asyncio.get_running_loop()
        ready.set()
        await holder["stop"].wait()
        await runner.cleanup()

    thread = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
    thread.start()
    if not ready.wait(10):
        raise RuntimeError("python-socketio did not start")
    try:
        yield f"http://127.0.0.1:{holder['port']}"
    finally:
        holder["loop"].call_soon_threadsafe(holder["stop"].set)
        thread.join(5)


# --- the CLI in-process, several at once -------------------------------------------------------


class _PerThread(io.TextIOBase):
    """sys.stdout/sys.stderr while CLI runs share the process: each thread that registered a
    stream writes to its own; any other thread to the stream that was there before."""

    def __init__(self, fallback: Any) -> None:
        self.fallback = fallback
        self.local = threading.local()

    def _target(self) -> Any:
        return getattr(self.local, "stream", None) or self.fallback

    def write(self, text: str) -> int:
        return int(self._target().write(text))

    def flush(self) -> None:
        self._target().flush()

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        raise io.UnsupportedOperation("an in-memory stream")


@dataclass(frozen=True)
class CliRun:
    code: int
    seconds: float
    stdout: bytes  # as written through a strict UTF-8 stream: a bad byte would have raised
    stderr: str


@contextlib.contextmanager
def per_thread_streams() -> Iterator[None]:
    import sys

    out, err = _PerThread(sys.stdout), _PerThread(sys.stderr)
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = out, err
    try:
        yield
    finally:
        sys.stdout, sys.stderr = saved


def run_cli(argv: list[str]) -> CliRun:
    """``kiloscribe-lab ARGV`` in this process and thread (inside ``per_thread_streams``), its
    stdout a strict UTF-8 stream, as a terminal or a pipe with a UTF-8 locale would be."""
    import sys

    from kiloscribe_lab import cli

    raw = io.BytesIO()
    out = io.TextIOWrapper(raw, encoding="utf-8", errors="strict", newline="\n")
    err = io.StringIO()
    streams = (sys.stdout, sys.stderr)
    for stream, target in zip(streams, (out, err), strict=True):
        if isinstance(stream, _PerThread):
            stream.local.stream = target
    began = time.monotonic()
    try:
        code = cli.main(argv)
    finally:
        seconds = time.monotonic() - began
        for stream in streams:
            if isinstance(stream, _PerThread):
                stream.local.stream = None
    out.flush()
    return CliRun(code, seconds, raw.getvalue(), err.getvalue())


# --- many behaviours, one process of their own ------------------------------------------------


def _serve(names: list[str]) -> None:
    """Serve each named behaviour (hostile_behaviours) on a listener of its own; print their
    URLs as one JSON line; stop when stdin closes (the parent ended, whatever the reason)."""
    import json
    import sys

    from tests.integration.hostile_behaviours import BEHAVIOURS, PREPARE, REFUSALS

    for name in names:
        if name in PREPARE:
            PREPARE[name]()
    with contextlib.ExitStack() as stack:
        urls = {
            name: stack.enter_context(
                hostile_server(BEHAVIOURS[name]) if name in BEHAVIOURS else refusing_socketio(REFUSALS[name])
            )
            for name in names
        }
        print(json.dumps(urls), flush=True)
        sys.stdin.read()


@contextlib.contextmanager
def hostile_process(names: list[str], start_s: float = 30.0) -> Iterator[dict[str, str]]:
    """Yield {name: URL} of the named behaviours, served by one child process: what they cost
    in CPU (a 400 MB body, a flood of 100 Continue) is not charged to the probes' GIL."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.integration.hostile", *names],
        cwd=root,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        out = child.stdout
        lines: list[str] = []
        if out is not None:  # always, with stdout=PIPE
            reader = threading.Thread(target=lambda: lines.append(out.readline()), daemon=True)
            reader.start()
            reader.join(start_s)
        if not lines or not lines[0]:
            raise RuntimeError(f"the hostile servers did not start within {start_s:g} s")
        yield json.loads(lines[0])
    finally:
        with contextlib.suppress(OSError):
            if child.stdin is not None:
                child.stdin.close()
        try:
            child.wait(2)  # a server still holding a hostile connection open would wait out its own
        except subprocess.TimeoutExpired:  # grace (10 s): nothing here needs a clean exit
            child.kill()
            child.wait()


if __name__ == "__main__":
    import sys

    _serve(sys.argv[1:])
