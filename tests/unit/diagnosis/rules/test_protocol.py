"""Protocol rules: not Socket.IO at all, or not Engine.IO v4."""

from __future__ import annotations

from typing import Any

import pytest

from kiloscribe_lab.diagnosis import diagnose
from kiloscribe_lab.diagnosis.rules.protocol import engineio_version_mismatch, not_socketio
from kiloscribe_lab.names import FindingId, Outcome, PlainPath, ProbeName, Severity, Transport
from kiloscribe_lab.results import ProbeResult, Timings, replace
from tests.unit.diagnosis import facts
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


# not-socketio: a plain WebSocket server, a server at another path (FACTS.md §3.6, §3.7)


def _plain_ws_server(target: str, first: str) -> list[ProbeResult]:
    """The ws library: 426 to plain HTTP, 101 to any upgrade, then no OPEN packet."""
    return [
        facts.plain_ws(target, Outcome.PROTOCOL_MISMATCH, 101, not_engineio=first),
        facts.handshake(
            target,
            Outcome.PROTOCOL_MISMATCH,
            426,
            facts.WS_426,
            not_engineio="HTTP 426, text 'Upgrade Required'",
        ),
        *facts.connects(target, Transport.WEBSOCKET, Outcome.PROTOCOL_MISMATCH, 101),
        *facts.connects(target, Transport.POLLING, Outcome.HTTP_ERROR, 426),
    ]


@pytest.mark.parametrize("first", ["101, then the text frame 'hello'", "101, then no frame within 2 s"])
def test_not_socketio_for_a_plain_websocket_server(first: str) -> None:
    f = fire(not_socketio, _plain_ws_server(A, first))
    assert f.severity is Severity.CRITICAL
    assert "a plain WebSocket server" in f.title
    assert first in f.summary and "426" in f.summary


def test_not_socketio_for_a_websocket_that_upgrades_without_an_open_packet_alone() -> None:
    """Whatever path it accepts: the OPEN packet is what makes a WebSocket Engine.IO's."""
    results = [
        facts.plain_ws(A, Outcome.PROTOCOL_MISMATCH, 101, not_engineio="101, then the text frame 'hi'")
    ]
    assert "plain WebSocket server" in fire(not_socketio, results).title


def test_not_socketio_says_a_server_may_be_at_another_path() -> None:
    results = [
        facts.handshake(
            A, Outcome.PROTOCOL_MISMATCH, 404, "Not Found", not_engineio="HTTP 404, text 'Not Found'"
        ),
        pr(
            ProbeName.WEBSOCKET_PLAIN,
            PlainPath.AS_GIVEN,
            A,
            Outcome.OK,
            101,
            url="http://127.0.0.1:1/ws/?EIO=4&transport=websocket",
        ),
        facts.plain_ws(A, Outcome.BLOCKED, 500),
        *facts.connects(A, Transport.POLLING, Outcome.HTTP_ERROR, 404),
    ]
    f = fire(not_socketio, results)
    assert "a Socket.IO server may be served at another path" in f.summary
    assert "path: '/ws/'" in f.recommendation


@pytest.mark.parametrize(
    ("outcome", "status", "total", "said"),
    [
        (Outcome.RESET, None, 1012.0, "closed without a byte after 1.0 s"),  # direct (FACTS.md §3.6)
        (Outcome.UPSTREAM_ERROR, 502, 1040.0, "answered 502 by the proxy after 1.0 s"),  # behind a balancer
    ],
)
def test_not_socketio_hints_at_engineios_one_second_hang_up(
    outcome: Outcome, status: int | None, total: float, said: str
) -> None:
    hang_up = replace(facts.plain_ws(A, outcome, status), timings=Timings(total=total))
    results = [
        facts.handshake(A, Outcome.PROTOCOL_MISMATCH, 404, "", not_engineio="HTTP 404, empty body"),
        hang_up,
    ]
    assert said in fire(not_socketio, results).summary
    # a dead upstream's 502 comes at once: no hint
    quick = replace(hang_up, timings=Timings(total=12.0))
    assert "another path" not in fire(not_socketio, [results[0], quick]).summary


def test_not_socketio_quiet_for_an_edges_challenge_or_429() -> None:
    """A challenge page or a 429 is the edge speaking, not proof that nothing Socket.IO is behind."""
    challenge = facts.handshake(
        A, Outcome.PROTOCOL_MISMATCH, 403, facts.CHALLENGE_PAGE, facts.CHALLENGE, not_engineio="HTML page"
    )
    quiet(not_socketio, [challenge])
    limited = facts.handshake(
        A, Outcome.HTTP_ERROR, 429, facts.nginx_page(429, "Too Many Requests"), facts.NGINX
    )
    quiet(not_socketio, [limited])
