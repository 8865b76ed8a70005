"""Auth rules: the configured key refused (critical), an invalid key refused (the path works)."""

from __future__ import annotations

from kiloscribe_lab.diagnosis import Verdict, diagnose, verdicts
from kiloscribe_lab.diagnosis.rules.auth import auth_path_healthy, auth_rejected
from kiloscribe_lab.names import FindingId, Outcome, ProbeName, Severity
from kiloscribe_lab.results import ProbeResult
from tests.unit.diagnosis.helpers import KEY_ENV, A, B, by_id, fire, ids, pr, quiet

# auth-rejected vs auth-path-healthy


def _auth(target: str, valid: Outcome) -> list[ProbeResult]:
    return [
        pr(
            ProbeName.SOCKETIO_CONNECT,
            "websocket:valid",
            target,
            valid,
            101,
            error="Invalid API key" if valid is Outcome.AUTH_REJECTED else None,
        ),
        pr(
            ProbeName.SOCKETIO_CONNECT,
            "websocket:invalid",
            target,
            "auth_rejected",
            101,
            error="Invalid API key",
        ),
        pr(
            ProbeName.SOCKETIO_CONNECT, "polling:none", target, "auth_rejected", 200, error="API key required"
        ),
        pr(ProbeName.ENGINEIO_HANDSHAKE, "", target, "ok", 200),
    ]


def test_auth_rejected_when_the_configured_key_is_refused() -> None:
    results = _auth(A, Outcome.AUTH_REJECTED) + _auth(B, Outcome.AUTH_REJECTED)
    f = fire(auth_rejected, results)
    assert f.severity is Severity.CRITICAL
    assert f"${KEY_ENV}" in f.title
    assert "'Invalid API key'" in f.summary and "2 target(s)" in f.summary
    assert set(f.targets) == {A, B}
    found = ids(diagnose(results, KEY_ENV))
    assert FindingId.AUTH_REJECTED in found
    # the invalid key was refused too, but "the auth path is healthy" would mislead
    fire(auth_path_healthy, results)
    assert FindingId.AUTH_PATH_HEALTHY not in found
    assert {v.verdict for v in verdicts(results)} == {Verdict.DOWN}


def test_auth_rejected_without_a_key_name_says_the_configured_key() -> None:
    f = fire(auth_rejected, _auth(A, Outcome.AUTH_REJECTED), key_env=None)
    assert "the configured key" in f.title
    assert "$" not in f.title


def test_auth_path_healthy_when_only_the_invalid_key_is_refused() -> None:
    results = _auth(A, Outcome.OK)
    quiet(auth_rejected, results)
    f = fire(auth_path_healthy, results)
    assert f.severity is Severity.INFO
    assert "'Invalid API key'" in f.summary
    assert f.evidence == (f"socketio_connect:websocket:invalid@{A}#direct",)
    found = by_id(diagnose(results, KEY_ENV))
    assert found[FindingId.AUTH_PATH_HEALTHY].severity is Severity.INFO
    assert [v.verdict for v in verdicts(results)] == [Verdict.HEALTHY]


def test_auth_path_healthy_quiet_when_no_invalid_key_was_refused() -> None:
    results = [pr(ProbeName.SOCKETIO_CONNECT, "websocket:invalid", A, "upstream_error", 502)]
    quiet(auth_path_healthy, results)
