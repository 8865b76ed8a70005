"""The rule registry: every rule declares, where it is written, all the catalogue says of it.

A rule is a pure function ``(Evidence) -> Draft | None`` under ``@rule``::

    @rule(
        FindingId.BACKEND_DOWN,
        severities={Severity.CRITICAL},
        supersedes={FindingId.DISCOVERY_PROBLEM},
        title="Backend down",
        means="...",
        evidence="...",
    )
    def backend_down(ev: Evidence) -> Draft | None: ...

The body never names its id: it returns a ``Draft`` and the ``Rule`` makes the ``Finding``,
with the declared id, after checking the severity is one it declared. ``Registry`` checks the
rules as a set (one rule per id, supersedes acyclic, a cause never hides a finding more severe
than itself) and runs them; ``RULES``, ``SUPERSEDES`` and ``CATALOGUE`` are its views.

A rule or registry that breaks these raises ``RuleError``: a bug in kiloscribe-lab, never a
property of the evidence, so it is not a ``KiloscribeLabError`` (the CLI would report it as
bad usage, exit 2) but a ``RuntimeError`` that surfaces with its traceback like any other bug.
No severity is ever adjusted to fit: a finding that says other than its rule declares would
put a wrong line in the catalogue or a wrong severity in front of the user.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType, ModuleType

from kiloscribe_lab.diagnosis.evidence import Evidence
from kiloscribe_lab.diagnosis.fingerprint import Fingerprint
from kiloscribe_lab.diagnosis.remedies import FIXES, remedy
from kiloscribe_lab.names import FindingId, Severity
from kiloscribe_lab.results import Finding

__all__ = ["TABLE_BEGIN", "TABLE_END", "CatalogueEntry", "Draft", "Registry", "Rule", "RuleError", "rule"]

# The README's findings table sits between these lines (`kiloscribe-lab findings --readme README.md`).
TABLE_BEGIN = "<!-- findings table: generated from the rules (kiloscribe-lab findings --readme README.md) -->"
TABLE_END = "<!-- end of findings table -->"

# The order findings of equal severity are listed in, and the catalogue's: FindingId's own.
_ORDER = {fid: i for i, fid in enumerate(FindingId)}


class RuleError(RuntimeError):
    """A rule or the registry contradicts its declaration: a bug in kiloscribe-lab."""


@dataclass(frozen=True, slots=True)
class Draft:
    """What a rule body found: a Finding without its id, which the rule declares.

    With ``path`` (the fingerprint of the components the finding is about), the finding's
    fix in the words of the component believed to be there (``remedies.FIXES``, filled from
    ``fill``) joins ``recommendation``: before it, or after it with ``fix_last`` (when what
    the rule says comes first, "restart X", and the balancer's part second)."""

    severity: Severity
    title: str
    summary: str
    recommendation: str
    evidence: tuple[str, ...]
    targets: tuple[str, ...]
    path: Fingerprint | None = None
    fill: Mapping[str, str] = field(default_factory=dict)
    fix_last: bool = False


@dataclass(frozen=True, slots=True)
class CatalogueEntry:
    """One finding the diagnosis can raise, as ``kiloscribe-lab findings`` lists it."""

    id: FindingId
    severities: tuple[Severity, ...]  # most severe first
    title: str  # generic; a finding's own title names its targets
    means: str
    raised_by: str
    supersedes: tuple[FindingId, ...]  # in FindingId's order

    def to_json(self) -> dict[str, object]:
        return {
            "id": self.id.value,
            "title": self.title,
            "severity": [s.value for s in self.severities],
            "meaning": self.means,
            "evidence": self.raised_by,
            "supersedes": [s.value for s in self.supersedes],
        }


Body = Callable[[Evidence], Draft | None]


@dataclass(frozen=True, slots=True)
class Rule:
    """A rule body and its declaration; called on Evidence, it gives a Finding or None."""

    entry: CatalogueEntry
    body: Body

    @property
    def id(self) -> FindingId:
        return self.entry.id

    @property
    def name(self) -> str:
        return self.body.__name__

    def __call__(self, ev: Evidence) -> Finding | None:
        draft = self.body(ev)
        if draft is None:
            return None
        if draft.severity not in self.entry.severities:
            declared = ", ".join(self.entry.severities)
            raise RuleError(
                f"rule {self.name} raised {self.id} with severity {draft.severity}; it declares {declared}"
            )
        recommendation = draft.recommendation
        if draft.path is not None:
            if self.id not in FIXES:
                raise RuleError(
                    f"rule {self.name} gave a path, but remedies.FIXES has no entry for {self.id}"
                )
            fix = remedy(self.id, draft.path, draft.fill)
            parts = (draft.recommendation, fix) if draft.fix_last else (fix, draft.recommendation)
            recommendation = " ".join(part for part in parts if part)
        return Finding(
            id=self.id,
            severity=draft.severity,
            title=draft.title,
            summary=draft.summary,
            recommendation=recommendation,
            evidence=draft.evidence,
            targets=draft.targets,
        )


def rule(
    finding_id: FindingId,
    /,
    *,
    severities: Iterable[Severity],
    supersedes: Iterable[FindingId] = (),
    title: str,
    means: str,
    evidence: str,
) -> Callable[[Body], Rule]:
    """Declare a rule: its id, the severities it may give, the findings it explains away
    (dropped when both are found), a generic title, one line on what it means and one on
    the evidence that raises it."""
    if not isinstance(finding_id, FindingId):
        raise RuleError(f"a rule's id must be a FindingId, not {finding_id!r}")
    declared = frozenset(severities)
    if not declared or not all(isinstance(s, Severity) for s in declared):
        raise RuleError(
            f"{finding_id}: severities must be a non-empty set of Severity, not {sorted(declared)!r}"
        )
    dropped = frozenset(supersedes)
    unknown = sorted(repr(str(s)) for s in dropped if not isinstance(s, FindingId))
    if unknown:  # a bare string may be a typo; the vocabulary is the list of known ids
        raise RuleError(f"{finding_id} supersedes {', '.join(unknown)}: not a FindingId")
    if finding_id in dropped:
        raise RuleError(f"{finding_id} supersedes itself")
    for part, text in (("title", title), ("means", means), ("evidence", evidence)):
        if not text.strip() or "\n" in text or text != text.strip():
            raise RuleError(f"{finding_id}: {part} must be one non-empty line")
    entry = CatalogueEntry(
        id=finding_id,
        severities=tuple(sorted(declared, key=lambda s: -s.rank)),
        title=title,
        means=means,
        raised_by=evidence,
        supersedes=tuple(sorted(dropped, key=_ORDER.__getitem__)),
    )

    def declare(body: Body) -> Rule:
        return Rule(entry, body)

    return declare


class Registry:
    """Rules checked as a set, kept in FindingId's order."""

    def __init__(self, rules: Iterable[Rule], *, covers: Iterable[FindingId] = ()) -> None:
        """``covers``: the ids that must each have a rule (the real registry: every FindingId)."""
        by_id: dict[FindingId, Rule] = {}
        for r in rules:
            if not isinstance(r, Rule):
                raise RuleError(f"not a Rule (declare it with @rule): {r!r}")
            if r.id in by_id:
                raise RuleError(f"two rules raise {r.id}: {by_id[r.id].name} and {r.name}")
            by_id[r.id] = r
        missing = [str(fid) for fid in covers if fid not in by_id]
        if missing:
            raise RuleError(f"no rule raises {', '.join(missing)}")
        _check_supersedes({fid: r.entry for fid, r in by_id.items()})
        self.rules: tuple[Rule, ...] = tuple(sorted(by_id.values(), key=lambda r: _ORDER[r.id]))
        self._by_id = MappingProxyType({r.id: r for r in self.rules})
        self.supersedes: Mapping[FindingId, frozenset[FindingId]] = MappingProxyType(
            {r.id: frozenset(r.entry.supersedes) for r in self.rules if r.entry.supersedes}
        )
        self.catalogue: Mapping[FindingId, CatalogueEntry] = MappingProxyType(
            {r.id: r.entry for r in self.rules}
        )

    @classmethod
    def of_modules(cls, modules: Iterable[ModuleType], *, covers: Iterable[FindingId] = ()) -> Registry:
        """The rules each module defines (a Rule it merely imports is not its own)."""
        return cls(
            (
                value
                for module in modules
                for value in vars(module).values()
                if isinstance(value, Rule) and value.body.__module__ == module.__name__
            ),
            covers=covers,
        )

    def __getitem__(self, fid: FindingId) -> Rule:
        return self._by_id[fid]

    def markdown_table(self) -> str:
        """The catalogue as the README's table: id, severities, what it means, what raises it."""
        rows = ["| finding | severity | what it means | raised by |", "|---|---|---|---|"]
        for entry in self.catalogue.values():
            cells = [f"`{entry.id}`", "/".join(entry.severities), entry.means, entry.raised_by]
            rows.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
        return "\n".join(rows) + "\n"

    def with_table(self, text: str) -> str:
        """``text`` (the README) with its findings table replaced by the catalogue's; a
        ValueError when the markers are missing."""
        begin, end = text.find(TABLE_BEGIN), text.find(TABLE_END)
        if begin < 0 or end < begin:
            raise ValueError(f"no findings table markers ({TABLE_BEGIN!r} ... {TABLE_END!r})")
        return text[: begin + len(TABLE_BEGIN)] + "\n" + self.markdown_table() + text[end:]

    def run(self, ev: Evidence) -> list[Finding]:
        """Every finding the evidence supports, those a present cause explains dropped,
        most severe first (ties in FindingId's order)."""
        findings = [f for f in (r(ev) for r in self.rules) if f is not None]
        present = {f.id for f in findings}
        dropped = set().union(*(self.supersedes.get(FindingId(i), frozenset()) for i in present))
        kept = [f for f in findings if f.id not in dropped]
        return sorted(kept, key=lambda f: -f.severity.rank)


def _check_supersedes(entries: Mapping[FindingId, CatalogueEntry]) -> None:
    """No cycle (two findings would drop each other and the cause with them), and no cause
    hides a finding more severe than its own least severe outcome."""
    for entry in entries.values():
        for fid in entry.supersedes:
            other = entries.get(fid)
            if other is not None and other.severities[0].rank > entry.severities[-1].rank:
                raise RuleError(
                    f"{entry.id} (at least {entry.severities[-1]}) supersedes {fid} "
                    f"(up to {other.severities[0]}): a cause may not hide a more severe finding"
                )
    done: set[FindingId] = set()

    def visit(fid: FindingId, path: tuple[FindingId, ...]) -> None:
        if fid in path:
            cycle = " -> ".join(str(f) for f in (*path[path.index(fid) :], fid))
            raise RuleError(f"supersedes cycle: {cycle}")
        if fid in done or fid not in entries:
            return
        for nxt in entries[fid].supersedes:
            visit(nxt, (*path, fid))
        done.add(fid)

    for fid in entries:
        visit(fid, ())
