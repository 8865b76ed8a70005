"""What the report's unit tests share: run directories built from the recorded lab fixtures, every
section of a run, the checks that rendered output is inert, and hostile evidence."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import mistune

from kiloscribe_lab.diagnosis import diagnose, verdicts
from kiloscribe_lab.names import Outcome, ProbeName, Severity
from kiloscribe_lab.report.document import Section
from kiloscribe_lab.report.rundata import RunData
from kiloscribe_lab.report.sections import (
    changes_section,
    charts_section,
    contents_section,
    endpoints_section,
    infrastructure_section,
    lifetime_section,
    recommendations_section,
    root_cause_section,
    summary_section,
    targets_section,
    test_details_section,
    title_section,
    vantages_section,
)
from kiloscribe_lab.report.summary import compare, summarize
from kiloscribe_lab.results import Finding, ProbeResult, Timings, read_jsonl, write_jsonl

FIXTURES = Path(__file__).parents[1] / "fixtures"
KEY_ENV = "KILOSCRIBE_API_KEY"
PNG = b"\x89PNG"
FAILED_ERROR = "kernel died while probing: PapermillExecutionError <b>boom</b>"


def fixture(name: str) -> list[ProbeResult]:
    text = (FIXTURES / f"{name}.jsonl").read_text(encoding="utf-8")
    return [r for r in read_jsonl(text) if isinstance(r, ProbeResult)]


def make_run_dir(root: Path, results: list[ProbeResult], *, failed: bool = True, **meta: Any) -> Path:
    """A run directory as the pipeline writes it: one results file per endpoint, run.json."""
    (root / "results").mkdir(parents=True, exist_ok=True)
    groups: dict[str, list[ProbeResult]] = {}
    for r in results:
        groups.setdefault(str(r.detail.get("label") or "api"), []).append(r)
    matrix, endpoints = [], []
    for label, group in groups.items():
        run_id = re.sub(r"[^A-Za-z0-9-]", "_", label) + "-direct"
        (root / "results" / f"{run_id}.jsonl").write_text(write_jsonl(group), encoding="utf-8")
        url = group[0].target
        endpoints.append({"label": None if label == "api" else label, "url": url})
        matrix.append(
            {
                "id": run_id,
                "label": None if label == "api" else label,
                "endpoint": url,
                "network": "direct",
                "status": "ok",
                "error": None,
                "seconds": 1.5,
                "kernel_start_s": 0.7,
                "results": f"results/{run_id}.jsonl",
                "notebook": f"notebooks/{run_id}.ipynb",
            }
        )
    if failed:
        matrix.append(
            {
                "id": "inscribe-2-mobile",
                "label": "inscribe-2",
                "endpoint": groups.get("inscribe-2", results)[0].target,
                "network": "mobile",
                "status": "timeout",
                "error": FAILED_ERROR,
                "seconds": 60.0,
                "kernel_start_s": None,
                "results": "results/inscribe-2-mobile.jsonl",
                "notebook": "notebooks/inscribe-2-mobile.ipynb",
            }
        )
    run = {
        "title": "kiloscribe-lab report 2026-11-26",
        "started_at": "2026-11-26T05:51:00.000Z",
        "finished_at": "2026-11-26T05:52:10.000Z",
        "source": "lab:incident",
        "api_key_env": KEY_ENV,
        "networks": ["direct", "mobile"],
        "endpoints": endpoints,
        "matrix": matrix,
        "timings": {"total_s": 70.0},
        "compare_dir": None,
        "notes": ["lab started for this report"],
        **meta,
    }
    (root / "run.json").write_text(json.dumps(run), encoding="utf-8")
    return root


def all_sections(run: RunData) -> dict[str, Section]:
    results = list(run.results)
    findings = diagnose(results, run.api_key_env)
    tv = verdicts(results)
    labels = run.labels
    summary = summarize(results, findings, tv, labels=labels)
    return {
        "title": title_section(run),
        "summary": summary_section(findings, tv, run, summary, labels=labels),
        "contents": contents_section(findings, results),
        "targets": targets_section(tv, summary, labels=labels),
        "root_cause": root_cause_section(findings, results, labels=labels),
        "recommendations": recommendations_section(findings, run),
        "changes": changes_section(compare(summary, None)),
        "lifetime": lifetime_section(results, findings, labels=labels),
        "charts": charts_section(summary, results, labels=labels),
        "vantages": vantages_section(run, results, findings, labels=labels),
        "endpoints": endpoints_section(run),
        "infrastructure": infrastructure_section(results, labels=labels),
        "details": test_details_section(results, labels=labels, ca_bundle=run.ca_bundle),
    }


# --- what rendered output may contain -----------------------------------------------------

ALLOWED_TAGS = {
    "div", "h1", "h2", "h3", "h4", "h5", "h6", "p", "ul", "ol", "li", "table", "thead", "tbody",
    "tr", "th", "td", "pre", "code", "strong", "em", "br", "a", "span", "details", "summary", "nav",
    "figure", "figcaption", "img", "blockquote",
}  # fmt: skip
# Attributes the renderers write, each with what its value may be: a class of ours, an anchor
# made by document.anchor, a link to one, an embedded PNG. Nothing a server sent fits these.
ANCHOR = r"[a-z][a-z0-9-]{0,95}"
ALLOWED_ATTRS = {
    "class": r"[a-z][a-z0-9 _-]*",
    "id": ANCHOR,
    "href": "#" + ANCHOR,
    "src": r"data:image/png;base64,[A-Za-z0-9+/=]+|findings_files/[a-z0-9-]+\.png",
    "alt": r"(?s).*",  # an attribute, escaped: its decoded value may hold anything
    "role": "status",
    "aria-label": "Contents",
    "style": "text-align:(left|right|center)",  # what a Markdown renderer makes of "---:"
}


class TagCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: set[str] = set()
        self.attrs: list[tuple[str, str | None]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.attrs += attrs

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse_html(markup: str) -> TagCollector:
    parser = TagCollector()
    parser.feed(markup)
    parser.close()
    return parser


def markdown_to_html(markdown: str) -> str:
    """A CommonMark renderer with GFM tables that passes raw HTML through, as Jupyter's does."""
    render = mistune.create_markdown(escape=False, plugins=["table", "strikethrough"])
    return str(render(markdown))


def assert_inert_html(markup: str) -> None:
    parsed = parse_html(markup)
    assert parsed.tags <= ALLOWED_TAGS, parsed.tags - ALLOWED_TAGS
    for name, value in parsed.attrs:
        assert name in ALLOWED_ATTRS, (name, value)
        assert re.fullmatch(ALLOWED_ATTRS[name], value or ""), (name, value)
    assert "<script" not in markup.lower()


def assert_inert_markdown(markdown: str) -> None:
    assert "<script" not in markdown.lower()
    # Preformatted blocks are HTML blocks: their content is not Markdown, only entities matter.
    pres = re.findall(r"^<pre><code>(.*?)</code></pre>$", markdown, flags=re.S | re.M)
    assert all("<" not in pre and ">" not in pre for pre in pres)
    outside = re.sub(r"^<pre><code>.*?</code></pre>$", "", markdown, flags=re.S | re.M)
    outside = re.sub(r"^(`{3,})\n.*?\n\1$", "", outside, flags=re.S | re.M)  # fenced code blocks
    # Our own code spans (`x`, `` a`b ``) and images of our own charts; what is left must have
    # every backtick escaped, and form no other image.
    outside = re.sub(r"(?<![\\`])(`+)(?!`)(.+?)(?<!`)\1(?!`)", "", outside)
    outside = re.sub(r"!\[(?:\\.|[^\]\n\\])*\]\(findings_files/[a-z0-9-]+\.png\)", "", outside)
    assert not re.search(r"(?<!\\)!\[", outside), "an image could be formed"
    # Links only to anchors of the page.
    assert all(re.fullmatch("#" + ANCHOR, t) for t in re.findall(r"(?<!\\)\]\(([^)]*)\)", outside)), outside
    assert not re.search(r"(?<!\\)`", outside), "a code span could be formed"
    # Every table row has exactly the header's cells: no "|" of a value splits a cell.
    for table in re.findall(r"(?:^\|.*\|$\n?)+", outside, flags=re.M):
        counts = {len(re.findall(r"(?<!\\)\|", line)) for line in table.splitlines()}
        assert len(counts) == 1, table
    # And what a Markdown renderer makes of it is inert too.
    assert_inert_html(markdown_to_html(markdown))


def plain(md: str) -> str:
    """Markdown with its backslash escapes undone, for 'contains' checks."""
    return re.sub(r"\\(.)", r"\1", md)


def both(section: Section) -> list[str]:
    return [section.html(), plain(section.markdown())]


# --- hostile evidence ---------------------------------------------------------------------

HOSTILE = [
    "<script>alert(1)</script>",
    "</td><td>injected",
    "| ![img](http://x) |",
    "`code` and ``more``",
    "*bold* _it_ # head [link](javascript:alert(1)) <img src=x onerror=alert(1)>",
    "line one\nline two\r\n- list\n# heading",
    "$x^2$ and \\* and &amp; and &lt;",
    "</pre></code><script>",
]
EVIL = " ".join(HOSTILE)


def hostile_results() -> list[ProbeResult]:
    detail = {
        "label": "<script>lab</script>|`x` $\\frac{1}{$ $",
        "command": "curl '<script>' | `rm -rf` ![img](http://x)\n",
    }
    common = {
        "headers": {
            "server": "<script>alert(1)</script>",
            "via": "1.1 Caddy</td><td>x",
            "cf-ray": "| ![img](http://x) `tick`",
            "cf-cache-status": EVIL,
            "x-lab-backend": "<script>backend</script>",
            "set-cookie-names": "<script>c</script>",
            "alt-svc": EVIL,
        },
        "timings": Timings(handshake=12.0, total=20.0),
    }
    target = "https://evil.example/<script>?a=|b|&c=`d`"
    return [
        ProbeResult(
            probe=ProbeName.HTTP_UPGRADE,
            variant="http1.1<script>",
            target=target,
            outcome=Outcome.UPSTREAM_ERROR,
            status=502,
            error=EVIL,
            detail={**detail, "status_line": EVIL, "alpn": "<script>h2</script>"},
            **common,
        ),
        ProbeResult(
            probe=ProbeName.SOCKETIO_CONNECT,
            variant="websocket:valid",
            target=target,
            outcome=Outcome.OK,
            status=101,
            detail={**detail, "backend": "<script>b</script>"},
            **common,
        ),
        ProbeResult(
            probe=ProbeName.STICKY_SESSION,
            variant="cookies",
            target=target,
            outcome=Outcome.SESSION_UNKNOWN,
            error=EVIL,
            detail={**detail, "backends": ["<script>one</script>", "| two |"], "opener": "`x`"},
            **common,
        ),
        ProbeResult(
            probe=ProbeName.DISCOVERY,
            target=target + "/api",
            outcome=Outcome.OK,
            detail={
                "url": EVIL,
                "command": EVIL,
                "servers": [
                    {"url": EVIL, "region": "<script>", "status": "|", "priority": "`", "activeJobs": 1}
                ],
                "recommended": EVIL,
                "problems": [EVIL],
                "chosen": EVIL,
            },
        ),
        ProbeResult(probe="<script>new_probe</script>", target=target, outcome=Outcome.OK, error=EVIL),
    ]


def hostile_findings() -> list[Finding]:
    return [
        Finding(
            id=f"id-{i}-<script>",
            severity=severity,
            title=EVIL,
            summary=EVIL,
            recommendation=EVIL + ". Second sentence <script>.",
            evidence=(EVIL, "ref|with|pipes"),
            targets=("https://evil.example/<script>?a=|b|&c=`d`", EVIL),
        )
        for i, severity in enumerate(Severity)
    ]
