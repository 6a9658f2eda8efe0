"""Masked-autoencoder pre-training of a SignalEncoder (the seed's section 2.2).

A random `mask_ratio` of each window's patch tokens is hidden; the encoder sees only
the kept ones, and a small transformer decoder (mask tokens in the hidden places)
reconstructs every patch. The loss is the mean squared error on the hidden patches.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from training.cpep.encoders import EncoderConfig, SignalEncoder, patchify, transformer
from training.cpep.optim import OptimConfig, train_minibatches

MASK_RATIO = 0.5


def num_masked(num_tokens: int, mask_ratio: float) -> int:
    """|M| = K * r, rounded, leaving at least one token on each side."""
    if not 0 < mask_ratio < 1:
        raise ValueError(f"mask_ratio must be in (0, 1), got {mask_ratio}")
    if num_tokens < 2:
        raise ValueError(f"masking needs at least 2 tokens, got {num_tokens}")
    return min(max(int(round(num_tokens * mask_ratio)), 1), num_tokens - 1)


def random_mask(
    batch: int, num_tokens: int, mask_ratio: float, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per window, the kept (B, K - m) and masked (B, m) token indexes, each sorted."""
    masked_count = num_masked(num_tokens, mask_ratio)
    order = torch.rand(batch, num_tokens, generator=generator).argsort(dim=1)
    kept = order[:, masked_count:].sort(dim=1).values
    masked = order[:, :masked_count].sort(dim=1).values
    return kept, masked


def gather_tokens(tokens: torch.Tensor, indexes: torch.Tensor) -> torch.Tensor:
    """(B, K, D) tokens at (B, K') indexes -> (B, K', D)."""
    return tokens.gather(1, indexes[..., None].expand(-1, -1, tokens.shape[-1]))


class MaskedAutoencoder(nn.Module):
    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        self.config = config
        width = config.model_dim
        self.encoder = SignalEncoder(config)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, width))
        self.decoder_position = nn.Parameter(
            0.02 * torch.randn(1, config.num_tokens + 1, width)
        )
        self.decoder = transformer(config, config.decoder_layers, width)
        self.reconstruct = nn.Linear(width, config.patch_dim)

    def forward(
        self, signal: torch.Tensor, kept: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Window (B, T, F) and kept indexes (B, K') -> (reconstructed patches
        (B, K, S * F), true patches (B, K, S * F))."""
        tokens = self.encoder.tokens(signal)  # (B, K, d)
        encoded = self.encoder.encode_tokens(gather_tokens(tokens, kept))
        batch, num_tokens = tokens.shape[:2]
        full = self.mask_token.expand(batch, num_tokens, -1).clone()
        full.scatter_(1, kept[..., None].expand_as(encoded[:, 1:]), encoded[:, 1:])
        decoded = torch.cat([encoded[:, :1], full], dim=1) + self.decoder_position
        patches = self.reconstruct(self.decoder(decoded)[:, 1:])
        return patches, patchify(signal, self.config)


def mae_loss(
    model: MaskedAutoencoder, signal: torch.Tensor, generator: torch.Generator,
    mask_ratio: float = MASK_RATIO,
) -> torch.Tensor:  # fmt: skip
    """Mean squared error over the masked patches of a batch of windows."""
    kept, masked = random_mask(
        len(signal), model.config.num_tokens, mask_ratio, generator
    )
    reconstructed, target = model(signal, kept)
    error = gather_tokens(reconstructed, masked) - gather_tokens(target, masked)
    return error.pow(2).mean()


@dataclass
class MaeResult:
    encoder: SignalEncoder
    epoch_losses: list[float]


def pretrain_mae(
    config: EncoderConfig, windows: np.ndarray, optim: OptimConfig,
    mask_ratio: float = MASK_RATIO, augment=None, label: str = "mae",
) -> MaeResult:  # fmt: skip
    """Pre-trains an encoder on windows (W, T, F) float32 (normalized); `augment`
    (windows tensor, generator) -> windows is applied to every batch."""
    torch.manual_seed(optim.seed)
    model = MaskedAutoencoder(config)
    signals = torch.from_numpy(np.ascontiguousarray(windows, dtype=np.float32))

    def batch_loss(batch, generator):
        signal = signals[batch]
        if augment is not None:
            signal = augment(signal, generator)
        return mae_loss(model, signal, generator, mask_ratio)

    model.train()
    losses = train_minibatches(
        model.parameters(), len(signals), batch_loss, optim, label
    )
    model.eval()
    return MaeResult(model.encoder, losses)
