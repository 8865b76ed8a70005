"""A table of hostile servers, one loopback listener each (all served by one process of their
own, hostile_behaviours), and what the command must do against
every one of them (issue 13's bars): return by its deadline (+ 10 %), exit 1 with a critical
finding that names the target, say what happened in its own words, write nothing a terminal
obeys (in its output and in the report's Markdown), no 8 characters of the key anywhere, under
1 MB of output, valid UTF-8 through a strict stream, and no traceback.

The command runs in-process (``cli.main``), several at once, each with its own strict UTF-8
stdout; peak memory is measured in a subprocess (test_hostile_memory.py).
"""

from __future__ import annotations

import json
import os
import unicodedata
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pytest

from kiloscribe_lab import diagnosis
from kiloscribe_lab.credentials import FRAGMENT, forms
from kiloscribe_lab.names import (
    Credential,
    FindingId,
    Outcome,
    ProbeName,
    Severity,
    Transport,
    connect_variant,
)
from kiloscribe_lab.probes.runner import run_deadline
from kiloscribe_lab.report.appendix import infrastructure_section, test_details_section
from kiloscribe_lab.report.sections import recommendations_section, root_cause_section, summary_section
from kiloscribe_lab.results import Finding, ProbeResult, read_jsonl
from kiloscribe_lab.settings import ProbeOptions
from tests.integration.hostile import SCHEDULER_SLACK_S, CliRun, hostile_process, per_thread_streams, run_cli
from tests.integration.hostile_behaviours import KEY, REFUSALS, TIMEOUT_S

pytestmark = pytest.mark.timeout(120)

# What the command promises: the slowest probe's deadline plus the run's slack (runner.run_deadline).
# The real python-socketio answers every probe with its own refusal: slower than a canned answer
# on a busy machine, and a probe cut short there would say "timeout", not what the server said.
SOCKETIO_TIMEOUT_S = 2 * TIMEOUT_S


def promised_s(timeout_s: float) -> float:
    """What the command promises: the slowest probe's deadline plus the run's slack."""
    return run_deadline(ProbeOptions(timeout_s=timeout_s), discover=False)


def within(seconds: float, timeout_s: float) -> bool:
    promised = promised_s(timeout_s)
    return seconds <= promised + max(0.1 * promised, SCHEDULER_SLACK_S)


KEY_ENV = "KILOSCRIBE_HOSTILE_KEY"
MAX_OUTPUT = 1 << 20
WORKERS = 4


# --- the table ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    name: str  # the behaviour's, in hostile_behaviours
    # The critical finding (one of these) that explains the target.
    findings: frozenset[FindingId]
    # Words the JSON records must carry (what happened, the limit named).
    says: tuple[str, ...] = ()
    # (probe, variant) -> the outcome that probe must record.
    outcomes: Mapping[tuple[str, str], Outcome] = field(default_factory=dict)

    @property
    def timeout_s(self) -> float:
        return SOCKETIO_TIMEOUT_S if self.name in REFUSALS else TIMEOUT_S


MALFORMED = frozenset({FindingId.MALFORMED_HANDSHAKE})
POLLING = (ProbeName.SOCKETIO_CONNECT, connect_variant(Transport.POLLING, Credential.VALID))
WEBSOCKET = (ProbeName.SOCKETIO_CONNECT, connect_variant(Transport.WEBSOCKET, Credential.VALID))
HANDSHAKE = (ProbeName.ENGINEIO_HANDSHAKE, "")

DOWN = frozenset({FindingId.ALL_BACKENDS_DOWN})
TIMEOUT = frozenset({FindingId.BACKEND_TIMEOUT})
NOT_SIO = frozenset({FindingId.NOT_SOCKETIO})
BROKEN = MALFORMED | NOT_SIO
LOOP = frozenset({FindingId.REDIRECT_LOOP})
DROPPED = frozenset({FindingId.UPGRADE_HEADERS_DROPPED})
REFUSED = frozenset({FindingId.AUTH_REJECTED})
LIMIT = "1048576-byte limit"
RESET, BAD, REDIRECT = Outcome.RESET, Outcome.MALFORMED, Outcome.REDIRECT

CASES = [
    Case("closes-at-once", DOWN, ("accepted and then closed",), {POLLING: RESET, HANDSHAKE: RESET}),
    Case("resets-at-once", DOWN, (), {POLLING: RESET, WEBSOCKET: RESET, HANDSHAKE: RESET}),
    Case("silent", TIMEOUT, ("sent nothing",)),
    Case("trickles", TIMEOUT, ("answered too slowly",)),
    Case("not-http", MALFORMED, ("not HTTP",), {POLLING: BAD, HANDSHAKE: BAD}),
    Case("garbage", MALFORMED, ("not HTTP",)),
    Case("garbage-every-time-different", MALFORMED, ("not HTTP",)),
    Case("reset-mid-head", DOWN, (), {POLLING: RESET, HANDSHAKE: RESET}),
    Case("reset-mid-body", DROPPED, ("reset",), {POLLING: RESET, HANDSHAKE: RESET}),
    Case("closes-mid-body", DROPPED, ("middle of the response body",), {POLLING: RESET, HANDSHAKE: RESET}),
    Case("oversized-header", MALFORMED, ("65536 bytes", "8190 bytes"), {POLLING: BAD, HANDSHAKE: BAD}),
    Case("five-thousand-headers", MALFORMED, (), {HANDSHAKE: BAD}),
    Case("status-9999", MALFORMED),
    Case("bad-content-length", MALFORMED),
    Case("bad-chunking", MALFORMED),
    Case("endless-100-continue", MALFORMED, ("informational",), {POLLING: BAD, WEBSOCKET: BAD}),
    Case("endless-chunked-body", BROKEN, (LIMIT,), {POLLING: BAD}),
    Case("body-400-mb", BROKEN, (LIMIT,), {POLLING: BAD}),
    Case("gzip-bomb-200-mb", BROKEN, (LIMIT,), {POLLING: BAD}),
    Case("wrong-accept", MALFORMED, ("Sec-WebSocket-Accept",), {WEBSOCKET: BAD}),
    Case("101-then-garbage-frames", BROKEN, (), {WEBSOCKET: BAD}),
    Case("101-then-a-2-TiB-frame", BROKEN, ("limit",), {WEBSOCKET: BAD}),
    Case("101-then-silence", NOT_SIO),
    Case("101-then-close", NOT_SIO),
    Case("101-then-invalid-utf8", BROKEN),
    Case("101-to-everything", BROKEN),
    Case("redirect-loop", LOOP, ("loop",), {POLLING: REDIRECT, WEBSOCKET: REDIRECT}),
    Case("redirect-cross-origin", LOOP, ("another origin",), {POLLING: REDIRECT}),
    Case("redirect-javascript", LOOP, ("no http(s) URL",), {POLLING: REDIRECT}),
    Case("redirect-chain-of-twenty", LOOP, ("redirects",), {POLLING: REDIRECT}),
    Case("server-cafe-latin-1", NOT_SIO, ("Café",)),
    Case("escapes-in-headers", BROKEN),
    Case("html-catch-all", NOT_SIO | DROPPED),
    Case("open-packet-broken-json", BROKEN),
    Case("open-packet-wrong-types", BROKEN),
    Case("key-reflected-in-body", NOT_SIO),
    Case("key-reflected-in-headers", NOT_SIO),
    Case("key-reflected-in-a-location", LOOP),
    Case("refusal-5-mb", MALFORMED, (LIMIT,), {POLLING: BAD, WEBSOCKET: BAD}),
    Case("refusal-600-kb", REFUSED, (), {POLLING: Outcome.AUTH_REJECTED}),
    Case("refusal-with-escapes", REFUSED),
    Case("refusal-quoting-the-key", REFUSED),
]
IDS = [c.name for c in CASES]


# --- running them -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ran:
    url: str
    json: CliRun
    human: CliRun
    records: list[dict[str, Any]]


def _run(url: str, timeout_s: float = TIMEOUT_S) -> Ran:
    argv = ["--timeout", str(timeout_s), "--api-key-env", KEY_ENV, "--lab-dir", "/nonexistent-lab"]
    as_json = run_cli(["probe", url, *argv, "--json"])
    human = run_cli(["probe", url, *argv, "--color", "never"])
    records = [json.loads(line) for line in as_json.stdout.decode("utf-8").splitlines()]
    return Ran(url, as_json, human, records)


@pytest.fixture(scope="module")
def ran() -> Iterator[dict[str, Ran]]:
    # Imported before the clock starts: an import is no part of a probe's deadline.
    import kiloscribe_lab.output
    import kiloscribe_lab.probes.command  # noqa: F401

    os.environ[KEY_ENV] = KEY
    try:
        with hostile_process(IDS) as urls, per_thread_streams(), ThreadPoolExecutor(WORKERS) as pool:
            _run(urls[CASES[0].name])  # warm: the libraries' first use (lazy imports, caches) is no probe's
            runs = pool.map(_run, [urls[c.name] for c in CASES], [c.timeout_s for c in CASES])
            yield dict(zip(IDS, runs, strict=True))
    finally:
        os.environ.pop(KEY_ENV, None)


def _fragments(text: str) -> set[str]:
    return {
        f[i : i + FRAGMENT]
        for f in forms(KEY)
        for i in range(len(f) - FRAGMENT + 1)
        if f[i : i + FRAGMENT] in text
    }


def _controls(text: str) -> set[str]:
    return {repr(c) for c in text if c != "\n" and unicodedata.category(c) in ("Cc", "Cf")}


def _markdown_and_html(records: list[dict[str, Any]]) -> tuple[str, str]:
    """The report's sections that quote servers, rendered from the command's records."""
    read = list(read_jsonl("\n".join(json.dumps(r) for r in records)))
    results = [r for r in read if isinstance(r, ProbeResult)]
    findings = [r for r in read if isinstance(r, Finding)]
    sections = [
        summary_section(findings, diagnosis.verdicts(results)),
        root_cause_section(findings, results),
        recommendations_section(findings),
        test_details_section(results),
        infrastructure_section(results),
    ]
    return "\n".join(s.markdown() for s in sections), "\n".join(s.html() for s in sections)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_the_command_explains_a_hostile_server(case: Case, ran: dict[str, Ran]) -> None:
    r = ran[case.name]
    assert r.json.code == r.human.code == 1, (r.json.code, r.human.code, r.json.stderr)
    findings = [x for x in r.records if x["kind"] == "finding"]
    critical = {x["id"] for x in findings if x["severity"] == Severity.CRITICAL and r.url in x["targets"]}
    assert critical & case.findings, (critical, [x["summary"][:200] for x in findings])
    verdicts = [x for x in r.records if x["kind"] == "verdict"]
    if any(v["verdict"] == "down" for v in verdicts):
        assert critical, "a target is down and no critical finding says why"
    text = json.dumps(r.records, ensure_ascii=False)
    for words in case.says:
        assert words in text, words
    probes = {(x["probe"], x["variant"]): x for x in r.records if x["kind"] == "probe"}
    for key, outcome in case.outcomes.items():
        assert probes[key]["outcome"] == outcome, (key, probes[key]["outcome"], probes[key]["error"])


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_by_its_deadline_within_bounds_and_without_a_trace(case: Case, ran: dict[str, Ran]) -> None:
    r = ran[case.name]
    for run in (r.json, r.human):
        promised = promised_s(case.timeout_s)
        assert within(run.seconds, case.timeout_s), f"{run.seconds:.2f} s, promised {promised:.2f} s"
        assert "Traceback" not in run.stderr and not run.stderr.strip(), run.stderr[-2000:]
        assert len(run.stdout) < MAX_OUTPUT
    probes = [x for x in r.records if x["kind"] == "probe"]
    assert probes and all(within(x["timings_ms"]["total"] / 1000, case.timeout_s) for x in probes)
    # No library's exception text stands as the explanation (issue 13's examples).
    notes = " ".join(str(x.get("error")) for x in probes)
    for library in ("has no len()", "string indices must be integers", "invalid literal for int()", "Errno"):
        assert library not in notes


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_nothing_a_terminal_obeys_and_no_piece_of_the_key(case: Case, ran: dict[str, Ran]) -> None:
    r = ran[case.name]
    human = r.human.stdout.decode("utf-8")
    as_json = r.json.stdout.decode("utf-8")
    markdown, html = _markdown_and_html(r.records)
    assert not _controls(human), _controls(human)
    assert not _controls(markdown), _controls(markdown)
    assert "\x1b" not in html and "\x9b" not in html
    for name, text in (("terminal", human), ("json", as_json), ("markdown", markdown), ("html", html)):
        assert not _fragments(text), (name, _fragments(text))
    assert not _fragments(r.json.stderr + r.human.stderr)
