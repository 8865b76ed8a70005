"""The notebooks the report runs, found where the package ships them.

The repository keeps them in the top-level ``notebooks/`` (where JupyterLab opens them);
``kiloscribe_lab/notebooks`` links there, so a wheel carries them as package data and an
editable install reads the repository's own files.
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path

from kiloscribe_lab.errors import ReportError

PROBE_NOTEBOOK = "probe_endpoint.ipynb"
REPORT_NOTEBOOK = "findings_report.ipynb"
INVESTIGATE_NOTEBOOK = "investigate.ipynb"
NOTEBOOKS = (PROBE_NOTEBOOK, REPORT_NOTEBOOK, INVESTIGATE_NOTEBOOK)


def notebook(name: str) -> Path:
    """The packaged notebook ``name`` as a file papermill can read."""
    resource = importlib.resources.files("kiloscribe_lab") / "notebooks" / name
    # Installed from a wheel or editable, the package is a directory: its files are paths.
    # (A zipped install would need importlib.resources.as_file; nothing installs us so.)
    if not isinstance(resource, Path) or not resource.is_file():
        raise ReportError(f"the notebook {name} is not installed with kiloscribe_lab ({resource})")
    return resource
