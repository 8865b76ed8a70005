"""The investigation the lab tests run against a scenario's lab: every probe, every public
endpoint, discovery through the lab's API, and ``--origin`` when the scenario's ground truth is
stated for one. ``make fixtures`` records the same one (tests/unit/fixtures/record.py), so the
unit tests diagnose the evidence the live tests see."""

from __future__ import annotations

import asyncio
import os

from kiloscribe_lab.lab.keys import API_KEY_ENV
from kiloscribe_lab.lab.scenarios import BACKENDS, get_scenario
from kiloscribe_lab.lab.state import LabInfo
from kiloscribe_lab.probes.runner import investigate
from kiloscribe_lab.results import ProbeResult
from kiloscribe_lab.settings import ProbeOptions

PROBE_TIMEOUT_S = 3.0


def lab_targets(lab: LabInfo) -> list[str]:
    """Every public endpoint of a lab, labelled as the findings should name them."""
    return [f"edge={lab.edge}", f"lb={lab.lb}", *(f"{b}={lab.backend_url(b)}" for b in BACKENDS)]


async def investigate_lab_async(lab: LabInfo, lab_key: str) -> list[ProbeResult]:
    """The whole probe suite against ``lab``, the key in the probes' environment only; as a
    page on the ground truth's origin when it names one."""
    options = ProbeOptions(
        timeout_s=PROBE_TIMEOUT_S,
        ca_bundle=lab.ca_bundle,
        api_key_env=API_KEY_ENV,
        strict=True,
        origin=get_scenario(lab.scenario).truth.origin,
    )
    environ = {**os.environ, API_KEY_ENV: lab_key}
    return await investigate(lab_targets(lab), options, discover=lab.api, environ=environ)


def investigate_lab(lab: LabInfo, lab_key: str) -> list[ProbeResult]:
    return asyncio.run(investigate_lab_async(lab, lab_key))
