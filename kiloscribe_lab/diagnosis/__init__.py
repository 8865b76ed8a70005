"""Diagnosis: evidence (every ProbeResult of one investigation) -> findings and verdicts. Pure.

Each rule is a pure function over ``Evidence``, declared with ``@rule`` in its family's module
under ``rules/`` with its id, severities, what it supersedes and its catalogue lines. The
registry below is built from those modules, named here and nowhere else; it checks at import
that every ``FindingId`` has exactly one rule and that the supersedes graph holds together.
Where one root cause explains another's symptoms, the symptom is dropped (all backends down
explains lost sessions; a refused valid key makes "the auth path is healthy" a misleading
comfort). Verdicts per target and an overall status come last (``verdicts``).

    evidence.py   Evidence, Health, what outcomes mean (path_works...), the boundary
    fingerprint.py  who answered: the components on the path, with the evidence for each
    remedies.py   the fixes, finding x component, in that component's words
    registry.py   @rule, Draft, Rule, Registry, CatalogueEntry, RuleError
    rules/        the rule families
    verdicts.py   Verdict, TargetVerdict, verdicts(), overall()
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from kiloscribe_lab.diagnosis.evidence import Evidence, Health, TargetHealth, path_works
from kiloscribe_lab.diagnosis.registry import CatalogueEntry, Registry, Rule, RuleError
from kiloscribe_lab.diagnosis.rules import (
    application,
    auth,
    availability,
    cors,
    discovery,
    edge,
    expected,
    protocol,
    sdk,
    transport,
)
from kiloscribe_lab.diagnosis.verdicts import TargetVerdict, overall, verdicts
from kiloscribe_lab.names import FindingId, Verdict
from kiloscribe_lab.results import Finding, ProbeResult

__all__ = [
    "CATALOGUE",
    "REGISTRY",
    "RULES",
    "SUPERSEDES",
    "CatalogueEntry",
    "Evidence",
    "Health",
    "Rule",
    "RuleError",
    "TargetHealth",
    "TargetVerdict",
    "Verdict",
    "diagnose",
    "overall",
    "path_works",
    "verdicts",
]

# Every rule family; a rule is the @rule its module defines. Checked here, at import.
REGISTRY = Registry.of_modules(
    (availability, edge, protocol, auth, application, transport, cors, discovery, expected, sdk),
    covers=FindingId,
)
RULES: tuple[Rule, ...] = REGISTRY.rules
# A root cause (key) explains the findings it maps to: they are dropped when it is present.
SUPERSEDES: Mapping[FindingId, frozenset[FindingId]] = REGISTRY.supersedes
CATALOGUE: Mapping[FindingId, CatalogueEntry] = REGISTRY.catalogue


def diagnose(results: Iterable[ProbeResult], api_key_env: str | None = None) -> list[Finding]:
    """Every finding the evidence supports, most severe first."""
    return REGISTRY.run(Evidence.of(results, api_key_env))
