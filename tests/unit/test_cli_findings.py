"""`kiloscribe-lab findings [--json]`: the catalogue lists every finding id, the scenarios'
ground truth included, with its title, severities, meaning and what raises it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kiloscribe_lab import cli
from kiloscribe_lab.diagnosis import CATALOGUE, REGISTRY
from kiloscribe_lab.diagnosis.registry import TABLE_BEGIN, TABLE_END
from kiloscribe_lab.lab.scenarios import SCENARIOS
from kiloscribe_lab.names import FindingId, Severity


def run(capsys: pytest.CaptureFixture[str], *args: str) -> list[str]:
    assert cli.main(list(args)) == 0
    out, err = capsys.readouterr()
    assert err == ""
    return out.splitlines()


def test_json_is_one_object_per_finding_id_in_the_vocabularys_order(
    capsys: pytest.CaptureFixture[str],
) -> None:
    objects = [json.loads(line) for line in run(capsys, "findings", "--json")]
    assert [o["id"] for o in objects] == [str(fid) for fid in FindingId]
    severities = {str(s) for s in Severity}
    for o in objects:
        assert {"id", "title", "severity", "meaning", "evidence", "supersedes"} <= set(o)
        assert isinstance(o["title"], str) and o["title"]
        assert isinstance(o["severity"], list) and o["severity"] and set(o["severity"]) <= severities
        assert isinstance(o["meaning"], str) and o["meaning"]
        assert isinstance(o["evidence"], str) and o["evidence"]
        assert set(o["supersedes"]) <= {str(fid) for fid in FindingId}
    by_id = {o["id"]: o for o in objects}
    assert by_id[FindingId.WEBSOCKET_BLOCKED]["severity"] == ["critical", "warning"]
    assert FindingId.AUTH_PATH_HEALTHY in by_id[FindingId.AUTH_REJECTED]["supersedes"]


def test_json_lists_every_ground_truth_id(capsys: pytest.CaptureFixture[str]) -> None:
    listed = {json.loads(line)["id"] for line in run(capsys, "findings", "--json")}
    # The scenarios' ground truth, as `lab scenarios --json` publishes it, and the networks'.
    scenarios = [json.loads(line) for line in run(capsys, "lab", "scenarios", "--json")]
    truth = {fid for s in scenarios for fid in s["expected_findings"]}
    truth |= {fid for s in SCENARIOS.values() for t in s.truth.networks for fid in t.adds}
    assert truth and truth <= listed


def test_human_output_gives_each_entry_its_lines(capsys: pytest.CaptureFixture[str]) -> None:
    text = "\n".join(run(capsys, "findings"))
    blocks = text.split("\n\n")
    assert len(blocks) == len(FindingId)
    for block, entry in zip(blocks, CATALOGUE.values(), strict=True):
        head, *rest = block.splitlines()
        assert head == f"{entry.id}  [{', '.join(entry.severities)}]  {entry.title}"
        body = " ".join(" ".join(rest).split())  # wrapped at 100 columns, labels padded
        assert f"means {entry.means}" in body
        assert f"raised by {entry.raised_by}" in body
        assert ("supersedes" in body) is bool(entry.supersedes)
        assert all(len(line) <= 100 for line in rest)
    assert "supersedes  backend-down, sticky-sessions-missing" in text


README = Path(__file__).resolve().parents[2] / "README.md"


def test_markdown_is_a_row_per_finding(capsys: pytest.CaptureFixture[str]) -> None:
    rows = run(capsys, "findings", "--markdown")[2:]
    assert [r.split(" | ")[0].removeprefix("| ").strip("`") for r in rows] == [str(f) for f in FindingId]


def test_the_readme_holds_the_generated_table() -> None:
    text = README.read_text(encoding="utf-8")
    assert REGISTRY.with_table(text) == text, "README's findings table is stale: run `make findings-table`"
    assert "--origin" in text


def test_readme_rewrites_only_between_its_markers(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(f"head\n{TABLE_BEGIN}\nstale\n{TABLE_END}\ntail\n", encoding="utf-8")
    run(capsys, "findings", "--readme", str(readme))
    text = readme.read_text(encoding="utf-8")
    assert text.startswith(f"head\n{TABLE_BEGIN}\n| finding |") and text.endswith(f"{TABLE_END}\ntail\n")
    assert "stale" not in text
    readme.write_text("no markers\n", encoding="utf-8")
    assert cli.main(["findings", "--readme", str(readme)]) == 2
    assert "markers" in capsys.readouterr().err
