"""Lifetime rules (``--deep``): sessions held past their heartbeat, the largest message that
passes. Hold/payload details are the shapes probes/hold.py and probes/payload.py record (the
lab fixtures hold real ones: tests/unit/diagnosis/test_verdicts.py diagnoses those)."""

from __future__ import annotations

from typing import Any

from kiloscribe_lab.diagnosis import diagnose
from kiloscribe_lab.diagnosis.rules.lifetime import heartbeat_late, idle_timeout, payload_too_large
from kiloscribe_lab.names import FindingId, Outcome, ProbeName, SessionEnd, Severity, Transport
from kiloscribe_lab.results import ProbeResult
from kiloscribe_lab.settings import DEFAULT_FILE_SIZE, inscription_message_bytes
from tests.unit.diagnosis.helpers import A, B, fire, pr, quiet, working

CAP = inscription_message_bytes(DEFAULT_FILE_SIZE)
HAPROXY_504 = (
    "<html><body><h1>504 Gateway Time-out</h1>\nThe server didn't respond in time.\n</body></html>\n"
)
NGINX_413 = (
    "<html>\r\n<head><title>413 Request Entity Too Large</title></head>\r\n<body>\r\n<center><h1>413 "
    "Request Entity Too Large</h1></center>\r\n<hr><center>nginx/1.22.1</center>\r\n</body>\r\n</html>\r\n"
)


def hold(
    target: str,
    transport: Transport,
    end: dict[str, Any],
    *,
    pings: list[dict[str, float]] | None = None,
    interval_ms: int = 4000,
    outcome: Outcome = Outcome.OK,
    status: int | None = None,
    **detail: Any,
) -> ProbeResult:
    return pr(
        ProbeName.HOLD,
        transport,
        target,
        outcome,
        status if status is not None else (101 if transport is Transport.WEBSOCKET else 200),
        transport=str(transport),
        pingInterval=interval_ms,
        pingTimeout=20000,
        planned_s=interval_ms / 1000 + 0.5,
        pings=pings or [],
        end=end,
        lived_s=end.get("at_s"),
        **detail,
    )


def held(
    target: str, transport: Transport, *, late_ms: float = -40.0, interval_ms: int = 4000
) -> ProbeResult:
    at = interval_ms / 1000
    return hold(
        target,
        transport,
        {"how": SessionEnd.HELD, "at_s": at + 0.1},
        pings=[{"at_s": at + late_ms / 1000, "late_ms": late_ms}],
        interval_ms=interval_ms,
    )


def cut_by_haproxy(target: str) -> list[ProbeResult]:
    """proxy-idle-timeout's lb: HAProxy timeout tunnel/server 2s, backends beating every 4 s."""
    return [
        hold(
            target,
            Transport.WEBSOCKET,
            {"how": SessionEnd.CONNECTION_CLOSED, "at_s": 2.5, "idle_s": 1.96},
            outcome=Outcome.RESET,
        ),
        hold(
            target,
            Transport.POLLING,
            {"how": SessionEnd.POLL_FAILED, "at_s": 2.59, "idle_s": 2.04, "status": 504, "method": "GET",
             "body": HAPROXY_504},
            outcome=Outcome.UPSTREAM_ERROR,
            status=504,
            body=HAPROXY_504,
            status_line="HTTP/1.1 504 Gateway Time-out",
        ),
    ]  # fmt: skip


def payload(
    target: str, transport: Transport, passed: int | None, failed: int | None, **detail: Any
) -> ProbeResult:
    return pr(
        ProbeName.PAYLOAD,
        transport,
        target,
        Outcome.OK,
        200,
        transport=str(transport),
        file_size=DEFAULT_FILE_SIZE,
        cap=CAP,
        largest_passed=passed,
        smallest_failed=failed,
        exact=passed is not None and failed == passed + 1,
        file_passes=failed is None,
        **detail,
    )


# --- idle-timeout ---------------------------------------------------------------------------


def test_idle_timeout_fires_critical_when_every_held_session_is_cut_before_its_heartbeat() -> None:
    f = fire(idle_timeout, [*working(A), *cut_by_haproxy(A)])
    assert f.severity is Severity.CRITICAL
    assert "die after 2 s of idle, before the server's 4 s heartbeat" in f.title
    assert "closed without a CLOSE frame (1006)" in f.summary and "long-polls answered 504" in f.summary
    assert "No session to" in f.summary


def test_idle_timeout_is_a_warning_when_another_transport_outlives_the_wait() -> None:
    results = [*working(A), cut_by_haproxy(A)[0], held(A, Transport.POLLING)]
    f = fire(idle_timeout, results)
    assert f.severity is Severity.WARNING
    assert "only some paths or transports cut" in f.summary


def test_idle_timeout_quiet_on_sessions_held_past_their_heartbeat() -> None:
    quiet(idle_timeout, [*working(A), held(A, Transport.WEBSOCKET), held(A, Transport.POLLING)])
    quiet(idle_timeout, working(A))  # no --deep: nothing said


def test_idle_timeout_quiet_after_a_heartbeat_or_when_the_session_was_busy() -> None:
    """A session that saw its PING was not cut before the heartbeat; one dropped 0.1 s after
    traffic was not idle (the server closed it for another reason)."""
    after_ping = hold(
        A,
        Transport.WEBSOCKET,
        {"how": SessionEnd.CONNECTION_CLOSED, "at_s": 4.4, "idle_s": 0.4},
        pings=[{"at_s": 4.0, "late_ms": 0.0}],
    )
    busy = hold(B, Transport.WEBSOCKET, {"how": SessionEnd.RESET, "at_s": 1.0, "idle_s": 0.1})
    quiet(idle_timeout, [*working(A), *working(B), after_ping, busy])


# --- heartbeat-late -------------------------------------------------------------------------


def test_heartbeat_late_fires_on_pings_well_after_ping_interval() -> None:
    results = [*working(A), held(A, Transport.WEBSOCKET, late_ms=1800, interval_ms=1000)]
    f = fire(heartbeat_late, results)
    assert f.severity is Severity.WARNING
    assert "up to 1.8 s late" in f.title and "pingInterval 1 s" in f.summary


def test_heartbeat_late_fires_when_no_ping_came_long_after_it_was_due() -> None:
    silent = hold(
        A, Transport.POLLING, {"how": SessionEnd.HELD, "at_s": 3.0}, interval_ms=1000, overdue_ms=2000
    )
    f = fire(heartbeat_late, [*working(A), silent])
    assert "never came" in f.summary


def test_heartbeat_late_quiet_on_time_or_slightly_late_and_for_a_cut_session() -> None:
    results = [
        *working(A),
        held(A, Transport.WEBSOCKET, late_ms=120),  # scheduling noise, below 0.5 s
        held(A, Transport.POLLING, late_ms=-40),
        *cut_by_haproxy(B),  # cut: idle-timeout's evidence, not a late heartbeat
    ]
    quiet(heartbeat_late, results)


# --- payload-too-large ----------------------------------------------------------------------


def test_payload_too_large_critical_when_no_transport_passes_an_inscription() -> None:
    results = [
        *working(A),
        payload(A, Transport.WEBSOCKET, 65536, 65537,
                failure={"how": SessionEnd.CLOSE_FRAME, "code": 1009, "reason": "Max payload size exceeded"}),
        payload(A, Transport.POLLING, 65536, 65537, failure={"how": SessionEnd.POST_FAILED, "status": 413}),
    ]  # fmt: skip
    f = fire(payload_too_large, results)
    assert f.severity is Severity.CRITICAL
    assert "Messages above 65536 bytes close the connection" in f.title
    assert "files above 47 KiB cannot be inscribed" in f.title
    assert "a CLOSE frame, code 1009" in f.summary and "the POST answered 413" in f.summary


def test_payload_too_large_names_nginx_when_its_own_413_refused_the_post() -> None:
    results = [
        *working(A),
        payload(A, Transport.WEBSOCKET, CAP, None),
        payload(
            A,
            Transport.POLLING,
            65536,
            65537,
            failure={"how": SessionEnd.POST_FAILED, "status": 413, "method": "POST", "body": NGINX_413},
            body=NGINX_413,
            status_line="HTTP/1.1 413 Request Entity Too Large",
        ),
    ]
    f = fire(payload_too_large, results)
    assert f.severity is Severity.WARNING  # WebSocket passes the file
    assert "nginx refuses them before the server sees them" in f.summary
    assert "over polling" in f.title


def test_payload_too_large_quiet_when_the_cap_passes_or_nothing_was_tried() -> None:
    quiet(payload_too_large, [*working(A), payload(A, Transport.WEBSOCKET, CAP, None)])
    quiet(payload_too_large, [*working(A), payload(A, Transport.POLLING, CAP, None)])
    quiet(payload_too_large, working(A))


def test_a_healthy_deep_run_has_no_lifetime_finding() -> None:
    results = [
        *working(A),
        held(A, Transport.WEBSOCKET),
        held(A, Transport.POLLING),
        payload(A, Transport.WEBSOCKET, CAP, None),
        payload(A, Transport.POLLING, CAP, None),
    ]
    lifetime = {FindingId.IDLE_TIMEOUT, FindingId.HEARTBEAT_LATE, FindingId.PAYLOAD_TOO_LARGE}
    assert not {f.id for f in diagnose(results)} & lifetime


def test_heartbeat_late_subtracts_what_our_own_busy_event_loop_explains() -> None:
    """A PING 0.9 s late read by a process whose loop was 0.7 s late itself: 0.2 s is the server's."""
    busy = held(A, Transport.WEBSOCKET, late_ms=900, interval_ms=1000)
    busy.detail["loop_lag_ms"] = 700.0
    quiet(heartbeat_late, [*working(A), busy])
    busy.detail["loop_lag_ms"] = 100.0
    assert "up to 0.8 s late" in fire(heartbeat_late, [*working(A), busy]).title
