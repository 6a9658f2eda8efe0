"""Labeling a whole recording: checks, batched IK in blocks (for progress), summary.

Works on arrays only; the Celery task reads and writes the session file.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from labeling.alignment import align, apply
from labeling.bone_lengths import subject_hand
from labeling.hand_model import load_hand_model
from labeling.ik import IKConfig, SequenceFit, fit_sequence
from labeling.kinematics import MEDIAPIPE_JOINT_NAMES

Progress = Callable[[int, int, str], None]
# Frames fitted together. Smoothness links frames within a block; a block of 50 s
# at 30 fps keeps memory small and progress moving.
BLOCK_FRAMES = 1500
HISTOGRAM_EDGES_MM = np.arange(0.0, 52.5, 2.5)  # the last bin collects the rest
SETTING_NAMES = ("alignment", "optimizer")


class LabelingError(ValueError):
    """The input cannot be labeled; the message says why, for a person."""


def check_landmarks(landmarks_m, scores) -> None:
    """Raise LabelingError unless landmarks (T, 21, 3) m and scores (T,) are usable."""
    if landmarks_m is None:
        raise LabelingError(
            "this session has no webcam landmarks to label; record it with the "
            "camera on (or import a file that has them)"
        )
    if landmarks_m.ndim != 3 or landmarks_m.shape[1:] != (21, 3):
        raise LabelingError(
            f"landmarks must be (frames, 21, 3), not {landmarks_m.shape}"
        )
    if scores is None or scores.shape != (len(landmarks_m),):
        raise LabelingError("every landmark frame needs one detection score")
    if np.isinf(landmarks_m).any():
        raise LabelingError("landmarks contain infinite values")
    if np.isnan(landmarks_m).any(axis=(1, 2)).all():
        raise LabelingError(f"no hand was detected in any of the {len(landmarks_m)} "
                            "frames (all landmarks are missing)")  # fmt: skip


def ik_config(settings: dict) -> IKConfig:
    """The IK settings a person may choose in the portal, on top of the defaults."""
    unknown = set(settings) - set(SETTING_NAMES)
    if unknown:
        raise LabelingError(f"unknown labeling settings: {sorted(unknown)}")
    try:
        return IKConfig(**settings)
    except ValueError as exc:
        raise LabelingError(str(exc)) from None


def label_recording(
    landmarks_m, scores, settings: dict, mano_dir: str | None = None,
    progress: Progress | None = None, handedness: str = "right",
) -> tuple[SequenceFit, dict]:  # fmt: skip
    """Batched IK over a whole recording; returns the fit and its summary.
    A left hand is fitted with the mirrored model."""
    check_landmarks(landmarks_m, scores)
    config = ik_config(settings)
    model = load_hand_model(mano_dir, is_right=handedness != "left")
    progress = progress or _no_progress
    progress(0, len(landmarks_m), "fitting the person's bone lengths")
    model = subject_hand(landmarks_m, scores, config, model)
    fit = fit_in_blocks(landmarks_m, scores, config, model, progress)
    return fit, summarize(fit, landmarks_m, config, model)


def fit_in_blocks(
    landmarks_m, scores, config, model, progress: Progress
) -> SequenceFit:
    total = len(landmarks_m)
    model = subject_hand(landmarks_m, scores, config, model)  # once per recording
    pieces = []
    progress(0, total, "fitting the hand model")
    for start in range(0, total, BLOCK_FRAMES):
        end = min(start + BLOCK_FRAMES, total)
        pieces.append(
            fit_sequence(landmarks_m[start:end], scores[start:end], config, model)
        )
        progress(end, total, f"fitted frames {start + 1}–{end}")
    return SequenceFit(*(np.concatenate(field) for field in zip(*pieces, strict=True)))


def per_joint_residual_mm(fit: SequenceFit, landmarks_m, alignment: str) -> np.ndarray:
    """(21,) mean distance per joint between fitted joints and aligned landmarks."""
    detected = ~np.isnan(landmarks_m).any(axis=(1, 2))
    if not detected.any():
        return np.full(21, np.nan)
    landmarks_mm = torch.from_numpy(landmarks_m[detected] * 1000.0).double()
    joints_mm = torch.from_numpy(fit.joints_mm[detected]).double()
    aligned = apply(align(landmarks_mm, joints_mm, alignment), landmarks_mm)
    return (aligned - joints_mm).norm(dim=-1).mean(0).numpy()


def summarize(fit: SequenceFit, landmarks_m, config: IKConfig, model=None) -> dict:
    """What the job page shows: validity, residual statistics and histograms."""
    residual = fit.ik_error_mm[~np.isnan(fit.ik_error_mm)]
    counts, _ = np.histogram(np.minimum(residual, HISTOGRAM_EDGES_MM[-1] - 1e-6),
                             HISTOGRAM_EDGES_MM)  # fmt: skip
    per_joint = per_joint_residual_mm(fit, landmarks_m, config.alignment)
    return {
        "frames": int(len(fit.label_valid)),
        "detected_frames": int(len(residual)),
        "valid_fraction": float(fit.label_valid.mean())
        if len(fit.label_valid)
        else 0.0,
        "mean_residual_mm": float(residual.mean()) if len(residual) else None,
        "median_residual_mm": float(np.median(residual)) if len(residual) else None,
        "residual_histogram": {
            "edges_mm": HISTOGRAM_EDGES_MM.tolist(),
            "counts": counts.tolist(),
        },  # fmt: skip
        "per_joint_residual_mm": [round(float(v), 2) for v in per_joint],
        "joint_names": list(MEDIAPIPE_JOINT_NAMES),
        "settings": {name: getattr(config, name) for name in SETTING_NAMES},
        "bone_scale": _bone_scale(model),
    }


def _bone_scale(model) -> list[float] | None:
    """The person's 20 fitted bone scales, or None (average bones, or MANO)."""
    scale = getattr(model, "bone_scale", None)
    return None if scale is None else [round(float(v), 3) for v in scale]


def _no_progress(done: int, total: int, message: str) -> None:
    pass
