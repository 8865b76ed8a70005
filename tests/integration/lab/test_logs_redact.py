"""Caddy's error log records request headers: the API key must never be among them."""

from __future__ import annotations

import time

import pytest

from tests.integration.clients import http
from tests.integration.conftest import LabGetter

pytestmark = pytest.mark.timeout(60)


def test_a_failed_api_call_logs_no_key(labs: LabGetter, lab_key: str) -> None:
    lab = labs("all-down")  # every upstream dial fails: Caddy logs the request, headers included
    with http(lab, timeout=10) as client:
        response = client.get(lab.api + "/inscriptions/websocket-servers", headers={"x-api-key": lab_key})
    assert response.status_code == 502
    caddy_log = lab.lab_dir / "logs" / "caddy.log"
    deadline = time.monotonic() + 5
    while "X-Api-Key" not in caddy_log.read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    text = caddy_log.read_text()
    assert '"X-Api-Key":"REDACTED"' in text  # the request was logged, its key was not
    for log in (lab.lab_dir / "logs").iterdir():
        assert lab_key not in log.read_text(errors="replace"), log.name
