"""One notebook job, as the report and a worker process exchange it: the spec the worker reads
and the status it writes back. Both are JSON files, written and read through these classes on
both sides (``matrix`` writes the spec and reads the status, ``worker`` the other way round)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

# Integers: papermill hands them to nbclient's Integer traits, which refuse a float.
START_TIMEOUT_S = 60
EXECUTION_TIMEOUT_S = 120
WALL_SLACK_S = 30  # our own hard deadline is start + execution + this

# What papermill can inject into a notebook's parameters cell: a JSON scalar, or a mapping of
# them (the probe notebook's ``settings``: settings.settings_to_parameters).
Scalar = str | int | float | bool | None
Parameter = Scalar | dict[str, Scalar]


class RunStatus(StrEnum):
    """How one notebook run ended."""

    OK = "ok"
    FAILED = "failed"  # the worker, its kernel or a cell failed (the error says which)
    TIMEOUT = "timeout"  # past our wall deadline: killed with its kernel


@dataclass(frozen=True, slots=True)
class WorkerSpec:
    """What one worker process runs: a notebook, its parameters, its timeouts, where to report."""

    input: Path
    output: Path
    status: Path  # where the worker writes its WorkerStatus
    parameters: Mapping[str, Parameter] = field(default_factory=dict)
    start_timeout_s: int = START_TIMEOUT_S
    execution_timeout_s: int = EXECUTION_TIMEOUT_S
    # Each kernel's pid is appended here the moment it is launched (see worker).
    kernel_pids: Path | None = None

    @property
    def wall_s(self) -> float:
        return float(self.start_timeout_s + self.execution_timeout_s + WALL_SLACK_S)

    def to_json(self) -> dict[str, object]:
        return {
            "input": str(self.input),
            "output": str(self.output),
            "status": str(self.status),
            "parameters": dict(self.parameters),
            "start_timeout": self.start_timeout_s,
            "execution_timeout": self.execution_timeout_s,
            "kernel_pids": None if self.kernel_pids is None else str(self.kernel_pids),
        }

    @classmethod
    def from_json(cls, data: object) -> WorkerSpec:
        """Raises ValueError when ``data`` is not a spec (a spec is ours: nothing is guessed)."""
        obj = _object(data, "spec")
        parameters = obj.get("parameters", {})
        if not isinstance(parameters, dict) or not all(
            isinstance(k, str) and (_scalar(v) or (isinstance(v, dict) and all(map(_scalar, v.values()))))
            for k, v in parameters.items()
        ):
            raise ValueError("spec: parameters must map names to JSON scalars or objects of them")
        kernel_pids = obj.get("kernel_pids")
        return cls(
            input=Path(_required_str(obj, "input")),
            output=Path(_required_str(obj, "output")),
            status=Path(_required_str(obj, "status")),
            parameters=parameters,
            start_timeout_s=_int(obj, "start_timeout", START_TIMEOUT_S),
            execution_timeout_s=_int(obj, "execution_timeout", EXECUTION_TIMEOUT_S),
            kernel_pids=None if kernel_pids is None else Path(_required_str(obj, "kernel_pids")),
        )


@dataclass(frozen=True, slots=True)
class WorkerStatus:
    """How a job ended: written by the worker, or by the report when the worker overran or died."""

    status: RunStatus
    error: str | None = None
    seconds: float = 0.0
    attempts: int = 0  # papermill executions (a kernel that failed to start is retried once)
    kernel_start_s: float | None = None
    cells_s: float | None = None

    @property
    def ok(self) -> bool:
        return self.status is RunStatus.OK

    def to_json(self) -> dict[str, object]:
        return {
            "status": self.status.value,
            "error": self.error,
            "attempts": self.attempts,
            "seconds": self.seconds,
            "kernel_start_s": self.kernel_start_s,
            "cells_s": self.cells_s,
        }

    @classmethod
    def from_json(cls, data: object) -> WorkerStatus:
        """Raises ValueError when ``data`` is not a status: the run then counts as failed."""
        obj = _object(data, "status")
        error = obj.get("error")
        if error is not None and not isinstance(error, str):
            raise ValueError("status: error must be a string")
        return cls(
            status=RunStatus(_required_str(obj, "status")),
            error=error,
            seconds=_number(obj, "seconds") or 0.0,
            attempts=_int(obj, "attempts", 0),
            kernel_start_s=_number(obj, "kernel_start_s"),
            cells_s=_number(obj, "cells_s"),
        )


def _object(data: object, what: str) -> dict[str, object]:
    if not isinstance(data, dict):
        raise ValueError(f"{what}: not a JSON object")
    return data


def _required_str(obj: Mapping[str, object], key: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value:
        raise ValueError(f"{key}: a non-empty string is required")
    return value


def _int(obj: Mapping[str, object], key: str, default: int) -> int:
    value = obj.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{key}: an integer is required")
    return value


def _number(obj: Mapping[str, object], key: str) -> float | None:
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{key}: a number is required")
    return float(value)


def _scalar(value: object) -> bool:
    return value is None or isinstance(value, str | int | float | bool)
