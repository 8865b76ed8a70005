"""Every section of the findings report in HTML and Markdown, for the recorded scenarios and
for hostile evidence."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from kiloscribe_lab.diagnosis import TargetVerdict, Verdict, diagnose, verdicts
from kiloscribe_lab.lab.scenarios import SCENARIOS
from kiloscribe_lab.names import FindingId, Outcome, ProbeName, Severity
from kiloscribe_lab.report.rundata import RunData, load_run
from kiloscribe_lab.report.sections import (
    changes_section,
    endpoints_section,
    infrastructure_section,
    recommendations_section,
    root_cause_section,
    status_section,
    summary_section,
    test_details_section,
    title_section,
)
from kiloscribe_lab.report.summary import compare, summarize
from kiloscribe_lab.results import Finding, ProbeResult
from tests.unit.report.helpers import (
    EVIL,
    KEY_ENV,
    all_sections,
    assert_inert_html,
    assert_inert_markdown,
    both,
    fixture,
    hostile_findings,
    hostile_results,
    make_run_dir,
    markdown_to_html,
    parse_html,
    plain,
)


def test_every_section_renders_html_and_markdown(incident_run: RunData) -> None:
    for name, section in all_sections(incident_run).items():
        html, md = section._repr_html_(), section._repr_markdown_()
        assert html.strip() and md.strip(), name
        assert_inert_html(html)
        assert_inert_markdown(md)
        assert repr(section).startswith("<report section")


def test_summary_section(incident_run: RunData) -> None:
    section = all_sections(incident_run)["summary"]
    for out in both(section):
        assert "CRITICAL" in out
        assert "Backend down: inscribe-2" in out
        for label in ("edge", "lb", "inscribe-1", "inscribe-2", "inscribe-3"):
            assert label in out
        assert "down" in out and "healthy" in out and "degraded" in out
        assert "expected behaviour, not a fault" in out
        assert "Incomplete evidence" in out


def test_endpoints_section_names_failed_runs_with_their_error(incident_run: RunData) -> None:
    section = endpoints_section(incident_run)
    html, md = section.html(), plain(section.markdown())
    assert "inscribe-2-mobile" in html and "inscribe-2-mobile" in md
    assert "timeout" in html and "timeout" in md
    assert "PapermillExecutionError &lt;b&gt;boom&lt;/b&gt;" in html
    assert "PapermillExecutionError &lt;b&gt;boom&lt;/b&gt;" in md
    assert "<b>" not in html and "<b>" not in md
    for label in ("edge", "lb", "inscribe-1", "inscribe-2", "inscribe-3"):
        assert label in md
    assert "mobile" in md  # the failed run's network is listed with its endpoint
    [found] = [r for r in incident_run.results if r.probe == ProbeName.DISCOVERY]
    assert "Server discovery" in md and found.detail["recommended"] in md
    assert 'curl -H "x-api-key: $KILOSCRIBE_API_KEY"' in md.replace("&#36;", "$")


def test_endpoints_section_when_every_run_finished(tmp_path: Path) -> None:
    run = load_run(make_run_dir(tmp_path, fixture("healthy"), failed=False))
    md = endpoints_section(run).markdown()
    assert "All 6 notebook runs finished." in md
    assert "did not finish" not in md


def test_test_details_section_has_tables_and_rerun_commands(incident_run: RunData) -> None:
    section = test_details_section(list(incident_run.results), api_key_env=KEY_ENV)
    for out in both(section):
        for kind in (
            ProbeName.HTTP_UPGRADE,
            ProbeName.WEBSOCKET_PLAIN,
            ProbeName.ENGINEIO_HANDSHAKE,
            ProbeName.SOCKETIO_CONNECT,
            ProbeName.STICKY_SESSION,
        ):
            assert kind in out
        assert "Rerun by hand" in out
        edge = next(r.target for r in incident_run.results if r.detail.get("label") == "edge")
        assert f"wscat -c {edge.replace('https://', 'wss://')}" in out
        assert "curl -i -N --http1.1 -H" in out
        assert "Session ID unknown" in out
        assert "(expected)" in out  # a refused invalid key and a redirect at / are not faults
    md = section.markdown()
    assert md.count("<pre><code>") >= 5
    # A table per probe kind, one row per result.
    assert len(re.findall(r"^\| (edge|lb|inscribe-\d) \|", md, flags=re.M)) == 75


def test_infrastructure_section_fingerprints(incident_run: RunData) -> None:
    section = infrastructure_section(list(incident_run.results), labels=incident_run.labels)
    for out in both(section):
        assert "cloudflare" in out and "cf-ray" in out and "BYPASS" in out
        assert "Caddy" in out
        assert "x-lab-backend" in out and "inscribe-1, inscribe-3" in out
        assert "ALPN" in out and "h2" in out
        assert "alt-svc" in out


def test_infrastructure_section_sees_cookies_and_alt_svc() -> None:
    r = ProbeResult(
        probe=ProbeName.ENGINEIO_HANDSHAKE,
        target="https://a.example",
        outcome=Outcome.OK,
        headers={"set-cookie-names": "lb_sticky, other", "alt-svc": 'h3=":443"', "server": "Caddy"},
    )
    md = plain(infrastructure_section([r]).markdown())
    assert "lb_sticky" in md and 'h3=":443"' in md
    assert "no CDN fingerprint" in md


def test_root_cause_section(incident_run: RunData, incident: Any) -> None:
    _, findings, _ = incident
    section = root_cause_section(findings, labels=incident_run.labels)
    for out in both(section):
        assert FindingId.BACKEND_DOWN in out and "inscribe-2" in out
        assert FindingId.STICKY_SESSIONS_MISSING in out
        assert "Root causes" in out and "Expected behaviour, not faults" in out
        assert FindingId.PLAIN_WEBSOCKET_PROTOCOL_MISMATCH in out
        down = next(f for f in findings if f.id == FindingId.BACKEND_DOWN)
        assert down.evidence[0] in out
    # Faults before reassurances.
    md = plain(section.markdown())
    assert md.index(FindingId.BACKEND_DOWN) < md.index(FindingId.AUTH_PATH_HEALTHY)


def test_root_cause_section_without_faults() -> None:
    results = fixture("healthy")
    md = root_cause_section(diagnose(results, KEY_ENV)).markdown()
    assert "No fault was found" in md
    assert "No finding" in root_cause_section([]).markdown()


def test_recommendations_section(incident: Any) -> None:
    _, findings, _ = incident
    for out in both(recommendations_section(findings)):
        assert "Immediate actions" in out and "Long-term" in out
        assert "Restart inscribe-2" in out
        assert "lb_policy ip_hash" in out
        assert "per backend" in out and "5xx" in out
        immediate, long_term = out.split("Long-term", 1)
        assert "Restart inscribe-2" in immediate
        assert "Nothing to fix" in long_term and "Nothing to fix" not in immediate
    assert "None: no critical or warning finding" in recommendations_section([]).markdown()


def test_status_section(incident_run: RunData, incident: Any) -> None:
    _, findings, tv = incident
    section = status_section(findings, tv, incident_run)
    md = plain(section.markdown())
    assert "Next steps" in md
    steps = re.findall(r"^\d+\. (.*)$", md, flags=re.M)
    assert "inscribe-2-mobile" in steps[0]
    assert any("Restart inscribe-2" in s for s in steps)
    assert any("Make the balancer sticky." in s for s in steps)
    assert "Not a fault" in md and "2 healthy, 2 degraded, 1 down" in md
    healthy = fixture("healthy")
    md = status_section(diagnose(healthy, KEY_ENV), verdicts(healthy)).markdown()
    assert "Nothing to fix now" in md


def test_sections_for_every_scenario(tmp_path: Path) -> None:
    for name in SCENARIOS:
        run = load_run(make_run_dir(tmp_path / name, fixture(name)))
        for section in all_sections(run).values():
            assert_inert_html(section.html())
            assert_inert_markdown(section.markdown())


def test_hostile_evidence_is_inert_in_every_section(tmp_path: Path) -> None:
    results = hostile_results()
    findings = hostile_findings()
    tv = [TargetVerdict(results[0].target, Verdict.DOWN, EVIL, label=EVIL)]
    run_dir = make_run_dir(tmp_path, results, title=EVIL, notes=[EVIL], source=EVIL)
    run_json = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    run_json["matrix"][-1]["error"] = EVIL
    run_json["matrix"][-1]["id"] = "<script>id</script>"
    (run_dir / "run.json").write_text(json.dumps(run_json), encoding="utf-8")
    (run_dir / "results" / "<script>.jsonl").write_text(EVIL, encoding="utf-8")
    run = load_run(run_dir)
    assert run.failures  # the hostile file name is reported, and must be inert too

    summary = summarize(results, findings, tv, labels=run.labels)
    previous = {**summary, "findings": [{"id": EVIL, "severity": "<script>", "title": EVIL}]}
    sections = [
        title_section(run),
        summary_section(findings, tv, run),
        endpoints_section(run),
        test_details_section(results, labels=run.labels, api_key_env=EVIL),
        infrastructure_section(results, labels=run.labels),
        root_cause_section(findings, labels=run.labels),
        recommendations_section(findings),
        status_section(findings, tv, run),
        changes_section(compare(summary, previous)),
    ]
    for section in sections:
        html, md = section.html(), section.markdown()
        assert_inert_html(html)
        assert_inert_markdown(md)
        assert "</td><td>injected" not in html and "</td><td>injected" not in md
        assert "onerror" not in " ".join(a for a, _ in parse_html(html).attrs)
    # The text is still there, as text.
    details = sections[3]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in details.html()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in details.markdown()
    assert "curl '&lt;script&gt;' | `rm -rf` ![img](http://x)" in details.markdown()  # inside <pre>
    assert "curl &#x27;&lt;script&gt;&#x27; | `rm -rf` ![img](http://x)" in details.html()


def test_hostile_text_survives_rendering_as_text() -> None:
    finding = Finding("x", Severity.CRITICAL, "| ![img](http://x) <script>alert(1)</script>", "s", "r")
    section = root_cause_section([finding])
    rendered = markdown_to_html(section.markdown())
    text = "".join(parse_html(rendered).text)
    assert "| ![img](http://x) <script>alert(1)</script>" in text
    text = "".join(parse_html(section.html()).text)
    assert "| ![img](http://x) <script>alert(1)</script>" in text
