"""Tiny loopback servers for hostile-case tests (and the bench's silent case): one accepting
thread each, a handler per connection, everything closed when the block ends."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable, Iterator


@contextlib.contextmanager
def _listening(handle: Callable[[socket.socket], None], backlog: int = 128) -> Iterator[int]:
    """Yield the port of a loopback listener that hands each accepted connection to ``handle``
    (on the accepting thread); the connections ``handle`` keeps open are its own business."""
    server = socket.create_server(("127.0.0.1", 0), backlog=backlog)
    stop = threading.Event()

    def loop() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            handle(conn)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        stop.set()
        thread.join(2)
        server.close()


@contextlib.contextmanager
def canned_server(answer: bytes) -> Iterator[str]:
    """Yield ``http://127.0.0.1:PORT``; every connection gets ``answer`` and is closed."""

    def answer_once(conn: socket.socket) -> None:
        with conn:
            conn.settimeout(1)
            try:
                conn.recv(65536)
                conn.sendall(answer)
            except OSError:
                pass

    with _listening(answer_once) as port:
        yield f"http://127.0.0.1:{port}"


@contextlib.contextmanager
def silent_server() -> Iterator[int]:
    """Yield the port of a listener that accepts TCP connections, then reads nothing and answers
    nothing until the block ends."""
    held: list[socket.socket] = []
    try:
        with _listening(held.append, backlog=512) as port:
            yield port
    finally:
        for conn in held:
            conn.close()


def http_answer(status: str, body: bytes, *headers: str) -> bytes:
    head = [f"HTTP/1.1 {status}", *headers, f"Content-Length: {len(body)}", "Connection: close", "", ""]
    return "\r\n".join(head).encode() + body
