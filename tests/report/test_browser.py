"""The report in a real headless browser (Debian's chromium driven by selenium).

Every figure must load, the console must stay free of errors, printing must give a page
per section, and a screenshot is saved. Skipped when chromium, chromedriver or selenium is
missing, unless CARKINETICS_REQUIRE_BROWSER=1 (CI), where that is a failure.
"""

from __future__ import annotations

import base64
import os
import shutil
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
ARGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--no-first-run", "--window-size=1280,1600")


def _browser_or_skip():
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("the selenium package")
    if missing:
        msg = f"headless browser test needs {', '.join(missing)}"
        if os.environ.get("CARKINETICS_REQUIRE_BROWSER") == "1":
            pytest.fail(msg + " (CARKINETICS_REQUIRE_BROWSER=1)")
        pytest.skip(msg)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = str(CHROMIUM)
    for a in ARGS:
        opts.add_argument(a)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # the Debian driver, given explicitly: selenium never downloads a driver or a browser
    return webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=opts)


@pytest.fixture(scope="module")
def browser():
    driver = _browser_or_skip()
    yield driver
    driver.quit()


def test_report_renders_in_headless_chromium(browser, demo_run, tmp_path):
    r, demo = demo_run
    assert r.returncode == 0, r.stderr
    report = (demo / "report.html").resolve()
    browser.get(report.as_uri())
    assert browser.title == "CAR-T dose-escalation committee report"
    imgs = browser.execute_script(
        "return Array.from(document.images).map(i => [i.id || i.alt, i.complete, "
        "i.naturalWidth, i.naturalHeight]);")
    assert len(imgs) >= 10
    bad = [i for i in imgs if not (i[1] and i[2] > 0 and i[3] > 0)]
    assert not bad, f"figures that did not load: {bad}"
    errors = [e for e in browser.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]
    assert not errors, errors
    sections = browser.execute_script(
        "return Array.from(document.querySelectorAll('section')).map(s => s.id);")
    assert sections == ["cohort", "kinetics", "population", "pd", "safety", "escalation",
                        "provenance"]
    shot = tmp_path / "report.png"
    assert browser.save_screenshot(str(shot))
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
    keep = os.environ.get("CARKINETICS_SCREENSHOT_DIR")
    if keep:
        shutil.copy(shot, Path(keep) / "report.png")
    # printable: the print stylesheet starts each section on a new page
    pdf = base64.b64decode(browser.execute_cdp_cmd("Page.printToPDF", {
        "printBackground": True, "preferCSSPageSize": True})["data"])
    assert pdf[:5] == b"%PDF-"
    n_pages = pdf.count(b"/Type /Page") - pdf.count(b"/Type /Pages")
    assert n_pages >= len(sections) + 1  # contents page + one page or more per section
    errors = [e for e in browser.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]
    assert not errors, errors
