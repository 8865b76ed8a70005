"""What the report and a worker process exchange: the spec and the status, as JSON both ways."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kiloscribe_lab.report.jobs import (
    EXECUTION_TIMEOUT_S,
    START_TIMEOUT_S,
    RunStatus,
    WorkerSpec,
    WorkerStatus,
)


def test_a_spec_survives_its_json_file(tmp_path: Path) -> None:
    spec = WorkerSpec(
        input=tmp_path / "in.ipynb",
        output=tmp_path / "out.ipynb",
        status=tmp_path / "s.status.json",
        parameters={
            "endpoint": "https://a.example",
            "attempts": 3,
            "timeout": 2.5,
            "inscription": False,
            "x": None,
        },
        kernel_pids=tmp_path / "s.kernels",
    )
    assert WorkerSpec.from_json(json.loads(json.dumps(spec.to_json()))) == spec
    bare = WorkerSpec(tmp_path / "in.ipynb", tmp_path / "out.ipynb", tmp_path / "s.json")
    assert WorkerSpec.from_json(json.loads(json.dumps(bare.to_json()))) == bare
    assert (bare.start_timeout_s, bare.execution_timeout_s) == (START_TIMEOUT_S, EXECUTION_TIMEOUT_S)
    assert bare.wall_s > START_TIMEOUT_S + EXECUTION_TIMEOUT_S  # our deadline comes after papermill's


@pytest.mark.parametrize(
    "change",
    [
        {"input": None},
        {"output": ""},
        {"parameters": {"key": {"nested": {"deeper": 1}}}},  # a mapping of scalars is the most
        {"parameters": {"key": [1]}},
        {"parameters": [1]},
        {"start_timeout": 60.5},  # papermill's Integer traits would refuse it in the worker
        {"execution_timeout": True},
        {"kernel_pids": 3},
    ],
)
def test_a_malformed_spec_is_refused(change: dict[str, object], tmp_path: Path) -> None:
    good = WorkerSpec(tmp_path / "in.ipynb", tmp_path / "out.ipynb", tmp_path / "s.json").to_json()
    with pytest.raises(ValueError):
        WorkerSpec.from_json({**good, **change})
    with pytest.raises(ValueError):
        WorkerSpec.from_json([good])


def test_a_status_survives_its_json_file() -> None:
    status = WorkerStatus(RunStatus.FAILED, "NameError: x", seconds=3.25, attempts=2, kernel_start_s=1.5)
    again = WorkerStatus.from_json(json.loads(json.dumps(status.to_json())))
    assert again == status and not again.ok
    assert WorkerStatus.from_json({"status": "ok"}).ok


@pytest.mark.parametrize(
    "data",
    [
        None,
        {},
        {"status": "done"},
        {"status": "ok", "seconds": "3"},
        {"status": "ok", "error": ["x"]},
        {"status": "ok", "attempts": 1.0},
    ],
)
def test_a_status_that_is_not_one_is_refused(data: object) -> None:
    # The matrix then records the run as failed ("worker died").
    with pytest.raises(ValueError):
        WorkerStatus.from_json(data)
