"""One person's bone lengths, fitted to their landmarks before the pose fit.

The built-in hand has an average adult's proportions. A real hand (and MediaPipe's
idea of it) differs bone by bone, and no pose can make average bones reach those
landmarks: on real MediaPipe output most of the residual left by a pose-only fit is
shape, not pose. So the labeling fits 20 per-bone length scales first:

1. fit poses to a sample of frames with the current bones;
2. per bone, scale *= Σ_t <landmark bone, unit model bone> / Σ_t |model bone|, the
   landmark bones taken after aligning the landmarks onto the fitted joints. The
   projection onto the fitted bone ignores noise across the bone, so depth noise
   does not inflate short bones the way raw landmark bone lengths would;
3. repeat a few rounds (the alignment and the poses move with the bones).

Scales are clamped to a plausible range. With umeyama_scale alignment the overall
size stays that of the model (the alignment absorbs any size, so the landmarks
cannot tell it); only the proportions change.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from labeling.alignment import align, apply
from labeling.hand_model import HandModel
from labeling.ik import BONE_PARENTS, IKConfig, fit_sequence

SAMPLE_FRAMES = 256  # enough frames to average noise; a small cost beside the fit
ROUNDS = 3
SCALE_RANGE = (0.7, 1.4)


def subject_hand(landmarks_m, scores, config: IKConfig, model):
    """The hand model with bones fitted to these landmarks (T, 21, 3) metres, when
    `config.fit_bone_lengths` and the model is the built-in hand; otherwise (MANO,
    bones already fitted, no detected frame, or the option off) `model` unchanged."""
    if not config.fit_bone_lengths or not isinstance(model, HandModel):
        return model
    if model.bone_scale is not None:
        return model
    sample = _sample_frames(np.asarray(landmarks_m))
    if len(sample) == 0:
        return model
    return model.with_bone_scale(
        fit_bone_scale(sample, np.asarray(scores), config, model)
    )


def fit_bone_scale(landmarks_m, scores, config: IKConfig, model: HandModel):
    """(20,) bone scales for detected landmarks (S, 21, 3) metres."""
    # frames of the sample are not consecutive: no smoothness between them
    pose_config = dataclasses.replace(config, smoothness_weight=0.0)
    scores = np.ones(len(landmarks_m))
    scale = np.ones(20)
    for _ in range(ROUNDS):
        hand = model.with_bone_scale(scale)
        fit = fit_sequence(landmarks_m, scores, pose_config, hand)
        scale = scale * _length_ratio(landmarks_m, fit.joints_mm, config.alignment)
        if config.alignment == "umeyama_scale":
            scale = _keep_overall_size(scale, model)
        scale = np.clip(scale, *SCALE_RANGE)
    return scale


def _keep_overall_size(scale: np.ndarray, model: HandModel) -> np.ndarray:
    """Scales whose bone-length-weighted mean is 1. An alignment with scale leaves
    the hand's overall size undetermined (it absorbs any size): keep the model's
    average size and fit only the proportions."""
    lengths = (
        torch.cat(
            [model.base_mm.norm(dim=-1, keepdim=True), model.segments_mm.norm(dim=-1)],
            1,
        )
        .reshape(20)
        .double()
        .numpy()
    )  # (20,) mm, MediaPipe finger order
    return scale * lengths.sum() / (scale * lengths).sum()


def _sample_frames(landmarks_m: np.ndarray) -> np.ndarray:
    """Up to SAMPLE_FRAMES detected frames, evenly spread over the recording."""
    detected = np.flatnonzero(np.isfinite(landmarks_m).all(axis=(1, 2)))
    if len(detected) > SAMPLE_FRAMES:
        picks = np.linspace(0, len(detected) - 1, SAMPLE_FRAMES).round().astype(int)
        detected = detected[picks]
    return landmarks_m[detected]


def _length_ratio(landmarks_m, joints_mm, alignment: str) -> np.ndarray:
    """(20,) landmark bone length along the fitted bone / fitted bone length."""
    joints = torch.from_numpy(np.asarray(joints_mm, dtype=np.float64))
    landmarks = torch.from_numpy(np.asarray(landmarks_m, dtype=np.float64) * 1000.0)
    aligned = apply(align(landmarks, joints, alignment), landmarks)
    model_bones = (joints[:, 1:] - joints[:, BONE_PARENTS]).numpy()  # (S, 20, 3)
    landmark_bones = (aligned[:, 1:] - aligned[:, BONE_PARENTS]).numpy()
    model_length = np.linalg.norm(model_bones, axis=-1)  # (S, 20)
    unit = model_bones / np.maximum(model_length, 1e-9)[..., None]
    along = (landmark_bones * unit).sum(-1)  # (S, 20)
    return along.sum(0) / np.maximum(model_length.sum(0), 1e-9)
