"""Labeled sessions of a simulated person, for tests and benchmarks.

A subject is a simulator seed; its sessions (0, 1, ...) share the anatomy and
differ in noise, movement timing and a small band re-placement (SimulatorConfig.
session). Labels are either the simulator's ground truth ("truth") or what the
product's labeling pipeline fits to the simulated webcam landmarks ("ik"); in both
cases the truth stays available, so a model trained on IK labels can be scored
against what the hand really did.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from recorder.session_file import SessionRecording
from recorder.simulate_file import simulate_session
from recorder.simulation import ArmbandSimulator, SimulatorConfig

LABEL_KINDS = ("truth", "ik")
MIN_DETECTION_SCORE = 0.7  # as the IK's label_valid (IKConfig.min_score)


@dataclass
class HandTruth:
    """What the simulated hand really did at each camera frame (M frames). The
    simulator has no wrist rotation, so these are already in the hand frame."""

    frame_time: np.ndarray  # (M,) float64 s
    pose: np.ndarray  # (M, 48) float32 MANO, zero global orient
    joints_mm: np.ndarray  # (M, 21, 3) float32 mm, wrist at the origin
    joint_angles: np.ndarray  # (M, 20) float32 rad, ANGLE_NAMES order


@dataclass
class SimulatedSession:
    recording: SessionRecording  # labeled as asked ("truth" or "ik")
    truth: HandTruth


def hand_truth(simulator: ArmbandSimulator, frame_time: np.ndarray) -> HandTruth:
    state = simulator.hand_state(frame_time)
    return HandTruth(
        frame_time=frame_time,
        pose=state["pose"].astype(np.float32),
        joints_mm=state["joints"].astype(np.float32),
        joint_angles=state["joint_angles"].astype(np.float32),
    )


def with_truth_labels(
    recording: SessionRecording, truth: HandTruth
) -> SessionRecording:
    """The recording labeled with the truth; a frame is valid where the simulated
    camera found the hand (as the IK would need), never elsewhere."""
    detected = np.isfinite(recording.landmarks).all(axis=(1, 2))
    return dataclasses.replace(
        recording, pose=truth.pose, joints=truth.joints_mm,
        joint_angles=truth.joint_angles,
        label_valid=detected & (recording.landmark_score > MIN_DETECTION_SCORE),
    )  # fmt: skip


def with_ik_labels(recording: SessionRecording) -> SessionRecording:
    """The recording labeled by the product's labeling pipeline (default IK
    settings), as a labeling job would store it."""
    from labeling.pipeline import label_recording  # torch-heavy: only when asked

    fit, _ = label_recording(
        recording.landmarks, recording.landmark_score, {},
        handedness=recording.attrs.handedness,
    )  # fmt: skip
    return dataclasses.replace(
        recording, pose=fit.pose, joints=fit.joints_mm, ik_error=fit.ik_error_mm,
        label_valid=fit.label_valid,
    )  # fmt: skip


def simulated_session_with_truth(
    seconds: float, subject_seed: int = 0, session: int = 0, labels: str = "truth",
    **config,
) -> SimulatedSession:  # fmt: skip
    """`seconds` of session `session` of simulated subject `subject_seed`, labeled
    as `labels` says, with its ground truth. `config`: more SimulatorConfig fields."""
    if labels not in LABEL_KINDS:
        raise ValueError(f"labels must be one of {LABEL_KINDS}, got {labels!r}")
    recording = simulate_session(seconds, seed=subject_seed, session=session, **config)
    simulator = ArmbandSimulator(
        SimulatorConfig(seed=subject_seed, session=session, **config)
    )
    recording.attrs.session = f"simulated-{subject_seed}-{session}"
    recording.attrs.band_rotation_deg = simulator.band_rotation_deg
    truth = hand_truth(simulator, recording.frame_time)
    if labels == "truth":
        return SimulatedSession(with_truth_labels(recording, truth), truth)
    return SimulatedSession(with_ik_labels(recording), truth)


def simulated_labeled_session(
    seconds: float, subject_seed: int = 0, session: int = 0, labels: str = "truth",
    **config,
) -> SessionRecording:  # fmt: skip
    """Just the labeled recording of `simulated_session_with_truth`."""
    return simulated_session_with_truth(
        seconds, subject_seed, session, labels, **config
    ).recording
