"""Expected behaviour: a plain WebSocket at the URL as given, a redirect at / (info, not faults)."""

from __future__ import annotations

import pytest

from kiloscribe_lab.diagnosis import Verdict, diagnose, verdicts
from kiloscribe_lab.diagnosis.rules.expected import plain_websocket_protocol_mismatch, root_redirect
from kiloscribe_lab.names import FindingId, Outcome, ProbeName, Severity
from tests.unit.diagnosis.helpers import A, failing, fire, ids, pr, quiet, working

# plain-websocket-protocol-mismatch


def test_plain_websocket_mismatch_when_socketio_works() -> None:
    results = [pr(ProbeName.WEBSOCKET_PLAIN, "as-given", A, "http_error", 400), *working(A)]
    f = fire(plain_websocket_protocol_mismatch, results)
    assert f.severity is Severity.INFO
    assert f.targets == (A,)
    assert "400" in f.summary
    assert f"websocket_plain:as-given@{A}#direct" in f.evidence


def test_plain_websocket_mismatch_quiet_when_socketio_fails_too() -> None:
    results = [
        pr(ProbeName.WEBSOCKET_PLAIN, "as-given", A, "upstream_error", 502),
        *failing(A, Outcome.UPSTREAM_ERROR, 502),
    ]
    quiet(plain_websocket_protocol_mismatch, results)


def test_plain_websocket_mismatch_quiet_when_plain_websocket_works() -> None:
    results = [pr(ProbeName.WEBSOCKET_PLAIN, "as-given", A, "ok", 101), *working(A)]
    quiet(plain_websocket_protocol_mismatch, results)


# root-redirect


def test_root_redirect_is_info_and_names_the_location() -> None:
    results = [
        pr(ProbeName.HTTP_UPGRADE, "http1.1", A, "redirect", 308, headers={"location": "/api/health"}),
        *working(A),
    ]
    f = fire(root_redirect, results)
    assert f.severity is Severity.INFO
    assert "308" in f.title
    assert "/api/health" in f.summary
    assert FindingId.ROOT_REDIRECT in ids(diagnose(results))
    assert [v.verdict for v in verdicts(results)] == [Verdict.HEALTHY]


@pytest.mark.parametrize(
    ("probe", "variant", "outcome"),
    [
        (ProbeName.WEBSOCKET_PLAIN, "socket.io", "redirect"),  # the socket path redirecting is another story
        (ProbeName.HTTP_UPGRADE, "http1.1", "upstream_error"),
        (ProbeName.ENGINEIO_HANDSHAKE, "", "redirect"),
    ],
)
def test_root_redirect_quiet(probe: str, variant: str, outcome: str) -> None:
    quiet(root_redirect, [pr(probe, variant, A, outcome, 308)])
