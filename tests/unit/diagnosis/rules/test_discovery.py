"""The discovery rule: the servers list points clients at trouble (or it does not)."""

from __future__ import annotations

from kiloscribe_lab.diagnosis.rules.auth import auth_rejected
from kiloscribe_lab.diagnosis.rules.discovery import discovery_problem
from kiloscribe_lab.names import Outcome, ProbeName, Severity
from tests.unit.diagnosis.helpers import API, A, B, failing, fire, pr, quiet, working

# discovery-problem


def test_discovery_problem_when_the_call_fails() -> None:
    results = [
        pr(ProbeName.DISCOVERY, "", API, "upstream_error", 502, error="HTTP/1.1 502 Bad Gateway"),
        *working(A),
    ]
    f = fire(discovery_problem, results)
    assert f.severity is Severity.WARNING
    assert f.targets == (API,)
    assert "the discovery call failed: HTTP/1.1 502 Bad Gateway" in f.summary


def test_discovery_problem_lists_the_documents_problems() -> None:
    results = [
        pr(ProbeName.DISCOVERY, "", API, "ok", 200, problems=["no server has status 'active'"], chosen=None),
        *working(A),
    ]
    f = fire(discovery_problem, results)
    assert "no server has status 'active'" in f.summary


def test_discovery_problem_when_the_chosen_server_is_down() -> None:
    results = [
        pr(ProbeName.DISCOVERY, "", API, "ok", 200, problems=[], chosen=B),
        *working(A),
        *failing(B, Outcome.UPSTREAM_ERROR, 502),
    ]
    f = fire(discovery_problem, results)
    assert f"the server the SDK would choose ({B}) is down" in f.summary


def test_discovery_quiet_when_the_chosen_server_works() -> None:
    results = [
        pr(ProbeName.DISCOVERY, "", API, "ok", 200, problems=[], chosen=A),
        *working(A),
        *failing(B, "refused"),
    ]
    quiet(discovery_problem, results)


def test_discovery_refused_key_is_auth_rejected_not_a_discovery_problem() -> None:
    results = [pr(ProbeName.DISCOVERY, "", API, "auth_rejected", 401, error="Invalid API key"), *working(A)]
    quiet(discovery_problem, results)
    f = fire(auth_rejected, results)
    assert API in f.targets


def test_discovery_quiet_without_a_discovery_call() -> None:
    quiet(discovery_problem, working(A))
