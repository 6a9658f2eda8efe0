"""Tiny generated sessions for the recorder tests: known values, seeded, fast."""

from __future__ import annotations

import numpy as np

from recorder.session_file import SessionAttributes, SessionEvent, SessionRecording

RATE_HZ = 500.0
FRAME_RATE_HZ = 30.0
CHANNEL_NAMES = tuple(f"emg{i + 1}" for i in range(8))


def make_attrs(**overrides) -> SessionAttributes:
    values = dict(
        device="simulated",
        sampling_rate_hz=RATE_HZ,
        channel_names=CHANNEL_NAMES,
        subject="alice",
        session="s001",
        band_placement="forearm, 5 cm below elbow",
        band_rotation_deg=15.0,
        handedness="right",
        protocol="gestures-v1",
        dropped_packets=0,
        device_info={"kind": "simulated", "extra": {"seed": 0}},
        created_at="2025-01-01T12:00:00+00:00",
    )
    values.update(overrides)
    return SessionAttributes(**values)


def make_emg_recording(
    samples: int = 1000, drop_packets_at: tuple[int, ...] = (), seed: int = 0
) -> SessionRecording:
    """EMG + IMU only. Each index in `drop_packets_at` loses one packet before it:
    the stored samples stay contiguous, but the counter and the time skip one."""
    rng = np.random.default_rng(seed)
    packet = np.arange(samples, dtype=np.int64) + 100
    for index in drop_packets_at:
        packet[index:] += 1
    return SessionRecording(
        emg=rng.normal(0, 50, (samples, len(CHANNEL_NAMES))).astype(np.float32),
        emg_time=1000.0 + (packet - 100) / RATE_HZ,
        package_num=packet,
        imu=rng.normal(0, 1, (samples, 6)).astype(np.float32),
        attrs=make_attrs(dropped_packets=len(drop_packets_at)),
        events=[
            SessionEvent(1000.0, "start"),
            SessionEvent(1000.5, "gesture", "fist", {"prompt_s": 2.0, "rep": 1}),
            SessionEvent(1001.9, "end"),
        ],
    )


def add_label_track(recording: SessionRecording, seed: int = 1) -> SessionRecording:
    """Adds a 30 fps label track over the EMG's time span; every 5th frame invalid
    (its landmarks and IK outputs NaN, as a failed detection leaves them)."""
    rng = np.random.default_rng(seed)
    start_s, end_s = recording.emg_time[0], recording.emg_time[-1]
    frame_time = np.arange(start_s, end_s, 1 / FRAME_RATE_HZ)
    frames = len(frame_time)
    label_valid = np.arange(frames) % 5 != 4
    recording.frame_time = frame_time
    recording.landmarks = rng.normal(0, 0.05, (frames, 21, 3)).astype(np.float32)
    recording.landmark_score = rng.uniform(0.5, 1, frames).astype(np.float32)
    recording.pose = rng.normal(0, 0.3, (frames, 48)).astype(np.float32)
    recording.joints = rng.normal(0, 40, (frames, 21, 3)).astype(np.float32)
    recording.joint_angles = joint_angle_ramp(frame_time)
    recording.ik_error = rng.uniform(2, 12, frames).astype(np.float32)
    recording.label_valid = label_valid
    for name in (
        "landmarks",
        "landmark_score",
        "pose",
        "joints",
        "joint_angles",
        "ik_error",
    ):
        getattr(recording, name)[~label_valid] = np.nan
    return recording


def joint_angle_ramp(times_s: np.ndarray) -> np.ndarray:
    """(M, 20) float32 rad, linear in time, so interpolation is exact."""
    dof = np.arange(20, dtype=np.float64)
    return (0.1 * dof[None, :] + 0.5 * (times_s[:, None] - 1000.0)).astype(np.float32)


def make_labelled_recording(samples: int = 1000) -> SessionRecording:
    return add_label_track(make_emg_recording(samples))
