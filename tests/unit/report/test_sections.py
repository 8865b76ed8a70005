"""Every section of the findings report in HTML and Markdown, for the recorded scenarios and
for hostile evidence; and the report as a whole: each finding once in full, links that land."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from kiloscribe_lab.diagnosis import TargetVerdict, Verdict, diagnose, verdicts
from kiloscribe_lab.lab.scenarios import SCENARIOS
from kiloscribe_lab.names import FindingId, Outcome, ProbeName, Severity
from kiloscribe_lab.report.appendix import probe_commands, row_anchor, with_ca
from kiloscribe_lab.report.rundata import RunData, load_run
from kiloscribe_lab.report.sections import (
    EVIDENCE_SHOWN,
    PARTS,
    changes_section,
    charts_section,
    contents_section,
    endpoints_section,
    finding_anchor,
    headline,
    infrastructure_section,
    part_anchor,
    recommendations_section,
    report_title,
    root_cause_section,
    short_title,
    summary_section,
    targets_section,
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


def whole(run: RunData) -> tuple[str, str]:
    sections = all_sections(run).values()
    return "\n".join(s.html() for s in sections), "\n".join(s.markdown() for s in sections)


def test_every_section_renders_html_and_markdown(incident_run: RunData) -> None:
    for name, section in all_sections(incident_run).items():
        html, md = section._repr_html_(), section._repr_markdown_()
        assert html.strip() and md.strip(), name
        assert_inert_html(html)
        assert_inert_markdown(md)
        assert repr(section).startswith("<report section")


def test_title_is_dated_and_says_what_was_investigated(tmp_path: Path) -> None:
    run = load_run(make_run_dir(tmp_path, fixture("healthy"), title="Lab investigation: scenario healthy"))
    assert report_title(run) == "Lab investigation: scenario healthy — 2026-11-26"
    html = title_section(run).html()
    assert html.startswith('<div class="kiloscribe-report-section') and "<h1>" in html
    assert '<span class="nowrap">2026-11-26</span>' in html  # the date never wraps at its hyphens
    assert "Source lab:incident" in html and "2026-11-26 05:51 UTC" in html


def test_summary_banner_and_three_to_five_plain_lines(incident_run: RunData, incident: Any) -> None:
    results, findings, tv = incident
    summary = summarize(results, findings, tv, labels=incident_run.labels)
    section = summary_section(findings, tv, incident_run, summary)
    html, md = section.html(), plain(section.markdown())
    assert 'class="banner banner-critical"' in html and ">CRITICAL<" in html
    assert "targets: 2 healthy, 2 degraded, 1 down" in html and "evidence incomplete" in html
    lines = headline(findings, tv, incident_run, summary)
    assert 3 <= len(lines) <= 5
    texts = ["".join(i if isinstance(i, str) else i.text for i in line) for line in lines]  # type: ignore[union-attr]
    assert texts[0].startswith("What is broken: Backend down: inscribe-2")
    affected = next(t for t in texts if t.startswith("Who is affected"))
    assert "inscribe-2 (down)" in affected and "edge and lb (degraded)" in affected
    assert "Fine: inscribe-1 and inscribe-3" in affected
    assert any(t.startswith("Do first: Restart inscribe-2") for t in texts)
    assert any("inscribe-2-mobile" in t for t in texts if t.startswith("Evidence incomplete"))
    down = next(f for f in findings if f.id == FindingId.BACKEND_DOWN)
    assert f'<a href="#{finding_anchor(down.id)}">{short_title(down.title)}</a>' in html
    assert "> 🔴 **CRITICAL**" in md


def test_a_healthy_run_says_nothing_is_broken(tmp_path: Path) -> None:
    run = load_run(make_run_dir(tmp_path, fixture("healthy"), failed=False))
    results = list(run.results)
    findings, tv = diagnose(results, KEY_ENV), verdicts(results)
    lines = headline(findings, tv, run, summarize(results, findings, tv))
    text = "\n".join("".join(i if isinstance(i, str) else i.text for i in line) for line in lines)  # type: ignore[union-attr]
    assert 3 <= len(lines) <= 5
    assert "What is broken: nothing" in text and "Who is affected: nobody" in text
    assert "What to do: nothing now" in text
    assert "banner-healthy" in summary_section(findings, tv, run).html()


def test_contents_link_to_every_part_finding_and_family(incident_run: RunData) -> None:
    html, md = whole(incident_run)
    ids = set(re.findall(r' id="([a-z0-9-]+)"', html))
    nav = re.search(r'<nav class="toc".*?</nav>', html, flags=re.S)
    assert nav is not None
    links = re.findall(r'href="#([a-z0-9-]+)"', nav.group(0))
    assert len(links) >= len(PARTS) + 6
    assert [part_anchor(p) for p in PARTS] == [a for a in links if a in {part_anchor(p) for p in PARTS}]
    assert set(links) <= ids, set(links) - ids
    # Every link anywhere lands on an anchor of the page.
    assert set(re.findall(r'href="#([a-z0-9-]+)"', html)) <= ids
    # In Markdown the parts' anchors are the headings' own slugs.
    for part in PARTS[1:]:
        assert re.search(rf"^## {re.escape(part)}$", md, flags=re.M), part


def test_each_finding_once_in_full_and_linked_elsewhere(incident_run: RunData, incident: Any) -> None:
    _, findings, _ = incident
    html, md = whole(incident_run)
    text = "".join(parse_html(html).text)
    for f in findings:
        assert text.count(f.summary) == 1, f.id
        assert html.count(f' id="{finding_anchor(f.id)}"') == 1
        assert html.count(f'href="#{finding_anchor(f.id)}"') >= 2  # the contents, and the summary or steps
        assert md.count(f'<a id="{finding_anchor(f.id)}"></a>') == 1


def test_no_literal_backtick_in_the_rendered_text(incident_run: RunData) -> None:
    html, md = whole(incident_run)
    assert "`" not in "".join(parse_html(html).text)
    assert "`" not in "".join(parse_html(markdown_to_html(md)).text)
    assert "<code>" not in md  # code spans are backticks in Markdown
    assert "\\_" not in md.replace("\\_\\_", "")  # snake_case stays as it is


def test_targets_section(incident_run: RunData, incident: Any) -> None:
    results, findings, tv = incident
    summary = summarize(results, findings, tv, labels=incident_run.labels)
    for out in both(targets_section(tv, summary, labels=incident_run.labels)):
        for label in ("edge", "lb", "inscribe-1", "inscribe-2", "inscribe-3"):
            assert label in out
        assert "down" in out and "healthy" in out and "degraded" in out
        assert "direct 0/2" in out  # inscribe-2's connects, counted


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
    assert 'curl -H "x-api-key: $KILOSCRIBE_API_KEY"' in md
    assert "kiloscribe-lab report --scenario incident" in md


def test_endpoints_section_when_every_run_finished(tmp_path: Path) -> None:
    run = load_run(make_run_dir(tmp_path, fixture("healthy"), failed=False))
    md = endpoints_section(run).markdown()
    assert "All 6 notebook runs finished." in md
    assert "did not finish" not in md


def test_rerun_commands_carry_the_network_the_ca_and_the_key_name(tmp_path: Path) -> None:
    base = [r for r in fixture("healthy") if r.detail.get("label") in {"edge", "lb"}]
    from kiloscribe_lab.results import replace

    results = base + [replace(r, network="corporate-proxy") for r in base]
    run = load_run(
        make_run_dir(
            tmp_path,
            results,
            failed=False,
            ca_bundle="/lab/ca.pem",
            config_path="/etc/inv.toml",
            source="config:/etc/inv.toml",
        )
    )
    commands = probe_commands(run, results)
    assert len(commands) == 2
    direct, proxy = (c.replace(" \\\n    ", " ") for c in commands)
    assert "--network" not in direct and "--ca-bundle /lab/ca.pem --api-key-env KILOSCRIBE_API_KEY" in direct
    assert "--network corporate-proxy --config /etc/inv.toml --ca-bundle /lab/ca.pem" in proxy
    edge = next(r.target for r in base if r.detail.get("label") == "edge")
    assert edge in direct and edge in proxy
    assert "kiloscribe-lab report --config /etc/inv.toml" in plain(endpoints_section(run).markdown())
    assert with_ca("curl -i https://x", "/lab/ca.pem") == "curl --cacert /lab/ca.pem -i https://x"
    assert with_ca("wscat -c wss://x", "/lab/ca.pem") == "wscat --ca /lab/ca.pem -c wss://x"
    assert with_ca("curl --cacert a https://x", "/lab/ca.pem") == "curl --cacert a https://x"


def test_test_details_section_has_tables_and_rerun_commands(incident_run: RunData) -> None:
    section = test_details_section(list(incident_run.results), ca_bundle="/lab/ca.pem")
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
        assert f"wscat --ca /lab/ca.pem -c {edge.replace('https://', 'wss://')}" in out
        assert "curl --cacert /lab/ca.pem -i -N --http1.1 -H" in out
        assert "Session ID unknown" in out
        assert "(expected)" in out  # a refused invalid key and a redirect at / are not faults
    html, md = section.html(), section.markdown()
    assert md.count("\n```\n") >= 5  # fenced code blocks, one per family with commands
    # A table per probe kind, one row per result, each family in its own <details>.
    rows = len(re.findall(r"^\| (edge|lb|inscribe-\d) \|", md, flags=re.M))
    assert rows == sum(r.probe != ProbeName.DISCOVERY for r in incident_run.results) >= 75
    assert html.count("<details") == len(
        {r.probe for r in incident_run.results if r.probe != ProbeName.DISCOVERY}
    )
    assert "<details open" not in html


def test_evidence_links_to_the_rows_it_names_and_counts_the_rest(
    incident_run: RunData, incident: Any
) -> None:
    results, findings, _ = incident
    html = root_cause_section(findings, results, labels=incident_run.labels).html()
    rows = test_details_section(results).html()
    row_ids = set(re.findall(r'<tr id="([a-z0-9-]+)"', rows))
    for f in findings:
        shown = f.evidence[:EVIDENCE_SHOWN]
        for ref in shown:
            assert row_anchor(ref) in row_ids, ref
            assert f'href="#{row_anchor(ref)}"' in html
        if len(f.evidence) > EVIDENCE_SHOWN:
            assert f"and {len(f.evidence) - EVIDENCE_SHOWN} more" in html
        assert f"Evidence ({len(f.evidence)} result" in html
    assert "socketio_connect:websocket:valid@" not in "".join(parse_html(html).text)  # no raw ids


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
    results, findings, _ = incident
    section = root_cause_section(findings, results, labels=incident_run.labels)
    for out in both(section):
        assert FindingId.BACKEND_DOWN in out and "inscribe-2" in out
        assert FindingId.STICKY_SESSIONS_MISSING in out
        assert "Root causes" in out and "Expected behaviour, not faults" in out
        assert FindingId.PLAIN_WEBSOCKET_PROTOCOL_MISMATCH in out
        assert "What it means:" in out and "What was seen:" in out and "What to do:" in out
        assert "lb_policy ip_hash" in out  # the recommendation in full, here and only here
    # Faults before reassurances.
    md = plain(section.markdown())
    assert md.index(FindingId.BACKEND_DOWN) < md.index(FindingId.AUTH_PATH_HEALTHY)
    assert "`lb_policy ip_hash`" in section.markdown() and "<code>lb_policy ip_hash</code>" in section.html()


def test_root_cause_section_without_faults() -> None:
    results = fixture("healthy")
    md = root_cause_section(diagnose(results, KEY_ENV), results).markdown()
    assert "No fault was found" in md
    assert "No finding" in root_cause_section([]).markdown()


def test_recommendations_section(incident_run: RunData, incident: Any) -> None:
    _, findings, _ = incident
    section = recommendations_section(findings, incident_run)
    md = plain(section.markdown())
    steps = re.findall(r"^\d+\. (.*)$", md.split("### Long-term")[0], flags=re.M)
    assert "inscribe-2-mobile" in steps[0]
    assert any("Restart inscribe-2" in s for s in steps)
    assert any("Make the balancer sticky." in s for s in steps)
    assert steps[-1].startswith("Rerun the report")
    for out in both(section):
        assert "Next steps" in out and "Long-term" in out
        assert "per backend" in out and "5xx" in out
        immediate, long_term = out.split("Long-term", 1)
        assert "Restart inscribe-2" in immediate
        assert "Nothing to fix" in long_term and "Nothing to fix" not in immediate
    down = next(f for f in findings if f.id == FindingId.BACKEND_DOWN)
    assert f'href="#{finding_anchor(down.id)}"' in section.html()
    healthy = fixture("healthy")
    assert "Nothing to fix now" in recommendations_section(diagnose(healthy, KEY_ENV)).markdown()


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
    run_dir = make_run_dir(tmp_path, results, title=EVIL, notes=[EVIL], source=EVIL, ca_bundle=EVIL)
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
        summary_section(findings, tv, run, summary),
        contents_section(findings, results),
        targets_section(tv, summary, labels=run.labels),
        root_cause_section(findings, results, labels=run.labels),
        recommendations_section(findings, run),
        changes_section(compare(summary, previous)),
        charts_section(summary, results, labels=run.labels),
        endpoints_section(run),
        infrastructure_section(results, labels=run.labels),
        test_details_section(results, labels=run.labels, ca_bundle=EVIL),
    ]
    for section in sections:
        html, md = section.html(), section.markdown()
        assert_inert_html(html)
        assert_inert_markdown(md)
        assert "</td><td>injected" not in html and "</td><td>injected" not in md
        assert "onerror" not in " ".join(a for a, _ in parse_html(html).attrs)
    # The text is still there, as text.
    details = sections[-1]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in details.html()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in details.markdown()
    assert "curl --cacert '" in details.markdown() and "`rm -rf` ![img](http://x)" in details.markdown()
    assert "&lt;script&gt;" in details.markdown()  # inside <pre>: a "<" never reaches a fence


def test_hostile_text_survives_rendering_as_text() -> None:
    finding = Finding("x", Severity.CRITICAL, "| ![img](http://x) <script>alert(1)</script>", "s", "r")
    section = root_cause_section([finding])
    rendered = markdown_to_html(section.markdown())
    text = "".join(parse_html(rendered).text)
    assert "| ![img](http://x) <script>alert(1)</script>" in text
    text = "".join(parse_html(section.html()).text)
    assert "| ![img](http://x) <script>alert(1)</script>" in text
