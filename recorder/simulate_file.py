"""A whole simulated session written straight to a session file, without the server.

For demos, tests and IK experiments: EMG from the simulated armband plus the
simulated webcam's MediaPipe-like landmarks on the same clock (no labels yet:
labeling fills pose, joints, ik_error and label_valid).
"""

from __future__ import annotations

import numpy as np

from recorder.session_file import SessionAttributes, SessionEvent, SessionRecording
from recorder.simulation import ArmbandSimulator, SimulatorConfig


def simulate_session(seconds: float, seed: int = 0, **config) -> SessionRecording:
    """`seconds` of a simulated person following the default gesture protocol."""
    simulator = ArmbandSimulator(SimulatorConfig(seed=seed, **config))
    rate_hz = simulator.config.sampling_rate_hz
    emg, sample_index, imu = simulator.next_emg(int(round(seconds * rate_hz)))
    frame_time = simulator.camera_times(0.0, seconds)
    landmarks, score = simulator.camera_landmarks(frame_time)
    gestures = simulator.hand_state(frame_time)["gesture"]
    return SessionRecording(
        emg=emg,
        emg_time=sample_index / rate_hz,
        package_num=sample_index.astype(np.int64),
        imu=imu,
        frame_time=frame_time,
        landmarks=landmarks.astype(np.float32),
        landmark_score=score.astype(np.float32),
        events=gesture_events(frame_time, gestures),
        attrs=SessionAttributes(
            device="simulated", sampling_rate_hz=rate_hz,
            channel_names=tuple(simulator.channel_names), subject=f"simulated-{seed}",
            protocol="simulated default", device_info=simulator.config.as_dict(),
            handedness=simulator.config.handedness,
        ),
    )  # fmt: skip


def gesture_events(frame_time: np.ndarray, gestures: list[str]) -> list[SessionEvent]:
    """One "gesture" event wherever the prompted gesture changes."""
    events = []
    for index, gesture in enumerate(gestures):
        if index == 0 or gesture != gestures[index - 1]:
            events.append(SessionEvent(float(frame_time[index]), "gesture", gesture))
    return events
