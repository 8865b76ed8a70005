"""The findings report's sections, in the order a reader needs them: each a function of the
run's evidence, findings and verdicts to a Section (document blocks), displayed by
``notebooks/findings_report.ipynb`` one per cell. Pure.

First what a manager reads in ten seconds (a dated title, the status banner, three to five
plain lines: what is broken, who is affected, what to do), then the contents, each finding
once in full (everything else links to it), the next steps, the changes since the previous
run, the charts, and the reference parts (``appendix``). Findings are rendered from what they
carry and from the diagnosis's catalogue, never from a list of ids kept here.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

from kiloscribe_lab.diagnosis import CATALOGUE, TargetVerdict, overall
from kiloscribe_lab.names import FindingId, OverallStatus, ProbeName, Severity, Verdict
from kiloscribe_lab.report import charts, lifetime, vantages
from kiloscribe_lab.report.appendix import (
    ENDPOINTS,
    INFRASTRUCTURE,
    PROBE_KINDS,
    RERUN,
    TEST_DETAILS,
    endpoints_section,
    families,
    family_anchor,
    family_title,
    infrastructure_section,
    row_anchor,
    row_name,
    test_details_section,
)
from kiloscribe_lab.report.document import (
    Badge,
    Banner,
    Block,
    Contents,
    Details,
    Entry,
    Heading,
    Inline,
    Link,
    ListBlock,
    Para,
    Section,
    Span,
    Table,
    Text,
    Tone,
    anchor,
    github_slug,
    rich,
)
from kiloscribe_lab.report.formatting import display_name, labels_for, ms_text, pct_text, short_name
from kiloscribe_lab.report.rundata import RunData
from kiloscribe_lab.report.summary import SUCCESS_MOVE_PP, Comparison, FindingRef, Move
from kiloscribe_lab.results import Finding, ProbeResult

__all__ = [
    "PARTS",
    "PROBE_KINDS",
    "changes_section",
    "charts_section",
    "contents_section",
    "endpoints_section",
    "headline",
    "infrastructure_section",
    "lifetime_section",
    "recommendations_section",
    "report_title",
    "root_cause_section",
    "summary_section",
    "targets_section",
    "test_details_section",
    "title_section",
    "vantages_section",
]

SUMMARY = "Summary"
TARGETS = "Targets"
ROOT_CAUSE = "Root Cause Analysis"
RECOMMENDATIONS = "Recommendations"
CHANGES = "Changes since the previous run"
LIFETIME = "Connection lifetime"
CHARTS = "Charts"
VANTAGES = vantages.VANTAGES
# The report's parts, in its order: the contents list them, each section opens with its own.
PARTS: tuple[str, ...] = (
    SUMMARY,
    TARGETS,
    ROOT_CAUSE,
    RECOMMENDATIONS,
    CHANGES,
    LIFETIME,
    CHARTS,
    VANTAGES,
    ENDPOINTS,
    INFRASTRUCTURE,
    TEST_DETAILS,
)
EVIDENCE_SHOWN = 6  # evidence links per finding; the rest are counted ("and N more")
# The document's tones are named after what they show: each status, severity and verdict its own.
STATUS_TONES: dict[str, Tone] = {
    OverallStatus.DOWN: "down",
    OverallStatus.CRITICAL: "critical",
    OverallStatus.DEGRADED: "degraded",
    OverallStatus.HEALTHY: "healthy",
}
SEVERITY_TONES: dict[str, Tone] = {
    Severity.CRITICAL: "critical",
    Severity.WARNING: "warning",
    Severity.INFO: "info",
}
VERDICT_TONES: dict[str, Tone] = {
    Verdict.DOWN: "down",
    Verdict.DEGRADED: "degraded",
    Verdict.HEALTHY: "healthy",
}


def part_anchor(title: str) -> str:
    """A part's anchor: what Markdown viewers make of its heading, so both outputs agree."""
    return github_slug(title)


def finding_anchor(finding_id: str) -> str:
    return anchor("finding", finding_id)


def _sorted_findings(findings: Iterable[Finding]) -> list[Finding]:
    return sorted(findings, key=lambda f: -f.severity.rank)


def _is_reassurance(f: Finding) -> bool:
    return f.severity is Severity.INFO


def _first_sentence(text: str) -> str:
    m = re.match(r"(.+?[.!?])(?=\s+[A-Z(`']|\s*$)", text.strip(), flags=re.S)
    return m.group(1) if m else text.strip()


_URL_IN_PARENS = re.compile(r"\s*\((?:[a-z][a-z0-9+.-]*://[^\s()]*)\)")


def short_title(title: str) -> str:
    """A finding's title without the URLs in parentheses after the names (the finding has them)."""
    return _URL_IN_PARENS.sub("", title).strip()


def _finding_link(f: Finding) -> Link:
    return Link(short_title(f.title), finding_anchor(f.id))


def _joined(items: Sequence[Inline], sep: str = "; ") -> list[Inline]:
    out: list[Inline] = []
    for i, item in enumerate(items):
        out += [sep] if i else []
        out.append(item)
    return out


def _names(items: Sequence[str]) -> str:
    items = list(items)
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


# --- the first screen -------------------------------------------------------------------------


def run_date(run: RunData) -> str:
    """The run's date (UTC), from when it started, else its directory's name."""
    for text in (run.started_at or "", run.run_dir.name):
        if re.match(r"\d{4}-\d{2}-\d{2}", text):
            return text[:10]
    return "undated"


def report_title(run: RunData) -> str:
    """The title of the page and of its <h1>: what was investigated, and when."""
    title, day = run.title or "Findings report", run_date(run)
    return title if day in title else f"{title} — {day}"


def _when(stamp: str) -> str:
    """2026-11-26T05:51:00.000Z -> 2026-11-26 05:51 UTC."""
    m = re.match(r"(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2})", stamp)
    return f"{m.group(1)} {m.group(2)} UTC" if m else stamp


def title_section(run: RunData) -> Section:
    """The dated title and what run it describes."""
    facts = []
    if run.source:
        facts.append(f"Source {run.source}")
    if run.started_at:
        facts.append(f"started {_when(run.started_at)}")
    if run.finished_at:
        facts.append(f"finished {_when(run.finished_at)}")
    if run.networks:
        facts.append("networks " + ", ".join(run.networks))
    if run.matrix:
        facts.append(f"{len(run.matrix)} notebook runs")
    title, day = report_title(run), run_date(run)
    head, _, tail = title.partition(day)
    # The date never breaks at its hyphens on a phone.
    text: Text = (head, Span(day, "nowrap"), tail) if day in title else title
    blocks: list[Block] = [Heading(1, text)]
    if facts:
        blocks.append(Para(" · ".join(facts), cls="meta"))
    return Section("title", tuple(blocks))


def _banner(findings: Sequence[Finding], verdicts: Sequence[TargetVerdict], run: RunData | None) -> Banner:
    status, _ = overall(findings, verdicts)
    counts = Counter(f.severity for f in findings)
    parts = []
    for severity, word in ((Severity.CRITICAL, "critical"), (Severity.WARNING, "warning")):
        if counts[severity]:
            parts.append(
                f"{counts[severity]} {word}" + ("s" if word == "warning" and counts[severity] > 1 else "")
            )
    what = ", ".join(parts) if parts else "no fault found"
    by_verdict = Counter(v.verdict for v in verdicts)
    if verdicts:
        what += " · targets: " + ", ".join(f"{by_verdict[v]} {v.value}" for v in Verdict if by_verdict[v])
    tone = STATUS_TONES.get(status, "incomplete")
    word = status.upper()
    if run is not None and (run.failed_runs or run.failures):
        what += " · evidence incomplete"
    if not verdicts and not findings:
        tone, word = "incomplete", "NO EVIDENCE"
    return Banner(tone, word, what, part_anchor(SUMMARY))


def _affected(
    verdicts: Sequence[TargetVerdict], summary: Mapping[str, object] | None, names: Mapping[str, str]
) -> Text:
    def label(v: TargetVerdict) -> str:
        return v.label or short_name(v.target, names)

    down = [label(v) for v in verdicts if v.verdict is Verdict.DOWN]
    degraded = [label(v) for v in verdicts if v.verdict is Verdict.DEGRADED]
    healthy = [label(v) for v in verdicts if v.verdict is Verdict.HEALTHY]
    _, networks, grid = charts.success_grid(summary or {})
    low = sorted(
        ((k, r) for k, r in grid.items() if r.rate is not None and r.rate < 1),
        key=lambda x: (x[1].rate or 0.0, x[0]),
    )
    if not down and not degraded:
        counted = sum(r.attempts for r in grid.values())
        tried = (
            f" ({counted} connects on {len(networks)} network{'s' if len(networks) != 1 else ''})"
            if counted
            else ""
        )
        return (Span("Who is affected: ", "b"), f"nobody — every target connects{tried}.")
    who = []
    if down:
        who.append(f"anyone reaching {_names(down)} (down)")
    if degraded:
        who.append(f"clients of {_names(degraded)} (degraded)")
    text = "; ".join(who)
    if low:
        worst = [f"{t} on {n}, {r.successes} of {r.attempts} connects worked" for (t, n), r in low[:2]]
        text += " — worst: " + "; ".join(worst)
    if healthy:
        text += f". Fine: {_names(healthy)}"
    return (Span("Who is affected: ", "b"), text + ".")


def headline(
    findings: Sequence[Finding],
    verdicts: Sequence[TargetVerdict],
    run: RunData | None = None,
    summary: Mapping[str, object] | None = None,
    *,
    labels: Mapping[str, str] | None = None,
) -> list[Text]:
    """Three to five plain lines, what a manager reads first: what is broken, who is affected,
    what to do first, and (when there is room) what is incomplete and what is not a fault."""
    names = {**(run.labels if run else {}), **(labels or {})}
    ordered = _sorted_findings(findings)
    critical = [f for f in ordered if f.severity is Severity.CRITICAL]
    warnings = [f for f in ordered if f.severity is Severity.WARNING]
    fine = [f for f in ordered if _is_reassurance(f)]
    faults = critical + warnings
    lines: dict[str, Text] = {}
    if critical:
        lines["broken"] = (Span("What is broken: ", "b"), *_joined([_finding_link(f) for f in critical]), ".")
    elif warnings:
        lines["broken"] = (Span("What is wrong: ", "b"), *_joined([_finding_link(f) for f in warnings]), ".")
    elif any(v.verdict is not Verdict.HEALTHY for v in verdicts):
        lines["broken"] = (
            Span("What is broken: ", "b"),
            "no finding names a cause, but some targets are not healthy: see ",
            Link(TARGETS, part_anchor(TARGETS)),
            ".",
        )
    elif verdicts:
        lines["broken"] = (Span("What is broken: ", "b"), "nothing — Socket.IO works on every target tested.")
    else:
        lines["broken"] = (Span("What is broken: ", "b"), "unknown — no target was probed.")
    if verdicts:
        lines["affected"] = _affected(verdicts, summary, names)
    if faults:
        top = faults[0]
        lines["do"] = (
            Span("Do first: ", "b"),
            *rich(_first_sentence(top.recommendation)),
            " (",
            Link(f"all {len(faults) + 1} next steps", part_anchor(RECOMMENDATIONS)),
            ").",
        )
    else:
        lines["do"] = (
            Span("What to do: ", "b"),
            "nothing now; rerun this report on a schedule and compare the runs.",
        )
    if run is not None and (run.failed_runs or run.failures):
        failed = run.failed_runs
        what = []
        if failed:
            first = failed[0]
            what.append(
                f"{len(failed)} of {len(run.matrix)} notebook runs did not finish ({first.id}: "
                f"{(first.error or first.status)[:120]}"
                + (f"; and {len(failed) - 1} more" if len(failed) > 1 else "")
                + ")"
            )
        if run.failures:
            what.append(f"{len(run.failures)} file(s) could not be read")
        lines["incomplete"] = (
            Span("Evidence incomplete: ", "b"),
            "; ".join(what) + " — their checks are missing (",
            Link("which and why", part_anchor(ENDPOINTS)),
            ").",
        )
    if critical and warnings:
        lines["also"] = (Span("Also: ", "b"), *_joined([_finding_link(f) for f in warnings]), ".")
    if fine:
        lines["fine"] = (
            Span("Not faults: ", "b"),
            f"{len(fine)} expected answer{'s' if len(fine) > 1 else ''} — ",
            *_joined([_finding_link(f) for f in fine]),
            ".",
        )
    # The most important five, then in reading order.
    keep = [k for k in ("broken", "affected", "do", "incomplete", "also", "fine") if k in lines][:5]
    order = ("broken", "also", "affected", "do", "incomplete", "fine")
    return [lines[k] for k in order if k in keep]


def summary_section(
    findings: Sequence[Finding],
    target_verdicts: Sequence[TargetVerdict],
    run: RunData | None = None,
    summary: Mapping[str, object] | None = None,
    *,
    labels: Mapping[str, str] | None = None,
) -> Section:
    """The status banner and the three to five lines under it."""
    blocks: list[Block] = [
        _banner(findings, target_verdicts, run),
        ListBlock(headline(findings, target_verdicts, run, summary, labels=labels), cls="headline"),
    ]
    return Section("summary", tuple(blocks))


def contents_section(findings: Sequence[Finding], results: Sequence[ProbeResult]) -> Section:
    """The table of contents: every part, each finding, each probe family of the appendix."""
    children: dict[str, tuple[Entry, ...]] = {
        ROOT_CAUSE: tuple(
            Entry(short_title(f.title), finding_anchor(f.id)) for f in _sorted_findings(findings)
        ),
        TEST_DETAILS: tuple(Entry(family_title(p), family_anchor(p)) for p in families(results)),
        ENDPOINTS: (Entry("Rerun these checks", RERUN),),
    }
    entries = tuple(Entry(p, part_anchor(p), children.get(p, ())) for p in PARTS)
    return Section("contents", (Contents(entries),))


def targets_section(
    target_verdicts: Sequence[TargetVerdict],
    summary: Mapping[str, object] | None = None,
    *,
    labels: Mapping[str, str] | None = None,
) -> Section:
    """One line per target: its verdict, the connects that worked per network, and why."""
    names = dict(labels or {})
    blocks: list[Block] = [Heading(2, TARGETS, part_anchor(TARGETS))]
    if not target_verdicts:
        blocks.append(Para("No target was probed: there is no verdict to give."))
        return Section("targets", tuple(blocks))
    _, networks, grid = charts.success_grid(summary or {})
    keys = _summary_keys(summary or {})
    rows: list[Sequence[Text]] = []
    for v in target_verdicts:
        key = keys.get(v.target) or v.label or short_name(v.target, names)
        rates: list[Inline] = []
        for n in networks:
            if (key, n) in grid:
                rates += [" · "] if rates else []
                rates.append(Span(f"{n} {grid[(key, n)].successes}/{grid[(key, n)].attempts}", "nowrap"))
        rows.append(
            (
                v.label or short_name(v.target, names),
                Badge(v.verdict.value, VERDICT_TONES.get(v.verdict.value, "neutral")),
                tuple(rates) or "—",
                v.sentence,
                Span(v.target, "code"),
            )
        )
    blocks.append(Table(["Target", "Verdict", "Connects that worked", "Why", "URL"], rows))
    return Section("targets", tuple(blocks))


def _summary_keys(summary: Mapping[str, object]) -> dict[str, str]:
    """URL -> the summary's key for it."""
    targets = summary.get("targets")
    out: dict[str, str] = {}
    if isinstance(targets, Mapping):
        for key, entry in targets.items():
            if isinstance(entry, Mapping) and entry.get("url"):
                out[str(entry["url"])] = str(key)
    return out


# --- each finding, once in full ---------------------------------------------------------------


def _evidence(f: Finding, by_ref: Mapping[str, ProbeResult], names: Mapping[str, str]) -> Text:
    links: list[Inline] = []
    for ref in f.evidence[:EVIDENCE_SHOWN]:
        r = by_ref.get(ref)
        if r is None:
            links.append(Span(ref, "code"))  # a result this report does not hold
        else:
            links.append(Link(row_name(r, names), row_anchor(ref), family_anchor(r.probe)))
    out: list[Inline] = [
        f"Evidence ({len(f.evidence)} result{'s' if len(f.evidence) != 1 else ''}): ",
        *_joined(links, ", "),
    ]
    rest = f.evidence[EVIDENCE_SHOWN:]
    if rest:
        probes = list(dict.fromkeys(by_ref[r].probe for r in rest if r in by_ref))
        out.append(f", and {len(rest)} more")
        if probes:
            out += [" in ", *_joined([Link(family_title(p), family_anchor(p)) for p in probes], ", ")]
    return tuple(out)


def root_cause_section(
    findings: Sequence[Finding],
    results: Sequence[ProbeResult] = (),
    *,
    labels: Mapping[str, str] | None = None,
) -> Section:
    """Each finding in full: what it means, what was seen, what to do, whom it affects, and the
    evidence, linked to the rows of the appendix it names."""
    names = labels_for(results, labels)
    by_ref: dict[str, ProbeResult] = {}
    for r in results:
        by_ref.setdefault(r.ref, r)
    blocks: list[Block] = [Heading(2, ROOT_CAUSE, part_anchor(ROOT_CAUSE))]
    if not findings:
        blocks.append(Para("No finding: the probes found nothing to explain."))
        return Section("root cause", tuple(blocks))
    faults = [f for f in _sorted_findings(findings) if not _is_reassurance(f)]
    fine = [f for f in _sorted_findings(findings) if _is_reassurance(f)]
    if not faults:
        blocks.append(Para("No fault was found: what failed is expected behaviour, explained below."))
    for heading, group in (("Root causes", faults), ("Expected behaviour, not faults", fine)):
        if not group:
            continue
        blocks.append(Heading(3, heading))
        for f in group:
            sev = f.severity.value
            blocks.append(
                Heading(
                    4,
                    (Badge(sev.capitalize(), SEVERITY_TONES.get(sev, "neutral")), " ", *rich(f.title)),
                    finding_anchor(f.id),
                )
            )
            entry = CATALOGUE.get(FindingId(f.id)) if f.id in set(FindingId) else None
            if entry is not None:
                blocks.append(Para((Span("What it means: ", "b"), *rich(entry.means))))
            blocks.append(Para((Span("What was seen: ", "b"), *rich(f.summary))))
            blocks.append(Para((Span("What to do: ", "b"), *rich(f.recommendation))))
            facts: list[Text] = []
            if f.targets:
                facts.append("Affects: " + ", ".join(display_name(t, names) for t in f.targets))
            if f.evidence:
                facts.append(_evidence(f, by_ref, names))
            facts.append(("Finding id: ", Span(f.id, "code")))
            blocks.append(ListBlock(facts))
    return Section("root cause", tuple(blocks))


# --- what to do -------------------------------------------------------------------------------

GENERIC_ADVICE = (
    "Monitor the Socket.IO connect success rate per backend and per transport (WebSocket and "
    "polling), not only at the balancer: one dead backend out of three shows as a third of "
    "connects failing there, and as one user's timeouts.",
    "Alert on 5xx at the edge and at the balancer: 502/503/504 mean an upstream is down or stalled.",
    "Give the balancer active health checks (Caddy: `health_uri /socket.io/?EIO=4&transport=polling`) "
    "so it stops routing to a dead backend by itself.",
    "Test with a Socket.IO client (`kiloscribe-lab probe`), not with plain WebSocket tools such as "
    "wscat or curl at /: the server speaks Socket.IO, and those tools fail there by design.",
    "Rerun this report after every change and compare it with the previous one "
    "(`kiloscribe-lab report --compare PREVIOUS_REPORT_DIR`).",
)


def recommendations_section(findings: Sequence[Finding], run: RunData | None = None) -> Section:
    """Numbered next steps from the runs that failed and the critical and warning findings (each
    linked to the finding that says why in full); long-term advice after them."""
    ordered = _sorted_findings(findings)
    fixes = [f for f in ordered if not _is_reassurance(f)]
    later = [f for f in ordered if _is_reassurance(f)]
    steps: list[Text] = []
    if run is not None and run.failed_runs:
        failed = ", ".join(m.id for m in run.failed_runs)
        steps.append(
            f"Fix the notebook runs that did not finish ({failed}) and rerun: their evidence is missing."
        )
    for f in fixes:
        sev = f.severity.value
        steps.append(
            (
                Badge(sev.capitalize(), SEVERITY_TONES.get(sev, "neutral")),
                " ",
                *rich(_first_sentence(f.recommendation)),
                " — ",
                Link(f"why: {short_title(f.title)}", finding_anchor(f.id)),
            )
        )
    if fixes:
        steps.append("Rerun the report and compare it with this one to confirm the fix.")
    else:
        steps.append("Nothing to fix now; keep running the probes on a schedule and compare the runs.")
    blocks: list[Block] = [
        Heading(2, RECOMMENDATIONS, part_anchor(RECOMMENDATIONS)),
        Heading(3, "Next steps"),
        ListBlock(steps, ordered=True, cls="steps"),
        Heading(3, "Long-term"),
        ListBlock(
            [
                (
                    Link(short_title(f.title), finding_anchor(f.id)),
                    " — ",
                    *rich(_first_sentence(f.recommendation)),
                )
                for f in later
            ]
            + [rich(a) for a in GENERIC_ADVICE],
            ordered=True,
        ),
    ]
    return Section("recommendations", tuple(blocks))


# --- changes since the previous run ------------------------------------------------------------

TESTS_USED = (
    "a change is called only when it is beyond sampling noise: Fisher's exact test (two-sided) on "
    "the connects that worked, the Mann–Whitney U test on the handshake latencies, every p-value "
    "Holm-adjusted over all the numbers compared, α = 0.05; and only when it is large enough to "
    f"matter ({SUCCESS_MOVE_PP:.0f} points of success; 50 % and 20 ms of p50 latency)"
)


def _counts(m: Move, before: bool) -> str:
    if m.metric == "success":
        ok, n = (m.ok_before, m.n_before) if before else (m.ok_after, m.n_after)
        return f"{pct_text(m.before if before else m.after)} ({ok}/{n})"
    value = m.before if before else m.after
    return f"{ms_text(value)} ms (n={m.n_before if before else m.n_after})"


def _change(m: Move) -> str:
    return f"{100 * m.delta:+.0f} points" if m.metric == "success" else f"{m.delta:+.0f} ms"


def _p(value: float) -> str:
    return "< 0.001" if value < 0.001 else f"{value:.3f}"


def _moves_table(moves: Sequence[Move]) -> Table:
    return Table(
        ["Target", "Network", "Measure", "Before", "After", "Change", "p (adjusted)"],
        [
            (
                m.target,
                m.network,
                "connects that worked" if m.metric == "success" else "p50 handshake",
                _counts(m, True),
                _counts(m, False),
                _change(m),
                _p(m.p_adjusted),
            )
            for m in moves
        ],
    )


def changes_section(comparison: Comparison | None) -> Section:
    """New and resolved findings, and the numbers that changed beyond sampling noise."""
    blocks: list[Block] = [Heading(2, CHANGES, part_anchor(CHANGES))]
    if comparison is None or comparison.first_run:
        blocks.append(Para("This is the first run: there is no previous report to compare with."))
        return Section("changes", tuple(blocks))
    c = comparison
    prev = c.previous_run
    what = ", ".join(str(prev[k]) for k in ("title", "started_at") if prev.get(k))
    blocks.append(Para("Compared with the previous run" + (f" ({what})" if what else "") + "."))
    if c.status_before != c.status_after:
        blocks.append(Para(("Status: ", Span(f"{c.status_before} → {c.status_after}", "b"), ".")))
    else:
        blocks.append(Para(f"Status unchanged: {c.status_after}."))

    def refs(fs: Sequence[FindingRef], linked: bool) -> ListBlock:
        return ListBlock(
            [
                (
                    Badge(f.severity.capitalize() or "Finding", SEVERITY_TONES.get(f.severity, "neutral")),
                    " ",
                    Link(short_title(f.title), finding_anchor(f.id)) if linked else short_title(f.title),
                    " (",
                    Span(f.id, "code"),
                    ")",
                )
                for f in fs
            ]
        )

    if c.new_findings:
        blocks += [Heading(3, "New findings"), refs(c.new_findings, True)]
    if c.resolved_findings:
        blocks += [Heading(3, "Resolved findings"), refs(c.resolved_findings, False)]
    if not c.new_findings and not c.resolved_findings:
        blocks.append(Para("The same findings as before."))
    moved = [*c.success_moves, *c.latency_moves]
    if moved:
        blocks += [Heading(3, "Numbers that changed"), _moves_table(moved)]
    elif c.compared:
        blocks.append(
            Para(
                (
                    Span("No significant change", "b"),
                    f" in the {len(c.compared)} success rates and latencies compared with the previous run.",
                )
            )
        )
    else:
        blocks.append(
            Para("No number could be compared: the runs share no target and network with enough samples.")
        )
    blocks.append(
        Para(
            f"How: {TESTS_USED}."
            + (f" {c.untested} number(s) had too few samples to test." if c.untested else ""),
            cls="note",
        )
    )
    if c.compared:
        blocks.append(
            Details(f"Every number compared ({len(c.compared)})", (_moves_table(c.compared),), "changes-all")
        )
    if c.targets_added:
        blocks.append(Para("Targets new in this run: " + ", ".join(c.targets_added) + "."))
    if c.targets_removed:
        blocks.append(Para("Targets no longer tested: " + ", ".join(c.targets_removed) + "."))
    return Section("changes", tuple(blocks))


# --- connection lifetime ------------------------------------------------------------------------


def lifetime_section(
    results: Sequence[ProbeResult], findings: Sequence[Finding], *, labels: Mapping[str, str] | None = None
) -> Section:
    """What the slow probes (``--deep``) saw: how long held sessions lived and how they ended,
    their heartbeats, the largest message that passed; the findings drawn from them linked."""
    blocks: list[Block] = [Heading(2, LIFETIME, part_anchor(LIFETIME))]
    rows = lifetime.lifetimes(results, labels=labels)
    if not rows:
        blocks.append(
            Para(
                rich(
                    "Not measured: this run had no slow probes (`--deep`; the report runs them unless told "
                    "`--no-deep` or `deep = false`). Idle cuts, late heartbeats and message limits are "
                    "invisible to the other probes."
                )
            )
        )
        return Section("lifetime", tuple(blocks))
    slow = {r.ref for r in results if r.probe in (ProbeName.HOLD, ProbeName.PAYLOAD)}
    drawn = [f for f in _sorted_findings(findings) if set(f.evidence) & slow]
    if drawn:
        blocks.append(Para(("Found from these sessions: ", *_joined([_finding_link(f) for f in drawn]))))
    else:
        # A session that could not be held (refused, lost to another backend) or a message that
        # could not be tried proves nothing about idle cuts or limits: say so, not "all well".
        untested = [r for r in rows if r.cut or r.lived_s is None or not r.largest_passed]
        if untested:
            blocks.append(
                Para(
                    f"No idle cut, late heartbeat or message limit was found, but {len(untested)} of "
                    f"{len(rows)} sessions could not be held or sent a message: what stopped them is "
                    "another fault (see Root Cause Analysis), and over them these faults are not ruled out."
                )
            )
        else:
            blocks.append(
                Para(
                    "Every held session outlived its heartbeat on time and every message up to an "
                    "inscription of the users' file size passed: nothing to fix here."
                )
            )
    blocks.append(lifetime.lifetime_table(rows))
    chart = lifetime.lifetime_chart(rows)
    if chart is not None:
        blocks.append(chart)
    return Section("lifetime", tuple(blocks))


# --- charts -------------------------------------------------------------------------------------


def charts_section(
    summary: Mapping[str, object], results: Sequence[ProbeResult], *, labels: Mapping[str, str] | None = None
) -> Section:
    """The success rates and the latencies, each with its text alternative. The notebook writes
    the PNGs beside findings.md (``Section.figures``)."""
    return Section(
        "charts",
        (
            Heading(2, CHARTS, part_anchor(CHARTS)),
            charts.success_heatmap(summary),
            charts.latency_chart(results, labels=labels),
            Details("Latency, in numbers", (charts.latency_table(results, labels=labels),), "latency-data"),
        ),
    )


# --- where the probes ran ---------------------------------------------------------------------


def vantages_section(
    run: RunData | None,
    results: Sequence[ProbeResult],
    findings: Sequence[Finding],
    *,
    labels: Mapping[str, str] | None = None,
) -> Section:
    """Per vantage × target: connects that worked, p50/p95, the faults seen there (``vantages``)."""
    return vantages.section(
        run, results, findings, labels=labels, anchor=part_anchor(VANTAGES), link=_finding_link
    )
