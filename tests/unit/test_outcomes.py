"""What an answer means: HTTP statuses and Engine.IO answers -> Outcome (kiloscribe_lab.outcomes).

Bodies are the ones real servers send: engine.io 6 (socket.io 4.8) answers JSON objects, python-
engineio JSON strings; an engine.io WebSocket upgrade it aborts gets its message as plain text.
"""

from __future__ import annotations

import pytest

from kiloscribe_lab import protocol
from kiloscribe_lab.names import Outcome
from kiloscribe_lab.outcomes import Refusal, handshake_outcome, outcome_for_status, refusal, upgrade_refusal

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (101, Outcome.OK),
        (200, Outcome.OK),
        (204, Outcome.OK),
        (299, Outcome.OK),
        (301, Outcome.REDIRECT),
        (308, Outcome.REDIRECT),
        (399, Outcome.REDIRECT),
        (400, Outcome.HTTP_ERROR),
        (401, Outcome.HTTP_ERROR),
        (403, Outcome.HTTP_ERROR),
        (404, Outcome.HTTP_ERROR),
        (426, Outcome.HTTP_ERROR),
        (500, Outcome.HTTP_ERROR),
        (501, Outcome.HTTP_ERROR),
        (502, Outcome.UPSTREAM_ERROR),
        (503, Outcome.UPSTREAM_ERROR),
        (504, Outcome.UPSTREAM_ERROR),
        (505, Outcome.HTTP_ERROR),
    ],
)
def test_outcome_for_status(status: int, outcome: Outcome) -> None:
    assert outcome_for_status(status) is outcome


NODE_SESSION_UNKNOWN = b'{"code":1,"message":"Session ID unknown"}'
NODE_BAD_REQUEST = b'{"code":3,"message":"Bad request"}'
NODE_TRANSPORT_UNKNOWN = b'{"code":0,"message":"Transport unknown"}'
NODE_FORBIDDEN = b'{"code":4,"message":"Forbidden"}'
NODE_UNSUPPORTED = b'{"code":5,"message":"Unsupported protocol version"}'
PY_SESSION_UNKNOWN = b'"Invalid session 7Bq0"'
PY_BAD_UPGRADE = b'"Invalid websocket upgrade"'
PY_UNSUPPORTED = b'"The client is using an unsupported version of the Socket.IO or Engine.IO protocols"'
HTML = b"<html><head><title>Welcome</title></head></html>"


@pytest.mark.parametrize(
    ("status", "body", "on_engineio_path", "elsewhere"),
    [
        # the session is unknown where the upgrade landed, in either server's words
        (400, NODE_SESSION_UNKNOWN, Outcome.SESSION_UNKNOWN, Outcome.SESSION_UNKNOWN),
        (400, PY_SESSION_UNKNOWN, Outcome.SESSION_UNKNOWN, Outcome.SESSION_UNKNOWN),
        # a protocol version the server refuses
        (400, NODE_UNSUPPORTED, Outcome.PROTOCOL_MISMATCH, Outcome.PROTOCOL_MISMATCH),
        (400, PY_UNSUPPORTED, Outcome.PROTOCOL_MISMATCH, Outcome.PROTOCOL_MISMATCH),
        # code 3 on an upgrade: the Upgrade headers did not reach the server
        (400, NODE_BAD_REQUEST, Outcome.BLOCKED, Outcome.HTTP_ERROR),
        (400, PY_BAD_UPGRADE, Outcome.BLOCKED, Outcome.HTTP_ERROR),
        # other Engine.IO refusals, and anything else refusing a Socket.IO path, block it
        (400, NODE_TRANSPORT_UNKNOWN, Outcome.BLOCKED, Outcome.HTTP_ERROR),
        (403, NODE_FORBIDDEN, Outcome.BLOCKED, Outcome.HTTP_ERROR),
        (403, b"", Outcome.BLOCKED, Outcome.HTTP_ERROR),  # python-engineio's unknown-sid upgrade, a proxy
        (400, b"Session ID unknown", Outcome.BLOCKED, Outcome.HTTP_ERROR),  # engine.io's aborted upgrade
        (404, HTML, Outcome.BLOCKED, Outcome.HTTP_ERROR),
        # the Upgrade headers were ignored: no WebSocket, never ok (issue 13: it read ok: true)
        (200, HTML, Outcome.BLOCKED, Outcome.PROTOCOL_MISMATCH),
        # statuses that say something of their own
        (308, b"", Outcome.REDIRECT, Outcome.REDIRECT),
        (502, b"Bad Gateway", Outcome.UPSTREAM_ERROR, Outcome.UPSTREAM_ERROR),
        (504, NODE_BAD_REQUEST, Outcome.UPSTREAM_ERROR, Outcome.UPSTREAM_ERROR),
        (500, b"", Outcome.BLOCKED, Outcome.HTTP_ERROR),
    ],
)
def test_upgrade_refusal(status: int, body: bytes, on_engineio_path: Outcome, elsewhere: Outcome) -> None:
    assert upgrade_refusal(status, body, engineio_path=True) is on_engineio_path
    assert upgrade_refusal(status, body, engineio_path=False) is elsewhere
    assert upgrade_refusal(status, body.decode("utf-8"), engineio_path=True) is on_engineio_path


V4_OPEN = (
    b'0{"sid":"a","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}'
)
V3_OPEN = b'0{"sid":"a","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":60000}'


@pytest.mark.parametrize(
    ("status", "body", "outcome", "error"),
    [
        (200, V4_OPEN, Outcome.OK, None),
        (200, b"%d:%s2:40" % (len(V3_OPEN), V3_OPEN), Outcome.PROTOCOL_MISMATCH, "Engine.IO v3 framing"),
        (400, NODE_SESSION_UNKNOWN, Outcome.SESSION_UNKNOWN, "Session ID unknown"),
        (400, PY_SESSION_UNKNOWN, Outcome.SESSION_UNKNOWN, "Invalid session 7Bq0"),
        (400, NODE_UNSUPPORTED, Outcome.PROTOCOL_MISMATCH, "Unsupported protocol version"),
        (400, PY_UNSUPPORTED, Outcome.PROTOCOL_MISMATCH, "unsupported version"),
        (400, NODE_TRANSPORT_UNKNOWN, Outcome.HTTP_ERROR, "Transport unknown"),
        (400, b'"Invalid transport"', Outcome.HTTP_ERROR, "Invalid transport"),
        (403, NODE_FORBIDDEN, Outcome.HTTP_ERROR, "Forbidden"),
        (200, b"OK", Outcome.PROTOCOL_MISMATCH, "not Engine.IO: HTTP 200, text 'OK'"),
        (200, HTML, Outcome.PROTOCOL_MISMATCH, "not Engine.IO: HTTP 200, HTML page 'Welcome'"),
        (404, b"Not Found", Outcome.PROTOCOL_MISMATCH, "not Engine.IO: HTTP 404"),
        (502, b"Bad Gateway", Outcome.UPSTREAM_ERROR, "HTTP 502, text 'Bad Gateway'"),
        (301, b"", Outcome.REDIRECT, "HTTP 301, empty body"),
    ],
)
def test_handshake_outcome(status: int, body: bytes, outcome: Outcome, error: str | None) -> None:
    result = protocol.classify_handshake(status, body)
    got_outcome, got_error = handshake_outcome(result, status)
    assert got_outcome is outcome
    if error is None:
        assert got_error is None
    else:
        assert got_error is not None and error in got_error


def test_a_429_handshake_is_a_refusal_not_a_stranger() -> None:
    page = b"<html>\r\n<head><title>429 Too Many Requests</title></head>\r\n</html>\r\n"
    outcome, error = handshake_outcome(protocol.classify_handshake(429, page, "text/html"), 429)
    assert outcome is Outcome.HTTP_ERROR and error is not None and error.startswith("rate-limited")


PY_ORIGIN = b'"https://evil.example is not an accepted origin."'
CHALLENGE_HEADERS = {"cf-mitigated": "challenge", "cf-ray": "8f-AMS"}


@pytest.mark.parametrize(
    ("status", "body", "headers", "websocket", "sid_bound", "why"),
    [
        # a WebSocket request answered as a plain GET (FACTS.md §3.1), in each server's words
        (400, NODE_BAD_REQUEST, {}, True, False, Refusal.HEADERS_DROPPED),
        (400, PY_BAD_UPGRADE, {}, True, False, Refusal.HEADERS_DROPPED),
        (400, NODE_BAD_REQUEST, {}, True, True, Refusal.HEADERS_DROPPED),  # engine.io: TRANSPORT_MISMATCH
        (200, HTML, {}, True, False, Refusal.HEADERS_DROPPED),  # a page instead of 101
        # the server's transports (FACTS.md §3.3)
        (400, NODE_TRANSPORT_UNKNOWN, {}, True, False, Refusal.TRANSPORT_DISABLED),
        (400, NODE_TRANSPORT_UNKNOWN, {}, False, False, Refusal.TRANSPORT_DISABLED),
        (400, b'"Invalid transport"', {}, False, False, Refusal.TRANSPORT_DISABLED),
        (400, b'"Invalid transport"', {}, True, False, Refusal.TRANSPORT_DISABLED),
        # python-engineio says "Invalid transport" to an upgrade of a known session without Upgrade too
        (400, b'"Invalid transport"', {}, True, True, Refusal.OTHER),
        # an edge's (FACTS.md §3.9), an origin check (§3.5)
        (403, b"<title>Just a moment...</title>", CHALLENGE_HEADERS, True, False, Refusal.CHALLENGE),
        (403, b"<title>Just a moment...</title>", CHALLENGE_HEADERS, False, False, Refusal.CHALLENGE),
        (429, b"", {"retry-after": "1"}, False, False, Refusal.RATE_LIMITED),
        (429, b"", {}, True, False, Refusal.RATE_LIMITED),
        (400, PY_ORIGIN, {}, False, False, Refusal.ORIGIN_REFUSED),
        # refused, by whom the answer does not say
        (403, b"", {}, True, False, Refusal.OTHER),
        (403, b"WebSocket connections are disabled for this zone", {}, True, False, Refusal.OTHER),
        (400, b"Bad request", {}, True, False, Refusal.OTHER),  # engine.io's raw abort: it saw the upgrade
        # not refusals
        (101, b"", {}, True, False, None),
        (200, V4_OPEN, {}, False, False, None),
        (400, NODE_SESSION_UNKNOWN, {}, False, False, None),
        (403, b"", {}, False, False, None),
        (None, b"", {}, True, False, None),
    ],
)
def test_refusal(
    status: int | None,
    body: bytes,
    headers: dict[str, str],
    websocket: bool,
    sid_bound: bool,
    why: Refusal | None,
) -> None:
    assert refusal(status, body, headers, websocket=websocket, sid_bound=sid_bound) is why
