"""Export a session to the emg2pose HDF5 layout.

The layout follows emg2pose's session files: a group `/emg2pose` whose attributes hold
the metadata, and a compound dataset `/emg2pose/timeseries` with one row per EMG
sample and fields `time` (s), `joint_angles` (20, rad) and `emg` (C, µV).

Two deliberate differences from emg2pose's own files:
- `emg` has the recording's channel count (8 for MindRove), not emg2pose's 16; the
  group's `num_channels` attribute says which. Readers must not assume 16.
- Joint angles are NaN where no valid label is near, and `/emg2pose/joint_angles_valid`
  (N,) bool marks the rows that hold real labels. Missing labels are never zeros.
"""

from __future__ import annotations

import os

import numpy as np

from recorder.session_file import SessionRecording, atomic_hdf5_file, validate_recording

GROUP = "emg2pose"
JOINT_ANGLE_COUNT = 20
# Interpolate only between valid label frames at most this far apart: a longer hole
# (a lost hand, a dropped camera) stays NaN rather than bridged by a straight line.
MAX_LABEL_GAP_S = 0.1


def timeseries_dtype(num_channels: int) -> np.dtype:
    """The compound row type: time float64 s, joint_angles (20,) float32 rad,
    emg (num_channels,) float32 µV."""
    return np.dtype(
        [
            ("time", np.float64),
            ("joint_angles", np.float32, (JOINT_ANGLE_COUNT,)),
            ("emg", np.float32, (num_channels,)),
        ]
    )


def joint_angles_at(
    recording: SessionRecording, times_s: np.ndarray, max_gap_s: float = MAX_LABEL_GAP_S
) -> tuple[np.ndarray, np.ndarray]:
    """Joint angles linearly interpolated from valid label frames onto `times_s`.

    Returns (angles (N, 20) float32 rad, valid (N,) bool). Rows that are not between
    two valid frames at most `max_gap_s` apart (or exactly on one) are NaN and False.
    """
    angles = np.full((len(times_s), JOINT_ANGLE_COUNT), np.nan, np.float32)
    valid = np.zeros(len(times_s), bool)
    if recording.joint_angles is None or recording.label_valid is None:
        return angles, valid
    usable = recording.label_valid & np.isfinite(recording.joint_angles).all(axis=1)
    frame_time = recording.frame_time[usable]
    frame_angles = recording.joint_angles[usable]
    if len(frame_time) == 0:
        return angles, valid
    before = np.searchsorted(frame_time, times_s, side="right") - 1
    after = np.searchsorted(frame_time, times_s, side="left")
    inside = (before >= 0) & (after < len(frame_time))
    before, after = before[inside], after[inside]
    span_s = frame_time[after] - frame_time[before]
    near = span_s <= max_gap_s
    rows = np.flatnonzero(inside)[near]
    before, after, span_s = before[near], after[near], span_s[near]
    # Exactly on a frame, before == after and the span is zero: take that frame.
    weight = np.divide(
        times_s[rows] - frame_time[before],
        span_s,
        out=np.zeros_like(span_s),
        where=span_s > 0,
    )[:, None]
    angles[rows] = (1 - weight) * frame_angles[before] + weight * frame_angles[after]
    valid[rows] = True
    return angles, valid


def group_metadata(recording: SessionRecording) -> dict:
    """emg2pose-style attributes for the `/emg2pose` group."""
    attrs = recording.attrs
    times_s = recording.emg_time
    return {
        "session": attrs.session,
        "user": attrs.subject,
        "side": attrs.handedness,
        "stage": attrs.protocol,
        "sample_rate": float(attrs.sampling_rate_hz),
        "num_channels": recording.emg.shape[1],
        "channel_names": list(attrs.channel_names),
        "start": float(times_s[0]) if len(times_s) else np.nan,
        "end": float(times_s[-1]) if len(times_s) else np.nan,
        "device": attrs.device,
        "source": "exported from an emg-hand-session file "
        f"(software {attrs.software_version})",
    }


def export_emg2pose(recording: SessionRecording, path: str | os.PathLike) -> None:
    """Writes `recording` to `path` in the emg2pose layout (see the module docstring).

    One row per stored EMG sample: gaps from dropped packets stay gaps in `time`.
    The file is written atomically.
    """
    validate_recording(recording)
    num_channels = recording.emg.shape[1]
    rows = np.zeros(len(recording.emg_time), timeseries_dtype(num_channels))
    rows["time"] = recording.emg_time
    rows["emg"] = recording.emg
    rows["joint_angles"], joint_angles_valid = joint_angles_at(
        recording, recording.emg_time
    )
    with atomic_hdf5_file(path) as h5:
        group = h5.create_group(GROUP)
        group.attrs.update(group_metadata(recording))
        timeseries = group.create_dataset("timeseries", data=rows)
        timeseries.attrs.update(
            {
                "time_units": "s (board timestamps)",
                "joint_angles_units": "rad",
                "emg_units": "uV",
                "joint_angles_missing": "NaN; see joint_angles_valid",
            }
        )
        group.create_dataset("joint_angles_valid", data=joint_angles_valid)
