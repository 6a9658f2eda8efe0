"""Reading a session file in ranges and tiers, for reviewing long sessions.

A 20-minute session holds 600,000 EMG samples per channel; a page never needs them
all. `SessionIndex` is built once per file (one pass over the EMG) and is small:
the time axes, the label-valid mask, the protocol steps with their statistics, and
a tier of per-block min/max (`BLOCK_SAMPLES` samples a block). Requests then read:
- `emg_envelope`: per-channel min/max over time bins of [start, end). Wide bins
  come from the block tier; narrow ones from a partial read of the raw samples; a
  range with fewer samples than bins returns the samples themselves.
- `label_frames`: the label track's frames in [start, end), decimated to a cap;
  on request also MANO mesh vertices of those frames (from their poses), when the
  server has the user's MANO files (`mesh_faces` gives the triangles once).

Times in and out are seconds from the session's first EMG sample ("session
time"), so files with board-clock (unix) timestamps read the same as simulated ones.
Missing data stays missing: a bin without samples, or a joint that is NaN, is None.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from functools import lru_cache

import h5py
import numpy as np

from recorder.session_file import SessionEvent, open_session, read_events

BLOCK_SAMPLES = 25  # 50 ms at 500 Hz: the block tier's resolution
MIN_BLOCKS_PER_BIN = 4  # narrower bins read raw samples, so block edges don't show
MAX_BINS = 4000
MAX_LABEL_FRAMES = 2000
# A mesh frame is 778 × 3 numbers (~14 kB of JSON), 37 times a joints frame, so
# replies with vertices are thinned harder: 300 frames are ~4 MB.
MAX_MESH_FRAMES = 300
READ_ROWS = 100_000  # EMG rows read at once while indexing (3 MB at 8 channels)
MARKER_KIND = "recording"  # the assembler's start/end markers are not steps


class ReviewError(ValueError):
    """A review request this session cannot answer; the message says why."""


class ReviewRangeError(ReviewError):
    """A requested range or resolution is unusable."""


class NoLabelsError(ReviewError):
    """The session has no label joints to show."""


@dataclass
class Step:
    """One protocol step: from its event to the next step (or the end), session s."""

    name: str
    kind: str
    start_s: float
    end_s: float
    detail: dict = field(default_factory=dict)


@dataclass
class SessionIndex:
    """What a review needs of one file, kept in memory. Times are absolute (the
    file's clock) unless named `_s` relative to `origin_s`."""

    origin_s: float  # the first EMG sample's time
    duration_s: float
    sampling_rate_hz: float
    channel_names: list[str]
    emg_time: np.ndarray  # (N,) float64 absolute s
    block_time: np.ndarray  # (B,) float64 absolute s of each block's first sample
    block_min: np.ndarray  # (B, C) float32 µV
    block_max: np.ndarray  # (B, C) float32 µV
    frame_time: np.ndarray | None  # (M,) float64 absolute s; None: no label track
    label_valid: np.ndarray | None  # (M,) bool; None: not labeled yet
    has_joints: bool
    has_ik_error: bool
    steps: list[Step]
    step_stats: list[dict]  # one per step, then one for the whole session
    has_pose: bool = False  # the labels hold MANO poses (a mesh can be drawn)
    handedness: str = "right"  # the recorded hand, "right" or "left"

    @property
    def sample_count(self) -> int:
        return len(self.emg_time)


# ---------------------------------------------------------------- the index


def session_index(path: str | os.PathLike) -> SessionIndex:
    """The file's index, cached while the file is unchanged (same size and mtime)."""
    stat = os.stat(path)
    return _cached_index(os.fspath(path), stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=4)
def _cached_index(path: str, mtime_ns: int, size: int) -> SessionIndex:
    events = read_events(path)
    with open_session(path) as h5:
        return _build_index(h5, events)


def _build_index(h5: h5py.File, events: list[SessionEvent]) -> SessionIndex:
    emg_time = h5["emg_time"][()]
    if len(emg_time) == 0:
        raise ReviewError("the session has no EMG samples to review")
    origin_s = float(emg_time[0])
    labels = h5.get("labels")
    frame_time = labels["frame_time"][()] if labels is not None else None
    label_valid = (
        labels["label_valid"][()] if labels is not None and "label_valid" in labels
        else None
    )  # fmt: skip
    duration_s = float(emg_time[-1] - origin_s)
    steps = protocol_steps(events, origin_s, duration_s)
    blocks, sums = _scan_emg(h5["emg"], emg_time, steps, origin_s)
    return SessionIndex(
        origin_s=origin_s,
        duration_s=duration_s,
        sampling_rate_hz=float(h5.attrs["sampling_rate_hz"]),
        channel_names=[str(name) for name in h5.attrs["channel_names"]],
        emg_time=emg_time,
        block_time=emg_time[::BLOCK_SAMPLES],
        block_min=blocks[0],
        block_max=blocks[1],
        frame_time=frame_time,
        label_valid=label_valid,
        has_joints=labels is not None and "joints" in labels,
        has_ik_error=labels is not None and "ik_error" in labels,
        steps=steps,
        step_stats=_step_stats(steps, sums, frame_time, label_valid, origin_s),
        has_pose=labels is not None and "pose" in labels,
        handedness=str(h5.attrs.get("handedness", "right")),
    )


def protocol_steps(
    events: list[SessionEvent], origin_s: float, duration_s: float
) -> list[Step]:
    """Steps from the file's events: every named event that is not a recording
    marker starts one; it lasts until the next step, a later "end" event, or the
    end of the session."""
    ordered = sorted(events, key=lambda event: event.time_s)
    starts = [e for e in ordered if e.name and e.kind != MARKER_KIND]
    ends = [e.time_s for e in ordered if "end" in (e.kind, e.name)]
    steps = []
    for index, event in enumerate(starts):
        later = [t for t in ends if t > event.time_s]
        if index + 1 < len(starts):
            later.append(starts[index + 1].time_s)
        end_s = min(later, default=origin_s + duration_s) - origin_s
        start_s = max(event.time_s - origin_s, 0.0)
        end_s = min(end_s, duration_s)
        if end_s > start_s:
            steps.append(Step(event.name, event.kind, start_s, end_s, event.detail))
    return steps


def _scan_emg(emg: h5py.Dataset, emg_time, steps, origin_s):
    """One pass over the EMG in slices: the block tier's min/max, and per step
    the sample count, sum and sum of squares of every channel (the last row of
    each is outside any step)."""
    n, channels = emg.shape
    block_count = math.ceil(n / BLOCK_SAMPLES)
    block_min = np.empty((block_count, channels), np.float32)
    block_max = np.empty((block_count, channels), np.float32)
    step_starts = np.array([origin_s + s.start_s for s in steps])
    step_ends = np.array([origin_s + s.end_s for s in steps])
    sums = np.zeros((3, len(steps) + 1, channels))  # count, sum, sum of squares
    rows = READ_ROWS - READ_ROWS % BLOCK_SAMPLES  # slices hold whole blocks
    for first in range(0, n, rows):
        values = emg[first : first + rows].astype(np.float64)  # (rows, C) µV
        starts = np.arange(0, len(values), BLOCK_SAMPLES)
        blocks = slice(first // BLOCK_SAMPLES, first // BLOCK_SAMPLES + len(starts))
        block_min[blocks] = np.minimum.reduceat(values, starts)
        block_max[blocks] = np.maximum.reduceat(values, starts)
        times = emg_time[first : first + len(values)]
        step = _step_of(times, step_starts, step_ends)
        for c in range(channels):
            sums[1, :, c] += np.bincount(step, values[:, c], len(steps) + 1)
            sums[2, :, c] += np.bincount(step, values[:, c] ** 2, len(steps) + 1)
        sums[0] += np.bincount(step, minlength=len(steps) + 1)[:, None]
    return (block_min, block_max), sums


def _step_of(times, step_starts, step_ends) -> np.ndarray:
    """(n,) index of the step each time falls in; len(steps) where in none."""
    if not len(step_starts):
        return np.zeros(len(times), np.int64)
    step = np.searchsorted(step_starts, times, side="right") - 1
    inside = (step >= 0) & (times < step_ends[np.maximum(step, 0)])
    return np.where(inside, step, len(step_starts))


def _step_stats(steps, sums, frame_time, label_valid, origin_s) -> list[dict]:
    """Per step, then for the whole session: duration, label frames and the
    fraction of them valid, and each channel's EMG RMS about its mean (µV), so an
    electrode's DC offset does not read as activity."""
    whole = sums.sum(axis=1)  # (3, C)
    frame_step = None
    if frame_time is not None and steps:
        starts = np.array([origin_s + s.start_s for s in steps])
        ends = np.array([origin_s + s.end_s for s in steps])
        frame_step = _step_of(frame_time, starts, ends)
    rows = []
    for index, step in enumerate([*steps, None]):
        if step is None:  # the whole session
            count, total, squares = whole
            in_step = np.ones(len(frame_time), bool) if frame_time is not None else None
        else:
            count, total, squares = sums[:, index]
            in_step = frame_step == index if frame_step is not None else None
        rows.append(
            {
                "name": step.name if step else "whole session",
                "start_s": step.start_s if step else None,
                "end_s": step.end_s if step else None,
                "emg_rms_uv": _rms_about_mean(count, total, squares),
                **_label_counts(in_step, label_valid),
            }
        )
    return rows


def _rms_about_mean(count, total, squares) -> list[float | None]:
    """(C,) RMS about the mean, µV, from the count, sum and sum of squares."""
    if count[0] == 0:
        return [None] * len(count)
    mean = total / count
    variance = np.maximum(squares / count - mean**2, 0.0)
    return [round(float(v), 2) for v in np.sqrt(variance)]


def _label_counts(in_step, label_valid) -> dict:
    frames = int(in_step.sum()) if in_step is not None else 0
    valid = None
    if frames and label_valid is not None:
        valid = round(float(label_valid[in_step].mean()), 4)
    return {"label_frames": frames, "label_valid_fraction": valid}


# ---------------------------------------------------------------- ranges


def check_range(index: SessionIndex, start_s: float, end_s: float) -> None:
    """Raises ReviewRangeError naming what is wrong with [start_s, end_s)."""
    if not (math.isfinite(start_s) and math.isfinite(end_s)):
        raise ReviewRangeError("start and end must be finite numbers of seconds")
    if start_s >= end_s:
        raise ReviewRangeError(
            f"start ({start_s:g} s) must be before end ({end_s:g} s)"
        )
    if end_s <= 0 or start_s > index.duration_s:
        raise ReviewRangeError(
            f"[{start_s:g}, {end_s:g}) s is outside the session "
            f"(0 to {index.duration_s:g} s)"
        )


def emg_envelope(
    index: SessionIndex, path: str | os.PathLike, start_s: float, end_s: float,
    bins: int,
) -> dict:  # fmt: skip
    """Per-channel min and max (µV) over `bins` equal time bins of [start_s, end_s)
    session s. `time_s` is each bin's start; `min`/`max` are (C, bins) lists with
    None for bins without samples (a gap in the recording). With fewer samples
    than bins the samples themselves come back (min == max, tier "samples")."""
    check_range(index, start_s, end_s)
    if not 1 <= bins <= MAX_BINS:
        raise ReviewRangeError(f"bins must be 1 to {MAX_BINS}, got {bins}")
    first, last = np.searchsorted(
        index.emg_time, [index.origin_s + start_s, index.origin_s + end_s]
    )
    if last - first <= bins:
        return _raw_samples(index, path, first, last, start_s, end_s)
    edges = index.origin_s + np.linspace(start_s, end_s, bins + 1)
    bin_s = (end_s - start_s) / bins
    if bin_s >= MIN_BLOCKS_PER_BIN * BLOCK_SAMPLES / index.sampling_rate_hz:
        tier = f"blocks of {BLOCK_SAMPLES} samples"
        bounds = np.searchsorted(index.block_time, edges)
        low, high = _segment_extremes(index.block_min, index.block_max, bounds)
    else:
        tier = "raw"
        with open_session(path) as h5:
            values = h5["emg"][first:last]
        bounds = np.searchsorted(index.emg_time[first:last], edges)
        low, high = _segment_extremes(values, values, bounds)
    times = (edges[:-1] - index.origin_s).round(6).tolist()
    return _envelope_reply(index, start_s, end_s, tier, times, low, high)


def _raw_samples(index, path, first, last, start_s, end_s) -> dict:
    with open_session(path) as h5:
        values = h5["emg"][first:last]  # (n, C) µV
    times = (index.emg_time[first:last] - index.origin_s).round(6).tolist()
    return _envelope_reply(index, start_s, end_s, "samples", times, values, values)


def _segment_extremes(low_values, high_values, bounds):
    """(bins, C) min of `low_values` and max of `high_values` over the row segments
    [bounds[k], bounds[k + 1]); NaN where a segment is empty."""
    bins, channels = len(bounds) - 1, low_values.shape[1]
    low = np.full((bins, channels), np.nan, np.float32)
    high = np.full((bins, channels), np.nan, np.float32)
    filled = bounds[1:] > bounds[:-1]
    if filled.any():
        # between filled segments lie only empty ones, so reduceat's segments match
        starts, stop = bounds[:-1][filled], bounds[1:][filled][-1]
        low[filled] = np.minimum.reduceat(low_values[:stop], starts)
        high[filled] = np.maximum.reduceat(high_values[:stop], starts)
    return low, high


def _envelope_reply(index, start_s, end_s, tier, times, low, high) -> dict:
    return {
        "start_s": start_s,
        "end_s": end_s,
        "tier": tier,
        "channels": index.channel_names,
        "time_s": times,
        "min": [_json_numbers(low[:, c], 1) for c in range(low.shape[1])],
        "max": [_json_numbers(high[:, c], 1) for c in range(high.shape[1])],
    }


def _json_numbers(values: np.ndarray, decimals: int) -> list[float | None]:
    """Rounded floats, None where NaN (JSON has no NaN)."""
    rounded = np.round(values.astype(np.float64), decimals)  # float32 prints long
    return [None if v != v else v for v in rounded.tolist()]


def label_frames(
    index: SessionIndex, path: str | os.PathLike, start_s: float, end_s: float,
    max_frames: int = MAX_LABEL_FRAMES, mesh: bool = False,
    mano_dir: str | os.PathLike | None = None,
) -> dict:  # fmt: skip
    """The label frames in [start_s, end_s) session s, every `stride`-th when there
    are more than `max_frames`: times, label_valid, ik_error (mm) and joints as 63
    numbers a frame (mm, MediaPipe order; None where the fit has none).

    With `mesh`, at most MAX_MESH_FRAMES frames, and also `vertices_mm`: MANO's
    mesh of each frame's pose as 778 × 3 numbers (mm, wrist-relative like the
    joints; None where the fit has no pose), or None for all when the mesh cannot
    be drawn from `mano_dir` (the user's MANO files), with `mesh_note` saying why."""
    check_range(index, start_s, end_s)
    if not 1 <= max_frames <= MAX_LABEL_FRAMES:
        raise ReviewRangeError(
            f"max_frames must be 1 to {MAX_LABEL_FRAMES}, got {max_frames}"
        )
    if not index.has_joints:
        raise NoLabelsError(no_labels_note(index))
    hand_mesh, note = load_mesh(index, mano_dir) if mesh else (None, None)
    if mesh:
        max_frames = min(max_frames, MAX_MESH_FRAMES)
    first, last = np.searchsorted(
        index.frame_time, [index.origin_s + start_s, index.origin_s + end_s]
    )
    stride = max(1, math.ceil((last - first) / max_frames))
    rows = slice(first, last, stride)
    with open_session(path) as h5:
        labels = h5["labels"]
        joints = labels["joints"][rows].reshape(-1, 63)  # (n, 63) mm
        ik_error = labels["ik_error"][rows] if index.has_ik_error else None
        pose = labels["pose"][rows] if hand_mesh is not None else None  # (n, 48) rad
    reply = {
        "start_s": start_s,
        "end_s": end_s,
        "stride": stride,
        "time_s": (index.frame_time[rows] - index.origin_s).round(6).tolist(),
        "label_valid": index.label_valid[rows].tolist(),
        "ik_error_mm": None if ik_error is None else _json_numbers(ik_error, 2),
        "joints_mm": [_json_numbers(frame, 1) for frame in joints],
    }
    if mesh:
        vertices = None if pose is None else hand_mesh.vertices_mm(pose)
        reply["vertices_mm"] = None if vertices is None else _mesh_frames(vertices)
        reply["mesh_note"] = note
    return reply


def _mesh_frames(vertices_mm: np.ndarray) -> list[list[float] | None]:
    """(n, 778, 3) mm -> per frame 2334 numbers at 0.1 mm, None for a NaN frame."""
    flat = vertices_mm.reshape(len(vertices_mm), -1)
    fitted = np.isfinite(flat).all(axis=1)
    return [
        _json_numbers(frame, 1) if ok else None
        for frame, ok in zip(flat, fitted, strict=True)
    ]


def load_mesh(index: SessionIndex, mano_dir: str | os.PathLike | None):
    """(the session hand's labeling.mano_mesh.ManoMesh, None), or (None, why not)."""
    if not mano_dir:
        return None, (
            "The server has no MANO model files (setting MANO_MODEL_DIR), so the "
            "hand is drawn from its joints."
        )
    if not index.has_pose:
        return None, (
            "These labels have no MANO poses, so the hand is drawn from its joints."
        )
    # torch and smplx load only when a mesh is asked for
    from labeling.mano_mesh import load_mano_mesh

    try:
        return load_mano_mesh(mano_dir, is_right=index.handedness != "left"), None
    except Exception as error:
        # a missing or unreadable MANO file must not break the review: the page
        # draws the joints instead, and the note says why
        return None, f"The MANO mesh cannot be drawn: {error}"


def mesh_faces(index: SessionIndex, mano_dir: str | os.PathLike | None) -> dict:
    """The mesh's triangles, once per page: `mesh_faces` (1538 × 3 vertex indexes,
    outward winding) and `mesh_note`, or None and the reason there is no mesh."""
    hand_mesh, note = load_mesh(index, mano_dir)
    faces = None if hand_mesh is None else hand_mesh.faces.tolist()
    return {"mesh_faces": faces, "mesh_note": note}


def no_labels_note(index: SessionIndex) -> str | None:
    """Why the session shows no hand, or None when it has label joints."""
    if index.has_joints:
        return None
    if index.frame_time is None:
        return "This session has no camera label track, so there is no hand to show."
    return (
        "This session has camera landmarks but no labels yet: label it with IK on "
        "the session page to see the hand."
    )


def invalid_label_spans(index: SessionIndex, max_spans: int = 2000) -> list:
    """[start_s, end_s] runs of frames whose labels are not valid, merged across
    short valid stretches so that there are at most about `max_spans`."""
    if index.label_valid is None or index.frame_time is None:
        return []
    invalid = ~index.label_valid.astype(bool)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], invalid.view(np.int8), [0]])))
    times = index.frame_time - index.origin_s
    last = len(times) - 1
    spans = [
        [float(times[a]), float(times[min(b, last)])]
        for a, b in zip(edges[::2], edges[1::2], strict=True)
    ]
    merge_gap_s = index.duration_s / max_spans
    merged: list[list[float]] = []
    for span in spans:
        if merged and span[0] - merged[-1][1] <= merge_gap_s:
            merged[-1][1] = span[1]
        else:
            merged.append(span)
    return [[round(a, 3), round(b, 3)] for a, b in merged]


def overview(index: SessionIndex) -> dict:
    """What the review page loads first: no EMG or joints, only the map."""
    return {
        "duration_s": index.duration_s,
        "sampling_rate_hz": index.sampling_rate_hz,
        "channels": index.channel_names,
        "sample_count": index.sample_count,
        "frame_count": 0 if index.frame_time is None else len(index.frame_time),
        "has_labels": index.has_joints,
        "labels_note": no_labels_note(index),
        "steps": [
            {"name": s.name, "kind": s.kind, "start_s": s.start_s, "end_s": s.end_s}
            for s in index.steps
        ],
        "step_stats": index.step_stats,
        "invalid_label_spans": invalid_label_spans(index),
    }
