"""The investigation the lab tests run against a scenario's lab: every probe, every public
endpoint, discovery through the lab's API, ``--origin`` when the scenario's ground truth is
stated for one, and the slow probes (``--deep``) when the scenario's ground truth is theirs.
``make fixtures`` records the same one, with ``--deep`` for every scenario
(tests/unit/fixtures/record.py), so the unit tests diagnose the evidence the live tests see."""

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
# With --deep the deadline counts the hold: a scenario whose truth is the slow probes' gets one
# its heartbeats fit in (proxy-idle-timeout's 4 s, slow-heartbeat's PINGs up to 2 s after their
# 1 s interval), with room for opening the sessions on a busy machine.
DEEP_PROBE_TIMEOUT_S = 7.0


def lab_targets(lab: LabInfo) -> list[str]:
    """Every public endpoint of a lab, labelled as the findings should name them."""
    return [f"edge={lab.edge}", f"lb={lab.lb}", *(f"{b}={lab.backend_url(b)}" for b in BACKENDS)]


def lab_options(lab: LabInfo, *, deep: bool | None = None) -> ProbeOptions:
    """The options of the investigation of ``lab``: ``deep`` as its ground truth needs, unless
    said otherwise."""
    truth = get_scenario(lab.scenario).truth
    deep = truth.deep if deep is None else deep
    return ProbeOptions(
        # The hold counts against the deadline, and the payload probes load the lab meanwhile.
        timeout_s=DEEP_PROBE_TIMEOUT_S if deep else PROBE_TIMEOUT_S,
        ca_bundle=lab.ca_bundle,
        api_key_env=API_KEY_ENV,
        strict=True,
        deep=deep,
        origin=truth.origin,
    )


async def investigate_lab_async(lab: LabInfo, lab_key: str, *, deep: bool | None = None) -> list[ProbeResult]:
    """The whole probe suite against ``lab``, the key in the probes' environment only."""
    environ = {**os.environ, API_KEY_ENV: lab_key}
    return await investigate(lab_targets(lab), lab_options(lab, deep=deep), discover=lab.api, environ=environ)


def investigate_lab(lab: LabInfo, lab_key: str, *, deep: bool | None = None) -> list[ProbeResult]:
    return asyncio.run(investigate_lab_async(lab, lab_key, deep=deep))
