import numpy as np
import pytest

from recorder.session_file import SessionEvent
from training.cpep.windows import (
    WindowSet,
    continuous_windows,
    cut_windows,
    gesture_segments,
    gesture_windows,
)
from training.data import LabeledSession

RATE_HZ, FPS = 500.0, 30.0


def ramp_session(seconds=10.0, invalid=()):
    """EMG channel c = sample index * (c + 1); angle j of frame m = m + j / 100."""
    samples, frames = int(seconds * RATE_HZ), int(seconds * FPS)
    emg = np.arange(samples)[:, None] * np.arange(1, 9)[None, :]
    angles = np.arange(frames)[:, None] + np.arange(20)[None, :] / 100
    valid = np.ones(frames, bool)
    valid[list(invalid)] = False
    return LabeledSession(
        name="ramp", subject="alice", sampling_rate_hz=RATE_HZ,
        channel_names=tuple(f"ch{c}" for c in range(8)),
        emg=emg.astype(np.float32), emg_time=np.arange(samples) / RATE_HZ,
        frame_time=np.arange(frames) / FPS,
        joints_mm=np.zeros((frames, 21, 3), np.float32),
        joint_angles=angles.astype(np.float32), label_valid=valid,
    )  # fmt: skip


def test_gesture_segments_run_from_each_prompt_to_the_next():
    events = [
        SessionEvent(5.0, "gesture", "fist"),
        SessionEvent(0.0, "recording", "start"),
        SessionEvent(1.0, "gesture", "rest"),
        SessionEvent(9.0, "gesture", "open"),
    ]
    assert gesture_segments(events, 12.0) == [
        ("rest", 1.0, 5.0), ("fist", 5.0, 9.0), ("open", 9.0, 12.0),
    ]  # fmt: skip


def test_a_window_pairs_the_emg_from_its_start_with_the_frames_from_its_start():
    session = ramp_session()
    windows = cut_windows(session, session.emg, np.array([1.0]), 996, 60, "fist")
    assert windows.emg.shape == (1, 996, 8) and windows.pose.shape == (1, 60, 20)
    assert windows.emg[0, 0, 0] == 500 and windows.emg[0, -1, 1] == 2 * 1495
    np.testing.assert_allclose(windows.pose[0, :, 0], np.arange(30, 90))
    assert windows.gesture.tolist() == ["fist"] and windows.subject.tolist() == [
        "alice"
    ]


def test_missing_labels_are_interpolated_or_the_window_is_left_out():
    session = ramp_session(invalid=[35, 36])
    windows = cut_windows(session, session.emg, np.array([1.0]), 996, 60)
    np.testing.assert_allclose(
        windows.pose[0, :, 3], np.arange(30, 90) + 0.03, rtol=1e-6
    )
    mostly_missing = ramp_session(invalid=range(30, 50))  # 20 of 60 frames
    assert (
        len(cut_windows(mostly_missing, mostly_missing.emg, np.array([1.0]), 996, 60))
        == 0
    )
    past_the_end = cut_windows(session, session.emg, np.array([9.0]), 996, 60)
    assert len(past_the_end) == 0


def test_gesture_windows_lie_inside_their_settled_gesture():
    session = ramp_session()
    segments = [("fist", 1.0, 5.0), ("open", 5.0, 6.0)]
    windows = gesture_windows(session, session.emg, segments, 996, 60, stride_s=0.5)
    starts_s = windows.emg[:, 0, 0] / RATE_HZ
    # fist: from 1.0 + 1.2 s settle, ending 0.1 s before 5.0; open is too short
    np.testing.assert_allclose(starts_s, [2.2, 2.7])
    assert windows.gesture.tolist() == ["fist", "fist"]


def test_continuous_windows_cover_the_session_at_the_stride():
    session = ramp_session()
    windows = continuous_windows(session, session.emg, 996, 60, stride_s=1.0)
    assert len(windows) == 8  # starts 0..7 s; a 2 s window from 8 s would not fit
    both = WindowSet.concat([windows, windows.where(np.arange(8) < 3)])
    assert len(both) == 11 and len(both.with_gestures(["fist"])) == 0


def test_putting_no_windows_together_is_an_error():
    with pytest.raises(ValueError, match="no windows"):
        WindowSet.concat([])
