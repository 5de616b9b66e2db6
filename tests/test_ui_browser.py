"""`speedrun ui` in a real browser: Debian's chromium driven by Playwright, against a real uvicorn server.

Skipped cleanly where chromium or Playwright is missing; under CI=true that is a failure (.ci/run
installs chromium). The database holds 1,000 runs in two groups of repeats, a run whose title is a
<script>, and a running run that a background process feeds epochs while the page is open.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
import time

import pytest

from speedrun.domain.records import EpochRecord, RunRecord
from speedrun.tracking.store import Store

SCRIPT_TITLE = "<script>alert(1)</script>"
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _missing(why: str):
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true and the browser tests cannot run: {why}", pytrace=False)
    pytest.skip(why)


@pytest.fixture(scope="module")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("playwright is not installed (pip install playwright)")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        _missing("no chromium on this machine (apt-get install chromium)")
    with sync_playwright() as p:
        try:
            launched = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        except Exception as exc:  # a browser that cannot start here
            _missing(f"chromium does not start here: {exc}")
        yield launched
        launched.close()


def _epoch(n: int, acc: float) -> EpochRecord:
    return EpochRecord(n, train_loss=2.0 / n, val_acc=acc, duration_s=10.0, elapsed_s=10.0 * n)


@pytest.fixture(scope="module")
def database(tmp_path_factory):
    path = tmp_path_factory.mktemp("ui") / "runs.db"
    store = Store.open(str(path))
    records = []
    for i in range(1000):
        group = "bs64" if i < 3 else "bs128" if i < 6 else None
        bs = 64 if i < 3 or i % 2 == 0 else 128
        final = 85.0 + (i % 7) * 0.3 + (0.8 if group == "bs64" else 0.0)
        records.append(RunRecord(
            source="train", status="completed", title=SCRIPT_TITLE if i == 10 else f"run {i}",
            params={"model": "resnet18", "lr": 0.04 if i % 3 else 0.02, "batch_size": bs, "epochs": 3,
                    "cosine": bool(i % 2)},
            hardware="T4" if i % 2 else "A100", group=group,
            epochs=[_epoch(1, final - 10), _epoch(2, final - 3), _epoch(3, final)]))
    store.add_runs(records)
    live = store.begin_run(RunRecord(source="train", status="running", title="live",
                                     params={"model": "resnet18", "epochs": 30}))
    store.add_epoch(live, _epoch(1, 30.0))
    store.close()
    return path, live


@pytest.fixture(scope="module")
def server(database):
    import uvicorn

    from speedrun.ui.app import create_app

    path, _ = database
    store = Store.open_read_only(str(path))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = uvicorn.Config(create_app(store), host="127.0.0.1", port=port, log_level="warning")
    running = uvicorn.Server(config)
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not running.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert running.started, "the UI server did not start"
    yield f"http://127.0.0.1:{port}/"
    running.should_exit = True
    thread.join(10)
    store.close()


@pytest.fixture
def page(browser):
    context = browser.new_context()
    page = context.new_page()
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.dialogs = dialogs
    yield page
    context.close()


def test_runs_page_over_1000_runs_sorts_and_pages(page, server):
    page.goto(server)
    assert page.locator("p.count").inner_text().startswith("1001 runs, page 1 of 21")
    assert page.locator("table.runs tbody tr").count() == 50
    page.select_option("select[name=sort]", "final")
    page.check("input[name=desc]")
    page.wait_for_function("document.querySelector('p.count').textContent.includes('1001 runs')"
                           " && location.search.includes('desc=1')")
    finals = [float(t) for t in page.locator("table.runs td.final").all_inner_texts() if t.strip() not in ("", "—")]
    assert finals and finals == sorted(finals, reverse=True)
    page.click("a.next")
    page.wait_for_function("document.querySelector('p.count').textContent.includes('page 2 of')")


def test_a_script_title_shows_as_text_and_never_runs(page, server):
    page.goto(server + "runs/11")
    assert SCRIPT_TITLE in page.locator("h1 .title").inner_text()
    page.goto(server + "?per=50")
    assert SCRIPT_TITLE in page.locator("#run-row-11 td.title").inner_text()
    page.wait_for_timeout(300)
    assert page.dialogs == []


def test_a_run_page_draws_its_chart_with_a_legend(page, server):
    page.goto(server + "runs/2")
    page.wait_for_selector("#chart canvas")
    assert page.locator("#chart .u-legend").count() == 1
    assert "val acc" in page.locator("#chart .u-legend").inner_text()
    assert page.get_attribute("#chart", "data-points") == "3"
    # beside it, the losses and the epoch time, from the same epochs
    page.wait_for_selector("#chart-loss canvas")
    assert "train loss" in page.locator("#chart-loss .u-legend").inner_text()
    assert "epoch time" in page.locator("#chart-time .u-legend").inner_text()
    assert page.get_attribute("#chart-time", "data-points") == "3"
    # the fragment replaces its "Comparing…" placeholder; wait for the answer itself, not any text
    first = page.wait_for_selector("#verdict ul.verdict li")
    assert first.inner_text() == "First run of resnet18 with a final accuracy on T4"


def test_a_run_page_names_its_baseline_and_the_verdict(page, server):
    page.goto(server + "runs/5")
    page.wait_for_selector("#verdict ul.verdict li")
    lines = page.locator("#verdict ul.verdict li").all_inner_texts()
    assert lines[0].startswith("vs Run 1 (only lr differs): +0.40 points"), lines
    assert any(line.startswith("Final accuracy: No significant difference") for line in lines), lines


def test_compare_of_two_groups_reads_the_verdict(page, server):
    page.goto(server + "compare?runs=g:bs64&runs=g:bs128")
    verdicts = page.locator("ul.verdict li").all_inner_texts()
    assert any(v.startswith("Final accuracy: ") for v in verdicts)
    assert any("n=3" in v or "3 vs 3" in v or "(n" in v for v in verdicts), verdicts
    page.wait_for_selector("#chart canvas")
    legend = page.locator("#chart .u-legend").inner_text()
    assert "g:bs64" in legend and "g:bs128" in legend
    assert "g:bs64 + std" in legend and "g:bs128 − std" in legend  # each group drawn as mean ± std


def test_a_running_run_grows_on_the_open_page_without_reload(page, server, database):
    path, live = database
    page.goto(server + f"runs/{live}")
    page.wait_for_selector("#chart canvas")
    assert page.locator("#run-epochs").inner_text() == "1"
    marker = page.evaluate("window.__speedrun_marker = 42")  # gone if the page reloads
    feeder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time\n"
        "from speedrun.tracking.store import Store\n"
        "from speedrun.domain.records import EpochRecord\n"
        "store = Store.open(sys.argv[1])\n"
        "for n in (2, 3, 4):\n"
        "    time.sleep(0.5)\n"
        "    store.add_epoch(int(sys.argv[2]), EpochRecord(n, train_loss=1.0/n, val_acc=30.0+n, duration_s=1.0,"
        " elapsed_s=float(n)))\n"
        "store.close()\n"), str(path), str(live)])
    try:
        assert feeder.wait(60) == 0
    finally:
        feeder.kill()
    page.wait_for_function("document.getElementById('run-epochs').textContent === '4'", timeout=15_000)
    page.wait_for_function("document.getElementById('chart').dataset.points === '4'", timeout=15_000)
    page.wait_for_function("document.getElementById('chart-time').dataset.points === '4'", timeout=15_000)
    assert page.evaluate("window.__speedrun_marker") == marker == 42


def test_the_filter_box_narrows_the_table_with_an_or_query(page, server):
    page.goto(server)
    page.fill("input[name=where]", "batch_size = 64 or title ~ \"run 99*\"")
    page.wait_for_function("!document.querySelector('p.count').textContent.startsWith('1001 runs')")
    count = page.locator("p.count").inner_text()
    # 501 runs at batch 64 (the even ones, and run 1 of group bs64) and the odd "run 99*" titles at
    # batch 128 (99, 991, 993, 995, 997, 999).
    assert count.startswith("507 runs"), count
    assert "where=" in page.url
    page.fill("input[name=where]", "batch_size = ")
    page.wait_for_selector("#where-error")
    assert "^" in page.locator("#where-error").inner_text()
