"""Real-browser passes over the dashboard: `streamlit run` in a subprocess, Debian's chromium driven
by Playwright at projector width (1400 px). No page may show an exception or an error box; a training
run is started, survives a page switch and is stopped; closing the tab pauses a run (server log).

Classroom checks (issue 15): the live grid's step advances during a run without touching the slider;
no chart is missing in 20 polls of a running page; a reload keeps the run and the model list;
switching the dataset updates every dependent box (and switching the model the latent page's);
a URL opens a page with a given dataset and model; presentation mode renders.

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
         "Out-of-distribution", "Mode collapse lab", "Flow matching", "Lessons"]

from bench.common import free_port, start_streamlit, stop_process, wait_healthy  # noqa: E402
from conftest import wait_until  # noqa: E402

sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright to run the browser test")
if not CHROMIUM:
    pytest.skip("no chromium binary (apt-get install chromium, or set $CHROMIUM)", allow_module_level=True)


@pytest.fixture(scope="module")
def server():
    port = free_port()
    SHOTS.mkdir(parents=True, exist_ok=True)
    log = SHOTS / "server.log"
    proc = start_streamlit(port, log, env={"GENLIB_DASHBOARD_PAUSE_AFTER_S": "1",
                                           "GENLIB_DASHBOARD_STOP_AFTER_S": "600",
                                           "GENLIB_DASHBOARD_STATE_DIR": str(SHOTS / "sessions")})
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
    # a bound, not a speed: the server's first run waits for a pool worker to start (it imports torch)
    page.locator('[data-testid="stProgress"]', has_text="running").wait_for(timeout=90_000)


def progress_step(page) -> int:
    text = page.locator('[data-testid="stProgress"]').first.inner_text()
    return int(re.search(r"step ([\d,]+)", text).group(1).replace(",", ""))


def test_every_page_in_a_real_browser(server):
    url, log = server
    T0[0] = time.monotonic()             # check_clean prints seconds since here (pytest -s)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1400, "height": 2200})
        page.goto(url + "/?dataset=digits")        # the quick offline dataset (MNIST is the default when present)
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
        # the first step waits for the starting measurement (seconds on a busy CPU): poll, don't guess
        assert wait_until(lambda: progress_step(page) > before, 60, poll=0.2), f"stuck at step {progress_step(page)}"
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
        page.locator(DRAWN_ANY).nth(5).wait_for(timeout=60_000)    # 2 maps, 2 bar charts, 2 curves
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


# --- classroom checks (issue 15) -------------------------------------------------------------------
@pytest.fixture
def browser_page(server):
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1400, "height": 1800})
        try:
            yield page
        finally:
            browser.close()


def open_url(page, url: str, heading: str) -> None:
    page.goto(url)
    page.locator("h1", has_text=heading).first.wait_for(timeout=90_000)
    settle(page, 90_000)


def sidebar_box(page, label: str):
    """A select box of the sidebar (a combobox input named by its label)."""
    return page.locator('[data-testid="stSidebar"]').get_by_role("combobox", name=label, exact=True)


def main_box(page, label: str):
    return page.locator('[data-testid="stMain"]').get_by_role("combobox", name=label, exact=True)


def box_value(page, label: str) -> str:
    return sidebar_box(page, label).input_value().strip()


def box_options(box, page) -> list[str]:
    box.click()
    page.get_by_role("option").first.wait_for(timeout=10_000)
    options = [o.strip() for o in page.get_by_role("option").all_inner_texts()]
    page.keyboard.press("Escape")
    return options


def choose(box, option: str, page) -> None:
    box.click()
    page.get_by_role("option", name=option, exact=True).first.click()
    deadline = time.monotonic() + 30                     # the rerun starts a moment after the click
    while time.monotonic() < deadline and box.input_value().strip() != option:
        page.wait_for_timeout(100)
    page.wait_for_timeout(300)
    settle(page, 90_000)


def grid_step(page) -> int | None:
    caps = page.locator('[data-testid="stImageCaption"]').all_inner_texts()
    for c in caps:
        if m := re.search(r"decoded at step ([\d,]+)", c):
            return int(m.group(1).replace(",", ""))
    return None


DRAWN = '[data-testid="stMain"] [data-testid="stPlotlyChart"] .js-plotly-plot'     # a chart plotly has drawn
# a chart drawn by plotly or by Vega-Lite (the lab's live charts: figures.points_chart, ...)
DRAWN_ANY = DRAWN + ', [data-testid="stMain"] .vega-embed canvas, [data-testid="stMain"] .vega-embed svg.marks'


def test_live_grid_follows_a_run_and_a_reload_keeps_it(server, browser_page):
    url, _ = server
    page = browser_page
    open_url(page, url + "/train?dataset=digits", "Train live")
    start_run(page, "Training steps", "20000", "Start training")
    # the grid's step advances during the run, nobody touching the slider
    steps = []
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and len(set(s for s in steps if s is not None)) < 3:
        steps.append(grid_step(page))
        page.wait_for_timeout(1500)
    seen = [s for s in steps if s is not None]
    assert len(set(seen)) >= 3 and seen == sorted(seen), f"the grid did not follow the run: {steps}"
    check_clean(page, "e-train-grid-following")

    # no chart missing in 20 polls of the running page
    counts = []
    for _ in range(20):
        page.wait_for_timeout(700)
        counts.append(page.locator(DRAWN).count())
    assert min(counts) >= 2, f"charts missing while polling (loss and live metric): {counts}"

    # a reload (F5) keeps the session: the run is still there and still running, the URL has its id
    sid = re.search(r"[?&]sid=([\w-]+)", page.url).group(1)
    before = progress_step(page)
    page.reload()
    page.locator("h1", has_text="Train live").first.wait_for(timeout=90_000)
    page.locator('[data-testid="stProgress"]', has_text="running").wait_for(timeout=60_000)
    page.wait_for_timeout(1500)
    assert progress_step(page) > before
    assert f"sid={sid}" in page.url
    check_clean(page, "f-train-after-reload")

    # stop it: it joins the model list, which a reload keeps too
    page.get_by_role("button", name="Stop", exact=True).click()
    page.locator('[data-testid="stProgress"]', has_text="stopped").wait_for(timeout=30_000)
    settle(page)
    options = box_options(sidebar_box(page, "Model"), page)
    assert any("(session)" in o for o in options), options
    page.reload()
    page.locator("h1", has_text="Train live").first.wait_for(timeout=90_000)
    settle(page, 90_000)
    after = box_options(sidebar_box(page, "Model"), page)
    assert after == options, (options, after)
    check_clean(page, "g-model-list-after-reload")


def test_no_chart_is_missing_while_the_mode_collapse_lab_runs(server, browser_page):
    url, _ = server
    page = browser_page
    open_url(page, url + "/mode_collapse?dataset=digits", "Mode collapse lab")
    thumb = page.get_by_role("slider", name="Steps each")
    thumb.focus()
    thumb.press("End")                                   # 10,000 steps: it runs through the polls
    settle(page)
    page.get_by_role("button", name="Start both").click()
    page.locator('[data-testid="stProgress"]', has_text="running").first.wait_for(timeout=60_000)
    lab = page.locator(DRAWN_ANY)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and lab.count() < 6:
        page.wait_for_timeout(300)
    full = lab.count()
    assert full >= 6, f"{full} charts"
    counts = []
    for _ in range(20):
        page.wait_for_timeout(700)
        counts.append(lab.count())
    assert min(counts) == full, f"charts missing while polling (of {full}): {counts}"
    assert page.locator('[data-testid="stProgress"]').count() >= 2      # one bar per run, with its ETA
    assert "left" in page.locator('[data-testid="stProgress"]').first.inner_text()
    check_clean(page, "h-mode-collapse-polled")
    page.get_by_role("button", name="Stop both").click()
    settle(page)


def test_switching_dataset_and_model_updates_every_dependent_box(server, browser_page):
    url, _ = server
    page = browser_page
    open_url(page, url + "/?dataset=digits", "Overview: compare models")
    assert box_value(page, "Model").startswith("digits-")
    choose(sidebar_box(page, "Dataset"), "mnist", page)
    page.get_by_text("Every model available for mnist").wait_for(timeout=60_000)
    assert wait_until(lambda: box_value(page, "Model").startswith("mnist-"), 60, poll=0.2), box_value(page, "Model")
    sidebar = page.locator('[data-testid="stSidebar"]').inner_text()
    assert "1, 28, 28" in sidebar and "1, 8, 8" not in sidebar
    assert not re.search(r"/(work|root|home|tmp|usr)\b|\.cache", sidebar), sidebar       # no file-system paths
    assert "dataset=mnist" in page.url and "model=mnist-" in page.url
    check_clean(page, "i-switched-to-mnist")

    # back on digits: its own choice, not mnist's; the latent page's dimension boxes follow the model
    # (digits: a t-SNE of its ~900 test images takes seconds, MNIST's a minute on a busy CPU)
    choose(sidebar_box(page, "Dataset"), "digits", page)
    page.get_by_text("Every model available for digits").wait_for(timeout=60_000)
    assert wait_until(lambda: box_value(page, "Model").startswith("digits-"), 60, poll=0.2), box_value(page, "Model")
    assert wait_until(lambda: "dataset=digits" in page.url and "model=digits-" in page.url, 60, poll=0.2), page.url
    go(page, "Latent space")
    choose(sidebar_box(page, "Model"), "digits-vae (pretrained)", page)
    main_box(page, "Horizontal: dimension").wait_for(timeout=120_000)
    before = main_box(page, "Horizontal: dimension").input_value()
    choose(sidebar_box(page, "Model"), "digits-vae-2d (pretrained)", page)
    main_box(page, "Horizontal: dimension").wait_for(timeout=90_000)
    after = main_box(page, "Horizontal: dimension").input_value()
    assert before != after, (before, after)
    check_clean(page, "j-latent-after-model-switch")


def test_a_url_opens_a_page_with_its_dataset_and_model(server, browser_page):
    url, _ = server
    page = browser_page
    open_url(page, url + "/conditional?dataset=fashion-mnist&model=fashion-mnist-cgan&lesson=3", "Conditional generation")
    assert box_value(page, "Dataset") == "fashion-mnist"
    assert box_value(page, "Model") == "fashion-mnist-cgan (pretrained)"
    assert page.locator('[data-testid="stSidebarNav"] a[aria-current="page"]').inner_text().strip().endswith(
        "Conditional generation")
    assert "lesson=3" in page.url                     # another page's parameter is left alone
    check_clean(page, "k-url-opens-conditional")


def test_presentation_mode_renders(server, browser_page):
    url, _ = server
    page = browser_page
    open_url(page, url + "/?dataset=mnist&present=1", "Overview: compare models")
    page.locator('[data-testid="stImage"] img').first.wait_for(timeout=60_000)
    size = page.evaluate("() => parseFloat(getComputedStyle(document.querySelector('[data-testid=\"stMain\"] p')).fontSize)")
    assert size >= 19, size
    page.screenshot(path=str(SHOTS / "l-presentation-mode.png"))
    width = page.locator('[data-testid="stImage"] img').first.bounding_box()["width"]
    main = page.locator('[data-testid="stMain"]').bounding_box()["width"]
    assert width >= 0.4 * main, (width, main)             # two grids per row (three, about 0.28, normally)
    table = page.locator('[data-testid="stTable"]').first
    table.wait_for(timeout=30_000)
    text = table.inner_text()
    assert "mnist-conv-vae" in text and "mnist-wgan-gp" in text      # full names
    quality = page.locator('[data-testid="stTable"]').nth(1).inner_text()
    for column in ("classifier-FID", "precision", "recall", "classifier IS", "sampling s / 1k", "peak memory MB"):
        assert column in quality, column
    assert "present=1" in page.url
    check_clean(page, "l-presentation-mode")


def test_a_lesson_opens_from_its_url(server, browser_page):
    """A teacher's bookmark: /lessons?lesson=<slug> opens that lesson, runs it and shows its number."""
    url, _ = server
    page = browser_page
    open_url(page, url + "/lessons?lesson=all-eights&dataset=digits", "Lessons")
    page.get_by_role("heading", name="Lesson 2: All 8s, and a digit between 2 and 5").wait_for(timeout=90_000)
    metric = page.locator('[data-testid="stMetric"]').first
    metric.wait_for(timeout=120_000)
    settle(page, 120_000)
    assert "share of class-8 samples classified 8" in metric.inner_text() and "bar" in metric.inner_text()
    assert page.get_by_text("In plain words.").count() == 1
    assert "lesson=all-eights" in page.url and "dataset=digits" in page.url      # the other parameters kept
    check_clean(page, "m-lesson-by-url")
