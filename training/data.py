"""Labeled sessions and the windowed EMG -> hand-pose dataset.

A window is `window_samples` of filtered, normalized EMG ending at sample `end`; its
target is the label frame nearest to emg_time[end] (within half a frame period), so
the model predicts the pose at the end of what it has heard, as it will live.
Windows whose target frame is not a valid label are left out, never zero-filled.

Splits hold out whole sessions or whole subjects. Splitting overlapping windows at
random (`random_window_split`) measures interpolation and warns so.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset, Subset

from labeling.kinematics import forward_kinematics, hand_frame_joints, joints_to_angles
from recorder.session_file import SessionFormatError, SessionRecording, read_session
from training.preprocessing import FilterConfig, Normalization, filter_emg

TARGET_KINDS = ("joints", "angles")
HOLDOUTS = ("session", "subject")
MIRROR_X = np.array([-1.0, 1.0, 1.0])  # left hand <-> right hand, hand frame
MIRROR_AXIS_ANGLE = np.array([1.0, -1.0, -1.0])  # the same mirror on axis-angles


class DataError(ValueError):
    """Sessions cannot be used for training; the message names the session and the
    problem, for a person."""


class InterpolationWarning(UserWarning):
    """An evaluation that lets overlapping windows leak between train and test."""


@dataclass
class LabeledSession:
    """One session's raw EMG and its labels in the hand frame. Shapes: N EMG
    samples, C channels, M label frames."""

    name: str
    subject: str
    sampling_rate_hz: float
    channel_names: tuple[str, ...]
    emg: np.ndarray  # (N, C) float32 µV, raw as recorded
    emg_time: np.ndarray  # (N,) float64 s
    frame_time: np.ndarray  # (M,) float64 s, same clock as emg_time
    joints_mm: np.ndarray  # (M, 21, 3) float32 mm, hand frame, wrist at the origin
    joint_angles: np.ndarray  # (M, 20) float32 rad, ANGLE_NAMES order
    label_valid: np.ndarray  # (M,) bool; False wherever joints or angles are NaN
    handedness: str = "right"  # a left hand's joints are mirrored (x -> -x)

    @property
    def num_channels(self) -> int:
        return self.emg.shape[1]


def _mirrored_pose(pose: np.ndarray) -> np.ndarray:
    """A left hand's MANO pose (M, 48) <-> the right hand's (see hand_model)."""
    return (pose.reshape(-1, 16, 3) * MIRROR_AXIS_ANGLE).reshape(-1, 48)


def _hand_frame(recording: SessionRecording, name: str) -> np.ndarray:
    """Joints (M, 21, 3) float64 mm in the hand frame from the file's joints (or,
    lacking them, from its pose through the built-in hand model)."""
    pose, joints = recording.pose, recording.joints
    if joints is not None:
        if pose is None:  # no orient recorded: the joints are taken as they are
            pose = np.zeros((len(joints), 48), np.float32)
        return hand_frame_joints(joints, pose)
    if pose is None:
        raise DataError(
            f"session {name}: its labels have neither joints nor pose; label it again"
        )
    left = recording.attrs.handedness == "left"
    hand_pose = _mirrored_pose(pose) if left else pose.astype(np.float64)
    hand_pose[:, :3] = 0.0  # the hand frame: no global orient
    joints = forward_kinematics(hand_pose)
    return joints * MIRROR_X if left else joints


def _joint_angles(
    recording: SessionRecording, joints_mm: np.ndarray, valid: np.ndarray
) -> np.ndarray:
    """(M, 20) rad: the file's joint angles, else computed from valid joints."""
    if recording.joint_angles is not None:
        return recording.joint_angles.astype(np.float32)
    angles = np.full((len(joints_mm), 20), np.nan, np.float32)
    right_hand = joints_mm[valid]
    if recording.attrs.handedness == "left":
        right_hand = right_hand * MIRROR_X
    angles[valid] = joints_to_angles(right_hand)
    return angles


def _check_label_track(recording: SessionRecording, name: str) -> None:
    if not recording.has_labels:
        raise DataError(
            f"session {name}: has no label track (no webcam frames); record it with "
            "the camera on, or use another session"
        )
    if recording.pose is None and recording.joints is None:
        raise DataError(f"session {name}: has no hand-pose labels yet; label it first")
    if recording.label_valid is None:
        raise DataError(f"session {name}: its labels have no label_valid mask")
    if len(recording.emg) == 0:
        raise DataError(f"session {name}: has no EMG samples")


def from_recording(recording: SessionRecording, name: str) -> LabeledSession:
    """A labeled session from a recording read from a session file."""
    _check_label_track(recording, name)
    joints_mm = _hand_frame(recording, name)
    valid = recording.label_valid & np.isfinite(joints_mm).all(axis=(1, 2))
    angles = _joint_angles(recording, joints_mm, valid)
    valid &= np.isfinite(angles).all(axis=1)
    if not valid.any():
        raise DataError(
            f"session {name}: none of its {len(valid)} label frames is valid "
            "(no hand found, or the IK fit failed everywhere)"
        )
    attrs = recording.attrs
    rate_hz = float(attrs.sampling_rate_hz)
    return LabeledSession(
        name=name, subject=attrs.subject, sampling_rate_hz=rate_hz,
        channel_names=tuple(attrs.channel_names), emg=recording.emg.astype(np.float32),
        emg_time=recording.emg_time.astype(np.float64),
        frame_time=recording.frame_time.astype(np.float64),
        joints_mm=joints_mm.astype(np.float32), joint_angles=angles,
        label_valid=valid, handedness=attrs.handedness,
    )  # fmt: skip


def load_session(path: str | Path, name: str | None = None) -> LabeledSession:
    """Reads a session file; `name` defaults to its session attribute, else the
    file name without its extension."""
    try:
        recording = read_session(path)
    except (OSError, SessionFormatError, KeyError) as error:
        raise DataError(f"{path}: cannot read this session file ({error})") from error
    return from_recording(recording, name or recording.attrs.session or Path(path).stem)


def check_compatible(sessions: list[LabeledSession]) -> None:
    """DataError unless all sessions share channel count and sampling rate."""
    if not sessions:
        raise DataError("no sessions given")
    first = sessions[0]
    for session in sessions[1:]:
        if session.num_channels != first.num_channels:
            raise DataError(
                f"session {session.name} has {session.num_channels} channels, "
                f"{first.name} has {first.num_channels}"
            )
        if session.sampling_rate_hz != first.sampling_rate_hz:
            raise DataError(
                f"session {session.name} is sampled at {session.sampling_rate_hz:g} "
                f"Hz, {first.name} at {first.sampling_rate_hz:g} Hz"
            )


def nearest_frames(frame_time: np.ndarray, times_s: np.ndarray) -> np.ndarray:
    """Index (n,) of the frame nearest each time; -1 where none lies within half a
    frame period (the median spacing of `frame_time`)."""
    if len(frame_time) == 0:
        return np.full(len(times_s), -1)
    period_s = float(np.median(np.diff(frame_time))) if len(frame_time) > 1 else 0.0
    after = np.clip(np.searchsorted(frame_time, times_s), 0, len(frame_time) - 1)
    before = np.maximum(after - 1, 0)
    earlier = np.abs(times_s - frame_time[before]) <= np.abs(
        frame_time[after] - times_s
    )
    nearest = np.where(earlier, before, after)
    distance_s = np.abs(frame_time[nearest] - times_s)
    return np.where(distance_s <= 0.5 * period_s + 1e-9, nearest, -1)


def window_targets(
    session: LabeledSession, window_samples: int, stride_samples: int
) -> tuple[np.ndarray, np.ndarray]:
    """End sample index (W,) and label frame index (W,) of each window whose end has
    a valid label frame; windows without one are left out."""
    if window_samples < 1 or stride_samples < 1:
        raise ValueError(
            f"window ({window_samples}) and stride ({stride_samples}) must be at "
            "least one sample"
        )
    ends = np.arange(window_samples - 1, len(session.emg), stride_samples)
    frames = nearest_frames(session.frame_time, session.emg_time[ends])
    keep = frames >= 0
    keep[keep] = session.label_valid[frames[keep]]
    return ends[keep], frames[keep]


class WindowDataset(Dataset):
    """Windows of filtered, normalized EMG with their hand-pose targets.

    Each session's whole EMG is filtered once (causally, as live) and kept in
    memory; items are views into it. An item is a dict: emg (window_samples, C)
    float32, joints (21, 3) float32 mm, angles (20,) float32 rad, session (int, an
    index into `sessions`).
    """

    def __init__(
        self,
        sessions: list[LabeledSession],
        window_samples: int,
        stride_samples: int,
        filter_config: FilterConfig,
        normalization: Normalization,
    ) -> None:
        check_compatible(sessions)
        self.sessions = sessions
        self.window_samples = window_samples
        self.filter_config = filter_config
        self.normalization = normalization
        self._emg = [
            normalization.apply(filter_emg(s.emg, s.sampling_rate_hz, filter_config))
            for s in sessions
        ]
        self._index_windows(stride_samples)

    def _index_windows(self, stride_samples: int) -> None:
        targets = [
            window_targets(s, self.window_samples, stride_samples)
            for s in self.sessions
        ]
        if sum(len(ends) for ends, _ in targets) == 0:
            names = ", ".join(s.name for s in self.sessions)
            raise DataError(f"sessions {names}: no window has a valid label")
        self.window_session = np.concatenate(
            [np.full(len(ends), index) for index, (ends, _) in enumerate(targets)]
        )  # (W,)
        self.window_end = np.concatenate([ends for ends, _ in targets])  # (W,)
        self.window_frame = np.concatenate([frames for _, frames in targets])  # (W,)

    @property
    def num_channels(self) -> int:
        return self.sessions[0].num_channels

    @property
    def sampling_rate_hz(self) -> float:
        return self.sessions[0].sampling_rate_hz

    def __len__(self) -> int:
        return len(self.window_end)

    def __getitem__(self, index: int) -> dict:
        session_index = int(self.window_session[index])
        end, frame = int(self.window_end[index]), int(self.window_frame[index])
        session = self.sessions[session_index]
        emg = self._emg[session_index][end + 1 - self.window_samples : end + 1]
        return {
            "emg": torch.from_numpy(emg),  # (window_samples, C)
            "joints": torch.from_numpy(session.joints_mm[frame]),  # (21, 3)
            "angles": torch.from_numpy(session.joint_angles[frame]),  # (20,)
            "session": session_index,
        }


def fit_normalization(
    sessions: list[LabeledSession], filter_config: FilterConfig
) -> Normalization:
    """Per-channel statistics of these (training!) sessions' filtered EMG."""
    check_compatible(sessions)
    return Normalization.fit(
        [filter_emg(s.emg, s.sampling_rate_hz, filter_config) for s in sessions]
    )


def _pick(sessions, key, held_out: list[str], what: str) -> tuple[list, list]:
    known = {key(s) for s in sessions}
    unknown = [name for name in held_out if name not in known]
    if unknown:
        raise DataError(f"unknown {what} {unknown}; known: {sorted(known)}")
    train = [s for s in sessions if key(s) not in held_out]
    test = [s for s in sessions if key(s) in held_out]
    if not train:
        raise DataError(f"holding out {what} {held_out} leaves no training sessions")
    return train, test


def split_sessions(
    sessions: list[LabeledSession],
    holdout: str = "session",
    held_out: list[str] | None = None,
) -> tuple[list[LabeledSession], list[LabeledSession]]:
    """(train, test) sessions. holdout="session": `held_out` names whole sessions
    (default: the last one); "subject": it names subjects (default: the last
    session's), and all of their sessions go to test."""
    if holdout not in HOLDOUTS:
        raise DataError(f"holdout must be one of {HOLDOUTS}, got {holdout!r}")
    if len(sessions) < 2:
        raise DataError(
            f"need at least two sessions to hold one out, got {len(sessions)}"
        )
    if holdout == "session":
        names = [s.name for s in sessions]
        if len(set(names)) < len(names):
            raise DataError(f"session names must be unique, got {names}")
        return _pick(sessions, lambda s: s.name, held_out or [names[-1]], "sessions")
    default = [sessions[-1].subject]
    return _pick(sessions, lambda s: s.subject, held_out or default, "subjects")


class WindowSubset(Subset):
    """Some windows of a WindowDataset, in their original order, keeping the
    session of each window (evaluation computes jitter per session)."""

    def __init__(self, dataset: WindowDataset, indices: list[int]):
        super().__init__(dataset, sorted(indices))
        self.window_session = np.asarray(dataset.window_session)[self.indices]


def random_window_split(
    dataset: WindowDataset, test_fraction: float, seed: int
) -> tuple[WindowSubset, WindowSubset]:
    """Random (train, test) windows. Overlapping neighbours land on both sides, so
    this measures interpolation, not generalisation (how the seed's 14.92 mm was
    measured); only for comparison, behind an explicit flag."""
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    warnings.warn(
        "random window split: overlapping windows leak between train and test, so "
        "the result measures interpolation, not new sessions",
        InterpolationWarning,
        stacklevel=2,
    )
    order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed))
    num_test = max(1, int(round(test_fraction * len(dataset))))
    test, train = order[:num_test].tolist(), order[num_test:].tolist()
    return WindowSubset(dataset, train), WindowSubset(dataset, test)
