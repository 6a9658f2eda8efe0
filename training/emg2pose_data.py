"""Import of emg2pose-layout HDF5 files as labeled sessions.

Layout: group `/emg2pose` whose attributes hold the metadata (`user`, `session`,
`side`, `stage`, optionally `sample_rate` and `num_channels`), and a compound
dataset `/emg2pose/timeseries` with fields `time` (s), `emg` (C; 16 at 2 kHz in
emg2pose itself, high-pass filtered there) and `joint_angles` (20, rad), one row
per EMG sample. Two flavours are read:
- emg2pose's own files: a label is missing (an IK failure) where all 20 angles are
  zero, as emg2pose itself treats them;
- this product's exporter (recorder/emg2pose_format.py): missing labels are NaN
  and `/emg2pose/joint_angles_valid` (N,) bool marks the real ones.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from labeling.kinematics import angles_to_mano_pose, forward_kinematics
from training.data import MIRROR_X, DataError, LabeledSession

GROUP = "emg2pose"
TIMESERIES_FIELDS = ("time", "emg", "joint_angles")
# Labels come per EMG sample; every `round(rate / LABEL_RATE_HZ)`-th sample becomes
# a label frame: ~60 Hz (2 kHz: every 33rd sample, 60.6 Hz; 500 Hz: every 8th,
# 62.5 Hz), above any webcam's rate and far above how fast fingers move.
LABEL_RATE_HZ = 60.0


def _read_group(path: Path) -> tuple[np.ndarray, np.ndarray | None, dict]:
    """(timeseries rows, joint_angles_valid or None, group attributes)."""
    try:
        h5 = h5py.File(path, "r")
    except OSError as error:
        raise DataError(f"{path}: not a readable HDF5 file ({error})") from error
    with h5:
        if GROUP not in h5:
            raise DataError(f"{path}: no '/{GROUP}' group; not an emg2pose file")
        group = h5[GROUP]
        if "timeseries" not in group:
            raise DataError(f"{path}: no '/{GROUP}/timeseries' dataset")
        fields = group["timeseries"].dtype.fields or {}
        missing = [name for name in TIMESERIES_FIELDS if name not in fields]
        if missing:
            raise DataError(f"{path}: '/{GROUP}/timeseries' lacks fields {missing}")
        rows = group["timeseries"][()]
        valid = (
            group["joint_angles_valid"][()] if "joint_angles_valid" in group else None
        )
        return rows, valid, {key: _plain(value) for key, value in group.attrs.items()}


def _plain(value):
    if isinstance(value, bytes):
        return value.decode()
    return value.item() if isinstance(value, np.generic) else value


def _sampling_rate_hz(attrs: dict, time_s: np.ndarray, path: Path) -> float:
    """The `sample_rate` attribute, else the mean spacing of the timestamps that
    are not gaps (unix times in float64 are too coarse to trust one spacing)."""
    if "sample_rate" in attrs:
        return float(attrs["sample_rate"])
    spacing_s = np.diff(time_s)
    if len(spacing_s) == 0 or not np.median(spacing_s) > 0:
        raise DataError(f"{path}: cannot tell the sampling rate (no sample_rate "
                        "attribute and too few increasing timestamps)")  # fmt: skip
    regular = spacing_s[spacing_s < 1.5 * np.median(spacing_s)]
    return float(len(regular) / regular.sum())


def _angles_valid(angles: np.ndarray, valid: np.ndarray | None) -> np.ndarray:
    """(N,) bool: finite labels, marked valid by the exporter, or (emg2pose's own
    files) not all zero."""
    finite = np.isfinite(angles).all(axis=1)
    if valid is not None:
        return finite & valid.astype(bool)
    return finite & ~np.all(np.isclose(angles, 0.0), axis=1)


def _joints_mm(angles: np.ndarray, valid: np.ndarray, side: str) -> np.ndarray:
    """(M, 21, 3) float32 hand-frame joints of the valid frames, NaN elsewhere."""
    joints = np.full((len(angles), 21, 3), np.nan, np.float32)
    right_hand = forward_kinematics(angles_to_mano_pose(angles[valid]))
    joints[valid] = right_hand * MIRROR_X if side == "left" else right_hand
    return joints


def read_emg2pose(path: str | Path, name: str | None = None) -> LabeledSession:
    """An emg2pose-layout file -> LabeledSession with a ~LABEL_RATE_HZ label track.

    emg2pose's 20 joint angles are mapped onto this product's ANGLE_NAMES by
    position (same count, same finger-major order); the joints come from this
    product's built-in hand model (forward_kinematics), not from emg2pose's own, so
    they are consistent with our other labels but not emg2pose's published joints.
    `name` defaults to the `session` attribute, else the file name.
    """
    path = Path(path)
    rows, valid, attrs = _read_group(path)
    if len(rows) == 0:
        raise DataError(f"{path}: '/{GROUP}/timeseries' is empty")
    time_s = rows["time"].astype(np.float64)
    emg = rows["emg"].astype(np.float32).reshape(len(rows), -1)  # (N, C)
    rate_hz = _sampling_rate_hz(attrs, time_s, path)
    step = max(1, int(round(rate_hz / LABEL_RATE_HZ)))
    angles = rows["joint_angles"][::step].astype(np.float32)  # (M, 20)
    if angles.shape[1:] != (20,):
        raise DataError(f"{path}: joint_angles must hold 20 angles, not {angles.shape}")
    frame_valid = _angles_valid(angles, None if valid is None else valid[::step])
    if not frame_valid.any():
        raise DataError(f"{path}: no valid joint-angle labels")
    side = str(attrs.get("side", "right")).lower()
    session = name or str(attrs.get("session") or path.stem)
    return LabeledSession(
        name=session, subject=str(attrs.get("user", "")), sampling_rate_hz=rate_hz,
        channel_names=_channel_names(attrs, emg.shape[1]), emg=emg, emg_time=time_s,
        frame_time=time_s[::step], joints_mm=_joints_mm(angles, frame_valid, side),
        joint_angles=np.where(frame_valid[:, None], angles, np.nan).astype(np.float32),
        label_valid=frame_valid, handedness="left" if side == "left" else "right",
    )  # fmt: skip


def _channel_names(attrs: dict, num_channels: int) -> tuple[str, ...]:
    names = attrs.get("channel_names")
    if names is not None and len(names) == num_channels:
        return tuple(_plain(name) for name in names)
    return tuple(f"ch{k + 1}" for k in range(num_channels))
