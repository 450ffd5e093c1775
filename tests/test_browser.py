"""One real-browser pass over the dashboard: `streamlit run` in a subprocess, Debian's chromium driven
by Playwright through every page. No page may show an exception or an error box; a training run is
started, survives a page switch and is stopped; closing the tab pauses a run (server log).

Screenshots go to artifacts/browser/ (git-ignored) for a human to look at.
Skips, saying why, when chromium or the playwright package is missing (`apt-get install chromium`,
`pip install playwright`; the browser download of `playwright install` is not needed).
"""
from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHOTS = REPO / "artifacts" / "browser"
CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
ERRORS = '[data-testid="stException"], [data-testid="stAlertContentError"]'
PAGES = ["Overview / compare", "Train live", "Conditional generation", "Latent space", "Interpolate & traverse",
         "Out-of-distribution", "Mode collapse lab"]

from bench.common import free_port, start_streamlit, stop_process, wait_healthy  # noqa: E402

sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright to run the browser test")
if not CHROMIUM:
    pytest.skip("no chromium binary (apt-get install chromium, or set $CHROMIUM)", allow_module_level=True)


@pytest.fixture(scope="module")
def server():
    port = free_port()
    SHOTS.mkdir(parents=True, exist_ok=True)
    log = SHOTS / "server.log"
    proc = start_streamlit(port, log, env={"GENLIB_DASHBOARD_PAUSE_AFTER_S": "1",
                                           "GENLIB_DASHBOARD_STOP_AFTER_S": "600"})
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, proc, timeout=30)
    except RuntimeError as e:
        stop_process(proc)
        pytest.fail(f"{e}; see {log}")
    yield url, log
    stop_process(proc)


def settle(page, timeout: float = 30_000) -> None:
    """Wait until the script run finished (the status widget's 'running' state is gone)."""
    page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=timeout)


T0 = [time.monotonic()]


def check_clean(page, name: str) -> None:
    print(f"{time.monotonic() - T0[0]:6.1f} s  {name}")
    page.screenshot(path=str(SHOTS / f"{name}.png"))   # no full_page: its resize makes plotly redraw blank
    errors = page.locator(ERRORS)
    assert errors.count() == 0, f"{name}: {errors.first.inner_text()[:500]}"


def go(page, title: str) -> None:
    """Click a page in the sidebar menu and wait until it has drawn."""
    page.locator('[data-testid="stSidebarNav"] a', has_text=title).first.click()
    page.wait_for_url(re.compile(r"/[^/]*$"))
    page.locator('[data-testid="stSidebarNav"] a[aria-current="page"]', has_text=title).wait_for(timeout=30_000)
    page.locator("h1").first.wait_for(timeout=30_000)
    settle(page, 60_000)


def start_run(page, spinbutton: str, steps: str, button: str) -> None:
    """Type ``steps`` into a number input, press ``button`` and wait until the run shows as running."""
    box = page.get_by_role("spinbutton", name=spinbutton)
    box.fill(steps)
    box.press("Enter")
    settle(page)
    page.get_by_role("button", name=button).click()
    page.locator('[data-testid="stProgress"]', has_text="running").wait_for(timeout=30_000)


def progress_step(page) -> int:
    text = page.locator('[data-testid="stProgress"]').first.inner_text()
    return int(re.search(r"step ([\d,]+)", text).group(1).replace(",", ""))


def test_every_page_in_a_real_browser(server):
    url, log = server
    T0[0] = time.monotonic()             # check_clean prints seconds since here (pytest -s)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1400, "height": 2200})
        page.goto(url)
        page.get_by_role("heading", name="Overview: compare models").wait_for(timeout=60_000)
        settle(page)
        check_clean(page, "0-overview")
        titles = [t.strip().split("\n")[-1] for t in page.locator('[data-testid="stSidebarNav"] a').all_inner_texts()]
        assert titles == PAGES, "the menu changed: update PAGES"
        for i, title in enumerate(titles[1:], start=1):        # every page in the menu, whoever wrote it
            go(page, title)
            check_clean(page, f"{i}-{re.sub(r'[^a-z]+', '-', title.lower()).strip('-')}")

        # a live run: start it, leave, come back, it is still running further along; stop it
        go(page, "Train live")
        start_run(page, "Training steps", "3000", "Start training")
        page.wait_for_timeout(1200)
        check_clean(page, "a-train-running")
        before = progress_step(page)
        go(page, "Overview / compare")
        go(page, "Train live")
        page.locator('[data-testid="stProgress"]', has_text="running").wait_for(timeout=30_000)
        page.wait_for_timeout(1000)
        assert progress_step(page) > before
        page.get_by_role("button", name="Stop", exact=True).click()
        page.locator('[data-testid="stProgress"]', has_text="stopped").wait_for(timeout=30_000)
        settle(page)
        page.get_by_role("button", name="Checkpoint (.pt)", exact=True).wait_for(timeout=30_000)
        check_clean(page, "b-train-stopped")

        # the stopped model is in the picker: the other pages now draw from it
        go(page, "Overview / compare")
        page.locator('[data-testid="stImage"]').first.wait_for(timeout=30_000)
        check_clean(page, "c-overview-with-session-model")

        go(page, "Mode collapse lab")
        thumb = page.get_by_role("slider", name="Steps each")
        thumb.focus()
        thumb.press("Home")                                  # 500 steps: done in seconds, then static
        settle(page)
        page.get_by_role("button", name="Start both").click()
        page.locator(".js-plotly-plot").nth(5).wait_for(timeout=60_000)    # 2 maps, 2 bar charts, 2 curves
        page.get_by_text("— done, step 500 / 500").nth(1).wait_for(timeout=60_000)
        settle(page)
        page.wait_for_timeout(1000)
        check_clean(page, "d-mode-collapse-done")

        # closing the tab disconnects the session: its running runs are paused within seconds
        go(page, "Train live")
        start_run(page, "More steps", "100000", "Train 100,000 more")
        page.close()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and "paused a run" not in log.read_text():
            time.sleep(0.5)
        assert "paused a run" in log.read_text(), "closing the tab did not pause the session's runs"
        browser.close()
