"""The findings report's content: load a run, summarise and compare it, render its sections.

``notebooks/findings_report.ipynb`` is a thin shell over this module: it loads a run
directory (``load_run``), diagnoses it, writes ``findings.jsonl`` and ``summary.json``
(``summarize``), compares with a previous run (``compare``, ``load_previous``) and displays
one section per heading. Everything here is pure except ``load_run`` and ``load_previous``,
which only read files and never raise for what they find there.

Every section is a list of blocks (headings, paragraphs, lists, tables, preformatted text)
rendered twice: to HTML (``_repr_html_``, what nbconvert's HTML export uses) and to Markdown
(``_repr_markdown_``). All text in a block is *text*: whatever a server sent (headers,
bodies, error messages, URLs, labels, commands) is escaped in both outputs and can never
become markup, a link, an image or a table cell boundary. Escaping happens in one place,
the two renderers; the sections never build markup by hand.
"""

from __future__ import annotations

import html
import io
import json
import math
import re
import statistics
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from kiloscribe_lab.diagnosis import TargetVerdict, Verdict, overall, path_works
from kiloscribe_lab.errors import RecordError
from kiloscribe_lab.names import Outcome, ProbeName, Severity
from kiloscribe_lab.results import Finding, ProbeResult, is_derived

if TYPE_CHECKING:
    from matplotlib.figure import Figure

SUMMARY_VERSION = 1
SUCCESS_MOVE_PP = 10.0  # a success rate moved by at least this many percentage points
LATENCY_MOVE_RATIO = 0.5  # ... a p50 latency by at least 50 % of its previous value
LATENCY_MOVE_MS = 20.0  # ... and by at least this many milliseconds

# --- the run directory -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EndpointInfo:
    url: str
    label: str | None = None


@dataclass(frozen=True, slots=True)
class MatrixRun:
    """One notebook run of the matrix: one endpoint on one network."""

    id: str
    endpoint: str
    network: str
    status: str  # "ok" | "failed" | "timeout"
    label: str | None = None
    error: str | None = None
    seconds: float | None = None
    kernel_start_s: float | None = None
    results: str | None = None
    notebook: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"


@dataclass(frozen=True, slots=True)
class LoadFailure:
    """A file of the run that could not be read, or not entirely."""

    path: str
    error: str


@dataclass(frozen=True)
class RunData:
    """A run directory: the pipeline's metadata (run.json) and every ProbeResult."""

    run_dir: Path
    title: str = ""
    started_at: str | None = None
    finished_at: str | None = None
    source: str | None = None
    api_key_env: str | None = None
    networks: tuple[str, ...] = ()
    endpoints: tuple[EndpointInfo, ...] = ()
    matrix: tuple[MatrixRun, ...] = ()
    timings: Mapping[str, Any] = field(default_factory=dict)
    compare_dir: str | None = None
    notes: tuple[str, ...] = ()
    results: tuple[ProbeResult, ...] = ()
    failures: tuple[LoadFailure, ...] = ()

    @property
    def labels(self) -> dict[str, str]:
        """URL -> label, from run.json and from the results (which name their target)."""
        out: dict[str, str] = {}
        by_url = {_norm_url(e.url): e.label for e in self.endpoints if e.label}
        by_url.update({_norm_url(m.endpoint): m.label for m in self.matrix if m.label})
        for r in self.results:
            label = r.detail.get("label")
            if label:
                out[r.target] = str(label)
            elif _norm_url(r.target) in by_url:
                out.setdefault(r.target, str(by_url[_norm_url(r.target)]))
        for e in self.endpoints:
            if e.label:
                out.setdefault(e.url, e.label)
        return out

    @property
    def failed_runs(self) -> list[MatrixRun]:
        return [m for m in self.matrix if not m.ok]

    @property
    def meta(self) -> dict[str, Any]:
        """What a summary carries about its run, to say what it is compared with."""
        return {
            "title": self.title,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "source": self.source,
            "run_dir": str(self.run_dir),
        }


def _str(value: Any) -> str | None:
    return None if value is None else str(value)


def _float(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _items(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else []


def _norm_url(url: str) -> str:
    """A URL as a key: ws(s) spelled as http(s), no trailing slash, lower-case scheme and host."""
    scheme, sep, rest = url.strip().partition("://")
    if not sep:
        return url.strip().rstrip("/")
    scheme = {"wss": "https", "ws": "http"}.get(scheme.lower(), scheme.lower())
    host, slash, path = rest.partition("/")
    return f"{scheme}://{host.lower()}{slash}{path}".rstrip("/")


def _endpoint(item: Any) -> EndpointInfo | None:
    if isinstance(item, str):
        return EndpointInfo(item)
    if isinstance(item, Mapping) and item.get("url"):
        return EndpointInfo(str(item["url"]), _str(item.get("label")) or None)
    return None


def _matrix_run(item: Any, index: int) -> MatrixRun | None:
    if not isinstance(item, Mapping):
        return None
    return MatrixRun(
        id=str(item.get("id") or f"run-{index + 1}"),
        endpoint=str(item.get("endpoint") or ""),
        network=str(item.get("network") or "direct"),
        status=str(item.get("status") or "failed"),
        label=_str(item.get("label")) or None,
        error=_str(item.get("error")),
        seconds=_float(item.get("seconds")),
        kernel_start_s=_float(item.get("kernel_start_s")),
        results=_str(item.get("results")),
        notebook=_str(item.get("notebook")),
    )


def read_results_file(path: Path, name: str | None = None) -> tuple[list[ProbeResult], LoadFailure | None]:
    """Every ProbeResult of one JSON Lines file; bad lines are skipped and reported, never raised.

    Findings and other record kinds a probe notebook may write are not evidence and are skipped.
    """
    shown = name or path.name
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return [], LoadFailure(shown, f"cannot read: {exc}")
    results: list[ProbeResult] = []
    bad: list[str] = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            bad.append(f"line {lineno}: not JSON ({exc.msg})")
            continue
        if not isinstance(data, dict):
            bad.append(f"line {lineno}: not a JSON object")
            continue
        kind = data.get("kind")
        if kind == "finding" or is_derived(kind):
            continue
        if kind != "probe":
            bad.append(f"line {lineno}: unknown record kind {kind!r}")
            continue
        try:
            results.append(ProbeResult.from_json(data))
        except RecordError as exc:
            bad.append(f"line {lineno}: {exc}")
    if not bad:
        return results, None
    more = f" (and {len(bad) - 1} more bad line(s))" if len(bad) > 1 else ""
    kept = f"; {len(results)} result(s) kept" if results else ""
    return results, LoadFailure(shown, f"not valid JSON Lines: {bad[0]}{more}{kept}")


def load_run(run_dir: Path) -> RunData:
    """Read run_dir/run.json and every run_dir/results/*.jsonl. Never raises for their content:
    a missing or broken file is a LoadFailure in the returned RunData."""
    run_dir = Path(run_dir)
    failures: list[LoadFailure] = []
    meta: Mapping[str, Any] = {}
    try:
        loaded = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
        if isinstance(loaded, Mapping):
            meta = loaded
        else:
            failures.append(LoadFailure("run.json", "not a JSON object"))
    except FileNotFoundError:
        failures.append(LoadFailure("run.json", "missing"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        failures.append(LoadFailure("run.json", f"cannot read: {exc}"))

    matrix = [m for i, item in enumerate(_items(meta.get("matrix"))) if (m := _matrix_run(item, i))]
    endpoints = [e for item in _items(meta.get("endpoints")) if (e := _endpoint(item))]
    networks = [str(n) for n in _items(meta.get("networks"))]

    # Matrix order first (the order the endpoints were configured in), then any other file.
    results_dir = run_dir / "results"
    files: list[Path] = []
    for m in matrix:
        if not m.results:
            continue
        path = run_dir / m.results
        if not path.resolve().is_relative_to(run_dir.resolve()):
            failures.append(LoadFailure(m.results, f"outside the run directory (run {m.id}): not read"))
        elif path.is_file():
            files.append(path)
        elif m.ok:
            failures.append(LoadFailure(m.results, f"missing (run {m.id} finished ok)"))
    if results_dir.is_dir():
        known = {p.resolve() for p in files}
        files += [p for p in sorted(results_dir.glob("*.jsonl")) if p.resolve() not in known]
    results: list[ProbeResult] = []
    for path in dict.fromkeys(files):
        try:
            name = str(path.relative_to(run_dir))
        except ValueError:
            name = str(path)
        found, failure = read_results_file(path, name)
        results += found
        if failure is not None:
            failures.append(failure)

    timings = meta.get("timings")
    return RunData(
        run_dir=run_dir,
        title=str(meta.get("title") or run_dir.name),
        started_at=_str(meta.get("started_at")),
        finished_at=_str(meta.get("finished_at")),
        source=_str(meta.get("source")),
        api_key_env=_str(meta.get("api_key_env")) or None,
        networks=tuple(networks),
        endpoints=tuple(endpoints),
        matrix=tuple(matrix),
        timings=dict(timings) if isinstance(timings, Mapping) else {},
        compare_dir=_str(meta.get("compare_dir")) or None,
        notes=tuple(str(n) for n in _items(meta.get("notes"))),
        results=tuple(results),
        failures=tuple(failures),
    )


# --- summary and comparison --------------------------------------------------------------


def _labels_of(results: Iterable[ProbeResult]) -> dict[str, str]:
    return {r.target: str(r.detail["label"]) for r in results if r.detail.get("label")}


def _targets_of(results: Iterable[ProbeResult]) -> list[str]:
    return list(dict.fromkeys(r.target for r in results))


def target_keys(targets: Iterable[str], labels: Mapping[str, str]) -> dict[str, str]:
    """URL -> the key a summary uses for it: its label (stable across runs), else its URL."""
    targets = list(dict.fromkeys(targets))
    counts = Counter(labels.get(t) for t in targets if labels.get(t))
    out = {}
    for t in targets:
        label = labels.get(t)
        out[t] = label if label and counts[label] == 1 else (f"{label} ({t})" if label else t)
    return out


def _connect_samples(rs: Sequence[ProbeResult]) -> tuple[str, int, int, list[float]]:
    """(basis, attempts, successes, handshake ms of the successes) for one target x network.

    Socket.IO connects with the valid key where they were made (single connects and every
    attempt of connect_stats), else the Engine.IO polling handshake.
    """
    valid = [r for r in rs if r.probe == ProbeName.SOCKETIO_CONNECT and r.variant.endswith(":valid")]
    stats = [r for r in rs if r.probe == ProbeName.CONNECT_STATS]
    attempts = successes = 0
    latencies: list[float] = []
    if valid or stats:
        basis = "socketio_connect:valid"
        for r in valid:
            attempts += 1
            if r.ok:
                successes += 1
                if r.timings.handshake is not None:
                    latencies.append(r.timings.handshake)
        for r in stats:
            runs = [a for a in _items(r.detail.get("runs")) if isinstance(a, Mapping)]
            if not runs:  # a stats probe cut short: count it as one attempt
                attempts += 1
                successes += r.ok
                continue
            for a in runs:
                attempts += 1
                if a.get("outcome") == "ok":
                    successes += 1
                    ms = _float(a.get("ms"))
                    if ms is not None:
                        latencies.append(ms)
        return basis, attempts, successes, latencies
    for r in rs:
        if r.probe == ProbeName.ENGINEIO_HANDSHAKE:
            attempts += 1
            if r.ok:
                successes += 1
                if r.timings.handshake is not None:
                    latencies.append(r.timings.handshake)
    return ProbeName.ENGINEIO_HANDSHAKE, attempts, successes, latencies


def summarize(
    results: Iterable[ProbeResult],
    findings: Sequence[Finding],
    verdicts: Sequence[TargetVerdict],
    *,
    labels: Mapping[str, str] | None = None,
    meta: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The run in a few numbers, JSON-serialisable; what the next run compares itself with.

    Targets are keyed by label where one is known (lab ports change every run, labels do not).
    Per target and network: the success rate of the Socket.IO connect probes and the p50
    handshake latency of the successful ones.
    """
    rs = [r for r in results if r.probe != ProbeName.DISCOVERY]
    names = {**(labels or {}), **_labels_of(rs)}
    keys = target_keys(_targets_of(rs), names)
    status, sentence = overall(findings, verdicts)
    by_verdict = {v.target: v for v in verdicts}
    targets: dict[str, Any] = {}
    for url, key in keys.items():
        mine = [r for r in rs if r.target == url]
        per_network: dict[str, Any] = {}
        for network in dict.fromkeys(r.network for r in mine):
            basis, attempts, successes, latencies = _connect_samples(
                [r for r in mine if r.network == network]
            )
            per_network[network] = {
                "basis": basis,
                "attempts": attempts,
                "successes": successes,
                "success_rate": round(successes / attempts, 4) if attempts else None,
                "p50_handshake_ms": round(statistics.median(latencies), 1) if latencies else None,
            }
        verdict = by_verdict.get(url)
        targets[key] = {
            "url": url,
            "label": names.get(url),
            "verdict": verdict.verdict.value if verdict else None,
            "sentence": verdict.sentence if verdict else None,
            "networks": per_network,
        }
    return {
        "kind": "summary",
        "version": SUMMARY_VERSION,
        "run": dict(meta or {}),
        "status": status,
        "sentence": sentence,
        "findings": [
            {
                "id": f.id,
                "severity": f.severity.value,
                "title": f.title,
                "targets": [keys.get(t, names.get(t, t)) for t in f.targets],
            }
            for f in findings
        ],
        "targets": targets,
        "networks": list(dict.fromkeys(r.network for r in rs)),
    }


@dataclass(frozen=True, slots=True)
class FindingRef:
    id: str
    severity: str
    title: str


@dataclass(frozen=True, slots=True)
class Move:
    """A number of one target on one network that moved between two runs."""

    target: str
    network: str
    before: float
    after: float

    @property
    def delta(self) -> float:
        return self.after - self.before


@dataclass(frozen=True, slots=True)
class Comparison:
    first_run: bool
    previous_run: Mapping[str, Any] = field(default_factory=dict)
    status_before: str | None = None
    status_after: str | None = None
    new_findings: tuple[FindingRef, ...] = ()
    resolved_findings: tuple[FindingRef, ...] = ()
    success_moves: tuple[Move, ...] = ()  # before/after: success rates, 0..1
    latency_moves: tuple[Move, ...] = ()  # before/after: p50 handshake, ms
    targets_added: tuple[str, ...] = ()
    targets_removed: tuple[str, ...] = ()

    @property
    def has_changes(self) -> bool:
        return bool(
            self.new_findings
            or self.resolved_findings
            or self.success_moves
            or self.latency_moves
            or self.targets_added
            or self.targets_removed
            or self.status_before != self.status_after
        )


def _finding_refs(summary: Mapping[str, Any]) -> dict[str, FindingRef]:
    out: dict[str, FindingRef] = {}
    for f in _items(summary.get("findings")):
        if isinstance(f, Mapping) and f.get("id"):
            out[str(f["id"])] = FindingRef(
                str(f["id"]), str(f.get("severity") or ""), str(f.get("title") or "")
            )
    return out


def _cells(summary: Mapping[str, Any]) -> dict[tuple[str, str], Mapping[str, Any]]:
    targets = summary.get("targets")
    out: dict[tuple[str, str], Mapping[str, Any]] = {}
    if not isinstance(targets, Mapping):
        return out
    for key, entry in targets.items():
        networks = entry.get("networks") if isinstance(entry, Mapping) else None
        if isinstance(networks, Mapping):
            for network, cell in networks.items():
                if isinstance(cell, Mapping):
                    out[(str(key), str(network))] = cell
    return out


def _target_names(summary: Mapping[str, Any]) -> list[str]:
    targets = summary.get("targets")
    return [str(k) for k in targets] if isinstance(targets, Mapping) else []


def compare(current: Mapping[str, Any], previous: Mapping[str, Any] | None) -> Comparison:
    """What changed since the previous run's summary. Pure; a malformed summary compares as empty."""
    if not isinstance(previous, Mapping):
        return Comparison(first_run=True, status_after=_str(current.get("status")))
    now, before = _finding_refs(current), _finding_refs(previous)
    cells_now, cells_before = _cells(current), _cells(previous)
    success: list[Move] = []
    latency: list[Move] = []
    for key, cell in cells_now.items():
        old = cells_before.get(key)
        if old is None:
            continue
        a, b = _float(old.get("success_rate")), _float(cell.get("success_rate"))
        if a is not None and b is not None and round(abs(b - a) * 100, 6) >= SUCCESS_MOVE_PP:
            success.append(Move(key[0], key[1], a, b))
        a, b = _float(old.get("p50_handshake_ms")), _float(cell.get("p50_handshake_ms"))
        if a is not None and b is not None:
            moved = abs(b - a)
            if moved >= LATENCY_MOVE_MS and (a <= 0 or moved >= LATENCY_MOVE_RATIO * a):
                latency.append(Move(key[0], key[1], a, b))
    names_now, names_before = _target_names(current), _target_names(previous)
    run = previous.get("run")
    return Comparison(
        first_run=False,
        previous_run=dict(run) if isinstance(run, Mapping) else {},
        status_before=_str(previous.get("status")),
        status_after=_str(current.get("status")),
        new_findings=tuple(f for i, f in now.items() if i not in before),
        resolved_findings=tuple(f for i, f in before.items() if i not in now),
        success_moves=tuple(success),
        latency_moves=tuple(latency),
        targets_added=tuple(t for t in names_now if t not in names_before),
        targets_removed=tuple(t for t in names_before if t not in names_now),
    )


def load_previous(compare_dir: str | Path | None) -> dict[str, Any] | None:
    """The summary.json of a previous run directory (or that file itself); None when there is
    none or it cannot be read: the report then says it is a first run."""
    if compare_dir is None or str(compare_dir).strip() == "":
        return None
    path = Path(compare_dir)
    if path.is_dir():
        path = path / "summary.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


# --- the document model and its two renderers ------------------------------------------


@dataclass(frozen=True, slots=True)
class Span:
    """Inline text with a style. The text is always escaped, whatever the style."""

    text: str
    style: Literal["", "b", "i", "code"] = ""


Inline = str | Span
Text = str | Span | tuple[Inline, ...] | list[Inline]


@dataclass(frozen=True, slots=True)
class Heading:
    level: int
    text: Text


@dataclass(frozen=True, slots=True)
class Para:
    text: Text


@dataclass(frozen=True, slots=True)
class ListBlock:
    items: Sequence[Text]
    ordered: bool = False


@dataclass(frozen=True, slots=True)
class Table:
    header: Sequence[str]
    rows: Sequence[Sequence[Text]]


@dataclass(frozen=True, slots=True)
class Pre:
    """Preformatted text: commands a reader can copy."""

    text: str


Block = Heading | Para | ListBlock | Table | Pre


def _spans(text: Text) -> list[Span]:
    if isinstance(text, str):
        return [Span(text)]
    if isinstance(text, Span):
        return [text]
    return [Span(t) if isinstance(t, str) else t for t in text]


_NEWLINES = re.compile(r"\r\n|\r|\n")


def html_text(text: str) -> str:
    """Text for HTML: every special character escaped; newlines become <br>."""
    return _NEWLINES.sub("<br>", html.escape(text, quote=True))


def _html_inline(text: Text) -> str:
    out = []
    for span in _spans(text):
        escaped = html_text(span.text)
        tag = {"b": "strong", "i": "em", "code": "code"}.get(span.style)
        out.append(f"<{tag}>{escaped}</{tag}>" if tag else escaped)
    return "".join(out)


def render_html(blocks: Sequence[Block]) -> str:
    # tex2jax_ignore / mathjax_ignore: a "$" in a server's text must not become math.
    parts = ['<div class="kiloscribe-report-section tex2jax_ignore mathjax_ignore">']
    for block in blocks:
        if isinstance(block, Heading):
            level = min(max(block.level, 1), 6)
            parts.append(f"<h{level}>{_html_inline(block.text)}</h{level}>")
        elif isinstance(block, Para):
            parts.append(f"<p>{_html_inline(block.text)}</p>")
        elif isinstance(block, ListBlock):
            tag = "ol" if block.ordered else "ul"
            items = "".join(f"<li>{_html_inline(item)}</li>" for item in block.items)
            parts.append(f"<{tag}>{items}</{tag}>")
        elif isinstance(block, Table):
            head = "".join(f"<th>{html_text(h)}</th>" for h in block.header)
            rows = "".join(
                "<tr>" + "".join(f"<td>{_html_inline(c)}</td>" for c in row) + "</tr>" for row in block.rows
            )
            parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
        else:
            parts.append(f"<pre><code>{html.escape(block.text, quote=True)}</code></pre>")
    parts.append("</div>")
    return "\n".join(parts)


# Backslash-escaped in Markdown: every character that can start or end markup inline
# (emphasis, code, links and images, tables, headings, strikethrough). "$" (math in
# Jupyter and GitHub) and < > & (raw HTML, entities) become HTML entities.
_MD_SPECIAL = re.compile(r"([\\`*_\[\]|#~])")
_MD_LINE_START = re.compile(r"^(\s*)(?:([-+=])|(\d+)([.)]))")


def md_text(text: str) -> str:
    """Text for Markdown: nothing in it can become markup; newlines become <br>."""
    escaped = _MD_SPECIAL.sub(r"\\\1", text)  # first: the entities below bring their own "#"
    escaped = escaped.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("$", "&#36;")
    return _NEWLINES.sub("<br>", escaped)


def _md_guard(line: str) -> str:
    """A block's first characters must not start a list, a heading underline or a code block."""

    def fix(m: re.Match[str]) -> str:
        if m.group(2):
            return "\\" + m.group(2)
        return f"{m.group(3)}\\{m.group(4)}"

    return _MD_LINE_START.sub(fix, line.lstrip(), count=1)


def _md_inline(text: Text) -> str:
    out = []
    for span in _spans(text):
        escaped = md_text(span.text)
        if span.style == "code":
            out.append(f"<code>{escaped}</code>" if escaped else "")
        elif span.style in {"b", "i"} and escaped.strip():
            plain = span.text[:1].isalnum() and span.text[-1:].isalnum()
            if plain:
                mark = "**" if span.style == "b" else "*"
                out.append(f"{mark}{escaped}{mark}")
            else:  # emphasis next to punctuation may not parse: say it in HTML
                tag = "strong" if span.style == "b" else "em"
                out.append(f"<{tag}>{escaped}</{tag}>")
        else:
            out.append(escaped)
    return "".join(out)


def render_markdown(blocks: Sequence[Block]) -> str:
    parts = []
    for block in blocks:
        if isinstance(block, Heading):
            level = min(max(block.level, 1), 6)
            parts.append("#" * level + " " + _md_inline(block.text))
        elif isinstance(block, Para):
            parts.append(_md_guard(_md_inline(block.text)))
        elif isinstance(block, ListBlock):
            lines = []
            for n, item in enumerate(block.items, 1):
                marker = f"{n}." if block.ordered else "-"
                lines.append(f"{marker} {_md_guard(_md_inline(item))}")
            parts.append("\n".join(lines))
        elif isinstance(block, Table):
            if not block.header:
                continue
            lines = [
                "| " + " | ".join(md_text(h) for h in block.header) + " |",
                "|" + "|".join("---" for _ in block.header) + "|",
            ]
            for row in block.rows:
                cells = [_md_inline(c) for c in row]
                cells += [""] * (len(block.header) - len(cells))
                lines.append("| " + " | ".join(cells) + " |")
            parts.append("\n".join(lines))
        else:
            # An HTML block: its content is not Markdown, the entities are decoded by the browser.
            body = html.escape(block.text, quote=False).replace("$", "&#36;")
            parts.append(f"<pre><code>{body}</code></pre>")
    return "\n\n".join(parts) + "\n"


@dataclass(frozen=True)
class Section:
    """One part of the report, displayable as HTML and as Markdown."""

    name: str
    blocks: tuple[Block, ...]

    def html(self) -> str:
        return render_html(self.blocks)

    def markdown(self) -> str:
        return render_markdown(self.blocks)

    def _repr_html_(self) -> str:
        return self.html()

    def _repr_markdown_(self) -> str:
        return self.markdown()

    def __repr__(self) -> str:
        return f"<report section: {self.name}>"


# --- shared helpers for the sections -----------------------------------------------------

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


def _name(target: str, labels: Mapping[str, str]) -> str:
    label = labels.get(target)
    return f"{label} ({target})" if label else target


def _short(target: str, labels: Mapping[str, str]) -> str:
    return labels.get(target) or target


def _ms(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.1f}" if value < 10 else f"{value:.0f}"


def _pct(rate: float | None) -> str:
    return "n/a" if rate is None else f"{100 * rate:.0f} %"


def _clip(text: str, limit: int = 240) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _sorted_findings(findings: Iterable[Finding]) -> list[Finding]:
    return sorted(findings, key=lambda f: -f.severity.rank)


def _first_sentence(text: str) -> str:
    m = re.match(r"(.+?[.!?])(?=\s+[A-Z(`']|\s*$)", text.strip(), flags=re.S)
    return m.group(1) if m else text.strip()


def _labels_for(results: Iterable[ProbeResult], labels: Mapping[str, str] | None) -> dict[str, str]:
    return {**(labels or {}), **_labels_of(results)}


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


# --- sections ------------------------------------------------------------------------------


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
    labels = _labels_for(rs, run.labels)
    apis = {r.target for r in rs if r.probe == ProbeName.DISCOVERY}
    probed = [t for t in _targets_of(rs) if t not in apis]
    # The configured endpoints, then any target the results add (servers that discovery listed).
    rows: list[tuple[str, str]] = []
    seen: set[str] = set()
    for e in run.endpoints:
        key = _norm_url(e.url)
        if key not in seen:
            seen.add(key)
            rows.append((e.url, e.label or labels.get(e.url) or ""))
    for m in run.matrix:
        key = _norm_url(m.endpoint)
        if m.endpoint and key not in seen:
            seen.add(key)
            rows.append((m.endpoint, m.label or ""))
    for t in probed:
        if _norm_url(t) not in seen:
            seen.add(_norm_url(t))
            rows.append((t, labels.get(t, "")))

    table_rows: list[Sequence[Text]] = []
    for n, (url, label) in enumerate(rows, 1):
        key = _norm_url(url)
        mine = [r for r in rs if _norm_url(r.target) == key]
        runs = [m for m in run.matrix if _norm_url(m.endpoint) == key]
        networks = list(dict.fromkeys([m.network for m in runs] + [r.network for r in mine]))
        counts = Counter(m.status for m in runs)
        run_text = ", ".join(f"{c} {s}" for s, c in sorted(counts.items())) or "—"
        configured = any(_norm_url(e.url) == key for e in run.endpoints) or bool(runs)
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
    servers = [s for s in _items(r.detail.get("servers")) if isinstance(s, Mapping)]
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
    facts += [("Problem: ", str(p)) for p in _items(r.detail.get("problems"))]
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
        backends = ", ".join(str(b) for b in _items(r.detail.get("backends")))
        parts.append(f"opened on {r.detail.get('opener') or '?'}, answered by {backends}")
    elif r.probe == ProbeName.CONNECT_STATS and r.detail.get("attempts") is not None:
        parts.append(
            f"{r.detail.get('successes')} of {r.detail.get('attempts')} ok, "
            f"p50 {_ms(_float(r.detail.get('p50_ms')))} ms, p95 {_ms(_float(r.detail.get('p95_ms')))} ms"
        )
    elif r.detail.get("backend"):
        parts.append(f"backend {r.detail['backend']}")
    if r.detail.get("alpn") and r.probe == ProbeName.HTTP_UPGRADE:
        parts.append(f"ALPN {r.detail['alpn']}")
    if r.detail.get("stalled_during"):
        parts.append(f"stalled while {r.detail['stalled_during']}")
    return _clip("; ".join(parts))


def test_details_section(
    results: Sequence[ProbeResult],
    *,
    labels: Mapping[str, str] | None = None,
    api_key_env: str | None = None,
) -> Section:
    """One table per probe kind, and under each the commands a reader can rerun by hand."""
    names = _labels_for(results, labels)
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
                    _short(r.target, names),
                    r.variant or "—",
                    r.network,
                    outcome,
                    str(r.status) if r.status is not None else "—",
                    _ms(r.timings.handshake),
                    _ms(r.timings.total),
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

_BACKEND_HEADERS = ("x-lab-backend", "x-served-by", "x-backend", "x-upstream")


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
        for name in _BACKEND_HEADERS:
            if h.get(name):
                self.backend_headers.add(name)
                self.backends.add(h[name])
        for key in ("backend", "polling_backend", "websocket_backend"):
            if r.detail.get(key):
                self.backends.add(str(r.detail[key]))
        self.backends.update(str(b) for b in _items(r.detail.get("backends")))
        if h.get("set-cookie-names"):
            self.cookies.update(c.strip() for c in h["set-cookie-names"].split(",") if c.strip())
        self.cookies.update(str(c) for c in _items(r.detail.get("cookie_names")))
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
    names = _labels_for(results, labels)
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
                + ", ".join(_name(t, names) for t in cdn)
                + f" (server: {_counted(servers)}; cf-ray on "
                + ", ".join(f"{prints[t].cf_ray} of {prints[t].responses}" for t in cdn)
                + f" responses; cf-cache-status: {_counted(cf_cache)}).",
            )
        )
    else:
        facts.append((Span("CDN", "b"), ": no CDN fingerprint (no server: cloudflare, no cf-ray)."))
    if caddy:
        cookies = sorted({c for t in prints for c in prints[t].cookies})
        hops = [f"{_short(t, names)} ({n})" for t in caddy if (n := _caddy_hops(prints[t].via)) > 1]
        facts.append(
            (
                Span("Load balancer / proxy", "b"),
                ": Caddy in the path (via or server header) of "
                + ", ".join(_short(t, names) for t in caddy)
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
                + "; ".join(f"{_short(t, names)} → {', '.join(sorted(p.backends))}" for t, p in answered)
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
                _short(t, names),
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
                facts.append("Targets: " + ", ".join(_name(t, names) for t in f.targets))
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
                    (m.target, m.network, _pct(m.before), _pct(m.after), f"{100 * m.delta:+.0f} points")
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
                    (m.target, m.network, _ms(m.before), _ms(m.after), f"{m.delta:+.0f} ms")
                    for m in c.latency_moves
                ],
            ),
        ]
    if c.targets_added:
        blocks.append(Para("Targets new in this run: " + ", ".join(c.targets_added) + "."))
    if c.targets_removed:
        blocks.append(Para("Targets no longer tested: " + ", ".join(c.targets_removed) + "."))
    return Section("changes", tuple(blocks))


# --- charts -------------------------------------------------------------------------------


@dataclass(frozen=True)
class PngImage:
    """A PNG that Jupyter displays (and nbconvert embeds or extracts) as image/png."""

    data: bytes
    alt: str = ""

    def _repr_png_(self) -> tuple[bytes, dict[str, str]]:
        return self.data, {"alt": self.alt or "chart"}

    def __repr__(self) -> str:
        return f"<PNG chart: {self.alt or 'chart'}, {len(self.data)} bytes>"


def _chart_text(text: str, limit: int) -> str:
    """A label for matplotlib: "$" would start mathtext (which can fail to parse), so escape it."""
    return _clip(text, limit).replace("$", r"\$")


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    return buf.getvalue()


def _no_data(title: str) -> PngImage:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4.0, 1.2))
    ax = fig.add_subplot()
    ax.set_axis_off()
    ax.text(0.5, 0.5, f"{title}: no data", ha="center", va="center", fontsize=10)
    return PngImage(_png(fig), f"{title}: no data")


def success_heatmap(summary: Mapping[str, Any]) -> PngImage:
    """Success rate of the Socket.IO connects per target x network, from a summary."""
    title = "Socket.IO connect success rate"
    cells = _cells(summary)
    targets = list(dict.fromkeys(t for t, _ in cells))
    networks = list(dict.fromkeys(n for _, n in cells))
    if not targets or not networks:
        return _no_data(title)
    from matplotlib.figure import Figure

    values = [[_float(cells.get((t, n), {}).get("success_rate")) for n in networks] for t in targets]
    grid = [[math.nan if v is None else v for v in row] for row in values]
    fig = Figure(figsize=(2.2 + 1.4 * len(networks), 1.2 + 0.45 * len(targets)))
    ax = fig.add_subplot()
    image = ax.imshow(grid, cmap="RdYlGn", vmin=0.0, vmax=1.0, aspect="auto")
    ax.set_xticks(range(len(networks)), labels=[_chart_text(n, 24) for n in networks])
    ax.set_yticks(range(len(targets)), labels=[_chart_text(t, 40) for t in targets])
    for i, row in enumerate(values):
        for j, v in enumerate(row):
            ax.text(j, i, _pct(v), ha="center", va="center", fontsize=9)
    ax.set_title(title, fontsize=10)
    fig.colorbar(image, ax=ax, fraction=0.05)
    return PngImage(_png(fig), title)


def _transport(r: ProbeResult) -> str:
    if r.probe == ProbeName.CONNECT_STATS:
        return str(r.detail.get("transport") or r.variant or "?")
    return r.variant.split(":", 1)[0] or "?"


def latency_chart(results: Sequence[ProbeResult], *, labels: Mapping[str, str] | None = None) -> PngImage:
    """Socket.IO handshake latency per backend (target label) and transport: the median as a bar,
    every connect as a dot. Refusals in the server's words count: the handshake completed."""
    title = "Socket.IO handshake latency"
    names = _labels_for(results, labels)
    samples: dict[tuple[str, str], list[float]] = {}
    connects = [r for r in results if r.probe in {"socketio_connect", ProbeName.CONNECT_STATS}]
    networks = {r.network for r in connects}
    targets = list(dict.fromkeys(_short(r.target, names) for r in connects))
    for r in results:
        if r.probe == ProbeName.SOCKETIO_CONNECT and path_works(r) and r.timings.handshake is not None:
            values = [r.timings.handshake]
        elif r.probe == ProbeName.CONNECT_STATS:
            values = [
                ms
                for a in _items(r.detail.get("runs"))
                if isinstance(a, Mapping)
                and a.get("outcome") == "ok"
                and (ms := _float(a.get("ms"))) is not None
            ]
        else:
            continue
        series = _transport(r) + (f" · {r.network}" if len(networks) > 1 else "")
        samples.setdefault((_short(r.target, names), series), []).extend(values)
    samples = {k: v for k, v in samples.items() if v}
    if not samples:
        return _no_data(title)
    from matplotlib.figure import Figure

    series_names = sorted({s for _, s in samples})
    width = 0.8 / len(series_names)
    fig = Figure(figsize=(max(4.0, 1.2 + 1.1 * len(targets) * max(1, len(series_names) / 2)), 3.2))
    ax = fig.add_subplot()
    for k, series in enumerate(series_names):
        xs, medians = [], []
        for i, t in enumerate(targets):
            got = samples.get((t, series))
            if not got:
                continue
            x = i - 0.4 + width * (k + 0.5)
            xs.append(x)
            medians.append(statistics.median(got))
            ax.scatter([x] * len(got), got, s=10, color="black", zorder=3)
        ax.bar(xs, medians, width=width * 0.9, label=_chart_text(series, 40))
    for i, t in enumerate(targets):
        if not any(samples.get((t, series)) for series in series_names):
            ax.text(
                i, 0, "no handshake", rotation=90, ha="center", va="bottom", fontsize=8, color="firebrick"
            )
    ax.set_xticks(range(len(targets)), labels=[_chart_text(t, 24) for t in targets])
    ax.set_ylabel("handshake ms")
    ax.set_title(title + " (bar: median; dots: each connect)", fontsize=10)
    ax.legend(fontsize=8)
    return PngImage(_png(fig), title)
