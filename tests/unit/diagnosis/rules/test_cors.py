"""CORS rule: what a browser page on --origin would be allowed (FACTS.md §3.5)."""

from __future__ import annotations

from kiloscribe_lab.diagnosis import diagnose
from kiloscribe_lab.diagnosis.rules.cors import cors_origin_rejected
from kiloscribe_lab.names import CorsCheck, FindingId, Outcome, Severity
from kiloscribe_lab.results import ProbeResult
from tests.unit.diagnosis import facts
from tests.unit.diagnosis.helpers import A, fire, quiet, working

EVIL = "https://evil.example"
APP = "https://app.kiloscribe.test"


def _python(target: str) -> list[ProbeResult]:
    """python-socketio cors_allowed_origins=[APP], probed as a page on EVIL."""
    why = f"the server refuses the origin: {facts.PY_ORIGIN_REFUSED}"
    return [
        *working(target, headers=facts.UVICORN),
        facts.handshake(target, Outcome.OK, 200, facts.PY_OPEN, facts.UVICORN, engineio_version=4),
        facts.cors(target, CorsCheck.POLLING, Outcome.BLOCKED, 400, body=facts.PY_ORIGIN_REFUSED, why=why),
        facts.cors(target, CorsCheck.PREFLIGHT, Outcome.BLOCKED, 400, body=facts.PY_ORIGIN_REFUSED, why=why),
        facts.cors(target, CorsCheck.WEBSOCKET, Outcome.BLOCKED, 403, why="403 to the WebSocket handshake"),
    ]


def test_cors_python_socketio_refuses_polling_and_websocket() -> None:
    f = fire(cors_origin_rejected, _python(A))
    assert f.severity is Severity.CRITICAL
    assert "not an accepted origin" in f.summary and "no browser client on it connects" in f.summary
    assert f"cors_allowed_origins=['{EVIL}'])" in f.recommendation
    assert "looks like python-engineio" in f.recommendation
    assert [x.id for x in diagnose(_python(A)) if x.severity is not Severity.INFO] == [
        FindingId.CORS_ORIGIN_REJECTED
    ]


def test_cors_socketio_string_origin_names_the_allowed_one() -> None:
    """socket.io cors:{origin:"https://app..."}: 200 with ACAO the allowed origin, WebSocket 101."""
    why = f"Access-Control-Allow-Origin: {APP}, not {EVIL}"
    results = [
        *working(A),
        facts.handshake(A, Outcome.OK, 200, facts.NODE_OPEN, engineio_version=4),
        facts.cors(A, CorsCheck.POLLING, Outcome.BLOCKED, 200, allow_origin=APP, why=why),
        facts.cors(A, CorsCheck.PREFLIGHT, Outcome.BLOCKED, 204, allow_origin=APP, why=why),
        facts.cors(A, CorsCheck.WEBSOCKET, Outcome.OK, 101, allow_origin=APP),
    ]
    f = fire(cors_origin_rejected, results)
    assert f.severity is Severity.WARNING  # WebSocket-first clients connect: browsers apply no CORS there
    assert f"The server allows {APP}." in f.summary
    assert f"origin: ['{APP}', '{EVIL}']" in f.recommendation and "looks like engine.io" in f.recommendation


def test_cors_socketio_origin_list_sends_no_acao() -> None:
    why = "no Access-Control-Allow-Origin in the answer"
    results = [
        *working(A),
        facts.cors(A, CorsCheck.POLLING, Outcome.BLOCKED, 200, why=why),
        facts.cors(A, CorsCheck.WEBSOCKET, Outcome.OK, 101),
    ]
    f = fire(cors_origin_rejected, results)
    assert "xhr poll error" in f.summary and why in f.summary


def test_cors_quiet_when_the_origin_is_allowed() -> None:
    results = [
        *working(A),
        facts.cors(A, CorsCheck.POLLING, Outcome.OK, 200, origin=APP, allow_origin=APP),
        facts.cors(A, CorsCheck.PREFLIGHT, Outcome.OK, 204, origin=APP, allow_origin=APP),
        facts.cors(A, CorsCheck.WEBSOCKET, Outcome.OK, 101, origin=APP),
    ]
    quiet(cors_origin_rejected, results)


def test_cors_quiet_without_origin_and_for_a_websocket_refused_anyway() -> None:
    """No --origin: nothing claimed. A 403 WebSocket that a WebSocket without Origin gets too is
    the path's refusal, not the origin's."""
    quiet(cors_origin_rejected, working(A))
    blocked = [
        facts.plain_ws(A, Outcome.BLOCKED, 403),
        facts.cors(A, CorsCheck.WEBSOCKET, Outcome.BLOCKED, 403),
    ]
    quiet(cors_origin_rejected, blocked)
