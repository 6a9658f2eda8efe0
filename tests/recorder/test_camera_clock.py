"""Clock sync between the camera and the armband: frames land on the EMG clock."""

from __future__ import annotations

import time

import numpy as np
import pytest

from recorder.camera.clock import ClockSync
from recorder.camera.labeler import FrameLabeler
from recorder.camera.sources import SimulatedCamera
from recorder.camera.streamer import CameraStreamer
from recorder.devices.simulated import SimulatedArmband
from recorder.spool import Spool
from recorder.streamer import DeviceStreamer
from tests.recorder.camera_helpers import spooled_labels


def test_the_offset_is_the_fastest_delivery_of_the_window():
    rng = np.random.default_rng(0)
    offset_s, clock = 2.5, ClockSync()
    for k in range(200):  # reads every 0.1 s; WiFi delays 3..40 ms
        host_s = 1000.0 + 0.1 * k
        delivery_s = rng.uniform(0.003, 0.040)
        clock.observe(host_s - delivery_s + offset_s, host_s)
    assert clock.offset_s == pytest.approx(offset_s - 0.003, abs=0.002)
    assert clock.to_emg_time(2000.0) == pytest.approx(2000.0 + clock.offset_s)


def test_the_estimate_follows_a_drifting_board_clock():
    clock = ClockSync(window_s=5.0)
    clock.observe(100.0, 100.0)
    clock.observe(110.5, 110.0)  # the board's clock has since gained 0.5 s
    clock.observe(109.8, 110.0)  # a slow delivery does not pull it back
    assert clock.offset_s == pytest.approx(0.5)
    clock.observe(110.0 + 20, 110.0 + 20 - 0.2)  # later, the board lost ground
    assert clock.offset_s == pytest.approx(0.2)


def test_without_a_device_read_there_is_no_offset():
    clock = ClockSync()
    assert clock.offset_s is None
    with pytest.raises(RuntimeError, match="no device read"):
        clock.to_emg_time(1.0)


def test_simulated_frames_are_within_one_frame_of_their_true_emg_time(tmp_path):
    """The simulator knows when each frame was really taken on the board's clock;
    the board's clock runs 2.5 s ahead of the host's and the camera's frames arrive
    50 ms (± 5 ms) after capture."""
    FrameLabeler()  # import the IK first: the camera would miss the first frames
    device = SimulatedArmband(seed=3, clock_offset_s=2.5, duration_s=1.5)
    camera = SimulatedCamera(device, delay_s=0.05, jitter_s=0.005)
    session = Spool(tmp_path).open_session(1)
    clock = ClockSync()
    camera_thread = CameraStreamer(camera, session, clock, lambda: None, FrameLabeler)
    DeviceStreamer(
        device, session, lambda: None, chunk_s=0.05, clock=clock, camera=camera_thread
    ).run()  # until the 1.5 s of EMG are done; it stops the camera first

    labels = spooled_labels(session)
    truth = np.array(camera.true_emg_times_s[: len(labels)])
    assert len(labels) >= 30  # ~1.5 s at 30 fps
    error_s = labels.frame_time - truth
    frame_s = 1 / camera.fps
    assert np.abs(error_s).max() < frame_s, f"worst error {np.abs(error_s).max()} s"
    print(f"\nclock sync error: mean {1000 * error_s.mean():.1f} ms, "
          f"worst {1000 * np.abs(error_s).max():.1f} ms")  # fmt: skip
    # and the frames show the hand at those true times
    expected, _ = camera.simulator.camera_landmarks(truth - device.start_time_s - 2.5)
    np.testing.assert_allclose(labels.landmarks, expected, atol=1e-6)
    assert session.stopped and session.next_label_seq >= 1


def test_the_simulated_camera_needs_the_armband_to_start():
    device = SimulatedArmband(seed=0)
    camera = SimulatedCamera(device)
    started = time.monotonic()
    assert camera.read(timeout_s=0.05) is None
    assert time.monotonic() - started < 0.5
