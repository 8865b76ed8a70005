"""The report's "Connection lifetime": the slow probes' sessions per target x network x
transport, on the lab's recorded evidence (--deep fixtures)."""

from __future__ import annotations

import re
from pathlib import Path

from kiloscribe_lab.diagnosis import diagnose
from kiloscribe_lab.names import FindingId, ProbeName
from kiloscribe_lab.report.lifetime import lifetime_chart, lifetimes
from kiloscribe_lab.report.rundata import load_run
from kiloscribe_lab.report.sections import finding_anchor, lifetime_section
from tests.unit.diagnosis.helpers import KEY_ENV, fixture
from tests.unit.report.helpers import assert_inert_html, assert_inert_markdown, make_run_dir


def test_idle_cut_sessions_are_red_and_end_on_the_proxys_answer() -> None:
    results = fixture("proxy-idle-timeout")
    rows = {(r.target, r.transport): r for r in lifetimes(results)}
    lb_ws, lb_poll = rows[("lb", "websocket")], rows[("lb", "polling")]
    assert lb_ws.cut and lb_poll.cut
    assert lb_ws.lived_s is not None and lb_ws.interval_s == 4.0 and lb_ws.lived_s < lb_ws.interval_s
    assert "closed without a CLOSE frame (1006)" in lb_ws.ended
    assert "long-poll failed (504)" in lb_poll.ended
    direct = rows[("inscribe-1", "websocket")]
    assert not direct.cut and direct.pings == 1 and direct.ended == "held until we closed it"
    chart = lifetime_chart(list(rows.values()))
    assert chart is not None and chart.png.startswith(b"\x89PNG")
    assert "ended before we closed them" in chart.alt and "lb direct websocket" in chart.alt


def test_the_section_links_the_findings_drawn_from_the_sessions(tmp_path: Path) -> None:
    results = fixture("small-message-limit")
    findings = diagnose(results, KEY_ENV)
    section = lifetime_section(results, findings)
    html, md = section.html(), section.markdown()
    assert_inert_html(html)
    assert_inert_markdown(md)
    assert "## Connection lifetime" in md
    assert f'href="#{finding_anchor(FindingId.PAYLOAD_TOO_LARGE)}"' in html
    assert re.search(
        r"\| inscribe-1 \| direct \| websocket \|.*\| 65,536 B; 6[56],[0-9]{3} B failed \| up to 47 KiB \|",
        md,
    )
    assert "up to 47 KiB" in md  # the files whose start-inscription fits in 64 KiB


def test_a_healthy_deep_run_says_nothing_to_fix_and_a_shallow_one_says_not_measured(tmp_path: Path) -> None:
    healthy = fixture("healthy")
    md = lifetime_section(healthy, diagnose(healthy, KEY_ENV)).markdown()
    assert "nothing to fix here" in md and "(the cap: all passed)" in md
    without_deep = [r for r in fixture("incident") if r.probe not in {ProbeName.HOLD, ProbeName.PAYLOAD}]
    shallow = list(load_run(make_run_dir(tmp_path, without_deep, failed=False)).results)
    md = lifetime_section(shallow, diagnose(shallow, KEY_ENV)).markdown()
    assert "Not measured" in md and "--no-deep" in md


def test_sessions_other_faults_stopped_are_not_called_healthy() -> None:
    """The incident's sessions through the round robin are refused or lost: no lifetime fault,
    but nothing ruled out over them either."""
    results = fixture("incident")
    md = lifetime_section(results, diagnose(results, KEY_ENV)).markdown()
    assert "nothing to fix here" not in md
    assert re.search(r"but \d+ of \d+ sessions could not be held or sent a message", md)
