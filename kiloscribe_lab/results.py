"""The data model every part shares: ProbeResult, Timings, Finding; JSON in and out.

The JSON shapes are a contract (see DESIGN.md): reports, notebooks and other tools read
them. A timing that did not happen is ``None`` (JSON null), never 0.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from kiloscribe_lab.errors import RecordError
from kiloscribe_lab.names import Outcome, Severity, VantageName
from kiloscribe_lab.untrusted import fix_surrogates

JSON = dict[str, Any]


TIMING_PHASES = ("dns", "connect", "tls", "first_byte", "handshake", "total")


@dataclass(frozen=True, slots=True)
class Timings:
    """Per-phase durations in milliseconds; ``None`` where a phase did not happen."""

    dns: float | None = None
    connect: float | None = None
    tls: float | None = None
    first_byte: float | None = None
    handshake: float | None = None
    total: float | None = None

    def to_json(self) -> dict[str, float | None]:
        return {p: _round_ms(getattr(self, p)) for p in TIMING_PHASES}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Timings:
        values: dict[str, float | None] = {}
        for phase in TIMING_PHASES:
            raw = data.get(phase)
            if raw is not None and not isinstance(raw, int | float):
                raise RecordError(f"timing {phase!r} is not a number: {raw!r}")
            values[phase] = None if raw is None else float(raw)
        return cls(**values)


def _round_ms(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """What one probe observed against one target, on one network, from one vantage (the
    machine that ran it: ``local``, or a Dask worker's name)."""

    probe: str
    target: str
    outcome: Outcome
    variant: str = ""
    network: str = "direct"
    status: int | None = None
    error: str | None = None
    timings: Timings = field(default_factory=Timings)
    headers: Mapping[str, str] = field(default_factory=dict)
    detail: Mapping[str, Any] = field(default_factory=dict)
    started_at: str = field(default_factory=utc_now)
    vantage: str = VantageName.LOCAL

    @property
    def ok(self) -> bool:
        return self.outcome.ok

    @property
    def ref(self) -> str:
        """A short, stable reference used as a Finding's evidence. A vantage other than ``local``
        is appended (``#direct/eu-west``): the same probe from two places is two results."""
        parts = [self.probe]
        if self.variant:
            parts.append(self.variant)
        where = self.network if self.vantage == VantageName.LOCAL else f"{self.network}/{self.vantage}"
        return f"{':'.join(parts)}@{self.target}#{where}"

    def to_json(self) -> JSON:
        return {
            "kind": "probe",
            "probe": self.probe,
            "variant": self.variant,
            "target": self.target,
            "network": self.network,
            "vantage": self.vantage,
            "outcome": self.outcome.value,
            "ok": self.ok,
            "status": self.status,
            "error": self.error,
            "timings_ms": self.timings.to_json(),
            "headers": dict(self.headers),
            "detail": dict(self.detail),
            "started_at": self.started_at,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ProbeResult:
        try:
            return cls(
                probe=str(data["probe"]),
                variant=str(data.get("variant") or ""),
                target=str(data["target"]),
                network=str(data.get("network") or "direct"),
                # Records from before vantages existed ran where the command ran.
                vantage=str(data.get("vantage") or VantageName.LOCAL),
                outcome=Outcome(data["outcome"]),
                status=_opt_int(data.get("status")),
                error=None if data.get("error") is None else str(data["error"]),
                timings=Timings.from_json(data.get("timings_ms") or {}),
                headers={str(k): str(v) for k, v in (data.get("headers") or {}).items()},
                detail=dict(data.get("detail") or {}),
                started_at=str(data.get("started_at") or ""),
            )
        except (KeyError, ValueError, TypeError, AttributeError) as exc:
            raise RecordError(f"not a ProbeResult record: {exc}") from exc


def _opt_int(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"status is not an integer: {value!r}")
    return value


@dataclass(frozen=True, slots=True)
class Finding:
    """A conclusion drawn from evidence: a root cause or a reassurance, with what to do."""

    id: str
    severity: Severity
    title: str
    summary: str
    recommendation: str
    evidence: tuple[str, ...] = ()
    targets: tuple[str, ...] = ()

    def to_json(self) -> JSON:
        return {
            "kind": "finding",
            "id": self.id,
            "severity": self.severity.value,
            "title": self.title,
            "summary": self.summary,
            "evidence": list(self.evidence),
            "recommendation": self.recommendation,
            "targets": list(self.targets),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Finding:
        try:
            return cls(
                id=str(data["id"]),
                severity=Severity(data["severity"]),
                title=str(data["title"]),
                summary=str(data["summary"]),
                recommendation=str(data["recommendation"]),
                evidence=tuple(str(e) for e in data.get("evidence") or ()),
                targets=tuple(str(t) for t in data.get("targets") or ()),
            )
        except (KeyError, ValueError, TypeError) as exc:
            raise RecordError(f"not a Finding record: {exc}") from exc


Record = ProbeResult | Finding

# Lines ``probe --json`` and the report also write, derived from the records above (verdicts
# per target, the overall summary): readers skip them and recompute them from the records.
DERIVED_KINDS = frozenset({"verdict", "summary"})


def is_derived(kind: object) -> bool:
    """A ``kind`` readers skip; any JSON value is asked safely (a list is not hashable)."""
    return isinstance(kind, str) and kind in DERIVED_KINDS


def record_from_json(data: Mapping[str, Any]) -> Record:
    kind = data.get("kind")
    if kind == "probe":
        return ProbeResult.from_json(data)
    if kind == "finding":
        return Finding.from_json(data)
    raise RecordError(f"unknown record kind: {kind!r}")


def json_line(obj: object) -> str:
    """``obj`` as one line of JSON that is always valid UTF-8: a lone surrogate (a server's
    non-UTF-8 byte, smuggled through a library's surrogateescape) cannot be encoded, so it is
    replaced (``untrusted.fix_surrogates``) instead of failing the write or corrupting it."""
    return fix_surrogates(json.dumps(obj, ensure_ascii=False, separators=(",", ":")))


def dumps_line(record: Record) -> str:
    """One JSON object on one line (JSON Lines)."""
    return json_line(record.to_json())


def write_jsonl(records: Iterable[Record]) -> str:
    return "".join(dumps_line(r) + "\n" for r in records)


def read_jsonl(text: str) -> Iterator[Record]:
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            raise RecordError(f"line {lineno}: not JSON: {exc.msg}") from exc
        if not isinstance(data, dict):
            raise RecordError(f"line {lineno}: not a JSON object")
        if is_derived(data.get("kind")):
            continue
        yield record_from_json(data)


def replace(result: ProbeResult, **changes: Any) -> ProbeResult:
    """dataclasses.replace, typed for ProbeResult."""
    return dataclasses.replace(result, **changes)
