"""An optional import that costs the report seconds, declined where we import nbformat.

nbformat validates notebooks with jsonschema, and jsonschema checks the "iri" format with
``rfc3987_syntax`` when that is installed (JupyterLab's dependencies install it): importing it
compiles 38 grammars, about 2 s of CPU in each of the report's dozen notebook workers. No
schema nbformat validates uses "iri", and jsonschema treats the module as absent
(``ImportError``), so the worker and the renderer decline it before importing nbformat.
"""

from __future__ import annotations

import sys

SLOW_OPTIONAL = ("rfc3987_syntax",)


def decline_slow_optional_imports() -> None:
    """Make ``import rfc3987_syntax`` raise ImportError in this process, unless it is loaded."""
    for name in SLOW_OPTIONAL:
        sys.modules.setdefault(name, None)  # type: ignore[arg-type]  # None: "not importable"
