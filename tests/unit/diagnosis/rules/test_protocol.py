"""Protocol rules: not Socket.IO at all, or not Engine.IO v4."""

from __future__ import annotations

from typing import Any

import pytest

from kiloscribe_lab.diagnosis import diagnose
from kiloscribe_lab.diagnosis.rules.protocol import (
    engineio_version_mismatch,
    malformed_handshake,
    not_socketio,
    redirect_loop,
)
from kiloscribe_lab.names import (
    FindingId,
    Outcome,
    PlainPath,
    ProbeName,
    RedirectRefusal,
    Severity,
    Transport,
)
from kiloscribe_lab.results import ProbeResult, Timings, replace
from tests.unit.diagnosis import facts
from tests.unit.diagnosis.helpers import A, B, failing, fire, ids, pr, quiet, working

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


def test_not_socketio_quiet_about_another_path_when_the_101_was_malformed() -> None:
    """A 101 with a wrong Sec-WebSocket-Accept is no WebSocket upgrade that succeeded."""
    results = [
        facts.handshake(A, Outcome.PROTOCOL_MISMATCH, 404, "nope", not_engineio="HTTP 404, text 'nope'"),
        pr(ProbeName.WEBSOCKET_PLAIN, PlainPath.AS_GIVEN, A, Outcome.MALFORMED, 101, url=A),
    ]
    assert "another path" not in fire(not_socketio, results).summary


# malformed-handshake

BROKEN = "malformed HTTP/1.1 response: the answer is not HTTP (it starts with b'SSH-2.0-OpenSSH_')"


def test_malformed_handshake_is_critical_when_nothing_connects() -> None:
    results = [replace(r, error=BROKEN) for r in failing(A, Outcome.MALFORMED)]
    f = fire(malformed_handshake, results)
    assert f.severity is Severity.CRITICAL and f.targets == (A,)
    assert BROKEN in f.summary and "No Socket.IO client can connect" in f.summary
    assert FindingId.MALFORMED_HANDSHAKE in ids(diagnose(results))


def test_malformed_handshake_is_a_warning_when_another_transport_connects() -> None:
    results = [
        pr(
            ProbeName.SOCKETIO_CONNECT,
            "websocket:valid",
            A,
            Outcome.MALFORMED,
            101,
            error="101 with a bad accept",
        ),
        pr(ProbeName.SOCKETIO_CONNECT, "polling:valid", A, Outcome.OK, 200),
    ]
    assert fire(malformed_handshake, results).severity is Severity.WARNING


def test_malformed_handshake_is_critical_when_only_engineio_works_and_every_connect_fails() -> None:
    """An OPEN packet is no use when every CONNECT's answer is over the limit."""
    results = [
        pr(ProbeName.ENGINEIO_HANDSHAKE, "", A, Outcome.OK, 200, engineio_version=4),
        pr(ProbeName.SOCKETIO_CONNECT, "polling:valid", A, Outcome.MALFORMED, 200, error="too large"),
    ]
    assert fire(malformed_handshake, results).severity is Severity.CRITICAL


def test_malformed_handshake_quiet_without_a_malformed_answer() -> None:
    quiet(malformed_handshake, working(A))
    quiet(malformed_handshake, failing(A, Outcome.UPSTREAM_ERROR, 502))


# redirect-loop


def test_redirect_loop_names_the_kind_and_the_location_and_drops_root_redirect() -> None:
    redirected = [
        pr(
            p,
            v,
            A,
            Outcome.REDIRECT,
            302,
            headers={"location": "/loop"},
            redirect_refused=RedirectRefusal.LOOP,
        )
        for p, v in (
            (ProbeName.SOCKETIO_CONNECT, "polling:valid"),
            (ProbeName.SOCKETIO_CONNECT, "websocket:valid"),
        )
    ]
    root = pr(ProbeName.HTTP_UPGRADE, "http1.1", A, Outcome.REDIRECT, 302, headers={"location": "/loop"})
    f = fire(redirect_loop, [*redirected, root])
    assert f.severity is Severity.CRITICAL and "in a loop" in f.summary and "/loop" in f.summary
    found = ids(diagnose([*redirected, root]))
    assert FindingId.REDIRECT_LOOP in found and FindingId.ROOT_REDIRECT not in found


def test_redirect_loop_says_another_origin_from_the_recorded_hops() -> None:
    hop = {"url": A + "/socket.io/", "status": 301, "location": "https://elsewhere.example/socket.io/"}
    results = [
        pr(
            ProbeName.SOCKETIO_CONNECT,
            "polling:valid",
            A,
            Outcome.REDIRECT,
            301,
            redirects=[hop],
            redirect_refused=RedirectRefusal.CROSS_ORIGIN,
        )
    ]
    f = fire(redirect_loop, results)
    assert "another origin" in f.summary and "elsewhere.example" in f.summary


def test_redirect_loop_quiet_when_only_the_root_redirects() -> None:
    root = pr(
        ProbeName.HTTP_UPGRADE, "http1.1", A, Outcome.REDIRECT, 308, headers={"location": "/api/health"}
    )
    quiet(redirect_loop, [*working(A), root])
