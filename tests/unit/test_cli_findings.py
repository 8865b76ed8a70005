"""`kiloscribe-lab findings [--json]`: the catalogue lists every finding id, the scenarios'
ground truth included, with its title, severities, meaning and what raises it."""

from __future__ import annotations

import json

import pytest

from kiloscribe_lab import cli
from kiloscribe_lab.diagnosis import CATALOGUE
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
