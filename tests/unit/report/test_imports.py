"""The slow optional import the report declines (see kiloscribe_lab.report.imports)."""

from __future__ import annotations

import importlib
import sys

import pytest

from kiloscribe_lab.report.imports import SLOW_OPTIONAL, decline_slow_optional_imports


def test_declined_modules_import_as_absent(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in SLOW_OPTIONAL:
        monkeypatch.delitem(sys.modules, name, raising=False)
    decline_slow_optional_imports()
    for name in SLOW_OPTIONAL:
        with pytest.raises(ImportError):
            importlib.import_module(name)
