"""A person watches the live 3D hand in a real browser: run_embedded's simulated
agent records, a tiny trained model predicts inside the server, and the three.js
hand moves at 20+ poses a second, through a reconnect."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import NOT_INHERITED
from tests.browser.test_labeling_page import log_in_as_demo
from tests.system.processes import ROOT
from webapp.live.checkpoints import train_tiny_model

pytestmark = pytest.mark.browser

MIN_POSES_PER_S = 20.0


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    """A tiny tcn trained once per test session (a few seconds)."""
    return train_tiny_model(tmp_path_factory.mktemp("tiny-model"))


def register_for_demo(tmp_path, checkpoint) -> None:
    """The checkpoint becomes a complete model of the embedded system's demo user."""
    env = {k: v for k, v in os.environ.items() if k not in NOT_INHERITED}
    env["VAR_DIR"] = str(tmp_path / "var")  # the embedded_system fixture's
    subprocess.run(
        [sys.executable, "manage.py", "register_model", str(checkpoint),
         "--user", "demo", "--name", "tiny tcn"],
        cwd=ROOT, env=env, check=True, capture_output=True, text=True,
    )  # fmt: skip


def start_a_recording(page, base: str) -> None:
    page.goto(f"{base}/sessions/")
    page.select_option("#id_subject", label="Demo subject")
    page.fill("#id_band_placement", "right forearm")
    page.fill("#id_band_rotation_deg", "0")
    page.select_option("#id_protocol_name", "free")
    page.click("text=Create session")
    expect(page.locator("#start")).to_be_enabled(timeout=30_000)
    page.select_option("#agent-select", index=0)
    page.click("#start")
    expect(page.locator("#status")).to_have_text("Recording", timeout=10_000)


def poses_per_second(page, seconds: float = 3.0) -> float:
    """Pose messages the page received per second, counted by the page itself."""
    script = "() => [window.liveHand.posesReceived, performance.now()]"
    poses_before, before_ms = page.evaluate(script)
    page.wait_for_timeout(seconds * 1000)
    poses_after, after_ms = page.evaluate(script)
    return (poses_after - poses_before) * 1000 / (after_ms - before_ms)


def canvas_snapshot(page) -> str:
    return page.evaluate("() => document.querySelector('#viewer canvas').toDataURL()")


def test_the_hand_moves_live(embedded_system, chromium_page, tiny_checkpoint, tmp_path):
    page, base = chromium_page, embedded_system.url
    register_for_demo(tmp_path, tiny_checkpoint)
    log_in_as_demo(page, base)
    start_a_recording(page, base)

    page.click("#hand-link")
    expect(page).to_have_url(re.compile(r"/sessions/\d+/hand/$"))
    expect(page.locator("#model option")).to_have_text(re.compile("tiny tcn"))
    page.wait_for_function("() => window.liveHand?.posesReceived > 25", timeout=30_000)
    expect(page.locator("#connection")).to_have_text("connected")

    rate = poses_per_second(page)
    shown = page.evaluate(
        """() => ["fps", "latency", "update-ms", "pose-status"].map(
             (id) => `${id} ${document.getElementById(id).textContent}`)
             .concat([`display ${window.liveHand.displayRateHz} Hz`])"""
    )
    assert rate >= MIN_POSES_PER_S, f"only {rate:.1f} poses/s reached the page {shown}"
    first = canvas_snapshot(page)
    page.wait_for_timeout(1_500)
    assert canvas_snapshot(page) != first, "the rendered hand did not change"
    expect(page.locator("#latency")).to_have_text(re.compile(r"^\d+ / \d+ ms$"))
    expect(page.locator("#pose-status")).to_have_text(re.compile("^(ok|rest|held)$"))
    # the gesture the predicted hand holds, or that none of the examples is near
    expect(page.locator("#gesture")).to_have_text(
        re.compile(r"^([a-z_]+ · \d+ %|none near)$")
    )
    screenshot = tmp_path / "live_hand.png"
    page.screenshot(path=str(screenshot), full_page=True)
    shutil.copy(screenshot, "/tmp/live_hand.png")

    # the socket drops: the page says so, comes back and the poses carry on
    page.evaluate("() => window.liveHand.socket.close()")
    expect(page.locator("#connection")).to_have_text("reconnected (1×)", timeout=10_000)
    received = page.evaluate("() => window.liveHand.posesReceived")
    page.wait_for_function(f"() => window.liveHand.posesReceived > {received + 20}")

    # the demo agent's simulated camera sends labels: a second hand and a running
    # MPJPE between the prediction and the label at the same sample time
    expect(page.locator("#mpjpe")).to_have_text(
        re.compile(r"^MPJPE \d+\.\d mm over [1-9]\d* frames$"), timeout=10_000
    )
    assert not [m for m in page.js_messages if m.startswith("pageerror")]
