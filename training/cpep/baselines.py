"""The seed's supervised baseline (PoseT): the same EMG transformer encoder, trained
to regress the pose window from the EMG window (mean squared error), with the
masked autoencoder's decoder depth. Its encoder's embedding is then probed like
CPEP's, to show what direct pose regression learns about gestures."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from training.cpep.encoders import EncoderConfig, SignalEncoder, patchify, transformer
from training.cpep.optim import OptimConfig, train_minibatches
from training.cpep.windows import random_channel_rotation


class PoseRegressor(nn.Module):
    """EMG window -> pose window. The decoder reads the encoded EMG tokens together
    with one learned query per pose patch, and each query's output becomes that
    patch's angles."""

    def __init__(self, emg: EncoderConfig, pose: EncoderConfig) -> None:
        super().__init__()
        self.pose_config = pose
        width = emg.model_dim
        self.encoder = SignalEncoder(emg)
        self.queries = nn.Parameter(0.02 * torch.randn(1, pose.num_tokens, width))
        self.decoder = transformer(emg, emg.decoder_layers, width)
        self.to_pose = nn.Linear(width, pose.patch_dim)

    def forward(self, emg: torch.Tensor) -> torch.Tensor:
        """(B, T, C) -> pose patches (B, K', S' * J)."""
        encoded = self.encoder(emg)  # (B, 1 + K, d)
        queries = self.queries.expand(len(emg), -1, -1)
        decoded = self.decoder(torch.cat([encoded, queries], dim=1))
        return self.to_pose(decoded[:, -self.pose_config.num_tokens :])


@dataclass
class RegressorResult:
    encoder: SignalEncoder
    epoch_losses: list[float]


def train_pose_regressor(
    emg_config: EncoderConfig, pose_config: EncoderConfig, emg: np.ndarray,
    pose: np.ndarray, optim: OptimConfig, max_channel_shift: int = 1,
    label: str = "poset",
) -> RegressorResult:  # fmt: skip
    """Trains on normalized EMG windows (W, T, C) and pose windows (W, T', J)."""
    torch.manual_seed(optim.seed)
    model = PoseRegressor(emg_config, pose_config)
    signals = torch.from_numpy(np.ascontiguousarray(emg, dtype=np.float32))
    targets = patchify(
        torch.from_numpy(np.ascontiguousarray(pose, np.float32)), pose_config
    )

    def batch_loss(batch, generator):
        windows = random_channel_rotation(signals[batch], max_channel_shift, generator)
        return (model(windows) - targets[batch]).pow(2).mean()

    model.train()
    losses = train_minibatches(
        model.parameters(), len(signals), batch_loss, optim, label
    )
    model.eval()
    return RegressorResult(model.encoder, losses)
