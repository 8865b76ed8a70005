"""The findings report's sections: each a function of the run's evidence, findings and verdicts
to a Section (document blocks), displayed by ``notebooks/findings_report.ipynb`` under its heading.
Pure."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from kiloscribe_lab.diagnosis import TargetVerdict, Verdict, overall, path_works
from kiloscribe_lab.names import BACKEND_HEADERS, Outcome, ProbeName, Severity
from kiloscribe_lab.report.document import (
    Block,
    Heading,
    Inline,
    ListBlock,
    Para,
    Pre,
    Section,
    Span,
    Table,
    Text,
)
from kiloscribe_lab.report.formatting import clip, display_name, labels_for, ms_text, pct_text, short_name
from kiloscribe_lab.report.loose import as_float, as_items
from kiloscribe_lab.report.rundata import RunData, norm_url, targets_of
from kiloscribe_lab.report.summary import SUCCESS_MOVE_PP, Comparison, FindingRef
from kiloscribe_lab.results import Finding, ProbeResult

ICONS = {
    "critical": "🔴",
    "warning": "🟡",
    "info": "🔵",
    "down": "🔴",
    "degraded": "🟡",
    "healthy": "✅",
}
PROBE_KINDS: dict[str, tuple[str, str]] = {
    ProbeName.DISCOVERY: (
        "Server discovery",
        "GET /inscriptions/websocket-servers: the list the SDK picks its WebSocket server from.",
    ),
    ProbeName.HTTP_UPGRADE: (
        "WebSocket upgrade request at the URL as given (curl)",
        "The seed report's first test: curl sends Upgrade: websocket to the URL as given, over "
        "HTTP/1.1 and over HTTP/2. At / a 3xx is the site's redirect, not a failure; HTTP/2 forbids "
        "the Upgrade header (WebSocket over HTTP/2 needs extended CONNECT, RFC 8441).",
    ),
    ProbeName.WEBSOCKET_PLAIN: (
        "Plain WebSocket client (wscat)",
        "A plain WebSocket client at the URL as given, and at /socket.io/?EIO=4&transport=websocket. "
        "A Socket.IO server only accepts the second; failing at the URL as given is expected.",
    ),
    ProbeName.ENGINEIO_HANDSHAKE: (
        "Engine.IO handshake over HTTP long-polling",
        "GET /socket.io/?EIO=4&transport=polling must answer an Engine.IO v4 open packet 0{sid…}.",
    ),
    ProbeName.ENGINEIO_UPGRADE: (
        "Polling session upgraded to WebSocket",
        "What socket.io-client does by default: open a polling session, then upgrade it to "
        "WebSocket with the same sid. Behind a balancer this needs both requests on one backend.",
    ),
    ProbeName.SOCKETIO_CONNECT: (
        "Socket.IO connect, per transport and credential",
        "A Socket.IO client connect with the configured key (valid), a deliberately invalid key and "
        "no key. A refused invalid or missing key ('Invalid API key') is the expected answer: client "
        "and application talked. A refused valid key is not.",
    ),
    ProbeName.STICKY_SESSION: (
        "Sticky sessions (polling follow-ups)",
        "Open a polling session, then send follow-up requests on it, as a browser (returns the "
        "balancer's cookies) and as the Node SDK (drops them). Every follow-up must reach the "
        "backend that opened the session.",
    ),
    ProbeName.SDK_FLOW: (
        "The SDK's connection flow",
        "The SDK's own sequence (detectBestConnection, then connectWebSocket with its timers), "
        "replayed with the configured key.",
    ),
    ProbeName.CONNECT_STATS: (
        "Repeated connects",
        "The valid-key connect repeated, with backoff after failures: success rate and latency.",
    ),
}


def _sorted_findings(findings: Iterable[Finding]) -> list[Finding]:
    return sorted(findings, key=lambda f: -f.severity.rank)


def _first_sentence(text: str) -> str:
    m = re.match(r"(.+?[.!?])(?=\s+[A-Z(`']|\s*$)", text.strip(), flags=re.S)
    return m.group(1) if m else text.strip()


def title_section(run: RunData) -> Section:
    """The report's title and what run it describes."""
    facts = []
    if run.source:
        facts.append(f"source {run.source}")
    if run.started_at:
        facts.append(f"started {run.started_at}")
    if run.finished_at:
        facts.append(f"finished {run.finished_at}")
    if run.networks:
        facts.append("networks " + ", ".join(run.networks))
    blocks: list[Block] = [Heading(1, run.title or "Findings report")]
    if facts:
        text = "; ".join(facts)
        blocks.append(Para(text[:1].upper() + text[1:] + "."))
    return Section("title", tuple(blocks))


def summary_section(
    findings: Sequence[Finding],
    target_verdicts: Sequence[TargetVerdict],
    run: RunData | None = None,
    *,
    labels: Mapping[str, str] | None = None,
) -> Section:
    """The overall status, the key conclusions and one verdict per target with its sentence."""
    names = {**(run.labels if run else {}), **(labels or {})}
    status, sentence = overall(findings, target_verdicts)
    blocks: list[Block] = [
        Para((f"{ICONS.get(status, '⚪')} ", Span(f"Overall: {status.upper()}", "b"), " — ", sentence))
    ]
    ordered = _sorted_findings(findings)
    if ordered:
        blocks.append(
            ListBlock(
                [
                    (
                        f"{ICONS[f.severity.value]} ",
                        Span(f.severity.value.capitalize(), "b"),
                        ": " + f.title + (" (expected behaviour, not a fault)" if _is_reassurance(f) else ""),
                    )
                    for f in ordered
                ]
            )
        )
    else:
        blocks.append(Para("No finding: the probes found nothing to report."))
    if target_verdicts:
        blocks.append(
            Table(
                ["Target", "URL", "Verdict", "Why"],
                [
                    (
                        v.label or names.get(v.target) or v.target,
                        Span(v.target, "code"),
                        f"{ICONS.get(v.verdict.value, '')} {v.verdict.value}",
                        v.sentence,
                    )
                    for v in target_verdicts
                ],
            )
        )
    else:
        blocks.append(Para("No target was probed: there is no verdict to give."))
    if run is not None:
        problems = len(run.failed_runs) + len(run.failures)
        if problems:
            blocks.append(
                Para(
                    (
                        Span("Incomplete evidence: ", "b"),
                        f"{len(run.failed_runs)} notebook run(s) did not finish and "
                        f"{len(run.failures)} file(s) could not be read; see Tested Endpoints.",
                    )
                )
            )
        if run.notes:
            blocks.append(ListBlock([("Note: ", n) for n in run.notes]))
    return Section("summary", tuple(blocks))


def _is_reassurance(f: Finding) -> bool:
    return f.severity is Severity.INFO


def endpoints_section(run: RunData, results: Sequence[ProbeResult] | None = None) -> Section:
    """The tested endpoints and which notebook runs failed, and why; discovery's answer."""
    rs = list(run.results if results is None else results)
    labels = labels_for(rs, run.labels)
    apis = {r.target for r in rs if r.probe == ProbeName.DISCOVERY}
    probed = [t for t in targets_of(rs) if t not in apis]
    # The configured endpoints, then any target the results add (servers that discovery listed).
    rows: list[tuple[str, str]] = []
    seen: set[str] = set()
    for e in run.endpoints:
        key = norm_url(e.url)
        if key not in seen:
            seen.add(key)
            rows.append((e.url, e.label or labels.get(e.url) or ""))
    for m in run.matrix:
        key = norm_url(m.endpoint)
        if m.endpoint and key not in seen:
            seen.add(key)
            rows.append((m.endpoint, m.label or ""))
    for t in probed:
        if norm_url(t) not in seen:
            seen.add(norm_url(t))
            rows.append((t, labels.get(t, "")))

    table_rows: list[Sequence[Text]] = []
    for n, (url, label) in enumerate(rows, 1):
        key = norm_url(url)
        mine = [r for r in rs if norm_url(r.target) == key]
        runs = [m for m in run.matrix if norm_url(m.endpoint) == key]
        networks = list(dict.fromkeys([m.network for m in runs] + [r.network for r in mine]))
        counts = Counter(m.status for m in runs)
        run_text = ", ".join(f"{c} {s}" for s, c in sorted(counts.items())) or "—"
        configured = any(norm_url(e.url) == key for e in run.endpoints) or bool(runs)
        table_rows.append(
            (
                str(n),
                label or "—",
                Span(url, "code"),
                ", ".join(networks) or "—",
                run_text,
                str(len(mine)) + ("" if configured else " (found by discovery)"),
            )
        )
    blocks: list[Block] = []
    if table_rows:
        blocks.append(
            Table(["#", "Endpoint", "URL", "Networks", "Notebook runs", "Probe results"], table_rows)
        )
    else:
        blocks.append(Para("No endpoint was tested."))

    failed = run.failed_runs
    if failed:
        blocks.append(Heading(3, "Notebook runs that did not finish"))
        blocks.append(
            Para(
                f"{len(failed)} of {len(run.matrix)} notebook runs failed or timed out. Their probes are "
                "missing from this report; the findings are drawn from the other runs."
            )
        )
        blocks.append(
            Table(
                ["Run", "Endpoint", "Network", "Status", "Error", "Seconds"],
                [
                    (
                        Span(m.id, "code"),
                        (m.label + " " if m.label else "", Span(m.endpoint, "code")),
                        m.network,
                        m.status,
                        m.error or "(no error message)",
                        "—" if m.seconds is None else f"{m.seconds:.1f}",
                    )
                    for m in failed
                ],
            )
        )
    elif run.matrix:
        blocks.append(Para(f"All {len(run.matrix)} notebook runs finished."))
    if run.failures:
        blocks.append(Heading(3, "Files that could not be read"))
        blocks.append(ListBlock([(Span(f.path, "code"), ": " + f.error) for f in run.failures]))

    for r in (r for r in rs if r.probe == ProbeName.DISCOVERY):
        blocks += _discovery_blocks(r)
    return Section("endpoints", tuple(blocks))


def _discovery_blocks(r: ProbeResult) -> list[Block]:
    url = str(r.detail.get("url") or r.target)
    said = str(r.detail.get("status_line") or r.error or r.outcome.value)
    blocks: list[Block] = [
        Heading(3, "Server discovery"),
        Para(("GET ", Span(url, "code"), f" on {r.network}: ", said, f" ({r.outcome.value}).")),
    ]
    servers = [s for s in as_items(r.detail.get("servers")) if isinstance(s, Mapping)]
    if servers:
        blocks.append(
            Table(
                ["URL", "Region", "Status", "Priority", "Active jobs"],
                [
                    (
                        Span(str(s.get("url", "")), "code"),
                        str(s.get("region", "")),
                        str(s.get("status", "")),
                        str(s.get("priority", "")),
                        str(s.get("activeJobs", "")),
                    )
                    for s in servers
                ],
            )
        )
    facts: list[Text] = []
    if r.detail.get("recommended"):
        facts.append(("Recommended: ", Span(str(r.detail["recommended"]), "code")))
    if r.detail.get("chosen"):
        facts.append(("The SDK would connect to: ", Span(str(r.detail["chosen"]), "code")))
    facts += [("Problem: ", str(p)) for p in as_items(r.detail.get("problems"))]
    if facts:
        blocks.append(ListBlock(facts))
    if r.detail.get("command"):
        blocks += [Para("Rerun by hand:"), Pre(str(r.detail["command"]))]
    return blocks


def _expected(r: ProbeResult) -> str:
    """Why a failed outcome is the expected answer, not a fault ("" when it is not)."""
    if r.ok:
        return ""
    if r.probe == ProbeName.SOCKETIO_CONNECT and r.outcome is Outcome.AUTH_REJECTED and path_works(r):
        return "expected: the server refused the key in its own words"
    at_root = r.probe == ProbeName.HTTP_UPGRADE or (
        r.probe == ProbeName.WEBSOCKET_PLAIN and r.variant == "as-given"
    )
    if at_root and r.outcome is Outcome.REDIRECT:
        return "expected: the URL as given redirects; the socket is at /socket.io/"
    if at_root and r.outcome in {Outcome.PROTOCOL_MISMATCH, Outcome.HTTP_ERROR}:
        return "expected: not a Socket.IO request"
    return ""


def _note(r: ProbeResult) -> str:
    parts: list[str] = []
    if r.error:
        parts.append(r.error)
    elif r.detail.get("status_line") and not r.ok:
        parts.append(str(r.detail["status_line"]))
    if r.probe == ProbeName.STICKY_SESSION and r.detail.get("backends"):
        backends = ", ".join(str(b) for b in as_items(r.detail.get("backends")))
        parts.append(f"opened on {r.detail.get('opener') or '?'}, answered by {backends}")
    elif r.probe == ProbeName.CONNECT_STATS and r.detail.get("attempts") is not None:
        parts.append(
            f"{r.detail.get('successes')} of {r.detail.get('attempts')} ok, "
            f"p50 {ms_text(as_float(r.detail.get('p50_ms')))} ms, "
            f"p95 {ms_text(as_float(r.detail.get('p95_ms')))} ms"
        )
    elif r.detail.get("backend"):
        parts.append(f"backend {r.detail['backend']}")
    if r.detail.get("alpn") and r.probe == ProbeName.HTTP_UPGRADE:
        parts.append(f"ALPN {r.detail['alpn']}")
    if r.detail.get("stalled_during"):
        parts.append(f"stalled while {r.detail['stalled_during']}")
    return clip("; ".join(parts))


def test_details_section(
    results: Sequence[ProbeResult],
    *,
    labels: Mapping[str, str] | None = None,
    api_key_env: str | None = None,
) -> Section:
    """One table per probe kind, and under each the commands a reader can rerun by hand."""
    names = labels_for(results, labels)
    kinds = [k for k in PROBE_KINDS if k != ProbeName.DISCOVERY]
    kinds += [k for k in dict.fromkeys(r.probe for r in results) if k not in PROBE_KINDS]
    blocks: list[Block] = []
    for kind in kinds:
        mine = [r for r in results if r.probe == kind]
        if not mine:
            continue
        title, about = PROBE_KINDS.get(kind, (kind, ""))
        blocks.append(Heading(3, (title + " ", Span(kind, "code"))))
        if about:
            blocks.append(Para(about))
        rows: list[Sequence[Text]] = []
        for r in mine:
            expected = _expected(r)
            outcome: Text = ("✅ " if r.ok else "") + r.outcome.value + (" (expected)" if expected else "")
            note = "; ".join(p for p in (expected, _note(r)) if p)
            rows.append(
                (
                    short_name(r.target, names),
                    r.variant or "—",
                    r.network,
                    outcome,
                    str(r.status) if r.status is not None else "—",
                    ms_text(r.timings.handshake),
                    ms_text(r.timings.total),
                    note,
                )
            )
        blocks.append(
            Table(
                ["Target", "Variant", "Network", "Outcome", "HTTP", "Handshake ms", "Total ms", "Note"], rows
            )
        )
        commands = list(dict.fromkeys(str(r.detail["command"]) for r in mine if r.detail.get("command")))
        if commands:
            blocks += [Para("Rerun by hand:"), Pre("\n".join(commands))]
        else:
            targets = " ".join(dict.fromkeys(r.target for r in mine))
            key = f" --api-key-env {api_key_env}" if api_key_env else ""
            blocks += [Para("Rerun with the toolkit:"), Pre(f"kiloscribe-lab probe {targets}{key}")]
    if not blocks:
        blocks.append(Para("No probe result was recorded."))
    return Section("test details", tuple(blocks))


# Not a pytest test, whatever its name says (test modules import it).
setattr(test_details_section, "__test__", False)  # noqa: B010


@dataclass
class _Fingerprint:
    responses: int = 0
    servers: Counter[str] = field(default_factory=Counter)
    cf_ray: int = 0
    cf_cache: Counter[str] = field(default_factory=Counter)
    via: Counter[str] = field(default_factory=Counter)
    backends: set[str] = field(default_factory=set)
    backend_headers: set[str] = field(default_factory=set)
    cookies: set[str] = field(default_factory=set)
    alt_svc: Counter[str] = field(default_factory=Counter)
    alpn: Counter[str] = field(default_factory=Counter)
    tls: Counter[str] = field(default_factory=Counter)

    def add(self, r: ProbeResult) -> None:
        h = r.headers
        if h:
            self.responses += 1
        if h.get("server"):
            self.servers[h["server"]] += 1
        if "cf-ray" in h:
            self.cf_ray += 1
        if h.get("cf-cache-status"):
            self.cf_cache[h["cf-cache-status"]] += 1
        if h.get("via"):
            self.via[h["via"]] += 1
        if h.get("alt-svc"):
            self.alt_svc[h["alt-svc"]] += 1
        for name in BACKEND_HEADERS:
            if h.get(name):
                self.backend_headers.add(name)
                self.backends.add(h[name])
        for key in ("backend", "polling_backend", "websocket_backend"):
            if r.detail.get(key):
                self.backends.add(str(r.detail[key]))
        self.backends.update(str(b) for b in as_items(r.detail.get("backends")))
        if h.get("set-cookie-names"):
            self.cookies.update(c.strip() for c in h["set-cookie-names"].split(",") if c.strip())
        self.cookies.update(str(c) for c in as_items(r.detail.get("cookie_names")))
        if r.detail.get("alpn"):
            self.alpn[str(r.detail["alpn"])] += 1
        if r.detail.get("tls_version"):
            self.tls[str(r.detail["tls_version"])] += 1

    @property
    def cdn(self) -> bool:
        return self.cf_ray > 0 or any(s.lower() == "cloudflare" for s in self.servers)

    @property
    def caddy(self) -> bool:
        return any("caddy" in v.lower() for v in self.via) or any("caddy" in s.lower() for s in self.servers)


def _counted(c: Counter[str]) -> str:
    """Distinct header values with how often each was seen ("; " apart: values hold commas)."""
    return "; ".join(f"{k} (×{n})" if n > 1 else k for k, n in c.most_common()) or "—"


def _caddy_hops(via: Iterable[str]) -> int:
    return max((v.lower().count("caddy") for v in via), default=0)


def infrastructure_section(
    results: Sequence[ProbeResult], *, labels: Mapping[str, str] | None = None
) -> Section:
    """What the response headers say about the path: CDN, load balancer, backends, TLS."""
    names = labels_for(results, labels)
    prints: dict[str, _Fingerprint] = {}
    for r in results:
        prints.setdefault(r.target, _Fingerprint()).add(r)
    if not prints:
        return Section("infrastructure", (Para("No response was recorded: nothing to fingerprint."),))
    cdn = [t for t, p in prints.items() if p.cdn]
    caddy = [t for t, p in prints.items() if p.caddy]
    facts: list[Text] = []
    if cdn:
        cf_cache = Counter[str]()
        for t in cdn:
            cf_cache.update(prints[t].cf_cache)
        servers = Counter[str]()
        for t in cdn:
            servers.update(prints[t].servers)
        facts.append(
            (
                Span("CDN", "b"),
                ": a Cloudflare-like edge in front of "
                + ", ".join(display_name(t, names) for t in cdn)
                + f" (server: {_counted(servers)}; cf-ray on "
                + ", ".join(f"{prints[t].cf_ray} of {prints[t].responses}" for t in cdn)
                + f" responses; cf-cache-status: {_counted(cf_cache)}).",
            )
        )
    else:
        facts.append((Span("CDN", "b"), ": no CDN fingerprint (no server: cloudflare, no cf-ray)."))
    if caddy:
        cookies = sorted({c for t in prints for c in prints[t].cookies})
        hops = [f"{short_name(t, names)} ({n})" for t in caddy if (n := _caddy_hops(prints[t].via)) > 1]
        facts.append(
            (
                Span("Load balancer / proxy", "b"),
                ": Caddy in the path (via or server header) of "
                + ", ".join(short_name(t, names) for t in caddy)
                + ". "
                + (f"Caddy hops in one via header: {', '.join(hops)}. " if hops else "")
                + (
                    "Balancer cookies set: " + ", ".join(cookies) + "."
                    if cookies
                    else "No balancer cookie was seen."
                ),
            )
        )
    else:
        facts.append((Span("Load balancer / proxy", "b"), ": no via header naming Caddy was seen."))
    answered = [(t, p) for t, p in prints.items() if p.backends]
    if answered:
        headers = sorted({h for _, p in answered for h in p.backend_headers})
        facts.append(
            (
                Span("Backends", "b"),
                " named in identity headers"
                + (f" ({', '.join(headers)})" if headers else "")
                + ": "
                + "; ".join(f"{short_name(t, names)} → {', '.join(sorted(p.backends))}" for t, p in answered)
                + ".",
            )
        )
    else:
        facts.append((Span("Backends", "b"), ": no backend identity header was seen."))
    alt = Counter[str]()
    alpn = Counter[str]()
    tls = Counter[str]()
    for p in prints.values():
        alt.update(p.alt_svc)
        alpn.update(p.alpn)
        tls.update(p.tls)
    facts.append((Span("alt-svc", "b"), ": " + (_counted(alt) if alt else "none advertised (no HTTP/3).")))
    tls_targets = [t for t in prints if t.startswith(("https://", "wss://"))]
    tls_text = f"TLS on {len(tls_targets)} of {len(prints)} targets"
    if tls:
        tls_text += f" ({_counted(tls)})"
    tls_text += "; ALPN: " + (_counted(alpn) if alpn else "not recorded") + "."
    facts.append((Span("TLS", "b"), ": " + tls_text))
    table = Table(
        [
            "Target",
            "server",
            "via",
            "CDN (cf-ray, cf-cache-status)",
            "Backends seen",
            "Cookies",
            "alt-svc",
            "ALPN",
        ],
        [
            (
                short_name(t, names),
                _counted(p.servers),
                _counted(p.via),
                (f"cf-ray {p.cf_ray}/{p.responses}; " + _counted(p.cf_cache)) if p.cdn else "—",
                ", ".join(sorted(p.backends)) or "—",
                ", ".join(sorted(p.cookies)) or "—",
                _counted(p.alt_svc),
                _counted(p.alpn),
            )
            for t, p in prints.items()
        ],
    )
    return Section("infrastructure", (ListBlock(facts), table))


def root_cause_section(findings: Sequence[Finding], *, labels: Mapping[str, str] | None = None) -> Section:
    """Each finding: severity, title, summary, targets and the evidence behind it."""
    names = dict(labels or {})
    if not findings:
        return Section("root cause", (Para("No finding: the probes found nothing to explain."),))
    faults = [f for f in _sorted_findings(findings) if not _is_reassurance(f)]
    fine = [f for f in _sorted_findings(findings) if _is_reassurance(f)]
    blocks: list[Block] = []
    for heading, group in (("Root causes", faults), ("Expected behaviour, not faults", fine)):
        if not group:
            continue
        blocks.append(Heading(3, heading))
        for f in group:
            blocks.append(
                Heading(4, (f"{ICONS[f.severity.value]} ", f.severity.value.capitalize() + ": " + f.title))
            )
            blocks.append(Para(f.summary))
            facts: list[Text] = [("Finding: ", Span(f.id, "code"))]
            if f.targets:
                facts.append("Targets: " + ", ".join(display_name(t, names) for t in f.targets))
            if f.evidence:
                evidence: list[Inline] = ["Evidence: "]
                for i, ref in enumerate(f.evidence):
                    evidence += [", "] if i else []
                    evidence.append(Span(ref, "code"))
                facts.append(tuple(evidence))
            blocks.append(ListBlock(facts))
    if not faults:
        blocks.insert(0, Para("No fault was found: what failed is expected behaviour, explained below."))
    return Section("root cause", tuple(blocks))


GENERIC_ADVICE = (
    "Monitor the Socket.IO connect success rate per backend and per transport (WebSocket and "
    "polling), not only at the balancer: one dead backend out of three shows as a third of "
    "connects failing there, and as one user's timeouts.",
    "Alert on 5xx at the edge and at the balancer: 502/503/504 mean an upstream is down or stalled.",
    "Give the balancer active health checks (Caddy: health_uri /socket.io/?EIO=4&transport=polling) "
    "so it stops routing to a dead backend by itself.",
    "Test with a Socket.IO client (kiloscribe-lab probe), not with plain WebSocket tools such as "
    "wscat or curl at /: the server speaks Socket.IO, and those tools fail there by design.",
    "Rerun this report after every change and compare it with the previous one "
    "(kiloscribe-lab report --compare PREVIOUS_REPORT_DIR).",
)


def recommendations_section(findings: Sequence[Finding]) -> Section:
    """Immediate actions from critical and warning findings; long-term from info findings and advice."""
    ordered = _sorted_findings(findings)
    urgent = [f for f in ordered if not _is_reassurance(f)]
    later = [f for f in ordered if _is_reassurance(f)]
    blocks: list[Block] = [Heading(3, "Immediate actions")]
    if urgent:
        blocks.append(
            ListBlock(
                [
                    (f"{ICONS[f.severity.value]} ", Span(f.title, "b"), " — " + f.recommendation)
                    for f in urgent
                ],
                ordered=True,
            )
        )
    else:
        blocks.append(Para("None: no critical or warning finding."))
    blocks.append(Heading(3, "Long-term"))
    blocks.append(
        ListBlock(
            [(Span(f.title, "b"), " — " + f.recommendation) for f in later] + list(GENERIC_ADVICE),
            ordered=True,
        )
    )
    return Section("recommendations", tuple(blocks))


def status_section(
    findings: Sequence[Finding], target_verdicts: Sequence[TargetVerdict], run: RunData | None = None
) -> Section:
    """Status lines and numbered next steps derived from the findings."""
    status, sentence = overall(findings, target_verdicts)
    lines: list[Text] = [(f"{ICONS.get(status, '⚪')} ", Span(status.upper(), "b"), " — " + sentence)]
    for f in _sorted_findings(findings):
        word = "Not a fault" if _is_reassurance(f) else f.severity.value.capitalize()
        icon = "✅" if _is_reassurance(f) else ICONS[f.severity.value]
        lines.append((f"{icon} ", Span(word, "b"), ": " + f.title))
    counts = Counter(v.verdict.value for v in target_verdicts)
    if target_verdicts:
        lines.append(
            "Targets: " + ", ".join(f"{counts[v.value]} {v.value}" for v in Verdict if counts[v.value]) + "."
        )
    steps: list[Text] = []
    if run is not None and run.failed_runs:
        failed = ", ".join(m.id for m in run.failed_runs)
        steps.append(
            f"Fix the notebook runs that did not finish ({failed}) and rerun: their evidence is missing."
        )
    fixes = [f for f in _sorted_findings(findings) if not _is_reassurance(f)]
    steps += [(Span(f.title, "b"), ": " + _first_sentence(f.recommendation)) for f in fixes]
    if fixes:
        steps.append("Rerun the report and compare it with this one to confirm the fix.")
    else:
        steps.append("Nothing to fix now; keep running the probes on a schedule and compare the runs.")
    blocks: list[Block] = [ListBlock(lines), Heading(3, "Next steps"), ListBlock(steps, ordered=True)]
    return Section("status", tuple(blocks))


def changes_section(comparison: Comparison | None) -> Section:
    """New and resolved findings and moved targets since the previous run."""
    if comparison is None or comparison.first_run:
        return Section(
            "changes", (Para("This is the first run: there is no previous report to compare with."),)
        )
    c = comparison
    blocks: list[Block] = []
    prev = c.previous_run
    what = ", ".join(str(prev[k]) for k in ("title", "started_at") if prev.get(k))
    blocks.append(Para("Compared with the previous run" + (f" ({what})" if what else "") + "."))
    if c.status_before != c.status_after:
        blocks.append(Para(("Status: ", Span(f"{c.status_before} → {c.status_after}", "b"), ".")))
    else:
        blocks.append(Para(f"Status unchanged: {c.status_after}."))
    if not c.has_changes:
        blocks.append(Para("No change in findings, success rates or latency."))
        return Section("changes", tuple(blocks))

    def refs(fs: Sequence[FindingRef]) -> ListBlock:
        return ListBlock(
            [(f"{ICONS.get(f.severity, '⚪')} ", Span(f.id, "code"), " — " + f.title) for f in fs]
        )

    if c.new_findings:
        blocks += [Heading(3, "New findings"), refs(c.new_findings)]
    if c.resolved_findings:
        blocks += [Heading(3, "Resolved findings"), refs(c.resolved_findings)]
    if c.success_moves:
        blocks += [
            Heading(3, f"Success rate moved by {SUCCESS_MOVE_PP:.0f} points or more"),
            Table(
                ["Target", "Network", "Before", "After", "Change"],
                [
                    (
                        m.target,
                        m.network,
                        pct_text(m.before),
                        pct_text(m.after),
                        f"{100 * m.delta:+.0f} points",
                    )
                    for m in c.success_moves
                ],
            ),
        ]
    if c.latency_moves:
        blocks += [
            Heading(3, "p50 handshake latency moved by 50 % and 20 ms or more"),
            Table(
                ["Target", "Network", "Before ms", "After ms", "Change"],
                [
                    (m.target, m.network, ms_text(m.before), ms_text(m.after), f"{m.delta:+.0f} ms")
                    for m in c.latency_moves
                ],
            ),
        ]
    if c.targets_added:
        blocks.append(Para("Targets new in this run: " + ", ".join(c.targets_added) + "."))
    if c.targets_removed:
        blocks.append(Para("Targets no longer tested: " + ", ".join(c.targets_removed) + "."))
    return Section("changes", tuple(blocks))
