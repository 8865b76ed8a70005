"""Reading JSON that may hold anything: a value of the wrong type reads as None or empty, never raises.

The report reads files it did not necessarily write itself (a previous run's summary, a run
directory copied by hand, a results file from another version), and a report about a broken
service must still render when those files are odd.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from kiloscribe_lab.errors import KiloscribeLabError
from kiloscribe_lab.files import STATE_LIMIT, read_text


def as_str(value: object) -> str | None:
    return None if value is None else str(value)


def as_float(value: object) -> float | None:
    """A finite number; booleans, strings, NaN and infinities are not numbers here."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def as_items(value: object) -> list[object]:
    return list(value) if isinstance(value, list | tuple) else []


def read_json_object(path: Path) -> dict[str, object]:
    """The JSON object in ``path``; {} when it is missing, unreadable or not an object."""
    try:
        data = json.loads(read_text(path, "JSON file", STATE_LIMIT * 16))
    except (KiloscribeLabError, ValueError, RecursionError):
        return {}
    return data if isinstance(data, dict) else {}
