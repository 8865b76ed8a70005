"""Edge rules: a CDN's bot challenge, and 429s, in the service's place (FACTS.md §3.9)."""

from __future__ import annotations

from kiloscribe_lab.diagnosis import diagnose
from kiloscribe_lab.diagnosis.rules.edge import cdn_challenge, rate_limited
from kiloscribe_lab.names import FindingId, Outcome, ProbeName, Severity, Transport
from kiloscribe_lab.results import ProbeResult
from tests.unit.diagnosis import facts
from tests.unit.diagnosis.helpers import EDGE, LB, A, fire, pr, quiet, working, ws_blocked

# cdn-challenge


def _challenged(target: str, headers: dict[str, str]) -> list[ProbeResult]:
    """Every Socket.IO request answered 403 with the challenge page (polling and WebSocket)."""
    page = facts.CHALLENGE_PAGE
    return [
        facts.plain_ws(target, Outcome.BLOCKED, 403, page, headers),
        pr(
            ProbeName.ENGINEIO_UPGRADE,
            "",
            target,
            Outcome.HTTP_ERROR,
            403,
            headers=headers,
            body=page,
            polling="HTTP/1.1 403 Forbidden",
        ),
        facts.handshake(
            target,
            Outcome.PROTOCOL_MISMATCH,
            403,
            page,
            headers,
            not_engineio="HTTP 403, HTML page 'Just a moment...'",
        ),
        *facts.connects(target, Transport.WEBSOCKET, Outcome.BLOCKED, 403, headers),
        *facts.connects(target, Transport.POLLING, Outcome.HTTP_ERROR, 403, headers),
        *facts.sticky(target, Outcome.PROTOCOL_MISMATCH, answers=[], headers=headers),
    ]


def test_cdn_challenge_on_polling_and_websocket() -> None:
    results = _challenged(EDGE, facts.CHALLENGE)
    f = fire(cdn_challenge, results)
    assert f.severity is Severity.CRITICAL
    assert "cf-mitigated: challenge" in f.summary and "8f1e2d3c4b5a6978-AMS" in f.summary
    assert 'starts_with(http.request.uri.path, "/socket.io/")' in f.recommendation
    assert "looks like Cloudflare" in f.recommendation
    # the challenge page is the edge speaking: not "not Socket.IO", not a proxy refusing WebSocket
    assert [x.id for x in diagnose(results) if x.severity is not Severity.INFO] == [FindingId.CDN_CHALLENGE]


def test_cdn_challenge_from_a_stand_in_that_names_nginx() -> None:
    """The FACTS stand-in is nginx answering as Cloudflare would: the challenge is still the edge's."""
    f = fire(cdn_challenge, _challenged(EDGE, {**facts.CHALLENGE, **facts.NGINX}))
    assert "looks like Cloudflare" in f.recommendation


def test_cdn_challenge_quiet_for_a_plain_403() -> None:
    quiet(cdn_challenge, ws_blocked(EDGE, headers=facts.CLOUDFLARE))
    quiet(cdn_challenge, working(A))


# rate-limited


def test_rate_limited_counts_429s_and_names_retry_after() -> None:
    """nginx limit_req (burst 2, nodelay, status 429, Retry-After 1): part of the requests refused."""
    page = facts.nginx_page(429, "Too Many Requests")
    answers = [
        {"status": 200, "backend": None, "session_unknown": False},
        {"status": 429, "backend": None, "session_unknown": False, "retry_after": "1"},
        {"status": 429, "backend": None, "session_unknown": False, "retry_after": "1"},
    ]
    results = [
        *working(LB, headers=facts.NGINX),
        facts.handshake(LB, Outcome.HTTP_ERROR, 429, page, {**facts.NGINX, "retry-after": "1"}),
        *facts.sticky(LB, Outcome.HTTP_ERROR, answers=answers, headers=facts.NGINX),
    ]
    f = fire(rate_limited, results)
    assert f.severity is Severity.WARNING
    assert "Retry-After: 1 s" in f.summary
    assert "5 of " in f.summary  # the handshake and two follow-ups in each sticky variant
    assert "limit_req" in f.recommendation and "looks like nginx" in f.recommendation
    assert "an nginx error page" in f.recommendation
    # no lost sessions, no refused WebSocket: a 429 is only a 429
    assert [x.id for x in diagnose(results) if x.severity is not Severity.INFO] == [FindingId.RATE_LIMITED]


def test_rate_limited_counts_websocket_handshakes_too() -> None:
    results = [
        facts.plain_ws(A, Outcome.BLOCKED, 429, facts.nginx_page(429, "Too Many Requests"), facts.NGINX)
    ]
    assert "1 of 1" in fire(rate_limited, results).summary


def test_rate_limited_quiet_without_429s() -> None:
    quiet(rate_limited, working(A) + facts.sticky(A, Outcome.SESSION_UNKNOWN, lost=3))
