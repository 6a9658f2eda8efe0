"""A person trains a model on labeled sessions: picks them on the form, watches the
learning curves grow while the embedded worker trains, and reads the finished
model's metrics and per-joint chart."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time

import pytest
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import expect

from recorder.session_file import write_session
from tests.browser.conftest import NOT_INHERITED
from tests.browser.test_labeling_page import log_in_as_demo
from tests.system.processes import ROOT
from tests.training.sessions import labeled_recording

pytestmark = pytest.mark.browser

SECONDS = 4.0  # of simulated recording per session
EPOCHS = 8  # enough for the curve to grow under the page's eyes


def import_labeled_sessions(tmp_path, count: int = 3) -> list[int]:
    """Labeled sessions added to the embedded system's database, as `import_session`
    adds them; returns their ids."""
    env = {k: v for k, v in os.environ.items() if k not in NOT_INHERITED}
    env["VAR_DIR"] = str(tmp_path / "var")  # the embedded_system fixture's
    ids = []
    for session in range(count):
        path = tmp_path / f"labeled-{session}.h5"
        write_session(path, labeled_recording(SECONDS, subject_seed=0, session=session))
        imported = subprocess.run(
            [sys.executable, "manage.py", "import_session", str(path), "--user",
             "demo", "--subject", "Labeled person"],
            cwd=ROOT, env=env, check=True, capture_output=True, text=True,
        )  # fmt: skip
        ids.append(int(re.search(r"as session (\d+)", imported.stdout).group(1)))
    return ids


def epochs_plotted_while_running(page, timeout_s: float) -> list[int]:
    """How many epochs the curves showed, sampled until the run completes."""
    script = """() => { const run = document.getElementById("run");
        return run && [run.dataset.status, Number(run.dataset.epochsPlotted || 0)]; }"""
    counts = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            state = page.evaluate(script)
        except PlaywrightError:  # the page reloads when the status changes
            state = None
        if state and state[0] == "complete":
            return counts
        if state and state[0] == "running":
            counts.append(state[1])
        time.sleep(0.25)
    raise TimeoutError(f"the run did not complete within {timeout_s} s")


def test_train_a_model_and_watch_it_learn(embedded_system, chromium_page, tmp_path):
    page, base = chromium_page, embedded_system.url
    *train_ids, held_out_id = import_labeled_sessions(tmp_path)
    log_in_as_demo(page, base)

    page.click("nav >> text=Models")
    page.click("#train-link")
    for session_id in train_ids:
        page.check(f"input[name=train_sessions][value='{session_id}']")
    page.check(f"input[name=validation_sessions][value='{held_out_id}']")
    page.select_option("select[name=model_name]", "v5")
    page.fill("input[name=epochs]", str(EPOCHS))
    page.fill("input[name=batch_size]", "64")
    page.click("#start-training")
    expect(page).to_have_url(re.compile(r"/models/\d+/$"))

    # the curves grow while the worker trains; the page follows by itself
    counts = epochs_plotted_while_running(page, timeout_s=300)
    seen = sorted({count for count in counts if count > 0})
    assert len(seen) >= 2, f"the curves never grew while running: {counts}"
    assert counts == sorted(counts), "the curves lost epochs"

    expect(page.locator("#status")).to_have_text("Complete")
    expect(page.locator("#run")).to_have_attribute("data-epochs-plotted", str(EPOCHS))
    expect(page.locator("#mpjpe-chart .uplot")).to_have_count(1)
    expect(page.locator("#metrics")).to_contain_text("Mean-pose baseline")
    expect(page.locator("#per-joint .uplot")).to_have_count(1)
    expect(page.locator("#per-joint")).to_have_attribute("data-series", "2")
    expect(page.locator("#download-checkpoint")).to_be_visible()
    screenshot = tmp_path / "training_run.png"
    page.screenshot(path=str(screenshot), full_page=True)
    shutil.copy(screenshot, "/tmp/training_run.png")

    # the registry lists the model with its error beside the baseline's
    page.click("text=all models")
    row = page.locator("#runs tbody tr")
    expect(row).to_have_count(1)
    expect(row.locator(".status")).to_have_text("Complete")
    expect(row).to_contain_text(re.compile(r"\d+\.\d mm.*\d+\.\d mm", re.S))
    assert not [m for m in page.js_messages if m.startswith("pageerror")]
