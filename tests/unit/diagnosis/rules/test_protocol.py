"""Protocol rules: not Socket.IO at all, or not Engine.IO v4."""

from __future__ import annotations

from typing import Any

import pytest

from kiloscribe_lab.diagnosis import diagnose
from kiloscribe_lab.diagnosis.rules.protocol import engineio_version_mismatch, not_socketio
from kiloscribe_lab.names import FindingId, Outcome, ProbeName, Severity
from tests.unit.diagnosis.helpers import A, B, failing, fire, ids, pr, quiet

# not-socketio


def test_not_socketio_when_the_handshake_is_something_else_and_nothing_connects() -> None:
    results = [
        pr(
            ProbeName.ENGINEIO_HANDSHAKE,
            "",
            A,
            "protocol_mismatch",
            200,
            not_engineio="an HTML page (text/html)",
        ),
        pr(ProbeName.SOCKETIO_CONNECT, "polling:valid", A, "protocol_mismatch", 200),
        pr(ProbeName.SOCKETIO_CONNECT, "websocket:valid", A, "http_error", 404),
    ]
    f = fire(not_socketio, results)
    assert f.severity is Severity.CRITICAL
    assert f.targets == (A,)
    assert "an HTML page (text/html)" in f.summary


def test_not_socketio_quiet_when_socketio_connects_anyway() -> None:
    results = [
        pr(ProbeName.ENGINEIO_HANDSHAKE, "", A, "protocol_mismatch", 200, not_engineio="an HTML page"),
        pr(ProbeName.SOCKETIO_CONNECT, "websocket:valid", A, "ok", 101),
    ]
    quiet(not_socketio, results)


def test_not_socketio_quiet_for_a_502_without_engineio_body() -> None:
    """A dead backend's empty 502 is backend-down, not 'this is not Socket.IO'."""
    results = failing(B, Outcome.UPSTREAM_ERROR, 502, not_engineio="HTTP 502, empty body")
    quiet(not_socketio, results)
    assert FindingId.NOT_SOCKETIO not in ids(diagnose(results))


# engineio-version-mismatch


@pytest.mark.parametrize(
    "detail",
    [
        {"engineio_version": 3},
        {"engineio_error": {"code": 5, "message": "Unsupported protocol version"}},
    ],
)
def test_engineio_version_mismatch_fires(detail: dict[str, Any]) -> None:
    results = [pr(ProbeName.ENGINEIO_HANDSHAKE, "", A, "protocol_mismatch", 400, **detail)]
    f = fire(engineio_version_mismatch, results)
    assert f.severity is Severity.CRITICAL
    assert f.targets == (A,)


@pytest.mark.parametrize(
    ("probe", "detail"),
    [
        (ProbeName.ENGINEIO_HANDSHAKE, {"engineio_version": 4}),
        (ProbeName.ENGINEIO_HANDSHAKE, {"engineio_error": {"code": 1, "message": "Session ID unknown"}}),
        (ProbeName.ENGINEIO_HANDSHAKE, {}),
        (ProbeName.SOCKETIO_CONNECT, {"engineio_version": 3}),  # only the handshake probe tells
    ],
)
def test_engineio_version_mismatch_quiet(probe: str, detail: dict[str, Any]) -> None:
    results = [pr(probe, "", A, "ok", 200, **detail)]
    quiet(engineio_version_mismatch, results)
