"""Paired EMG-pose windows and gesture-labeled windows, cut from labeled sessions.

A window starts at a time t0: EMG is the `emg_steps` samples from t0 (filtered as
everywhere in training, causally), pose is the joint angles (rad) of the label
frames nearest t0 + j / fps. Label frames that are not valid are filled by linear
interpolation from the window's valid frames; a window with fewer than
MIN_VALID_FRACTION valid frames is left out, never zero-filled.

Gesture windows lie inside one prompted gesture: from `settle_s` after its prompt
(the hand has moved there) to `margin_s` before the next prompt.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from recorder.session_file import SessionEvent
from training.data import DataError, LabeledSession, nearest_frames
from training.preprocessing import Normalization

MIN_VALID_FRACTION = 0.8
SETTLE_S = 1.2  # the slowest simulated transition (0.8 s x a slow mover's 1.5)
MARGIN_S = 0.1


def rotate_channels(emg: torch.Tensor, shifts: torch.Tensor) -> torch.Tensor:
    """(B, T, C) windows with each window's channels rotated circularly by its shift
    (B,) ints: channel c moves to (c + shift) mod C, as a band worn turned by whole
    electrodes would record."""
    num_channels = emg.shape[-1]
    source = (torch.arange(num_channels)[None, :] - shifts[:, None]) % num_channels
    return emg.gather(2, source[:, None, :].expand(-1, emg.shape[1], -1))


def random_channel_rotation(
    emg: torch.Tensor, max_shift: int, generator: torch.Generator
) -> torch.Tensor:
    """Each window rotated by a shift drawn uniformly from [-max_shift, max_shift]."""
    if max_shift == 0:
        return emg
    shifts = torch.randint(-max_shift, max_shift + 1, (len(emg),), generator=generator)
    return rotate_channels(emg, shifts)


@dataclass
class WindowSet:
    """W windows: emg (W, T, C) float32 filtered µV, pose (W, T', J) float32 rad,
    gesture (W,) str ("" where unlabeled), subject (W,) str."""

    emg: np.ndarray
    pose: np.ndarray
    gesture: np.ndarray
    subject: np.ndarray

    def __len__(self) -> int:
        return len(self.emg)

    def where(self, keep: np.ndarray) -> WindowSet:
        return WindowSet(
            self.emg[keep], self.pose[keep], self.gesture[keep], self.subject[keep]
        )

    def with_gestures(self, gestures) -> WindowSet:
        return self.where(np.isin(self.gesture, list(gestures)))

    @staticmethod
    def concat(parts: list[WindowSet]) -> WindowSet:
        if not parts:
            raise DataError("no windows to put together")
        return WindowSet(
            *(np.concatenate([getattr(p, name) for p in parts]) for name in
              ("emg", "pose", "gesture", "subject"))
        )  # fmt: skip


def gesture_segments(
    events: list[SessionEvent], end_s: float
) -> list[tuple[str, float, float]]:
    """(gesture, start s, end s) of each prompted gesture: from its "gesture" event
    to the next one (or `end_s`)."""
    prompts = sorted(
        (event for event in events if event.kind == "gesture"), key=lambda e: e.time_s
    )
    ends = [event.time_s for event in prompts[1:]] + [end_s]
    return [(e.name, e.time_s, end) for e, end in zip(prompts, ends, strict=True)]


def frame_rate_hz(session: LabeledSession) -> float:
    if len(session.frame_time) < 2:
        raise DataError(f"session {session.name}: fewer than two label frames")
    return 1.0 / float(np.median(np.diff(session.frame_time)))


def _pose_window(session: LabeledSession, start_s: float, pose_steps: int, fps: float):
    """(T', J) angles of the frames from start_s, gaps interpolated; None when too
    few are valid."""
    frames = nearest_frames(session.frame_time, start_s + np.arange(pose_steps) / fps)
    valid = frames >= 0
    valid[valid] = session.label_valid[frames[valid]]
    if valid.mean() < MIN_VALID_FRACTION:
        return None
    steps = np.arange(pose_steps)
    angles = session.joint_angles[frames[valid]]  # (V, J)
    return np.stack(
        [np.interp(steps, steps[valid], angles[:, j]) for j in range(angles.shape[1])],
        axis=1,
    ).astype(np.float32)


def cut_windows(
    session: LabeledSession, filtered_emg: np.ndarray, starts_s: np.ndarray,
    emg_steps: int, pose_steps: int, gesture: str = "",
) -> WindowSet:  # fmt: skip
    """Windows of `session` starting at `starts_s` (s); those running past its end or
    short of valid labels are left out."""
    fps = frame_rate_hz(session)
    emg_parts, pose_parts = [], []
    for start_s in starts_s:
        first = int(np.searchsorted(session.emg_time, start_s))
        if first + emg_steps > len(filtered_emg):
            continue
        pose = _pose_window(session, float(session.emg_time[first]), pose_steps, fps)
        if pose is None:
            continue
        emg_parts.append(filtered_emg[first : first + emg_steps])
        pose_parts.append(pose)
    num_channels, num_angles = filtered_emg.shape[1], session.joint_angles.shape[1]
    emg = np.zeros((0, emg_steps, num_channels), np.float32)
    pose = np.zeros((0, pose_steps, num_angles), np.float32)
    if emg_parts:
        emg, pose = np.stack(emg_parts), np.stack(pose_parts)
    return WindowSet(
        emg=emg,
        pose=pose,
        gesture=np.full(len(emg), gesture, dtype=object),
        subject=np.full(len(emg), session.subject, dtype=object),
    )


def window_seconds(session: LabeledSession, emg_steps: int, pose_steps: int) -> float:
    """How long a window lasts: the longer of its EMG and its pose parts."""
    return max(
        emg_steps / session.sampling_rate_hz, pose_steps / frame_rate_hz(session)
    )


def continuous_windows(
    session: LabeledSession, filtered_emg: np.ndarray, emg_steps: int,
    pose_steps: int, stride_s: float,
) -> WindowSet:  # fmt: skip
    """Unlabeled windows every `stride_s` over the whole session (pre-training)."""
    length_s = window_seconds(session, emg_steps, pose_steps)
    first_s, last_s = session.emg_time[0], session.emg_time[-1] - length_s
    starts_s = np.arange(first_s, last_s, stride_s)
    return cut_windows(session, filtered_emg, starts_s, emg_steps, pose_steps)


def gesture_windows(
    session: LabeledSession, filtered_emg: np.ndarray,
    segments: list[tuple[str, float, float]], emg_steps: int, pose_steps: int,
    stride_s: float, settle_s: float = SETTLE_S, margin_s: float = MARGIN_S,
) -> WindowSet:  # fmt: skip
    """Windows inside each gesture segment, labeled with its gesture."""
    length_s = window_seconds(session, emg_steps, pose_steps)
    parts = []
    for gesture, start_s, end_s in segments:
        starts_s = np.arange(start_s + settle_s, end_s - margin_s - length_s, stride_s)
        parts.append(
            cut_windows(session, filtered_emg, starts_s, emg_steps, pose_steps, gesture)
        )
    return WindowSet.concat(parts) if parts else cut_windows(
        session, filtered_emg, np.zeros(0), emg_steps, pose_steps
    )  # fmt: skip


def normalized(windows: np.ndarray, normalization: Normalization) -> np.ndarray:
    """(W, T, F) -> (W, T, F) float32 through a per-feature z-scoring."""
    flat = windows.reshape(-1, windows.shape[-1])
    return normalization.apply(flat).reshape(windows.shape)
