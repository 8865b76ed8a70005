"""The registry: one rule per FindingId, declared where it is written; RULES, SUPERSEDES and
CATALOGUE derive from it; a rule or a registry that contradicts its declarations is caught."""

from __future__ import annotations

import re
from pathlib import Path
from types import ModuleType

import pytest

from kiloscribe_lab.diagnosis import CATALOGUE, REGISTRY, RULES, SUPERSEDES, Evidence
from kiloscribe_lab.diagnosis.registry import Draft, Registry, Rule, RuleError, rule
from kiloscribe_lab.diagnosis.rules.availability import backend_down
from kiloscribe_lab.names import FindingId, Severity
from kiloscribe_lab.results import Finding
from tests.unit.design import DESIGN_FINDING_IDS
from tests.unit.diagnosis.helpers import A, ev, working

RULE_TESTS = Path(__file__).parent / "rules"


def _declare(
    fid: FindingId,
    severities: set[Severity],
    supersedes: set[FindingId] | None = None,
    *,
    gives: Severity | None = None,
) -> Rule:
    """A rule over ``fid`` whose body always finds, with severity ``gives``."""

    def body(_ev: Evidence) -> Draft:
        return Draft(gives or next(iter(severities)), "t", "s", "r", ("x@y#direct",), ("y",))

    return rule(
        fid,
        severities=severities,
        supersedes=supersedes or set(),
        title="A title",
        means="What it means.",
        evidence="What raises it.",
    )(body)


# --- the real registry ----------------------------------------------------------------------


def test_every_finding_id_has_exactly_one_rule_in_the_vocabularys_order() -> None:
    assert [r.id for r in RULES] == list(FindingId)
    assert len({r.name for r in RULES}) == len(RULES)


def test_every_finding_id_has_a_catalogue_entry() -> None:
    assert list(CATALOGUE) == list(FindingId)
    for fid, entry in CATALOGUE.items():
        assert entry.id is fid
        assert entry.severities and len(set(entry.severities)) == len(entry.severities)
        ranks = [s.rank for s in entry.severities]
        assert ranks == sorted(ranks, reverse=True), f"{fid}: most severe first"
        for text in (entry.title, entry.means, entry.raised_by):
            assert text.strip() and "\n" not in text, fid


def test_the_designs_ids_are_in_the_catalogue() -> None:
    assert set(CATALOGUE) >= DESIGN_FINDING_IDS


def test_supersedes_and_catalogue_derive_from_the_declarations() -> None:
    assert dict(SUPERSEDES) == {r.id: frozenset(r.entry.supersedes) for r in RULES if r.entry.supersedes}
    assert all(CATALOGUE[r.id] is r.entry for r in RULES)
    assert all(REGISTRY[r.id] is r for r in RULES)


def test_rules_are_the_ones_their_family_modules_define() -> None:
    families = {r.body.__module__ for r in RULES}
    assert families == {
        f"kiloscribe_lab.diagnosis.rules.{p.stem}"
        for p in (Path(__file__).parents[3] / "kiloscribe_lab" / "diagnosis" / "rules").glob("*.py")
        if p.stem != "__init__"
    }


@pytest.mark.parametrize("r", RULES, ids=[str(r.id) for r in RULES])
def test_every_rule_has_a_test_that_fires_it_and_one_that_keeps_it_quiet(r: Rule) -> None:
    """The rule tests mirror the families: tests/unit/diagnosis/rules/test_<family>.py calls
    ``fire(rule, ...)`` and ``quiet(rule, ...)`` for each rule its module defines."""
    family = r.body.__module__.rsplit(".", 1)[1]
    text = (RULE_TESTS / f"test_{family}.py").read_text(encoding="utf-8")
    for helper in ("fire", "quiet"):
        assert re.search(rf"\b{helper}\(\s*{r.name}\b", text), (
            f"no {helper}({r.name}, ...) in test_{family}.py"
        )


# --- a rule's declaration holds at run time -------------------------------------------------


def test_the_finding_takes_the_declared_id_and_the_drafts_text() -> None:
    declared = _declare(FindingId.ROOT_REDIRECT, {Severity.INFO})
    finding = declared(ev(working(A)))
    assert finding == Finding(FindingId.ROOT_REDIRECT, Severity.INFO, "t", "s", "r", ("x@y#direct",), ("y",))
    assert declared.entry.title == "A title"  # the generic title is the catalogue's, not the finding's


def test_a_rule_returning_a_severity_it_did_not_declare_raises() -> None:
    declared = _declare(FindingId.ROOT_REDIRECT, {Severity.INFO}, gives=Severity.WARNING)
    with pytest.raises(RuleError, match=r"body raised root-redirect with severity warning; it declares info"):
        declared(ev(working(A)))
    with pytest.raises(RuleError):
        Registry([declared]).run(ev(working(A)))


def test_rule_error_is_a_bug_not_a_usage_error() -> None:
    from kiloscribe_lab.errors import KiloscribeLabError

    assert issubclass(RuleError, RuntimeError)
    assert not issubclass(RuleError, KiloscribeLabError)  # the CLI must not call it bad usage


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"severities": set()}, "severities must be a non-empty set"),
        ({"severities": {"info"}}, "severities must be a non-empty set of Severity"),
        ({"supersedes": {FindingId.ROOT_REDIRECT}}, "supersedes itself"),
        ({"supersedes": {"backend-gone"}}, "'backend-gone': not a FindingId"),
        ({"title": "two\nlines"}, "title must be one non-empty line"),
        ({"means": ""}, "means must be one non-empty line"),
        ({"evidence": " padded"}, "evidence must be one non-empty line"),
    ],
)
def test_a_malformed_declaration_is_refused(kwargs: dict[str, object], message: str) -> None:
    declaration: dict[str, object] = {
        "severities": {Severity.INFO},
        "title": "A title",
        "means": "It means.",
        "evidence": "Raised by.",
    }
    declaration.update(kwargs)
    with pytest.raises(RuleError, match=re.escape(message)):
        rule(FindingId.ROOT_REDIRECT, **declaration)  # type: ignore[arg-type]


def test_an_id_that_is_not_a_finding_id_is_refused() -> None:
    with pytest.raises(RuleError, match="must be a FindingId"):
        rule("root-redirect", severities={Severity.INFO}, title="t", means="m", evidence="e")  # type: ignore[arg-type]


# --- the registry checks its rules as a set ---------------------------------------------------


def test_two_rules_for_one_id_are_refused() -> None:
    with pytest.raises(RuleError, match="two rules raise root-redirect"):
        Registry([_declare(FindingId.ROOT_REDIRECT, {Severity.INFO})] * 2)


def test_an_id_without_a_rule_is_refused() -> None:
    with pytest.raises(RuleError, match=r"no rule raises .*backend-down"):
        Registry([r for r in RULES if r.id is not FindingId.BACKEND_DOWN], covers=FindingId)


def test_only_rules_are_accepted() -> None:
    with pytest.raises(RuleError, match="not a Rule"):
        Registry([backend_down.body])  # type: ignore[list-item]


@pytest.mark.parametrize(
    "edges",
    [
        [
            (FindingId.ROOT_REDIRECT, FindingId.AUTH_PATH_HEALTHY),
            (FindingId.AUTH_PATH_HEALTHY, FindingId.ROOT_REDIRECT),
        ],
        [
            (FindingId.ROOT_REDIRECT, FindingId.AUTH_PATH_HEALTHY),
            (FindingId.AUTH_PATH_HEALTHY, FindingId.PLAIN_WEBSOCKET_PROTOCOL_MISMATCH),
            (FindingId.PLAIN_WEBSOCKET_PROTOCOL_MISMATCH, FindingId.ROOT_REDIRECT),
        ],
    ],
    ids=["two", "three"],
)
def test_a_supersedes_cycle_is_refused(edges: list[tuple[FindingId, FindingId]]) -> None:
    """Each would drop the other when both are found, and the root cause with them."""
    rules = [_declare(cause, {Severity.INFO}, {symptom}) for cause, symptom in edges]
    with pytest.raises(RuleError, match="supersedes cycle: "):
        Registry(rules)
    Registry(rules[1:])  # break one edge: a chain is fine


def test_a_cause_may_not_hide_a_more_severe_finding() -> None:
    cause = _declare(FindingId.ROOT_REDIRECT, {Severity.INFO}, {FindingId.BACKEND_DOWN})
    symptom = _declare(FindingId.BACKEND_DOWN, {Severity.CRITICAL})
    with pytest.raises(RuleError, match="may not hide a more severe finding"):
        Registry([cause, symptom])
    Registry([cause])  # the symptom's severities are the symptom rule's: unknown without it


def test_of_modules_takes_only_the_rules_a_module_defines() -> None:
    module = ModuleType("elsewhere")
    module.borrowed = backend_down  # type: ignore[attr-defined]
    assert Registry.of_modules([module]).rules == ()


def test_the_registry_keeps_the_vocabularys_order_whatever_order_it_is_given() -> None:
    assert Registry(reversed(RULES)).rules == RULES
