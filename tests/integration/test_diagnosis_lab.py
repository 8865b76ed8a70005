"""The diagnosis over every lab scenario equals the scenario's ground truth."""

from __future__ import annotations

import pytest

from kiloscribe_lab import diagnosis
from kiloscribe_lab.lab.scenarios import SCENARIOS
from kiloscribe_lab.names import FindingId, Severity
from tests.integration.conftest import InvestigationGetter

pytestmark = pytest.mark.timeout(120)


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_findings_equal_ground_truth(investigation: InvestigationGetter, scenario: str) -> None:
    findings = diagnosis.diagnose(investigation(scenario), "KILOSCRIBE_API_KEY")
    got = {f.id: f.severity for f in findings}
    expected = set(SCENARIOS[scenario].expected_findings)
    assert expected <= set(got), f"missing {sorted(expected - set(got))}"
    extra = {i for i, severity in got.items() if i not in expected and severity is not Severity.INFO}
    assert not extra, f"findings beyond the ground truth: {sorted(extra)}"
    for finding in findings:
        assert finding.evidence and finding.recommendation and finding.targets


def test_healthy_has_no_critical_finding_and_every_target_healthy(
    investigation: InvestigationGetter,
) -> None:
    results = investigation("healthy")
    findings = diagnosis.diagnose(results)
    assert not [f for f in findings if f.severity is Severity.CRITICAL]
    verdicts = diagnosis.verdicts(results)
    assert {v.verdict for v in verdicts} == {diagnosis.Verdict.HEALTHY}
    assert diagnosis.overall(findings, verdicts)[0] == "healthy"


def test_incident_reaches_the_seeds_true_conclusions_and_none_of_its_false_ones(
    investigation: InvestigationGetter,
) -> None:
    results = investigation("incident")
    findings = {f.id: f for f in diagnosis.diagnose(results, "KILOSCRIBE_API_KEY")}
    # Socket.IO works and the auth path works
    assert findings[FindingId.AUTH_PATH_HEALTHY].severity is Severity.INFO
    # inscribe-2, and only inscribe-2, is down
    down = findings[FindingId.BACKEND_DOWN]
    assert down.severity is Severity.CRITICAL
    assert "inscribe-2" in down.title
    assert "inscribe-1 (" not in down.title and "inscribe-3 (" not in down.title
    # sessions are not sticky, and the fix is named
    sticky = findings[FindingId.STICKY_SESSIONS_MISSING]
    assert "lb_policy ip_hash" in sticky.recommendation
    # not "protocol mismatch means the server is broken", not "308 means the backend is failing"
    assert findings[FindingId.PLAIN_WEBSOCKET_PROTOCOL_MISMATCH].severity is Severity.INFO
    assert "not an outage" in findings[FindingId.PLAIN_WEBSOCKET_PROTOCOL_MISMATCH].title
    assert findings[FindingId.ROOT_REDIRECT].severity is Severity.INFO
    verdicts = {v.label: v.verdict for v in diagnosis.verdicts(results)}
    assert verdicts["inscribe-1"] is diagnosis.Verdict.HEALTHY
    assert verdicts["inscribe-3"] is diagnosis.Verdict.HEALTHY
    assert verdicts["inscribe-2"] is diagnosis.Verdict.DOWN
    assert verdicts["lb"] is diagnosis.Verdict.DEGRADED


def test_slow_backend_names_inscribe_3(investigation: InvestigationGetter) -> None:
    findings = {f.id: f for f in diagnosis.diagnose(investigation("slow-backend"))}
    assert "inscribe-3" in findings[FindingId.BACKEND_TIMEOUT].title
    assert "inscribe-1" not in findings[FindingId.BACKEND_TIMEOUT].title


def test_edge_blocks_websocket_says_where(investigation: InvestigationGetter) -> None:
    findings = {f.id: f for f in diagnosis.diagnose(investigation("edge-blocks-websocket"))}
    blocked = findings[FindingId.WEBSOCKET_BLOCKED]
    assert "CDN edge" in blocked.title
    assert "tryAllTransports" in blocked.recommendation
    assert all("edge" in t or "wss://" in t or "https://" in t for t in blocked.targets)
