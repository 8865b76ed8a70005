"""The report's reference parts, after what a reader reads first: the tested endpoints (with
the commands that rerun the checks), what the headers say about the path, and the appendix of
every probe result, one collapsible table per probe family. Pure.

Each probe result's row has an anchor (``row_anchor``): a finding's evidence links to the rows
it names. Probe families are the vocabulary's (``ProbeName``), in its order; a probe this
module has no words for is still shown, under its own name.
"""

from __future__ import annotations

import shlex
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from kiloscribe_lab.diagnosis import path_works
from kiloscribe_lab.names import BACKEND_HEADERS, NetworkName, Outcome, ProbeName
from kiloscribe_lab.report.document import (
    Badge,
    Block,
    Details,
    Heading,
    Inline,
    Link,
    ListBlock,
    Para,
    Pre,
    Section,
    Span,
    Table,
    Text,
    anchor,
    github_slug,
)
from kiloscribe_lab.report.formatting import clip, display_name, labels_for, ms_text, short_name
from kiloscribe_lab.report.loose import as_float, as_items
from kiloscribe_lab.report.rundata import RunData, norm_url, targets_of
from kiloscribe_lab.results import ProbeResult

ENDPOINTS = "Tested Endpoints"
INFRASTRUCTURE = "Infrastructure Details"
TEST_DETAILS = "Appendix: Test Details"
RERUN = "rerun-these-checks"

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
    ProbeName.SDK_REPLAY: (
        "The published SDK in Node",
        "The published Kiloscribe SDK run by this machine's Node, as it is and with a WebSocket "
        "global, against the endpoint: its own messages, verbatim.",
    ),
}


def family_title(probe: str) -> str:
    return PROBE_KINDS.get(probe, (probe.replace("_", " ").capitalize(), ""))[0]


def family_anchor(probe: str) -> str:
    return anchor("family", probe.replace("_", "-"))  # probe names differ by more than that


def row_anchor(ref: str) -> str:
    """The anchor of the first row showing the result with this ref (``ProbeResult.ref``)."""
    return anchor("r", ref)


def families(results: Iterable[ProbeResult]) -> list[str]:
    """The probe families of ``results`` that the appendix shows, in the vocabulary's order."""
    present = list(dict.fromkeys(r.probe for r in results if r.probe != ProbeName.DISCOVERY))
    known = [p for p in ProbeName if p in present]
    return known + [p for p in present if p not in known]


def row_name(r: ProbeResult, labels: Mapping[str, str]) -> str:
    """A result as a reader names it: target · probe and variant · network."""
    what = f"{r.probe} {r.variant}" if r.variant else r.probe
    return f"{short_name(r.target, labels)} · {what} · {r.network}"


# --- tested endpoints, and the commands that rerun them ---------------------------------------


def endpoints_section(run: RunData, results: Sequence[ProbeResult] | None = None) -> Section:
    """The tested endpoints, which notebook runs failed and why, discovery's answer, and the
    commands that rerun the checks."""
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
    blocks: list[Block] = [Heading(2, ENDPOINTS, github_slug(ENDPOINTS))]
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
                        Badge(m.status, "critical"),
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
    if run.notes:
        blocks.append(ListBlock([("Note: ", n) for n in run.notes], cls="note"))

    for r in (r for r in rs if r.probe == ProbeName.DISCOVERY):
        blocks += _discovery_blocks(r)
    blocks += rerun_blocks(run, rs)
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


def _lab_scenario(run: RunData) -> str | None:
    source = run.source or ""
    return source.removeprefix("lab:") if source.startswith("lab:") and len(source) > 4 else None


def probe_commands(run: RunData, results: Sequence[ProbeResult]) -> list[str]:
    """``kiloscribe-lab probe`` for every network of the run, with the targets probed there and
    the flags the run used (the network, where its profile is defined, the CA, the key's name)."""
    commands = []
    probed = [r for r in results if r.probe not in {ProbeName.DISCOVERY, ProbeName.SDK_REPLAY}]
    for network in dict.fromkeys(r.network for r in probed):
        targets = list(dict.fromkeys(r.target for r in probed if r.network == network))
        args = ["kiloscribe-lab", "probe", *targets]
        if network != NetworkName.DIRECT:
            args += ["--network", network]
            if run.config_path:
                args += ["--config", run.config_path]
            elif run.lab_dir:
                args += ["--lab-dir", run.lab_dir]
        if run.ca_bundle:
            args += ["--ca-bundle", run.ca_bundle]
        if run.api_key_env:
            args += ["--api-key-env", run.api_key_env]
        if not run.inscription:
            args.append("--no-inscription")
        commands.append(_wrapped(args))
    api = next((r.target for r in results if r.probe == ProbeName.DISCOVERY), None)
    for target in dict.fromkeys(r.target for r in results if r.probe == ProbeName.SDK_REPLAY):
        args = ["kiloscribe-lab", "sdk-check", target]
        if api:
            args += ["--api-base", api]
        if run.api_key_env:
            args += ["--api-key-env", run.api_key_env]
        if run.ca_bundle:
            args += ["--ca-bundle", run.ca_bundle]
        if not run.inscription:
            args.append("--no-inscription")
        commands.append(_wrapped(args))
    return commands


def _wrapped(args: Sequence[str], width: int = 88) -> str:
    """A command as a shell runs it, continued over lines (" \\") when it is long: one line per
    target, one per option with its value."""
    line = shlex.join(args)
    if len(line) <= width:
        return line
    groups: list[list[str]] = [list(args[:2])]
    for arg in args[2:]:
        if arg.startswith("--") or not groups[-1][-1].startswith("--"):
            groups.append([arg])
        else:
            groups[-1].append(arg)
    return " \\\n    ".join(shlex.join(g) for g in groups)


def rerun_blocks(run: RunData, results: Sequence[ProbeResult]) -> list[Block]:
    commands = probe_commands(run, results)
    scenario = _lab_scenario(run)
    blocks: list[Block] = [Heading(3, "Rerun these checks", RERUN)]
    if scenario:
        blocks += [
            Para(
                f"This report started its own lab (scenario {scenario}) and stopped it at the end; a new "
                "lab listens on new ports. The whole report again:"
            ),
            Pre(shlex.join(["kiloscribe-lab", "report", "--scenario", scenario])),
        ]
        if commands:
            blocks.append(Para("The checks of each network, as they ran while that lab was up:"))
    elif run.config_path:
        blocks += [
            Para("The whole report again:"),
            Pre(shlex.join(["kiloscribe-lab", "report", "--config", run.config_path])),
        ]
        if commands:
            blocks.append(Para("The checks of each network:"))
    if commands:
        blocks.append(Pre("\n".join(commands)))
    elif not scenario and not run.config_path:
        blocks.append(Para("No probe result was recorded: there is nothing to rerun."))
    return blocks


def with_ca(command: str, ca_bundle: str | None) -> str:
    """A probe's curl or wscat command, trusting the CA the run trusted."""
    if not ca_bundle:
        return command
    tool, _, rest = command.partition(" ")
    flag = {"curl": "--cacert", "wscat": "--ca"}.get(tool)
    if flag is None or flag in command.split():
        return command
    return f"{tool} {flag} {shlex.quote(ca_bundle)} {rest}"


# --- the appendix: every result, per probe family ----------------------------------------------


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


def _outcome(r: ProbeResult, expected: bool) -> Badge:
    if r.ok:
        return Badge(r.outcome.value, "ok")
    if expected:
        return Badge(f"{r.outcome.value} (expected)", "info")
    return Badge(r.outcome.value, "critical")


def test_details_section(
    results: Sequence[ProbeResult],
    *,
    labels: Mapping[str, str] | None = None,
    ca_bundle: str | None = None,
) -> Section:
    """One collapsible table per probe family, one row per result (each with its anchor), and
    the commands that rerun the family by hand."""
    names = labels_for(results, labels)
    blocks: list[Block] = [
        Heading(2, TEST_DETAILS, github_slug(TEST_DETAILS)),
        Para(
            (
                "Every probe result, one table per probe family; open one to see its rows. "
                "The commands that rerun them all are under ",
                *_rerun_link(),
                ".",
            )
        ),
    ]
    anchored: set[str] = set()
    shown = 0
    for kind in families(results):
        mine = [r for r in results if r.probe == kind]
        if not mine:
            continue
        shown += 1
        title, about = PROBE_KINDS.get(kind, (family_title(kind), ""))
        rows: list[Sequence[Text]] = []
        anchors: list[str | None] = []
        expected_n = failed_n = 0
        for r in mine:
            expected = _expected(r)
            expected_n += bool(expected)
            failed_n += not r.ok and not expected
            note = "; ".join(p for p in (expected, _note(r)) if p)
            ref = r.ref
            anchors.append(row_anchor(ref) if ref not in anchored else None)
            anchored.add(ref)
            rows.append(
                (
                    short_name(r.target, names),
                    r.variant or "—",
                    r.network,
                    _outcome(r, bool(expected)),
                    str(r.status) if r.status is not None else "—",
                    ms_text(r.timings.handshake),
                    ms_text(r.timings.total),
                    note,
                )
            )
        ok_n = len(mine) - expected_n - failed_n
        summary = (
            f"{title} ({kind}): {len(mine)} results — {ok_n} ok, "
            f"{expected_n} expected refusals, {failed_n} failed"
        )
        inner: list[Block] = [Para(about)] if about else []
        inner.append(
            Table(
                ["Target", "Variant", "Network", "Outcome", "HTTP", "Handshake ms", "Total ms", "Note"],
                rows,
                anchors,
            )
        )
        commands = list(
            dict.fromkeys(
                with_ca(str(r.detail["command"]), ca_bundle) for r in mine if r.detail.get("command")
            )
        )
        if commands:
            inner += [Para("Rerun by hand:"), Pre("\n".join(commands))]
        blocks.append(Details(summary, tuple(inner), family_anchor(kind)))
    if not shown:
        blocks.append(Para("No probe result was recorded."))
    return Section("test details", tuple(blocks))


def _rerun_link() -> tuple[Inline, ...]:
    return (Link("Rerun these checks", RERUN),)


# Not a pytest test, whatever its name says (test modules import it).
setattr(test_details_section, "__test__", False)  # noqa: B010


# --- infrastructure --------------------------------------------------------------------------


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
        return Section(
            "infrastructure",
            (_infra_heading(), Para("No response was recorded: nothing to fingerprint.")),
        )
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
    return Section("infrastructure", (_infra_heading(), ListBlock(facts), table))


def _infra_heading() -> Heading:
    return Heading(2, INFRASTRUCTURE, github_slug(INFRASTRUCTURE))
