"""A lab's description without a lab: fixed ports and a LabInfo, shared by the pure lab tests."""

from __future__ import annotations

from pathlib import Path

from kiloscribe_lab.lab.keys import API_KEY_ENV
from kiloscribe_lab.lab.ports import LabPorts
from kiloscribe_lab.lab.state import LabInfo

PORTS = LabPorts(
    edge=41001,
    lb=41002,
    api=41003,
    direct={"inscribe-1": 41011, "inscribe-2": 41012, "inscribe-3": 41013},
    backend={"inscribe-1": 42001, "inscribe-2": 42002, "inscribe-3": 42003},
)


def lab_info(lab_dir: Path, key_file: Path | None = None) -> LabInfo:
    """The ``incident`` lab in ``lab_dir``, on PORTS, with no networks."""
    return LabInfo(
        scenario="incident",
        lab_dir=lab_dir,
        ports=PORTS,
        ca_bundle=lab_dir / "ca.pem",
        api_key_env=API_KEY_ENV,
        api_key_file=key_file,
    )
