"""The diagnosis over every lab scenario, on every balancer and backend its ground truth holds
for, equals the scenario's ground truth, with each fix in the words of the component that runs."""

from __future__ import annotations

import re

import pytest

from kiloscribe_lab import diagnosis
from kiloscribe_lab.diagnosis.remedies import FIXES
from kiloscribe_lab.lab.scenarios import BACKENDS, SCENARIOS, BackendKind, BalancerKind
from kiloscribe_lab.names import Component, FindingId, Severity, Tier
from kiloscribe_lab.results import Finding
from tests.integration.conftest import InvestigationGetter
from tests.integration.scenario_table import Cell, Table, cells

# The first test to ask runs the whole table (~35 labs, a few at a time).
pytestmark = pytest.mark.timeout(400)

BALANCER = {
    BalancerKind.CADDY: Component.CADDY,
    BalancerKind.NGINX: Component.NGINX,
    BalancerKind.HAPROXY: Component.HAPROXY,
}
SERVER = {BackendKind.PYTHON: Component.PYTHON_ENGINEIO, BackendKind.NODE: Component.ENGINEIO}
BELIEF = re.compile(r"\(The (?:edge|balancer|server) looks like ([^:]+): ")
CELLS = cells()


def lab_components(cell: Cell) -> dict[Tier, Component]:
    """What runs each tier of a cell's lab: the edge wears Cloudflare's marks (``Server:
    cloudflare``, ``cf-ray``), the balancer and the servers are what the cell says."""
    return {
        Tier.EDGE: Component.CLOUDFLARE,
        Tier.BALANCER: BALANCER[cell.balancer],
        Tier.SERVER: SERVER[cell.backend],
    }


def wrong_words(finding: Finding, cell: Cell, direct: set[str]) -> list[str]:
    """How ``finding``'s fix fails to speak the lab's components: the component it believes
    in must be the one that runs the tier it names (Caddy too for a finding about ``direct``,
    the URLs of the lab's direct sites, which Caddy serves); with none recognised, the words
    of each are given, the lab's among them."""
    fix = FIXES.get(FindingId(finding.id))
    if fix is None:
        return []
    ours = lab_components(cell)
    text = finding.recommendation
    believed = BELIEF.findall(text)
    if not believed:
        own = ours[fix.tiers[0]]
        if "was not recognised" in text and own in fix.words and fix.words[own][:60] in text:
            return []
        return [f"{finding.id}: neither a belief nor {own}'s words: {text}"]
    allowed = {str(ours[t]) for t in fix.tiers}
    if Tier.BALANCER in fix.tiers and any(t.startswith(BACKENDS) or t in direct for t in finding.targets):
        # The lab's direct sites are Caddy in front of each backend: for them, Caddy is right.
        allowed.add(str(Component.CADDY))
    wrong = [
        f"{finding.id}: speaks {b}'s words, the lab runs {sorted(allowed)}"
        for b in believed
        if b not in allowed
    ]
    others = [c for c in BALANCER.values() if c is not ours[Tier.BALANCER] and c in fix.words]
    if Tier.BALANCER in fix.tiers and str(ours[Tier.BALANCER]) in believed:
        wrong += [f"{finding.id}: also {c}'s words" for c in others if fix.words[c][:60] in text]
    return wrong


@pytest.mark.parametrize("cell", CELLS, ids=[c.id for c in CELLS])
def test_findings_equal_ground_truth(scenario_table: Table, cell: Cell) -> None:
    run = scenario_table[cell]
    assert run.error is None, run.error
    findings = diagnosis.diagnose(run.results, "KILOSCRIBE_API_KEY")
    got = {f.id: f.severity for f in findings}
    expected = set(SCENARIOS[cell.scenario].expected_findings)
    shown = [f"{f.severity} {f.id}: {f.title}" for f in findings]
    # What did not work, for the next reader of a failure (the table's runs are not kept).
    failed = [
        f"{r.detail.get('label') or r.target} {r.probe} {r.variant or ''}: {r.outcome} {(r.error or '')[:90]}"
        for r in run.results
        if not r.ok
    ]
    assert expected <= set(got), (f"missing {sorted(expected - set(got))}", shown, failed)
    extra = {i for i, severity in got.items() if i not in expected and severity is not Severity.INFO}
    assert not extra, (f"findings beyond the ground truth: {sorted(extra)}", shown, failed)
    direct = {r.target for r in run.results if r.detail.get("label") in BACKENDS}  # their URLs
    wrong = []
    for finding in findings:
        assert finding.evidence and finding.recommendation and finding.targets
        wrong += wrong_words(finding, cell, direct)
    assert not wrong, wrong


def test_the_table_covers_every_scenario_and_its_matrix() -> None:
    assert {c.scenario for c in CELLS} == set(SCENARIOS)
    assert len(CELLS) == sum(len(s.matrix()) for s in SCENARIOS.values())
    assert len(set(CELLS)) == len(CELLS)


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


# --- what issue 11's findings must also say, on every cell of their scenario ------------------

SAYS: dict[str, dict[FindingId, tuple[str, ...]]] = {
    "nginx-no-upgrade": {FindingId.UPGRADE_HEADERS_DROPPED: ("proxy_http_version 1.1", "map $http_upgrade")},
    "nginx-naive": {FindingId.STICKY_SESSIONS_MISSING: ("hash $remote_addr consistent",)},
    "nginx-round-robin": {FindingId.STICKY_SESSIONS_MISSING: ("hash $remote_addr consistent",)},
    "wrong-path": {
        FindingId.NOT_SOCKETIO: ("a Socket.IO server may be served at another path", "path: '/ws/'")
    },
    "tls-incomplete-chain": {FindingId.TLS_PROBLEM: ("incomplete", "intermediate", "Browsers cope")},
    "cors-restricted": {FindingId.CORS_ORIGIN_REJECTED: ("https://evil.example",)},
    "inscription-stalls": {FindingId.INSCRIPTION_NOT_ACKNOWLEDGED: ("connect worked",)},
}


@pytest.mark.parametrize("cell", [c for c in CELLS if c.scenario in SAYS], ids=lambda c: c.id)
def test_issue_11s_findings_say_what_the_issue_asks(scenario_table: Table, cell: Cell) -> None:
    run = scenario_table[cell]
    assert run.error is None, run.error
    found = {FindingId(f.id): f for f in diagnosis.diagnose(run.results, "KILOSCRIBE_API_KEY")}
    says = dict(SAYS[cell.scenario])
    if cell.scenario == "cors-restricted" and cell.backend is BackendKind.NODE:
        # engine.io's ACAO names the allowed origin; python-engineio's refusal does not
        says[FindingId.CORS_ORIGIN_REJECTED] += ("https://app.kiloscribe.test",)
    for fid, needles in says.items():
        text = f"{found[fid].title} {found[fid].summary} {found[fid].recommendation}"
        missing = [n for n in needles if n not in text]
        assert not missing, (fid, missing, text)
