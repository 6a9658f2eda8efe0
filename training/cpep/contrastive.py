"""Contrastive pose-EMG alignment (the seed's section 2.3).

The pose encoder is frozen (the anchor); the EMG encoder and a one-layer projection
head are trained so that an EMG window's embedding lands on its own pose window's
embedding and away from the other poses in the batch: symmetric InfoNCE over cosine
similarities with a learnable temperature (initialised at 0.02).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from training.cpep.encoders import SignalEncoder
from training.cpep.optim import OptimConfig, train_minibatches
from training.cpep.windows import random_channel_rotation

INITIAL_TEMPERATURE = 0.02
MAX_LOGIT_SCALE = 100.0  # CLIP's clamp: the temperature never drops below 0.01


def info_nce(
    emg_embedding: torch.Tensor, pose_embedding: torch.Tensor, log_scale: torch.Tensor
) -> torch.Tensor:
    """Symmetric InfoNCE of N paired (N, D) embeddings; pair i is the positive of
    row and column i. `log_scale` is log(1 / temperature)."""
    emg_unit = F.normalize(emg_embedding, dim=-1)
    pose_unit = F.normalize(pose_embedding, dim=-1)
    scale = log_scale.exp().clamp(max=MAX_LOGIT_SCALE)
    logits = scale * emg_unit @ pose_unit.T  # (N, N): s_ij = u_i . v_j / tau
    targets = torch.arange(len(logits), device=logits.device)
    emg_to_pose = F.cross_entropy(logits, targets)
    pose_to_emg = F.cross_entropy(logits.T, targets)
    return (emg_to_pose + pose_to_emg) / 2


class EmgEmbedder(nn.Module):
    """The aligned EMG embedding: encoder, pooled, then the projection head."""

    def __init__(
        self, encoder: SignalEncoder, output_dim: int, pooling: str = "cls"
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.pooling = pooling
        self.head = nn.Linear(encoder.config.model_dim, output_dim)
        self.log_scale = nn.Parameter(torch.tensor(math.log(1 / INITIAL_TEMPERATURE)))

    @property
    def temperature(self) -> float:
        return float(1 / self.log_scale.detach().exp().clamp(max=MAX_LOGIT_SCALE))

    def forward(self, emg: torch.Tensor) -> torch.Tensor:
        """(B, T, C) normalized EMG -> (B, D), not yet unit length."""
        return self.head(self.encoder.embed(emg, self.pooling))


@torch.no_grad()
def embed_windows(embed, windows: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """(W, T, F) windows -> (W, D) float32 through `embed` (tensor -> tensor)."""
    signals = torch.from_numpy(np.ascontiguousarray(windows, dtype=np.float32))
    parts = [embed(part) for part in signals.split(batch_size)]
    return torch.cat(parts).numpy().astype(np.float32)


@dataclass
class AlignmentResult:
    embedder: EmgEmbedder
    epoch_losses: list[float]


def align(
    emg_encoder: SignalEncoder, pose_encoder: SignalEncoder, emg: np.ndarray,
    pose: np.ndarray, optim: OptimConfig, pooling: str = "cls",
    train_encoder: bool = True, max_channel_shift: int = 1, label: str = "cpep",
) -> AlignmentResult:  # fmt: skip
    """Trains `emg_encoder` (unless `train_encoder` is False: the frozen ablation)
    and a projection head so EMG windows (W, T, C) match their pose windows
    (W, T', J) under the frozen `pose_encoder`. Channel-rotation augmentation
    shifts each EMG window's channels by up to `max_channel_shift` electrodes."""
    torch.manual_seed(optim.seed)
    pose_encoder.eval().requires_grad_(False)
    # The pose side is frozen and unaugmented: embed it once.
    pose_embedding = torch.from_numpy(
        embed_windows(lambda p: pose_encoder.embed(p, pooling), pose)
    )
    embedder = EmgEmbedder(emg_encoder, pose_embedding.shape[1], pooling)
    emg_encoder.requires_grad_(train_encoder)
    signals = torch.from_numpy(np.ascontiguousarray(emg, dtype=np.float32))

    def batch_loss(batch, generator):
        windows = random_channel_rotation(signals[batch], max_channel_shift, generator)
        return info_nce(embedder(windows), pose_embedding[batch], embedder.log_scale)

    embedder.train()
    losses = train_minibatches(
        embedder.parameters(), len(signals), batch_loss, optim, label
    )
    embedder.eval()
    return AlignmentResult(embedder, losses)
