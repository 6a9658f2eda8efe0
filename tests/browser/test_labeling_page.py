"""A person labels the demo session that the embedded system starts with: press
Label, watch the progress bar, read the residual charts."""

import re
import shutil

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


def log_in_as_demo(page, base: str) -> None:
    page.goto(f"{base}/login/")
    page.fill("#id_username", "demo")
    page.fill("#id_password", "demo-hand-2026")
    page.click("button[type=submit]")
    expect(page).to_have_url(re.compile(r"/sessions/$"))


def test_label_the_demo_session(embedded_system, chromium_page, tmp_path):
    page, base = chromium_page, embedded_system.url
    log_in_as_demo(page, base)

    # a demo session: 90 simulated seconds with webcam landmarks
    page.locator("#sessions a", has_text=re.compile(r"^\d+$")).last.click()
    page.select_option("select[name=alignment]", "umeyama_scale")
    page.select_option("select[name=optimizer]", "adam")
    page.click("#label")
    expect(page).to_have_url(re.compile(r"/jobs/\d+/$"))

    # the worker fits 2,700 frames; the page follows its progress
    expect(page.locator("#status")).to_have_text("Complete", timeout=90_000)
    expect(page.locator("#progress")).to_have_attribute("value", "2700")
    expect(page.locator("#result")).to_be_visible()
    expect(page.locator("#frames")).to_have_text("2700")
    expect(page.locator("#valid")).to_have_text(re.compile(r"^\d+\.\d %$"))
    expect(page.locator("#histogram .uplot")).to_have_count(1)
    expect(page.locator("#per-joint .uplot")).to_have_count(1)
    screenshot = tmp_path / "labeling_job.png"
    page.screenshot(path=str(screenshot), full_page=True)
    shutil.copy(screenshot, "/tmp/labeling_job.png")

    # the session page lists the finished job
    page.click("h1 a")
    expect(page.locator("#labeling tbody tr")).to_have_count(1)
    expect(page.locator("#labeling .status.complete")).to_have_text("Complete")
    assert not [m for m in page.js_messages if m.startswith("pageerror")]
