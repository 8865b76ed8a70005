"""Loading a run directory: run.json and every results file, whatever they hold."""

from __future__ import annotations

import json
from pathlib import Path

from kiloscribe_lab.diagnosis import diagnose
from kiloscribe_lab.report.rundata import RunData, load_run
from kiloscribe_lab.report.sections import endpoints_section
from kiloscribe_lab.results import write_jsonl
from tests.unit.report.helpers import FAILED_ERROR, KEY_ENV, all_sections, fixture, make_run_dir


def test_load_run_reads_metadata_and_every_results_file(incident_run: RunData) -> None:
    run = incident_run
    assert len(run.results) == len(fixture("incident"))
    assert run.title == "kiloscribe-lab report 2026-11-26"
    assert run.source == "lab:incident"
    assert run.api_key_env == KEY_ENV
    assert run.networks == ("direct", "mobile")
    assert [m.id for m in run.failed_runs] == ["inscribe-2-mobile"]
    assert run.failed_runs[0].error == FAILED_ERROR
    assert run.failures == ()  # a failed run's missing results file is not a second failure
    assert {"edge", "lb", "inscribe-1", "inscribe-2", "inscribe-3"} <= set(run.labels.values())
    assert run.meta["title"] == run.title


def test_load_run_orders_results_as_the_matrix(incident_run: RunData) -> None:
    order = list(dict.fromkeys(str(r.detail.get("label") or "api") for r in incident_run.results))
    assert order == ["api", "edge", "lb", "inscribe-1", "inscribe-2", "inscribe-3"]


def test_load_run_reports_a_broken_results_file_and_keeps_the_good_lines(tmp_path: Path) -> None:
    run_dir = make_run_dir(tmp_path, fixture("healthy"), failed=False)
    good = fixture("healthy")[:3]
    (run_dir / "results" / "zz-partial.jsonl").write_text(
        write_jsonl(good) + '{"kind": "probe", "probe": "x"\n' + "[1, 2]\n" + '{"kind": [1]}\n',
        encoding="utf-8",
    )
    (run_dir / "results" / "zz-garbage.jsonl").write_text("this is not json\n", encoding="utf-8")
    (run_dir / "results" / "zz-binary.jsonl").write_bytes(b"\xff\xfe\x00garbage")
    run = load_run(run_dir)
    failed = {f.path: f.error for f in run.failures}
    assert set(failed) == {"results/zz-partial.jsonl", "results/zz-garbage.jsonl", "results/zz-binary.jsonl"}
    assert "line 4" in failed["results/zz-partial.jsonl"]
    assert "3 result(s) kept" in failed["results/zz-partial.jsonl"]
    assert len(run.results) == len(fixture("healthy")) + 3
    # The report names them.
    section = endpoints_section(run)
    for path in failed:
        assert path in section.markdown().replace("\\_", "_")
        assert path in section.html()


def test_load_run_skips_findings_and_summaries_in_results_files(tmp_path: Path) -> None:
    results = fixture("healthy")
    run_dir = make_run_dir(tmp_path, results, failed=False)
    extra = write_jsonl(diagnose(results)) + json.dumps({"kind": "summary", "status": "healthy"}) + "\n"
    (run_dir / "results" / "findings.jsonl").write_text(extra, encoding="utf-8")
    run = load_run(run_dir)
    assert run.failures == ()
    assert len(run.results) == len(results)


def test_load_run_survives_missing_and_malformed_metadata(tmp_path: Path) -> None:
    empty = load_run(tmp_path / "nothing-here")
    assert empty.results == ()
    assert [f.path for f in empty.failures] == ["run.json"]

    run_dir = make_run_dir(tmp_path / "a", fixture("healthy"), failed=False)
    (run_dir / "run.json").write_text(json.dumps({"title": "only a title"}), encoding="utf-8")
    run = load_run(run_dir)
    assert run.title == "only a title"
    assert len(run.results) == len(fixture("healthy"))  # the results directory is still read
    assert run.matrix == () and run.networks == () and run.finished_at is None

    (run_dir / "run.json").write_text(
        json.dumps({"title": None, "networks": "direct", "matrix": [3, {"status": "failed"}], "notes": {}}),
        encoding="utf-8",
    )
    run = load_run(run_dir)
    assert run.title == run_dir.name
    assert [m.status for m in run.matrix] == ["failed"]
    (run_dir / "run.json").write_text("{not json", encoding="utf-8")
    assert [f.path for f in load_run(run_dir).failures] == ["run.json"]
    for section in all_sections(load_run(run_dir)).values():
        assert section.html() and section.markdown()


def test_load_run_names_a_missing_results_file_of_a_finished_run(tmp_path: Path) -> None:
    run_dir = make_run_dir(tmp_path, fixture("healthy"), failed=False)
    (run_dir / "results" / "lb-direct.jsonl").unlink()
    run = load_run(run_dir)
    assert [f.path for f in run.failures] == ["results/lb-direct.jsonl"]


def test_load_run_reads_nothing_outside_the_run_directory(tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere.jsonl"
    outside.write_text(write_jsonl(fixture("healthy")[:2]), encoding="utf-8")
    run_dir = make_run_dir(tmp_path / "run", fixture("healthy"), failed=False)
    run_json = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    run_json["matrix"][0]["results"] = "../elsewhere.jsonl"
    (run_dir / "run.json").write_text(json.dumps(run_json), encoding="utf-8")
    run = load_run(run_dir)
    assert [f.path for f in run.failures] == ["../elsewhere.jsonl"]
    assert len(run.results) == len(fixture("healthy"))  # every file under results/, once
