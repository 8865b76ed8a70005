"""Availability rules: all backends down, one down, one stalled, DNS, TLS."""

from __future__ import annotations

import pytest

from kiloscribe_lab.diagnosis import Health, diagnose
from kiloscribe_lab.diagnosis.rules.availability import (
    all_backends_down,
    backend_down,
    backend_timeout,
    dns_problem,
    tls_problem,
)
from kiloscribe_lab.names import FindingId, Outcome, ProbeName, Severity
from kiloscribe_lab.results import ProbeResult
from tests.unit.diagnosis.helpers import API, LB, A, B, C, ev, failing, fire, ids, pr, quiet, working

# all-backends-down


def test_all_backends_down_fires_when_every_target_is_down() -> None:
    results = failing(A, Outcome.UPSTREAM_ERROR, 502) + failing(B, Outcome.REFUSED)
    f = fire(all_backends_down, results)
    assert f.severity is Severity.CRITICAL
    assert set(f.targets) == {A, B}
    assert "502" in f.summary
    assert ids(diagnose(results)) == [FindingId.ALL_BACKENDS_DOWN]


def test_all_backends_down_quiet_when_one_target_works() -> None:
    results = failing(A, Outcome.UPSTREAM_ERROR, 502) + working(B)
    quiet(all_backends_down, results)


def test_all_backends_down_quiet_without_targets() -> None:
    results = [pr(ProbeName.DISCOVERY, "", API, "upstream_error", 502)]
    quiet(all_backends_down, results)


# backend-down


@pytest.mark.parametrize(
    ("outcome", "status"),
    [
        (Outcome.UPSTREAM_ERROR, 502),
        (Outcome.UPSTREAM_ERROR, 503),
        (Outcome.REFUSED, None),
        (Outcome.RESET, None),
    ],
)
def test_backend_down_names_the_dead_target(outcome: Outcome, status: int | None) -> None:
    results = working(A, label="inscribe-1") + failing(B, outcome, status, label="inscribe-2") + working(C)
    f = fire(backend_down, results)
    assert f.severity is Severity.CRITICAL
    assert f.targets == (B,)
    assert "inscribe-2" in f.title and B in f.title
    assert "inscribe-1" not in f.title
    assert "inscribe-2" in f.recommendation
    assert all(ref.endswith(f"@{B}#direct") for ref in f.evidence)
    assert FindingId.BACKEND_DOWN in ids(diagnose(results))
    assert FindingId.ALL_BACKENDS_DOWN not in ids(diagnose(results))


def test_backend_down_quiet_when_all_targets_work() -> None:
    quiet(backend_down, working(A) + working(B) + working(C))


def test_backend_down_on_a_balancer_gives_the_share_and_who_answered() -> None:
    results = [
        pr(ProbeName.SOCKETIO_CONNECT, "websocket:valid", LB, "ok", 101, backend="inscribe-1"),
        pr(ProbeName.SOCKETIO_CONNECT, "polling:valid", LB, "upstream_error", 502),
        pr(ProbeName.ENGINEIO_HANDSHAKE, "", LB, "ok", 200, headers={"x-lab-backend": "inscribe-3"}),
        pr(ProbeName.ENGINEIO_UPGRADE, "", LB, "upstream_error", 502),
    ]
    f = fire(backend_down, results)
    assert f.title == "A backend behind the balancer is down"
    assert f.targets == (LB,)
    assert "50 %" in f.summary and "(2 of 4)" in f.summary
    assert "inscribe-1, inscribe-3" in f.summary
    assert set(f.evidence) == {r.ref for r in results if r.outcome is Outcome.UPSTREAM_ERROR}


def test_backend_down_share_counts_every_sticky_exchange() -> None:
    results = [
        pr(ProbeName.SOCKETIO_CONNECT, "websocket:valid", LB, "ok", 101),
        pr(
            ProbeName.STICKY_SESSION,
            "no-cookies",
            LB,
            "upstream_error",
            200,
            open_attempts=[{"status": 200}],
            answers=[{"status": 502}, {"status": 200}, {"status": 502}],
            answered=1,
        ),
        pr(
            ProbeName.STICKY_SESSION,
            "cookies",
            LB,
            "ok",
            200,
            open_attempts=[{"status": 200}],
            answers=[{"status": 200}, {"status": 200}, {"status": 200}],
            answered=3,
        ),
    ]
    f = fire(backend_down, results)
    # 1 connect + 4 + 4 sticky exchanges; 2 of them 502
    assert "(2 of 9)" in f.summary and "22 %" in f.summary


def test_backend_down_cites_a_probe_that_succeeded_after_a_502() -> None:
    """Found by the property test: a sticky probe that opened on its second try (the first
    open met the dead upstream) ends OK, yet it is the only evidence of the 502."""
    sticky = pr(
        ProbeName.STICKY_SESSION,
        "cookies",
        LB,
        "ok",
        200,
        open_attempts=[{"status": 502}, {"status": 200}],
        answers=[{"status": 200}] * 3,
        answered=3,
    )
    results = [pr(ProbeName.SOCKETIO_CONNECT, "websocket:valid", LB, "ok", 101), sticky]
    f = fire(backend_down, results)
    assert f.evidence == (sticky.ref,)
    assert "(1 of 6)" in f.summary


def test_backend_down_quiet_for_tls_failures() -> None:
    results = working(A) + failing(B, Outcome.TLS_ERROR)
    quiet(backend_down, results)


# backend-timeout


def test_backend_timeout_fires_when_accepted_connections_stall_on_every_network() -> None:
    results = []
    for net in ("direct", "corp"):
        results += working(A, network=net)
        results += failing(
            C,
            Outcome.TIMEOUT,
            network=net,
            connect=1.5,
            label="inscribe-3",
            stalled_during="waiting for response",
        )
    f = fire(backend_timeout, results)
    assert f.severity is Severity.CRITICAL
    assert f.targets == (C,)
    assert "inscribe-3" in f.title
    assert "waiting for response" in f.summary
    found = ids(diagnose(results))
    assert FindingId.BACKEND_TIMEOUT in found and FindingId.NETWORK_TIMEOUTS not in found


def test_backend_timeout_needs_the_connection_accepted() -> None:
    """Timeouts without a connect phase: nobody accepted, so this is not a stalled backend."""
    results = working(A) + failing(C, Outcome.TIMEOUT, stalled_during="connect")
    e = ev(results)
    assert e.health(C).health is not Health.STALLED
    quiet(backend_timeout, results)


def test_backend_timeout_stall_during_tls_counts_as_accepted() -> None:
    results = working(A) + failing(C, Outcome.TIMEOUT, stalled_during="tls")
    assert ev(results).health(C).health is Health.STALLED
    assert fire(backend_timeout, results).targets == (C,)


def test_backend_timeout_quiet_when_another_network_works() -> None:
    results = working(C, network="direct") + failing(C, Outcome.TIMEOUT, network="vpn", connect=2.0)
    quiet(backend_timeout, results)
    assert FindingId.NETWORK_TIMEOUTS in ids(diagnose(results))


# tls-problem


def test_tls_problem_fires_with_the_error() -> None:
    message = "certificate not trusted: self-signed certificate"
    results = [
        pr(ProbeName.SOCKETIO_CONNECT, "websocket:valid", A, "tls_error", error=message),
        pr(ProbeName.ENGINEIO_HANDSHAKE, "", A, "tls_error", error=message),
    ]
    f = fire(tls_problem, results)
    assert f.severity is Severity.CRITICAL
    assert f.targets == (A,)
    assert "self-signed certificate" in f.summary
    assert "--ca-bundle" in f.recommendation


def test_tls_problem_quiet_without_tls_errors() -> None:
    quiet(tls_problem, working(A) + failing(B, Outcome.UPSTREAM_ERROR, 502))


def test_tls_problem_does_not_hide_a_dead_backend_elsewhere() -> None:
    # One TLS failure somewhere must not make a 502-answering backend disappear.
    results = [
        pr(ProbeName.HTTP_UPGRADE, "http1.1", A, "tls_error", error="TLS failed: WRONG_VERSION_NUMBER")
    ]
    results += failing(A, Outcome.UPSTREAM_ERROR, 502) + failing(B, Outcome.UPSTREAM_ERROR, 502)
    found = ids(diagnose(results))
    assert FindingId.TLS_PROBLEM in found
    assert FindingId.ALL_BACKENDS_DOWN in found


def test_dns_problem_names_the_names_that_do_not_resolve() -> None:
    results = failing(A, Outcome.DNS_ERROR, None) + failing(B, Outcome.UPSTREAM_ERROR, 502)
    finding = fire(dns_problem, results)
    assert finding is not None and finding.severity is Severity.CRITICAL
    assert finding.targets == (A,)
    quiet(dns_problem, failing(B, Outcome.UPSTREAM_ERROR, 502))


def _tls_failed(presented: list[dict[str, str]] | None, code: int = 20) -> list[ProbeResult]:
    """What a raw-stream probe records when the verifying handshake failed (FACTS.md §3.8)."""
    message = "unable to get local issuer certificate"
    tls = {"verify_code": code, "verify_message": message, "presented": presented}
    return [
        pr(
            ProbeName.ENGINEIO_HANDSHAKE,
            "",
            A,
            "tls_error",
            error=f"certificate not trusted: {message}",
            tls=tls,
        ),
        pr(
            ProbeName.SOCKETIO_CONNECT,
            "websocket:valid",
            A,
            "tls_error",
            error=f"certificate not trusted: {message}",
        ),
    ]


def test_tls_problem_names_an_incomplete_chain() -> None:
    leaf = {
        "subject": "commonName=inscribe.example.com",
        "issuer": "commonName=R11, organizationName=Let's Encrypt",
    }
    f = fire(tls_problem, _tls_failed([leaf]))
    assert "incomplete" in f.title
    assert "commonName=R11" in f.summary and "Browsers cope" in f.summary
    assert "Node, Python and the SDK do not" in f.summary
    assert "-showcerts" in f.recommendation and "fullchain.pem" in f.recommendation


def test_tls_problem_with_a_longer_chain_ending_at_an_unknown_issuer() -> None:
    chain = [
        {"subject": "commonName=a.example", "issuer": "commonName=Private Intermediate"},
        {"subject": "commonName=Private Intermediate", "issuer": "commonName=Private Root"},
    ]
    f = fire(tls_problem, _tls_failed(chain))
    assert "does not have" in f.title and "private CA" in f.summary


@pytest.mark.parametrize(
    ("presented", "code"),
    [
        ([{"subject": "commonName=x", "issuer": "commonName=x"}], 18),  # self-signed leaf
        ([{"subject": "commonName=x", "issuer": "commonName=x"}], 20),  # a root, not a missing issuer
        (None, 20),  # this Python could not read the chain
    ],
)
def test_tls_problem_claims_no_incomplete_chain_without_the_evidence(
    presented: list[dict[str, str]] | None, code: int
) -> None:
    f = fire(tls_problem, _tls_failed(presented, code))
    assert f.title == "TLS fails" and "incomplete" not in f.summary
