"""The hostile servers of the table (test_hostile_table.py), by name, for one server process.

Each entry is a behaviour (``hostile.Conn`` -> the answer of a broken, careless or malicious
server) or a refusal message for the real python-socketio (``hostile.refusing_socketio``). They
live here, not in the test, so ``python -m tests.integration.hostile NAME...`` can serve them all
from one process of its own: the servers' CPU (a 400 MB body, a flood of 100 Continue, a 5 MB
refusal encoded seven times) is not the probes' GIL, and a probe's deadline is its own.
"""

from __future__ import annotations

import contextlib
import functools
import json
import random
import time
import urllib.parse
import zlib
from collections.abc import Callable
from typing import Any

from tests.integration.hostile import (
    OPEN_PACKET,
    Conn,
    response,
    server_frame,
    stream_body,
    switching,
    trickle,
)

TIMEOUT_S = 2.0  # the probes' --timeout: a silent server outlasts it
# A key with the characters that escape differently in JSON and in URLs.
KEY = 'hk-"quote\\slash/plus+0123456789abcdefXYZ'

NOT_FOUND = response("404 Not Found", b"nope", "Content-Type: text/plain")


def everything(answer: bytes) -> Callable[[Conn], None]:
    return lambda conn: conn.send(answer)


def on_upgrade(upgraded: Callable[[Conn], None], otherwise: bytes = NOT_FOUND) -> Callable[[Conn], None]:
    """``upgraded`` for a WebSocket request, ``otherwise`` (a 404 by default) for the rest."""

    def behave(conn: Conn) -> None:
        if conn.upgrade:
            upgraded(conn)
        else:
            conn.send(otherwise)

    return behave


def garbage(seed: int | None) -> Callable[[Conn], None]:
    def behave(conn: Conn) -> None:
        rng = random.Random(seed)  # None: different bytes on every connection
        conn.send(bytes(rng.getrandbits(8) for _ in range(4096)))

    return behave


def silent(conn: Conn) -> None:
    time.sleep(TIMEOUT_S + 1)


def reset_mid_head(conn: Conn) -> None:
    conn.send(b"HTTP/1.1 200 OK\r\nContent-Le")
    conn.reset()


def reset_mid_body(conn: Conn) -> None:
    conn.send(b'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 1000\r\n\r\n0{"sid"')
    time.sleep(0.05)
    conn.reset()


def close_mid_body(conn: Conn) -> None:
    conn.send(b'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 1000\r\n\r\n0{"sid"')


def trickled(conn: Conn) -> None:
    trickle(conn, response("200 OK", OPEN_PACKET.encode(), "Content-Type: text/plain"), 0.2)


def endless_informational(conn: Conn) -> None:
    """1xx answers and never the real one: ten times what a client may accept, then nothing
    (a flood as fast as loopback goes would measure the machine, not the bound)."""
    conn.send(b"HTTP/1.1 100 Continue\r\n\r\n" * 100)
    time.sleep(TIMEOUT_S + 1)


def endless_chunks(conn: Conn) -> None:
    """A chunked body that never ends: twice the probes' limit, then nothing more."""
    conn.send(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n")
    with contextlib.suppress(OSError):
        conn.send((b"4000\r\n" + b"4" * 0x4000 + b"\r\n") * 128)
        time.sleep(TIMEOUT_S + 1)


def huge_body(size: int) -> Callable[[Conn], None]:
    def behave(conn: Conn) -> None:
        with contextlib.suppress(OSError):
            stream_body(conn, size)

    return behave


@functools.cache
def _bomb(size: int) -> bytes:
    """gzip of ``size`` zero bytes: about a thousandth of it on the wire."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)  # 31: a gzip header and trailer
    block = bytes(1 << 20)
    return b"".join(packer.compress(block) for _ in range(size >> 20)) + packer.flush()


def gzip_bomb(size: int) -> Callable[[Conn], None]:
    def behave(conn: Conn) -> None:
        body = _bomb(size)
        headers = ("Content-Type: text/plain; charset=UTF-8", "Content-Encoding: gzip")
        with contextlib.suppress(OSError):
            conn.send(response("200 OK", body, *headers))

    return behave


def many_headers(conn: Conn) -> None:
    conn.send(b"HTTP/1.1 200 OK\r\n" + b"".join(b"X-%d: y\r\n" % i for i in range(5000)) + b"\r\n")


def redirect_chain(conn: Conn) -> None:
    step = int(conn.path.rsplit("/r", 1)[-1]) if "/r" in conn.path else 0
    conn.send(response("302 Found", b"", f"Location: /r{step + 1}"))


def frames_after_101(*frames: bytes, then_s: float = 1.0) -> Callable[[Conn], None]:
    def upgraded(conn: Conn) -> None:
        conn.send(switching(conn) + b"".join(frames))
        time.sleep(then_s)

    return on_upgrade(upgraded)


def upgrade_everything(conn: Conn) -> None:
    conn.send(switching(conn) if conn.header("sec-websocket-key") else switching(conn, "x"))
    time.sleep(0.5)


def engineio_open(body: bytes) -> Callable[[Conn], None]:
    """An Engine.IO polling answer of our choosing; 404 to everything else."""

    def behave(conn: Conn) -> None:
        if "transport=polling" in conn.path and conn.method == "GET" and "sid=" not in conn.path:
            conn.send(response("200 OK", body, "Content-Type: text/plain; charset=UTF-8"))
        else:
            conn.send(NOT_FOUND)

    return behave


def reflecting(where: str) -> Callable[[Conn], None]:
    """Echo what the client sent (its x-api-key, its request) back, as a careless server does."""

    def behave(conn: Conn) -> None:
        forms_of_key = [KEY, json.dumps(KEY)[1:-1], urllib.parse.quote(KEY, safe="")]
        echoed = " ".join(forms_of_key).encode()
        if where == "body":
            conn.send(
                response("403 Forbidden", b"A" * 230 + echoed + b" " + conn.head, "Content-Type: text/plain")
            )
        elif where == "headers":
            conn.send(response("403 Forbidden", b"no", b"Server: " + echoed, b"Via: 1.1 " + echoed))
        else:  # a Location quoting it
            location = "/login?key=" + urllib.parse.quote(KEY, safe="")
            conn.send(response("302 Found", b"", f"Location: {location}"))

    return behave


Behaviour = Callable[[Conn], None]

BEHAVIOURS: dict[str, Behaviour] = {
    "closes-at-once": lambda conn: None,
    "resets-at-once": lambda conn: conn.reset(),
    "silent": silent,
    "trickles": trickled,
    "not-http": everything(b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n"),
    "garbage": garbage(7),
    "garbage-every-time-different": garbage(None),
    "reset-mid-head": reset_mid_head,
    "reset-mid-body": reset_mid_body,
    "closes-mid-body": close_mid_body,
    "oversized-header": everything(b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * 200_000 + b"\r\n\r\n"),
    "five-thousand-headers": many_headers,
    "status-9999": everything(b"HTTP/1.1 9999 Odd\r\nContent-Length: 0\r\n\r\n"),
    "bad-content-length": everything(b"HTTP/1.1 200 OK\r\nContent-Length: lots\r\n\r\nx"),
    "bad-chunking": everything(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nxx\r\n0\r\n\r\n"),
    "endless-100-continue": endless_informational,
    "endless-chunked-body": endless_chunks,
    "body-200-mb": huge_body(200 << 20),
    "body-400-mb": huge_body(400 << 20),
    "gzip-bomb-200-mb": gzip_bomb(200 << 20),
    "wrong-accept": on_upgrade(lambda conn: conn.send(switching(conn, "d3Jvbmc="))),
    "101-then-garbage-frames": frames_after_101(b"\x8f\xff" + bytes(range(64))),
    "101-then-a-2-TiB-frame": frames_after_101(b"\x81\x7f" + (1 << 41).to_bytes(8, "big")),
    "101-then-silence": frames_after_101(then_s=TIMEOUT_S + 1),
    "101-then-close": frames_after_101(server_frame(0x8, (1000).to_bytes(2, "big"))),
    "101-then-invalid-utf8": frames_after_101(server_frame(0x1, b"\xff\xfe\xfd")),
    "101-to-everything": upgrade_everything,
    "redirect-loop": everything(response("302 Found", b"", "Location: /loop")),
    "redirect-cross-origin": everything(
        response("302 Found", b"", "Location: http://127.0.0.2:9/socket.io/")
    ),
    "redirect-javascript": everything(response("302 Found", b"", "Location: javascript:alert(1)")),
    "redirect-chain-of-twenty": redirect_chain,
    "server-cafe-latin-1": everything(response("404 Not Found", b"x", b"Server: Caf\xe9")),
    "escapes-in-headers": everything(
        response("403 Forbidden", b"\x1b[31mred\x9b31m", b"Server: \x1b]0;pwned\x07", b"Via: 1.1 \x85\x9b2J")
    ),
    "html-catch-all": everything(response("200 OK", b"<html>hi</html>", "Content-Type: text/html")),
    "open-packet-broken-json": engineio_open(b'0{"sid":'),
    "open-packet-wrong-types": engineio_open(
        b'0{"sid":1,"upgrades":"no","pingInterval":"x","pingTimeout":[],"maxPayload":{}}'
    ),
    "key-reflected-in-body": reflecting("body"),
    "key-reflected-in-headers": reflecting("headers"),
    "key-reflected-in-a-location": reflecting("location"),
}

# Work a behaviour does once, before the servers say they are ready: no probe waits for it.
PREPARE: dict[str, Callable[[], object]] = {"gzip-bomb-200-mb": lambda: _bomb(200 << 20)}

# The real python-socketio, refusing every client with message(auth).
REFUSALS: dict[str, Callable[[Any], str]] = {
    "refusal-5-mb": lambda auth: "x" * (5 << 20),
    "refusal-600-kb": lambda auth: "y" * (600 << 10),
    "refusal-with-escapes": lambda auth: "\x1b[2J\x1b]0;owned\x07 Invalid \x9b31m key \u202eyek",
    "refusal-quoting-the-key": lambda auth: f"Invalid API key {auth!r} {json.dumps(auth)}",
}
