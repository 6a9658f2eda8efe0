"""A person records the calibration protocol in a real browser against the embedded
system (`run_embedded`, simulated agent): signal check, Begin, a pause, every step's
prompt to the end; the page then stops the recording, and the session file holds
every step's events, in order, on the EMG's clock."""

import re
import time

import numpy as np
import pytest
from playwright.sync_api import expect

from recorder.guided.protocols import builtin_protocols
from recorder.session_file import read_session

pytestmark = pytest.mark.browser

NUM_CHANNELS = 8
HOLD_TOLERANCE_S = 0.3  # a step's start-to-end on the EMG clock vs its hold_s


def log_in_and_create_session(page, base: str) -> int:
    page.goto(f"{base}/login/")
    page.fill("#id_username", "demo")
    page.fill("#id_password", "demo-hand-2026")
    page.click("button[type=submit]")
    expect(page).to_have_url(re.compile(r"/sessions/$"))
    page.select_option("#id_subject", label="Demo subject")
    page.select_option("#id_protocol_name", "calibration")
    page.click("text=Create session")
    expect(page).to_have_url(re.compile(r"/sessions/\d+/$"))
    return int(re.search(r"/sessions/(\d+)/$", page.url).group(1))


def expected_holds() -> list[tuple[int, int, float]]:
    """(step index, repetition, hold_s) of every hold of the calibration protocol."""
    steps = builtin_protocols()["calibration"].steps
    return [
        (i, repetition, step.hold_s)
        for i, step in enumerate(steps)
        for repetition in range(1, step.repetitions + 1)
    ]


def check_protocol_events(events, emg_time) -> None:
    kinds = [event.kind for event in events]
    assert kinds[0] == "recording" and kinds[-1] == "recording"
    assert kinds[1] == "protocol.start" and kinds[-2] == "protocol.end"
    assert kinds.index("protocol.pause") < kinds.index("protocol.resume")
    times = [event.time_s for event in events]
    assert times == sorted(times)
    assert emg_time[0] <= times[1] and times[-2] <= emg_time[-1]
    starts = {}
    holds = []
    for event in events:
        key = (event.detail.get("step"), event.detail.get("repetition"))
        if event.kind == "step.start":
            starts[key] = event
        elif event.kind == "step.end" and event.detail["completed"]:
            start = starts.pop(key)  # every end follows its own start
            assert start.name == event.name
            holds.append((*key, event.time_s - start.time_s))
    assert [(step, rep) for step, rep, _ in holds] == [
        (step, rep) for step, rep, _ in expected_holds()
    ]
    for (_, _, held_s), (_, _, hold_s) in zip(holds, expected_holds(), strict=True):
        assert held_s == pytest.approx(hold_s, abs=HOLD_TOLERANCE_S)


def check_camera_labels(recording) -> None:
    """Labels for the frames: on the EMG clock, NaN (never zero) where invalid."""
    times = recording.frame_time
    assert times is not None and len(times) > 0, "the session file holds no labels"
    assert np.all(np.diff(times) > 0)
    assert recording.emg_time[0] - 1.0 <= times[0] and times[-1] <= (
        recording.emg_time[-1] + 1.0
    )
    valid = recording.label_valid
    assert valid.mean() > 0.5, f"only {valid.mean():.0%} of the frames are valid"
    assert np.isfinite(recording.joints[valid]).all()
    assert np.isnan(recording.joints[~valid]).all()


def test_record_the_calibration_protocol(embedded_system, chromium_page, tmp_path):
    page, base = chromium_page, embedded_system.url
    started = time.monotonic()
    session_id = log_in_and_create_session(page, base)
    expect(page.locator("#protocol")).to_be_visible()  # placement guide before start

    expect(page.locator("#start")).to_be_enabled(timeout=30_000)
    page.select_option("#agent-select", index=0)
    page.click("#start")
    expect(page.locator("#status")).to_have_text("Recording", timeout=10_000)

    # the signal check fills in, then the protocol can begin
    expect(page.locator("#signal-check tbody tr")).to_have_count(
        NUM_CHANNELS, timeout=15_000
    )
    expect(page.locator("#protocol-begin")).to_be_enabled()
    page.screenshot(path="/tmp/protocol_signal_check.png", full_page=True)
    page.click("#protocol-begin")
    expect(page.locator("#protocol")).to_have_attribute("data-phase", "run")
    expect(page.locator("#prompt")).to_contain_text("relaxed")

    page.click("#protocol-pause")
    expect(page.locator("#protocol")).to_have_attribute("data-paused", "true")
    page.wait_for_timeout(500)
    page.click("#protocol-resume")
    expect(page.locator("#protocol-hands canvas")).to_have_count(1)
    expect(page.locator("#prompt")).to_contain_text("Open your hand", timeout=15_000)
    page.screenshot(path="/tmp/protocol_running.png", full_page=True)
    # the demo agent's simulated camera: its labels reach the label hand
    expect(page.locator("#protocol")).to_have_attribute(
        "data-labels", "seen", timeout=10_000
    )

    # the page stops the recording by itself when the last step is done
    duration_s = builtin_protocols()["calibration"].duration_s
    expect(page.locator("#status")).to_have_text(
        "Complete", timeout=(duration_s + 30) * 1000
    )
    response = page.request.get(f"{base}/sessions/{session_id}/download")
    assert response.ok, response.status
    path = tmp_path / "session.h5"
    path.write_bytes(response.body())
    recording = read_session(path)
    assert recording.attrs.protocol == "calibration"
    check_protocol_events(recording.events, recording.emg_time)
    check_camera_labels(recording)
    assert not [m for m in page.js_messages if m.startswith("pageerror")], (
        page.js_messages
    )
    print(f"\nbrowser part took {time.monotonic() - started:.1f} s")
