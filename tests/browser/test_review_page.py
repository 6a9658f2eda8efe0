"""A person reviews a labeled session in a real browser: the overview strip and
the traces draw, scrubbing moves the 3D label hand, play runs at real speed, and
the steps table lists every protocol step."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import pytest
from playwright.sync_api import expect

from recorder.session_file import write_session
from tests.browser.conftest import NOT_INHERITED
from tests.browser.test_labeling_page import log_in_as_demo
from tests.system.processes import ROOT
from tests.training.sessions import labeled_recording

pytestmark = pytest.mark.browser

SECONDS = 30.0  # of simulated, truth-labeled recording: several protocol steps

# Luminance spread and share of pixels unlike the background, of the hand canvas.
CANVAS_STATS = """() => {
  const source = document.querySelector("#viewer canvas");
  const copy = document.createElement("canvas");
  copy.width = source.width; copy.height = source.height;
  const context = copy.getContext("2d");
  context.drawImage(source, 0, 0);
  const pixels = context.getImageData(0, 0, copy.width, copy.height).data;
  const [r0, g0, b0] = [pixels[0], pixels[1], pixels[2]];  // a corner: background
  let sum = 0, sumSq = 0, unlike = 0;
  for (let i = 0; i < pixels.length; i += 4) {
    const y = 0.299 * pixels[i] + 0.587 * pixels[i + 1] + 0.114 * pixels[i + 2];
    sum += y; sumSq += y * y;
    const apart = Math.abs(pixels[i] - r0) + Math.abs(pixels[i + 1] - g0)
      + Math.abs(pixels[i + 2] - b0);
    if (apart > 30) unlike += 1;
  }
  const n = pixels.length / 4;
  return {std: Math.sqrt(sumSq / n - (sum / n) ** 2), handShare: unlike / n};
}"""


def import_labeled_session(tmp_path) -> int:
    """A labeled session added to the embedded system as `import_session` adds it."""
    path = tmp_path / "review.h5"
    write_session(path, labeled_recording(SECONDS))
    env = {k: v for k, v in os.environ.items() if k not in NOT_INHERITED}
    env["VAR_DIR"] = str(tmp_path / "var")  # the embedded_system fixture's
    imported = subprocess.run(
        [sys.executable, "manage.py", "import_session", str(path), "--user", "demo",
         "--subject", "Reviewed person"],
        cwd=ROOT, env=env, check=True, capture_output=True, text=True,
    )  # fmt: skip
    return int(re.search(r"as session (\d+)", imported.stdout).group(1))


def seek_and_wait(page, time_s: float) -> str:
    """Moves the cursor, waits for the hand of that moment; returns the canvas."""
    page.evaluate(f"() => window.sessionReview.seek({time_s})")
    page.wait_for_function(
        f"""() => Math.abs(Number(document.getElementById("review").dataset.frameTimeS)
             - {time_s}) < 0.1"""
    )
    page.wait_for_timeout(150)  # the frame after the pose
    return page.evaluate("() => document.querySelector('#viewer canvas').toDataURL()")


def test_scrub_and_play_a_labeled_session(embedded_system, chromium_page, tmp_path):
    page, base = chromium_page, embedded_system.url
    session_id = import_labeled_session(tmp_path)
    log_in_as_demo(page, base)
    page.goto(f"{base}/sessions/{session_id}/")
    page.click("#review-link")
    expect(page).to_have_url(re.compile(rf"/sessions/{session_id}/review/$"))
    expect(page.locator("#review")).to_have_attribute("data-ready", "true")
    page.wait_for_function(
        "() => Number(document.getElementById('review').dataset.framesDrawn) > 0"
    )

    # the overview, all 8 traces and the hand are drawn
    expect(page.locator("#overview .uplot")).to_have_count(1)
    expect(page.locator("#traces .uplot")).to_have_count(8)
    expect(page.locator("#trace-info")).to_have_text(re.compile(r"^0\.0–10\.0 s"))
    stats = page.evaluate(CANVAS_STATS)
    assert stats["std"] > 8 and stats["handShare"] > 0.03, f"blank hand: {stats}"

    # scrubbing to another gesture changes the hand on screen
    open_hand = seek_and_wait(page, 1.0)
    pointing = seek_and_wait(page, 11.5)
    assert open_hand != pointing, "scrubbing did not change the hand"
    expect(page.locator("#current-step")).to_have_text("point")
    # the traces followed the cursor: its seconds, centred
    expect(page.locator("#trace-info")).to_have_text(re.compile(r"^6\.5–16\.5 s"))

    # the steps table: one row per step and the whole session; a click seeks
    rows = page.locator("#steps tbody tr")
    assert rows.count() >= 6
    expect(rows.last).to_contain_text("whole session")
    expect(rows.first).to_contain_text(re.compile(r"\d+\.\d %"))
    rows.nth(3).click()
    step_start_s = float(rows.nth(3).locator("td").nth(1).text_content())
    page.wait_for_function(
        f"() => Math.abs(window.sessionReview.timeS - {step_start_s}) < 0.01"
    )
    expect(rows.nth(3)).to_have_class(re.compile("current"))

    # play runs at real speed, then pause stops the clock
    clock = "() => [window.sessionReview.timeS, performance.now()]"
    seek_and_wait(page, 2.0)
    page.click("#play")
    before_s, before_ms = page.evaluate(clock)
    page.wait_for_timeout(2000)
    after_s, after_ms = page.evaluate(clock)
    page.click("#play")
    speed = (after_s - before_s) / ((after_ms - before_ms) / 1000)
    assert 0.8 < speed < 1.2, f"played at {speed:.2f}× real time"
    paused_s = page.evaluate("() => window.sessionReview.timeS")
    page.wait_for_timeout(300)
    assert page.evaluate("() => window.sessionReview.timeS") == paused_s

    page.screenshot(path=str(tmp_path / "review.png"), full_page=True)
    shutil.copy(tmp_path / "review.png", "/tmp/review_page.png")
    assert not [m for m in page.js_messages if m.startswith("pageerror")]
