"""The remedies table: one fix per finding x component, chosen by the fingerprint."""

from __future__ import annotations

import pytest

from kiloscribe_lab.diagnosis import REGISTRY, Evidence, RuleError
from kiloscribe_lab.diagnosis.fingerprint import fingerprint
from kiloscribe_lab.diagnosis.registry import Draft, rule
from kiloscribe_lab.diagnosis.remedies import FIXES, remedy
from kiloscribe_lab.names import Component, FindingId, Outcome, PlainPath, ProbeName, Severity
from tests.unit.diagnosis import facts
from tests.unit.diagnosis.helpers import A, ev, pr, working


def _path(headers: dict[str, str]) -> object:
    return fingerprint(
        [pr(ProbeName.WEBSOCKET_PLAIN, PlainPath.SOCKETIO, A, Outcome.OK, 101, headers=headers)]
    )


@pytest.mark.parametrize(
    ("headers", "words", "not_words"),
    [
        (facts.NGINX, "hash $remote_addr consistent", "lb_policy"),
        (facts.CADDY, "lb_policy ip_hash", "hash $remote_addr"),
        ({"server": "haproxy"}, "", ""),  # HAProxy sends no Server: not a mark, so the generic list
    ],
)
def test_sticky_fix_in_the_balancers_words(headers: dict[str, str], words: str, not_words: str) -> None:
    text = remedy(FindingId.STICKY_SESSIONS_MISSING, fingerprint(working(A, headers=headers)))
    assert text is not None
    if words:
        assert words in text and not_words not in text
        assert "(The balancer looks like" in text
    else:
        assert "was not recognised" in text
        for each in ("lb_policy ip_hash", "hash $remote_addr consistent", "balance source"):
            assert each in text


def test_haproxy_by_its_page() -> None:
    results = [pr(ProbeName.ENGINEIO_HANDSHAKE, "", A, Outcome.UPSTREAM_ERROR, 504, body=facts.HAPROXY_504)]
    text = remedy(FindingId.STICKY_SESSIONS_MISSING, fingerprint(results))
    assert text is not None and "balance source" in text and "an HAProxy error page" in text


def test_fills_and_unknown_findings() -> None:
    text = remedy(
        FindingId.CORS_ORIGIN_REJECTED,
        fingerprint([pr(ProbeName.ENGINEIO_HANDSHAKE, "", A, Outcome.OK, 200, body=facts.NODE_OPEN)]),
        {"ORIGIN": "https://x.example", "ALLOWED": "'https://a.example', "},
    )
    assert text is not None and "origin: ['https://a.example', 'https://x.example']" in text
    assert remedy(FindingId.ROOT_REDIRECT, fingerprint([])) is None


def test_every_fix_names_a_finding_with_a_rule_and_components_of_its_tiers() -> None:
    for fid, fix in FIXES.items():
        assert fid in REGISTRY.catalogue
        assert fix.words
        for component in fix.words:
            assert component.tier in fix.tiers, (fid, component)


def test_a_rule_giving_a_path_without_a_fix_is_a_bug() -> None:
    def body(_ev: Evidence) -> Draft:
        return Draft(Severity.INFO, "t", "s", "r", ("x@y#direct",), ("y",), path=fingerprint([]))

    declared = rule(
        FindingId.ROOT_REDIRECT, severities={Severity.INFO}, title="T", means="M.", evidence="E."
    )(body)
    with pytest.raises(RuleError, match="no entry for root-redirect"):
        declared(ev(working(A)))


def test_the_rules_text_goes_before_the_fix_with_fix_last() -> None:
    def body(_ev: Evidence) -> Draft:
        return Draft(
            Severity.CRITICAL,
            "t",
            "s",
            "Restart it.",
            ("x@y#direct",),
            ("y",),
            path=fingerprint(working(A, headers=facts.NGINX)),
            fix_last=True,
        )

    declared = rule(
        FindingId.BACKEND_DOWN, severities={Severity.CRITICAL}, title="T", means="M.", evidence="E."
    )(body)
    finding = declared(ev(working(A)))
    assert finding is not None
    assert finding.recommendation.startswith("Restart it. nginx's error log")
    assert Component.NGINX in finding.recommendation
