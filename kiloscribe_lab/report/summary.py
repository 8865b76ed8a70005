"""A run in a few numbers (``summary.json``), and what changed since the previous run's
(beyond sampling noise: ``stats``).

Pure except ``load_previous``, which only reads a file. A summary is written as the TypedDicts
below; one read back (a previous run's, possibly another version's) is any JSON, read loosely.
"""

from __future__ import annotations

import dataclasses
import statistics
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypedDict

from kiloscribe_lab.diagnosis import TargetVerdict, overall
from kiloscribe_lab.names import Credential, ProbeName
from kiloscribe_lab.report.loose import as_float, as_items, as_str, read_json_object
from kiloscribe_lab.report.rundata import labels_of, targets_of
from kiloscribe_lab.report.stats import ALPHA, MIN_LATENCY_SAMPLES, fisher_exact, holm, mann_whitney
from kiloscribe_lab.results import Finding, ProbeResult

SUMMARY_VERSION = 3  # 2: every cell keeps its handshake latencies; 3: cells per vantage too
SUCCESS_MOVE_PP = 10.0  # a success rate moved by at least this many percentage points
LATENCY_MOVE_RATIO = 0.5  # ... a p50 latency by at least 50 % of its previous value
LATENCY_MOVE_MS = 20.0  # ... and by at least this many milliseconds


class SummaryCell(TypedDict):
    """One target on one network."""

    basis: str  # which probe's connects were counted
    attempts: int
    successes: int
    success_rate: float | None
    p50_handshake_ms: float | None
    handshake_ms: list[float]  # every successful connect's, for the comparison's test


class SummaryTarget(TypedDict):
    url: str
    label: str | None
    verdict: str | None
    sentence: str | None
    networks: dict[str, SummaryCell]  # every vantage's connects together
    vantages: dict[str, dict[str, SummaryCell]]  # vantage -> network -> its own


class SummaryFinding(TypedDict):
    id: str
    severity: str
    title: str
    targets: list[str]  # summary keys (labels where known)


class Summary(TypedDict):
    kind: str
    version: int
    run: dict[str, object]
    status: str
    sentence: str
    findings: list[SummaryFinding]
    targets: dict[str, SummaryTarget]  # keyed by label where one is known
    networks: list[str]
    vantages: list[str]


def target_keys(targets: Iterable[str], labels: Mapping[str, str]) -> dict[str, str]:
    """URL -> the key a summary uses for it: its label (stable across runs), else its URL."""
    targets = list(dict.fromkeys(targets))
    counts = Counter(labels.get(t) for t in targets if labels.get(t))
    out = {}
    for t in targets:
        label = labels.get(t)
        out[t] = label if label and counts[label] == 1 else (f"{label} ({t})" if label else t)
    return out


def connect_samples(rs: Sequence[ProbeResult]) -> tuple[str, int, int, list[float]]:
    """(basis, attempts, successes, handshake ms of the successes) for one target x network.

    Socket.IO connects with the valid key where they were made (single connects and every
    attempt of connect_stats), else the Engine.IO polling handshake.
    """
    valid = [
        r for r in rs if r.probe == ProbeName.SOCKETIO_CONNECT and r.variant.endswith(f":{Credential.VALID}")
    ]
    stats = [r for r in rs if r.probe == ProbeName.CONNECT_STATS]
    attempts = successes = 0
    latencies: list[float] = []
    if valid or stats:
        basis = f"{ProbeName.SOCKETIO_CONNECT}:{Credential.VALID}"
        for r in valid:
            attempts += 1
            if r.ok:
                successes += 1
                if r.timings.handshake is not None:
                    latencies.append(r.timings.handshake)
        for r in stats:
            runs = [a for a in as_items(r.detail.get("runs")) if isinstance(a, Mapping)]
            if not runs:  # a stats probe cut short: count it as one attempt
                attempts += 1
                successes += r.ok
                continue
            for a in runs:
                attempts += 1
                if a.get("outcome") == "ok":
                    successes += 1
                    ms = as_float(a.get("ms"))
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
    meta: Mapping[str, object] | None = None,
) -> Summary:
    """The run in a few numbers, JSON-serialisable; what the next run compares itself with.

    Targets are keyed by label where one is known (lab ports change every run, labels do not).
    Per target and network: the success rate of the Socket.IO connect probes and the p50
    handshake latency of the successful ones; the same per vantage and network.
    """
    rs = [r for r in results if r.probe != ProbeName.DISCOVERY]
    names = {**(labels or {}), **labels_of(rs)}
    keys = target_keys(targets_of(rs), names)
    status, sentence = overall(findings, verdicts)
    by_verdict = {v.target: v for v in verdicts}
    targets: dict[str, SummaryTarget] = {}
    for url, key in keys.items():
        mine = [r for r in rs if r.target == url]
        per_network = {
            network: _cell([r for r in mine if r.network == network])
            for network in dict.fromkeys(r.network for r in mine)
        }
        per_vantage = {
            vantage: {
                network: _cell([r for r in mine if r.vantage == vantage and r.network == network])
                for network in dict.fromkeys(r.network for r in mine if r.vantage == vantage)
            }
            for vantage in dict.fromkeys(r.vantage for r in mine)
        }
        verdict = by_verdict.get(url)
        targets[key] = {
            "url": url,
            "label": names.get(url),
            "verdict": verdict.verdict.value if verdict else None,
            "sentence": verdict.sentence if verdict else None,
            "networks": per_network,
            "vantages": per_vantage,
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
        "vantages": list(dict.fromkeys(r.vantage for r in rs)),
    }


def _cell(rs: Sequence[ProbeResult]) -> SummaryCell:
    basis, attempts, successes, latencies = connect_samples(rs)
    return {
        "basis": basis,
        "attempts": attempts,
        "successes": successes,
        "success_rate": round(successes / attempts, 4) if attempts else None,
        "p50_handshake_ms": round(statistics.median(latencies), 1) if latencies else None,
        "handshake_ms": [round(v, 1) for v in latencies],
    }


@dataclass(frozen=True, slots=True)
class FindingRef:
    id: str
    severity: str
    title: str


@dataclass(frozen=True, slots=True)
class Move:
    """One number of one target on one network, compared between two runs, with its test.

    ``before``/``after``: a success rate (0..1) or a p50 handshake latency (ms); ``n_*``: the
    connects counted (attempts, or latency samples); ``ok_*``: connects that worked."""

    target: str
    network: str
    metric: str  # "success" or "latency"
    before: float
    after: float
    n_before: int
    n_after: int
    p: float
    p_adjusted: float = 1.0
    significant: bool = False
    ok_before: int | None = None
    ok_after: int | None = None

    @property
    def delta(self) -> float:
        return self.after - self.before


@dataclass(frozen=True, slots=True)
class Comparison:
    first_run: bool
    previous_run: Mapping[str, object] = field(default_factory=dict)
    status_before: str | None = None
    status_after: str | None = None
    new_findings: tuple[FindingRef, ...] = ()
    resolved_findings: tuple[FindingRef, ...] = ()
    success_moves: tuple[Move, ...] = ()  # significant changes of a success rate (0..1)
    latency_moves: tuple[Move, ...] = ()  # significant changes of a p50 handshake (ms)
    compared: tuple[Move, ...] = ()  # every number tested, changed or not
    untested: int = 0  # numbers present in both runs without the samples a test needs
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


def _finding_refs(summary: Mapping[str, object]) -> dict[str, FindingRef]:
    out: dict[str, FindingRef] = {}
    for f in as_items(summary.get("findings")):
        if isinstance(f, Mapping) and f.get("id"):
            out[str(f["id"])] = FindingRef(
                str(f["id"]), str(f.get("severity") or ""), str(f.get("title") or "")
            )
    return out


def summary_cells(summary: Mapping[str, object]) -> dict[tuple[str, str], Mapping[str, object]]:
    """(target key, network) -> its cell, from a summary read loosely (any JSON)."""
    targets = summary.get("targets")
    out: dict[tuple[str, str], Mapping[str, object]] = {}
    if not isinstance(targets, Mapping):
        return out
    for key, entry in targets.items():
        networks = entry.get("networks") if isinstance(entry, Mapping) else None
        if isinstance(networks, Mapping):
            for network, cell in networks.items():
                if isinstance(cell, Mapping):
                    out[(str(key), str(network))] = cell
    return out


def _target_names(summary: Mapping[str, object]) -> list[str]:
    targets = summary.get("targets")
    return [str(k) for k in targets] if isinstance(targets, Mapping) else []


def _count(cell: Mapping[str, object], key: str) -> int | None:
    value = as_float(cell.get(key))
    return None if value is None or value < 0 or value != int(value) else int(value)


def _samples(cell: Mapping[str, object]) -> list[float]:
    return [v for item in as_items(cell.get("handshake_ms")) if (v := as_float(item)) is not None]


def _success_test(key: tuple[str, str], old: Mapping[str, object], new: Mapping[str, object]) -> Move | None:
    n_a, ok_a, n_b, ok_b = (_count(c, k) for c in (old, new) for k in ("attempts", "successes"))
    if not n_a or not n_b or ok_a is None or ok_b is None or ok_a > n_a or ok_b > n_b:
        return None
    p = fisher_exact(ok_a, n_a, ok_b, n_b)
    return Move(key[0], key[1], "success", ok_a / n_a, ok_b / n_b, n_a, n_b, p, ok_before=ok_a, ok_after=ok_b)


def _latency_test(key: tuple[str, str], old: Mapping[str, object], new: Mapping[str, object]) -> Move | None:
    a, b = _samples(old), _samples(new)
    if len(a) < MIN_LATENCY_SAMPLES or len(b) < MIN_LATENCY_SAMPLES:
        return None
    return Move(
        key[0],
        key[1],
        "latency",
        statistics.median(a),
        statistics.median(b),
        len(a),
        len(b),
        mann_whitney(a, b),
    )


def _large_enough(m: Move) -> bool:
    """A significant change still has to matter: 10 points of success, or 50 % and 20 ms of p50."""
    if m.metric == "success":
        return round(abs(m.delta) * 100, 6) >= SUCCESS_MOVE_PP
    moved = abs(m.delta)
    return moved >= LATENCY_MOVE_MS and (m.before <= 0 or moved >= LATENCY_MOVE_RATIO * m.before)


def compare(current: Mapping[str, object], previous: Mapping[str, object] | None) -> Comparison:
    """What changed since the previous run's summary. Pure; a malformed summary compares as empty.

    Success rates are compared with Fisher's exact test, latencies with the Mann–Whitney U
    test, every p-value Holm-adjusted over all the numbers compared; a change is called when
    its adjusted p-value is below ``ALPHA`` and it is large enough to matter (``_large_enough``).
    """
    if not isinstance(previous, Mapping):
        return Comparison(first_run=True, status_after=as_str(current.get("status")))
    now, before = _finding_refs(current), _finding_refs(previous)
    cells_now, cells_before = summary_cells(current), summary_cells(previous)
    tested: list[Move] = []
    untested = 0
    for key, cell in cells_now.items():
        old = cells_before.get(key)
        if old is None:
            continue
        for test, fallback in ((_success_test, "success_rate"), (_latency_test, "p50_handshake_ms")):
            move = test(key, old, cell)
            if move is not None:
                tested.append(move)
            elif as_float(old.get(fallback)) is not None and as_float(cell.get(fallback)) is not None:
                untested += 1
    adjusted = holm([m.p for m in tested])
    compared = tuple(
        dataclasses.replace(m, p_adjusted=q, significant=q < ALPHA and _large_enough(m))
        for m, q in zip(tested, adjusted, strict=True)
    )
    names_now, names_before = _target_names(current), _target_names(previous)
    run = previous.get("run")
    return Comparison(
        first_run=False,
        previous_run=dict(run) if isinstance(run, Mapping) else {},
        status_before=as_str(previous.get("status")),
        status_after=as_str(current.get("status")),
        new_findings=tuple(f for i, f in now.items() if i not in before),
        resolved_findings=tuple(f for i, f in before.items() if i not in now),
        success_moves=tuple(m for m in compared if m.significant and m.metric == "success"),
        latency_moves=tuple(m for m in compared if m.significant and m.metric == "latency"),
        compared=compared,
        untested=untested,
        targets_added=tuple(t for t in names_now if t not in names_before),
        targets_removed=tuple(t for t in names_before if t not in names_now),
    )


def load_previous(compare_dir: str | Path | None) -> dict[str, object] | None:
    """The summary.json of a previous run directory (or that file itself); None when there is
    none or it cannot be read: the report then says it is a first run."""
    if compare_dir is None or str(compare_dir).strip() == "":
        return None
    path = Path(compare_dir)
    if path.is_dir():
        path = path / "summary.json"
    data = read_json_object(path)
    return data or None
