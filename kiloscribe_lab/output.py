"""Human output for the terminal: ``probe``'s verdict, findings and evidence; ``sdk-check``'s
table per runtime; ``report``'s progress and closing lines.

The renderers are pure: a ``Style`` (width, colour) in, text out. Prose wraps to the width
(capped at ``PROSE_MAX`` for reading); only a token that cannot be broken (a URL) may pass it.
Text that comes from a server or a runtime (errors, the SDK's log lines) is cleaned of control
characters first, so the only escape sequences in the output are the colours a ``Style`` adds.
"""

from __future__ import annotations

import os
import sys
import textwrap
import time
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, TextIO

from kiloscribe_lab.names import OverallStatus, ProbeName, Severity
from kiloscribe_lab.results import Finding, ProbeResult

if TYPE_CHECKING:
    from kiloscribe_lab.probes.command import ProbeReport

MARK = {Severity.CRITICAL: "CRITICAL", Severity.WARNING: "WARNING", Severity.INFO: "info"}
DEFAULT_WIDTH = 80  # when the output is not a terminal
MIN_WIDTH = 40
PROSE_MAX = 100  # a paragraph wider than this is hard to read, however wide the terminal
NOTE_MAX = 70  # a table's note is one error line, shortened: the JSON output has it whole
NOTE_ROOM = 30  # a note column narrower than this goes under its row instead
COLOR_MODES = ("auto", "always", "never")

Tone = Literal["bad", "warn", "good", "bold"]
_SGR: dict[Tone, str] = {"bad": "1;31", "warn": "33", "good": "32", "bold": "1"}
_SEVERITY_TONE: dict[Severity, Tone] = {
    Severity.CRITICAL: "bad",
    Severity.WARNING: "warn",
    Severity.INFO: "bold",
}
# Overall statuses (diagnosis.overall, the report's "incomplete") and target verdicts.
_STATUS_TONE: dict[str, Tone] = {
    OverallStatus.DOWN: "bad",
    OverallStatus.CRITICAL: "bad",
    OverallStatus.DEGRADED: "warn",
    OverallStatus.INCOMPLETE: "warn",
    OverallStatus.HEALTHY: "good",
}


@dataclass(frozen=True, slots=True)
class Style:
    """How text reaches this terminal: its width, and whether to colour it."""

    width: int = DEFAULT_WIDTH
    color: bool = False
    measure: int = PROSE_MAX  # the widest a paragraph grows, however wide the terminal

    @property
    def prose(self) -> int:
        return min(self.width, self.measure)

    def paint(self, text: str, tone: Tone | None) -> str:
        if not self.color or tone is None or not text:
            return text
        return f"\x1b[{_SGR[tone]}m{text}\x1b[0m"


PLAIN = Style()


def use_color(mode: str, *, isatty: bool, environ: Mapping[str, str]) -> bool:
    """``--color``: ``always``/``never`` as said; ``auto`` colours a terminal unless ``$NO_COLOR``
    is set and non-empty (no-color.org) or ``$TERM`` is ``dumb``."""
    if mode == "always":
        return True
    if mode == "never":
        return False
    return isatty and not environ.get("NO_COLOR") and environ.get("TERM") != "dumb"


def terminal_width(stream: TextIO, environ: Mapping[str, str]) -> int:
    """``$COLUMNS`` when set, else the terminal's width, else 80 (a pipe, a file, a capture).

    ``shutil.get_terminal_size`` asks ``sys.__stdout__``; this asks the stream written to."""
    columns = environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        return max(MIN_WIDTH, int(columns))
    try:
        width = os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, OSError, ValueError):
        return DEFAULT_WIDTH
    return max(MIN_WIDTH, width) if width > 0 else DEFAULT_WIDTH


def style_for(stream: TextIO, mode: str, environ: Mapping[str, str] | None = None) -> Style:
    env = os.environ if environ is None else environ
    isatty = stream.isatty()
    return Style(terminal_width(stream, env), use_color(mode, isatty=isatty, environ=env))


def clean(text: object) -> str:
    """One line of text safe for a terminal: whitespace becomes spaces; every other control or
    format character (ESC, CR, BEL, bidi overrides) is shown as an escape instead of obeyed."""
    out = []
    for ch in str(text):
        if ch in "\t\n\r\v\f":
            out.append(" ")
        elif unicodedata.category(ch) in ("Cc", "Cf"):
            out.append(f"\\x{ord(ch):02x}" if ord(ch) < 0x100 else f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return "".join(out)


def _wrap(text: str, width: int, first: str = "", rest: str | None = None) -> list[str]:
    """``text`` filled to ``width`` after ``first`` (then ``rest``); URLs and ids never broken."""
    lines = textwrap.wrap(
        text,
        width,
        initial_indent=first,
        subsequent_indent=first if rest is None else rest,
        break_long_words=False,
        break_on_hyphens=False,
    )
    return lines or [first.rstrip()]


def _marked(mark: str, painted: str, text: str, width: int, hang: int) -> list[str]:
    """``mark`` (e.g. ``"  [CRITICAL] "``) then ``text`` wrapped with a ``hang`` indent; the mark
    painted after the wrapping, so colour never changes where lines break."""
    lines = _wrap(text, width, mark, " " * hang)
    if lines[0].startswith(mark):
        lines[0] = painted + lines[0][len(mark) :]
    return lines


def _beside(prefix: str, text: str, style: Style, under: int = 6) -> list[str]:
    """``prefix`` then ``text`` in the column after it, wrapped there; when that column would be
    narrower than ``NOTE_ROOM``, ``text`` goes under ``prefix``, indented by ``under``."""
    if not text:
        return [prefix.rstrip()]
    if style.width - len(prefix) >= NOTE_ROOM:
        return _wrap(text, style.width, prefix, " " * len(prefix))
    return [prefix.rstrip(), *_wrap(text, style.width, " " * under)]


def _shorten(text: str, limit: int = NOTE_MAX) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def _target_name(label: object, target: str) -> str:
    return f"{clean(label)}  {clean(target)}" if label else clean(target)


# --- probe -----------------------------------------------------------------------------------


def probe_notices(
    report: ProbeReport,
    *,
    api_key_env: str | None,
    attempts: int = 1,
    inscription: bool = True,
    switch: str = "--no-inscription",
) -> list[str]:
    """What this run did not check, and how to make it: said before any verdict is read.
    ``switch`` is what turned the inscription off where the caller reads it (a notebook's flag)."""
    notices = []
    if api_key_env is None:
        skipped = [f"{ProbeName.SOCKETIO_CONNECT} with the valid key", str(ProbeName.SDK_FLOW)]
        if attempts > 1:
            skipped.append(f"{ProbeName.CONNECT_STATS} (--attempts)")
        listed = ", ".join(skipped[:-1]) + f" and {skipped[-1]}"
        notices.append(
            f"no --api-key-env, so {listed} did not run: the verdicts rest on the "
            "invalid-key and no-key connects. Pass --api-key-env NAME (the variable holding the key)."
        )
    flows = [r for r in report.results if r.probe == ProbeName.SDK_FLOW]
    sent_none = any(step.get("skipped") for r in flows for step in r.detail.get("steps") or [])
    if api_key_env is not None and (not inscription or sent_none):
        notices.append(
            f"no start-inscription was sent ({switch if not inscription else 'the config'}): "
            f"{ProbeName.SDK_FLOW} stopped after the connect, so the inscription path is untested."
        )
    return notices


def render_text(report: ProbeReport, style: Style = PLAIN, notices: Sequence[str] = ()) -> str:
    """``probe``'s human output: the overall verdict (and what was not checked), each target's
    verdict, the findings, then every probe's row per target."""
    lines = render_overall(report, style, notices).splitlines()
    lines += ["", style.paint("Verdicts", "bold")]
    for v in report.verdicts:
        name = f"{clean(v.label)} ({clean(v.target)})" if v.label else clean(v.target)
        mark = f"  {v.verdict.value:<9} "
        word = v.verdict.value
        painted = "  " + style.paint(word, _STATUS_TONE.get(word)) + " " * (10 - len(word))
        lines += _marked(mark, painted, f"{name}  {clean(v.sentence)}", style.prose, 12)
    lines.append("")
    lines += _findings_lines(report.findings, style)
    by_target: dict[str, list[ProbeResult]] = {}
    for r in report.results:
        by_target.setdefault(r.target, []).append(r)
    if by_target:
        lines += ["", style.paint("Probes", "bold")]
    widths = _widths(report.results)  # one set of columns for every target's table
    for target, rows in by_target.items():
        header = f"{_target_name(rows[0].detail.get('label'), target)}  (network {clean(rows[0].network)})"
        lines += [style.paint(line, "bold") for line in _wrap(header, style.width, "", "    ")]
        lines += _probe_table(rows, widths, style)
        lines.append("")
    return "\n".join(lines).rstrip("\n")


def render_overall(report: ProbeReport, style: Style = PLAIN, notices: Sequence[str] = ()) -> str:
    """The overall verdict, then what was not checked: the lines read first."""
    lines = _overall(report.status, clean(report.sentence), style)
    for notice in notices:
        lines += _marked(
            "Not checked: ", style.paint("Not checked:", "warn") + " ", clean(notice), style.prose, 2
        )
    return "\n".join(lines)


def _overall(status: str, sentence: str, style: Style) -> list[str]:
    mark = f"Overall: {status}."
    painted = "Overall: " + style.paint(status, _STATUS_TONE.get(status)) + "."
    return _marked(mark + " ", painted + " ", sentence, style.prose, 2)


def _probe_name(r: ProbeResult) -> str:
    return clean(r.probe + (f" {r.variant}" if r.variant else ""))


def _widths(results: Sequence[ProbeResult]) -> tuple[int, int]:
    return (
        max([len("probe"), *(len(_probe_name(r)) for r in results)]),
        max([len("outcome"), *(len(r.outcome.value) for r in results)]),
    )


def _probe_table(rows: Sequence[ProbeResult], widths: tuple[int, int], style: Style) -> list[str]:
    cells = [
        (
            _probe_name(r),
            r.outcome.value,
            "" if r.status is None else str(r.status),
            _ms(r.timings.handshake),
            _ms(r.timings.total),
            _shorten(clean(r.error or "").strip()),
        )
        for r in rows
    ]
    w_name, w_outcome = widths

    def prefix(name: str, outcome: str, http: str, hs: str, total: str) -> str:
        return f"  {name:<{w_name}}  {outcome:<{w_outcome}}  {http:>4}  {hs:>5}  {total:>5}  "

    head = prefix("probe", "outcome", "HTTP", "hs ms", "total")
    if len(head.rstrip()) > style.width:
        return _stacked(cells, style)
    inline = style.width - len(head) >= NOTE_ROOM
    lines = [head + "note" if inline else head.rstrip()]
    for name, outcome, http, hs, total, note in cells:
        plain = prefix(name, outcome, http, hs, total)
        row = _beside(plain, note, style)
        if outcome == "ok":
            start = 2 + w_name + 2
            row[0] = row[0][:start] + style.paint(outcome, "good") + row[0][start + len(outcome) :]
        lines += row
    return lines


def _stacked(cells: Sequence[tuple[str, str, str, str, str, str]], style: Style) -> list[str]:
    """A terminal too narrow for the table: each probe on its line, its numbers on the next."""
    lines = []
    for name, outcome, http, hs, total, note in cells:
        numbers = [f"HTTP {http}"] if http else []
        numbers += [f"hs {hs} ms"] if hs != "-" else []
        numbers += [f"total {total} ms"]
        lines += _wrap(name, style.width, "  ", "      ")
        mark = f"      {outcome}  "
        painted = f"      {style.paint(outcome, 'good' if outcome == 'ok' else None)}  "
        lines += _marked(mark, painted, "  ".join(numbers), style.width, 6)
        if note:
            lines += _wrap(note, style.width, "      ")
    return lines


def _findings_lines(findings: Sequence[Finding], style: Style) -> list[str]:
    lines = [style.paint("Findings", "bold")]
    if not findings:
        lines.append("  none")
    for f in findings:
        mark = f"  [{MARK[f.severity]}] "
        painted = f"  [{style.paint(MARK[f.severity], _SEVERITY_TONE[f.severity])}] "
        lines += _marked(mark, painted, f"{f.id}: {clean(f.title)}", style.prose, 6)
        lines += _wrap(clean(f.summary), style.prose, " " * 6)
        lines += _wrap(clean(f.recommendation), style.prose, "      -> ", " " * 9)
    return lines


# --- sdk-check -------------------------------------------------------------------------------

_GLOBAL = {
    "none": "no global WebSocket",
    "flag": "global WebSocket from --experimental-websocket",
    "ws-shim": "global WebSocket from the ws shim",
    "native": "native global WebSocket",
}


def _runtime_line(r: ProbeResult) -> str:
    d = r.detail
    how = "as run" if d.get("mode") == "plain" else "with a WebSocket global"
    ws = _GLOBAL.get(str(d.get("websocket_global")), str(d.get("websocket_global")))
    return clean(f"{d.get('runtime')}: node {d.get('node_version')} {how} ({d.get('node_path')}; {ws})")


def sdk_notices(*, api_key_env: str | None, api_base: str | None, inscription: bool) -> list[str]:
    """What ``sdk-check`` did not run, and how to make it."""
    notices = []
    if api_key_env is None:
        notices.append(
            "no --api-key-env, so the SDK's connect with the valid key (and its inscription) did not run."
        )
    if api_base is None:
        notices.append("no --api-base, so the SDK's server discovery did not run.")
    if api_key_env is not None and not inscription:
        notices.append("--no-inscription: the SDK stopped after the connect; start-inscription was not sent.")
    return notices


def render_sdk_check(
    results: Sequence[ProbeResult],
    findings: Sequence[Finding],
    style: Style = PLAIN,
    notices: Sequence[str] = (),
) -> str:
    """``sdk-check``'s human output: one table per runtime, the SDK's log lines, the findings."""
    lines: list[str] = []
    if results:
        first = results[0]
        name = _target_name(first.detail.get("label"), first.target)
        package = clean(f"{first.detail.get('sdk_package')} {first.detail.get('sdk_version')}")
        lines += _wrap(f"sdk-check {name}  ({package})", style.width, "", "    ")
    for notice in notices:
        lines += _marked("Not checked: ", style.paint("Not checked:", "warn") + " ", notice, style.prose, 2)
    by_runtime: dict[str, list[ProbeResult]] = {}
    for r in results:
        by_runtime.setdefault(str(r.detail.get("runtime")), []).append(r)
    for rows in by_runtime.values():
        lines.append("")
        lines += _wrap(_runtime_line(rows[0]), style.width, "", "    ")
        head = f"  {'step':<18} {'outcome':<15} {'total ms':>8}  "
        lines.append(head + "SDK message / note" if style.width - len(head) >= NOTE_ROOM else head.rstrip())
        for r in rows:
            step = clean(r.variant.partition(":")[2])
            note = _shorten(clean(r.error or "").strip(), 80)
            lines += _beside(f"  {step:<18} {r.outcome.value:<15} {_ms(r.timings.total):>8}  ", note, style)
    logged = [(clean(r.variant), clean(line)) for r in results for line in r.detail.get("sdk_log") or []]
    if logged:
        lines += ["", style.paint("SDK log lines", "bold")]
        for variant, line in logged:
            lines += _beside(f"  {variant:<34} ", line, style)
    lines.append("")
    lines += _findings_lines(findings, style)
    return "\n".join(lines)


# --- progress --------------------------------------------------------------------------------


def progress_printer(stream: TextIO | None = None) -> Callable[[int, int], None]:
    """``probe``'s one-line counter on a terminal's stderr, erased when the probes are done."""
    out = sys.stderr if stream is None else stream

    def show(done: int, total: int) -> None:
        text = f"probing {done}/{total}"
        end = "\r" + " " * len(text) + "\r" if done >= total else ""
        print(f"\r{text}{end}", end="", file=out, flush=True)

    return show


def _clock(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes}:{secs:02d}"


@dataclass
class ReportProgress:
    """``report``'s progress. ``live`` (a terminal): one line rewritten in place, ``n/N`` with an
    ETA, erased at the end. Otherwise one line per finished step, in order, for a log to keep."""

    stream: TextIO
    live: bool
    width: int = DEFAULT_WIDTH
    clock: Callable[[], float] = time.monotonic
    total: int | None = None
    done: int = 0
    began: float = field(default=0.0)
    _shown: int = 0

    def __post_init__(self) -> None:
        self.began = self.clock()

    def note(self, message: str) -> None:
        """A phase before the steps (the lab starting)."""
        if self.live:
            self._show(clean(message))
        else:
            self._print(f"report: {clean(message)}")

    def planned(self, total: int) -> None:
        """The number of steps, once known (after discovery); the ETA counts from here."""
        self.total, self.done, self.began = total, 0, self.clock()
        self.note(f"{total} notebooks to run")

    def step(self, message: str) -> None:
        self.done += 1
        total = max(self.total or 0, self.done)  # never "12 of 11"
        elapsed = self.clock() - self.began
        count = f"{self.done:>{len(str(total))}}/{total}" if self.total else str(self.done)
        if not self.live:
            self._print(f"report: [{count}] {clean(message)} ({_clock(elapsed)})")
            return
        left = elapsed / self.done * (total - self.done)
        eta = f"{_clock(elapsed)} elapsed" + (f", about {_clock(left)} left" if self.done < total else "")
        self._show(f"notebooks {count}  {eta}  {clean(message)}")

    def close(self) -> None:
        if self.live and self._shown:
            print("\r" + " " * self._shown + "\r", end="", file=self.stream, flush=True)
            self._shown = 0

    def _show(self, text: str) -> None:
        text = text[: max(1, self.width - 1)]  # a line that wraps could not be rewritten
        pad = " " * max(0, self._shown - len(text))
        print(f"\r{text}{pad}", end="", file=self.stream, flush=True)
        self._shown = len(text)

    def _print(self, text: str) -> None:
        print(text, file=self.stream, flush=True)


# --- report ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReportEnd:
    """What ``report`` says when it is done (read from the run's summary.json and outcome)."""

    status: str
    sentence: str
    findings: Sequence[tuple[str, str]]  # (severity, title), in the report's order
    runs: int
    failed: Sequence[tuple[str, str]]  # (run id, error)
    files: Sequence[tuple[str, str]]  # (what, path): the HTML, the Markdown, the index
    timings: Mapping[str, float] = field(default_factory=dict)  # shown with -v only


def _severity(text: str) -> Severity:
    try:
        return Severity(text)
    except ValueError:  # a summary.json of another version: shown, never raised
        return Severity.INFO


def render_report_end(end: ReportEnd, style: Style = PLAIN, *, verbose: bool = False) -> str:
    order = (Severity.CRITICAL, Severity.WARNING, Severity.INFO)
    counts = {s: sum(1 for sev, _ in end.findings if _severity(sev) is s) for s in order}
    listed = [f"{n} {s}" for s, n in counts.items() if n]
    # The sentence names every critical finding: the list below does, so counts stand here.
    lines = _overall(end.status, f"{', '.join(listed)} finding(s)" if listed else clean(end.sentence), style)
    for severity, title in end.findings:
        sev = _severity(severity)
        if sev is Severity.INFO:
            continue
        mark = f"  [{MARK[sev]}] "
        painted = f"  [{style.paint(MARK[sev], _SEVERITY_TONE[sev])}] "
        lines += _marked(mark, painted, clean(title), style.prose, 4)
    if counts[Severity.INFO]:
        lines.append(f"  and {counts[Severity.INFO]} info finding(s): see the report")
    lines.append(f"{end.runs} probe notebooks, {len(end.failed)} failed")
    for run_id, error in end.failed:
        lines += _wrap(f"{clean(run_id)}: {clean(error)}", style.prose, "  failed: ", " " * 10)
    if verbose and end.timings:
        timings = ", ".join(f"{k} {v:.1f}s" for k, v in end.timings.items())
        lines += _wrap(timings, style.prose, "time: ", "  ")
    width = max((len(what) for what, _ in end.files), default=0)
    lines += [f"{what:<{width}}  {clean(path)}" for what, path in end.files]
    return "\n".join(lines)
