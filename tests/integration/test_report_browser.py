"""The report as a person sees it: the session's two real runs of the incident report (reports.py:
A in process as `kiloscribe-lab report` plans it, B the CLI itself, comparing with A), opened in
headless Chromium (Debian's, driven by Playwright; `make setup` installs it) at a
desktop's and a phone's width.

No console error, no network request, the banner and the contents on the first screen, a dated
title, working internal links, no literal backtick, no page wider than a phone; the Markdown
without runs of blank lines; and the second run, the same lab again, reports no significant
change. Screenshots go to $KILOSCRIBE_LAB_SCREENSHOTS when it is set (else the test's tmp dir).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from kiloscribe_lab.report.plan import run_dirs
from tests.integration.reports import IncidentReports

pytestmark = pytest.mark.timeout(600)

CHROMIUM = shutil.which("chromium")
# The flags this machine needs (lab notes): root needs --no-sandbox; the rest keep Chromium
# from reaching out on its own (this machine's network refuses it, and the test counts requests).
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DESKTOP, PHONE = 1400, 420
SCREEN_H = 900


@dataclass
class Runs:
    out_root: Path
    first: Path
    second: Path


@pytest.fixture(scope="module")
def runs(incident_reports: IncidentReports) -> Runs:
    """The session's two incident reports (reports.py): B, the CLI's, compares with A."""
    first, second = run_dirs(incident_reports.out_root)
    assert (first, second) == (incident_reports.a.run_dir, incident_reports.b_dir)
    return Runs(incident_reports.out_root, first, second)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if CHROMIUM is None:
        pytest.fail("chromium is not installed: `make setup` installs it (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = Path(os.environ.get("KILOSCRIBE_LAB_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@dataclass
class Seen:
    console: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)


def open_page(browser: Any, path: Path, width: int) -> tuple[Any, Seen]:
    page = browser.new_page(viewport={"width": width, "height": SCREEN_H})
    seen = Seen()
    page.on("console", lambda m: seen.console.append(f"{m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: seen.console.append(f"page error: {e}"))
    page.on("request", lambda r: seen.requests.append(r.url))
    page.goto(path.as_uri(), wait_until="load")
    return page, seen


def no_overflow(page: Any) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= page.viewport_size["width"], f"the page is {width} px wide"


def offline(seen: Seen, path: Path) -> None:
    assert seen.console == []
    assert [u for u in seen.requests if u != path.as_uri() and not u.startswith("data:")] == []


@pytest.mark.parametrize("width", [DESKTOP, PHONE])
def test_findings_page_in_chromium(runs: Runs, browser: Any, shots: Path, width: int) -> None:
    path = runs.second / "findings.html"
    page, seen = open_page(browser, path, width)
    try:
        page.screenshot(path=str(shots / f"findings-{width}.png"))
        page.screenshot(path=str(shots / f"findings-{width}-full.png"), full_page=True)
        offline(seen, path)
        day = runs.second.name[:10]
        title = page.title()
        assert day in title and "scenario incident" in title
        assert page.locator("h1").inner_text().strip() == title
        # The first screen: the banner (a word, not only a colour) and the plain lines under it.
        banner = page.locator(".banner")
        assert banner.is_visible() and banner.bounding_box()["y"] < SCREEN_H / 2
        assert page.locator(".banner-word").inner_text() in {"CRITICAL", "DOWN", "DEGRADED", "HEALTHY"}
        lines = page.locator("ul.headline > li")
        assert 3 <= lines.count() <= 5
        assert lines.first.inner_text().startswith("What is broken:")
        assert lines.first.bounding_box()["y"] < SCREEN_H
        toc = page.locator("nav.toc")
        assert toc.is_visible()
        text = page.evaluate("document.body.innerText")
        assert "`" not in text
        assert "the user's runtime" not in text  # it is this machine's Node, whoever's it may be
        no_overflow(page)
    finally:
        page.close()


def test_every_contents_link_and_an_evidence_link_land(runs: Runs, browser: Any) -> None:
    path = runs.second / "findings.html"
    page, seen = open_page(browser, path, DESKTOP)
    try:
        hrefs = page.eval_on_selector_all(
            'nav.toc a[href^="#"]', "els => els.map(e => e.getAttribute('href'))"
        )
        assert len(hrefs) >= 6
        for href in hrefs:
            page.click(f'nav.toc a[href="{href}"]')
            assert page.evaluate("location.hash") == href
            target = page.locator(href)
            assert target.count() == 1 and target.is_visible(), href
            top = page.evaluate(f"document.querySelector({href!r}).getBoundingClientRect().top")
            at_end = page.evaluate(
                "window.scrollY + window.innerHeight >= document.documentElement.scrollHeight - 2"
            )
            assert -2 <= top <= SCREEN_H / 2 or at_end, (href, top)
        # Evidence names rows of the appendix: a click opens their family and shows the row.
        evidence = page.locator('a[href^="#r-"]').first
        href = evidence.get_attribute("href")
        assert not page.locator(href).is_visible()
        evidence.click()
        assert page.locator(href).is_visible()
        offline(seen, path)
    finally:
        page.close()


@pytest.mark.parametrize("width", [DESKTOP, PHONE])
def test_index_page_in_chromium(runs: Runs, browser: Any, shots: Path, width: int) -> None:
    path = runs.out_root / "index.html"
    page, seen = open_page(browser, path, width)
    try:
        page.screenshot(path=str(shots / f"index-{width}.png"))
        offline(seen, path)
        rows = page.locator("tbody tr")
        assert rows.count() == 2
        assert rows.first.locator("a").inner_text() == runs.second.name  # newest first
        badge = rows.first.locator(".badge").first
        assert badge.is_visible() and badge.inner_text() in {"critical", "down", "degraded", "healthy"}
        assert page.evaluate("e => getComputedStyle(e).backgroundColor", badge.element_handle()) not in {
            "rgba(0, 0, 0, 0)",
            "transparent",
        }
        text = page.evaluate("document.body.innerText")
        assert "Backend down" in text and "backend-down" not in text  # titles, not ids
        assert text.index("Warning") < text.index("expected answer")  # warnings before info
        for href in page.eval_on_selector_all("tbody a", "els => els.map(e => e.getAttribute('href'))"):
            assert (runs.out_root / href).is_file(), href
        no_overflow(page)
    finally:
        page.close()


def test_markdown_is_clean(runs: Runs) -> None:
    md = (runs.second / "findings.md").read_text()
    assert not re.search(r"\n[ \t]*\n[ \t]*\n", md), "a run of blank lines"
    assert "<code>" not in md and "<strong>" not in md
    assert "\\_" not in md.replace("\\_\\_", "")
    assert re.search(r"^# Lab investigation: scenario incident — \d{4}-\d{2}-\d{2}$", md, flags=re.M)
    for image in re.findall(r"!\[[^\]]+\]\((findings_files/[a-z0-9-]+\.png)\)", md):
        assert (runs.second / image).is_file(), image


def test_the_same_lab_twice_is_no_significant_change(runs: Runs, browser: Any) -> None:
    path = runs.second / "findings.html"
    page, _ = open_page(browser, path, DESKTOP)
    try:
        text = page.evaluate("document.body.innerText")
        assert "Compared with the previous run" in text
        assert str(runs.first) in (runs.second / "run.json").read_text()
        changes = text.split("Changes since the previous run")[-1].split("\nCharts\n")[0]
        assert "No significant change in the" in text, changes[:3000]
        assert "Fisher's exact test" in text and "Holm" in text
    finally:
        page.close()
