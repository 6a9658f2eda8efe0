"""Batched point-set alignment: target ≈ scale * rotation @ source + translation.

- `umeyama` (Umeyama 1991) with `with_scale=True` estimates a similarity transform;
  this is the seed's "Umeyama scaled" and compensates MediaPipe's scale drift.
- With `with_scale=False` it is a rigid transform ("Umeyama rigid").
- `kabsch` is the classic rigid fit of centred point sets. Without scale both reach
  the same least-squares optimum, so the seed's two rigid rows agree (Table II).
Points are (B, N, 3) in any unit; the scale is unitless, the translation in the
points' unit.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

ALIGNMENTS = ("umeyama_scale", "umeyama_rigid", "kabsch")


class Similarity(NamedTuple):
    scale: torch.Tensor  # (B,)
    rotation: torch.Tensor  # (B, 3, 3)
    translation: torch.Tensor  # (B, 3)


def _best_rotation(covariance: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, 3, 3) cross-covariance -> proper rotation (B, 3, 3) and the singular
    values (B, 3) with the reflection sign applied to the last one."""
    u, singular, vh = torch.linalg.svd(covariance)
    sign = torch.sign(torch.linalg.det(u @ vh))  # (B,) -1 where a reflection fits best
    sign = torch.where(sign == 0, torch.ones_like(sign), sign)
    flip = torch.ones_like(singular)
    flip[:, 2] = sign
    rotation = (u * flip.unsqueeze(1)) @ vh
    return rotation, singular * flip


def umeyama(
    source: torch.Tensor, target: torch.Tensor, with_scale: bool = True
) -> Similarity:
    """Least-squares similarity (or rigid) transform taking source (B, N, 3) onto
    target (B, N, 3)."""
    source_mean = source.mean(1, keepdim=True)  # (B, 1, 3)
    target_mean = target.mean(1, keepdim=True)
    source_centred = source - source_mean
    target_centred = target - target_mean
    covariance = target_centred.transpose(1, 2) @ source_centred  # (B, 3, 3)
    rotation, singular = _best_rotation(covariance / source.shape[1])
    if with_scale:
        source_variance = source_centred.square().sum((1, 2)) / source.shape[1]
        scale = singular.sum(1) / source_variance.clamp_min(1e-12)
    else:
        scale = torch.ones_like(singular[:, 0])
    rotated_mean = (rotation @ source_mean.transpose(1, 2)).squeeze(-1)  # (B, 3)
    translation = target_mean[:, 0] - scale.unsqueeze(1) * rotated_mean
    return Similarity(scale, rotation, translation)


def kabsch(source: torch.Tensor, target: torch.Tensor) -> Similarity:
    """Rigid transform from centred point sets (B, N, 3); scale is 1."""
    source_mean = source.mean(1, keepdim=True)
    target_mean = target.mean(1, keepdim=True)
    covariance = (target - target_mean).transpose(1, 2) @ (source - source_mean)
    rotation, _ = _best_rotation(covariance)
    translation = target_mean[:, 0] - (rotation @ source_mean.transpose(1, 2))[..., 0]
    return Similarity(torch.ones_like(translation[:, 0]), rotation, translation)


def align(source: torch.Tensor, target: torch.Tensor, method: str) -> Similarity:
    """Transform taking source (B, N, 3) onto target by `method` (ALIGNMENTS)."""
    if method == "umeyama_scale":
        return umeyama(source, target, with_scale=True)
    if method == "umeyama_rigid":
        return umeyama(source, target, with_scale=False)
    if method == "kabsch":
        return kabsch(source, target)
    raise ValueError(f"unknown alignment {method!r}; expected one of {ALIGNMENTS}")


def apply(transform: Similarity, points: torch.Tensor) -> torch.Tensor:
    """Apply a (B,) transform to points (B, N, 3)."""
    rotated = points @ transform.rotation.transpose(1, 2)
    return transform.scale[:, None, None] * rotated + transform.translation[:, None]
