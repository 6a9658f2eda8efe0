"""Tiny labeled session files for the training tests, built in code.

A few seconds of a simulated person (truth labels unless asked otherwise), plus
broken variants: no label track, no valid label, another channel count.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from recorder.session_file import SessionRecording, write_session
from training.simulated import simulated_labeled_session


def labeled_recording(
    seconds: float = 6.0, subject_seed: int = 0, session: int = 0, labels="truth"
) -> SessionRecording:
    """A simulated recording labeled with the truth (or IK), no bad channel."""
    return simulated_labeled_session(
        seconds, subject_seed, session, labels, bad_channel_probability=0.0
    )


def write_recording(tmp_path: Path, name: str, recording: SessionRecording) -> Path:
    path = Path(tmp_path) / f"{name}.h5"
    write_session(path, recording)
    return path


def write_labeled_session(
    tmp_path: Path, seconds: float = 6.0, subject_seed: int = 0, session: int = 0,
    labels: str = "truth",
) -> Path:  # fmt: skip
    """Writes `s{subject_seed}-{session}.h5`; its session attribute is
    `simulated-{subject_seed}-{session}` and its subject `simulated-{subject_seed}`."""
    recording = labeled_recording(seconds, subject_seed, session, labels)
    return write_recording(tmp_path, f"s{subject_seed}-{session}", recording)


def without_labels(recording: SessionRecording) -> SessionRecording:
    """The raw recording: no camera frames, no labels."""
    return dataclasses.replace(
        recording, frame_time=None, landmarks=None, landmark_score=None, pose=None,
        joints=None, joint_angles=None, ik_error=None, label_valid=None,
    )  # fmt: skip


def unlabeled(recording: SessionRecording) -> SessionRecording:
    """Landmarks recorded, but never labeled."""
    return dataclasses.replace(
        recording, pose=None, joints=None, joint_angles=None, ik_error=None,
        label_valid=None,
    )  # fmt: skip


def with_no_valid_labels(recording: SessionRecording) -> SessionRecording:
    return dataclasses.replace(
        recording, label_valid=np.zeros_like(recording.label_valid)
    )


def with_channels(recording: SessionRecording, num_channels: int) -> SessionRecording:
    """The same session with its EMG columns repeated (or cut) to `num_channels`."""
    columns = np.arange(num_channels) % recording.emg.shape[1]
    attrs = dataclasses.replace(
        recording.attrs, channel_names=tuple(f"ch{k + 1}" for k in range(num_channels))
    )
    return dataclasses.replace(
        recording, emg=np.ascontiguousarray(recording.emg[:, columns]), attrs=attrs
    )
