"""Transformer encoders over linear patch tokens, for EMG and for pose.

A window of T time steps and F features (EMG channels, or joint angles) is cut into
K = T // S non-overlapping patches of S steps; each patch, flattened (S * F), is
projected linearly to a d-dimensional token (the seed's linear tokenizer). A [CLS]
token and learned positional embeddings go in front of a standard transformer
encoder. The seed's sizes, at its 2 kHz, and how they are scaled here:

- windows: 2 s (4000 samples at 2 kHz). Kept at 2 s.
- EMG patch: 50 samples = 25 ms. At the armband's 500 Hz that is 12.5 samples; we
  take 12 (24 ms), so a 2 s window is 83 tokens (the seed had 80) and its last 4
  samples are dropped (the seed's K = floor(T / S)).
- pose patch: 200 frames = 100 ms. Labels come at the camera rate (30 fps): 3
  frames, so a 2 s window is 20 tokens, as in the seed.
- 4 encoder and 2 decoder layers, d = 256, mask ratio 0.5: unchanged ("paper"
  size). Smaller sizes exist for CPU benchmarks and tests.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

WINDOW_S = 2.0
EMG_PATCH_S = 0.025  # the seed's 50 samples at 2 kHz
POSE_PATCH_S = 0.100  # the seed's 200 frames at 2 kHz
POOLINGS = ("cls", "mean")

# name -> (model_dim, encoder_layers, decoder_layers, heads)
SIZES = {
    "paper": (256, 4, 2, 8),
    "small": (64, 2, 1, 4),
    "tiny": (16, 1, 1, 2),
}


@dataclass
class EncoderConfig:
    features: int  # values per time step: 8 EMG channels, or 20 joint angles
    patch_steps: int  # time steps per token
    window_steps: int  # time steps per window (a multiple of patch_steps)
    model_dim: int = 256
    encoder_layers: int = 4
    decoder_layers: int = 2  # used by the masked autoencoder only
    heads: int = 8
    dropout: float = 0.0

    def __post_init__(self) -> None:
        if self.patch_steps < 1 or self.window_steps < self.patch_steps:
            raise ValueError(
                f"a window of {self.window_steps} steps cannot hold one patch of "
                f"{self.patch_steps} steps"
            )
        if self.window_steps % self.patch_steps:
            raise ValueError(
                f"window_steps {self.window_steps} is not a multiple of patch_steps "
                f"{self.patch_steps}"
            )
        if self.model_dim % self.heads:
            raise ValueError(
                f"model_dim {self.model_dim} must be divisible by heads {self.heads}"
            )

    @property
    def num_tokens(self) -> int:
        return self.window_steps // self.patch_steps

    @property
    def patch_dim(self) -> int:
        return self.patch_steps * self.features

    def as_dict(self) -> dict:
        return asdict(self)


def scaled_config(
    features: int, rate_hz: float, patch_s: float, size: str = "paper",
    window_s: float = WINDOW_S,
) -> EncoderConfig:  # fmt: skip
    """The seed's encoder at `rate_hz`: patches of `patch_s` (rounded down to whole
    steps, at least one) and as many whole patches as fit in `window_s`."""
    if size not in SIZES:
        raise ValueError(f"size must be one of {tuple(SIZES)}, got {size!r}")
    if rate_hz <= 0 or window_s <= 0:
        raise ValueError(f"rate ({rate_hz} Hz) and window ({window_s} s) must be > 0")
    patch_steps = max(1, int(patch_s * rate_hz + 1e-6))
    num_tokens = int(round(window_s * rate_hz)) // patch_steps
    if num_tokens < 1:
        raise ValueError(f"a {window_s} s window at {rate_hz} Hz holds no patch")
    model_dim, encoder_layers, decoder_layers, heads = SIZES[size]
    return EncoderConfig(
        features=features, patch_steps=patch_steps,
        window_steps=num_tokens * patch_steps, model_dim=model_dim,
        encoder_layers=encoder_layers, decoder_layers=decoder_layers, heads=heads,
    )  # fmt: skip


def emg_config(num_channels: int, rate_hz: float, size: str = "paper", **kw):
    return scaled_config(num_channels, rate_hz, EMG_PATCH_S, size, **kw)


def pose_config(num_angles: int, rate_hz: float, size: str = "paper", **kw):
    return scaled_config(num_angles, rate_hz, POSE_PATCH_S, size, **kw)


def transformer(config: EncoderConfig, layers: int, width: int) -> nn.Module:
    layer = nn.TransformerEncoderLayer(
        width, config.heads, dim_feedforward=4 * width, dropout=config.dropout,
        activation="gelu", batch_first=True, norm_first=True,
    )  # fmt: skip
    return nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)


def patchify(signal: torch.Tensor, config: EncoderConfig) -> torch.Tensor:
    """(B, T, F) -> (B, K, S * F): the first K * S steps cut into patches."""
    if signal.ndim != 3 or signal.shape[2] != config.features:
        raise ValueError(
            f"expected a window (batch, steps, {config.features}), got "
            f"{tuple(signal.shape)}"
        )
    if signal.shape[1] < config.window_steps:
        raise ValueError(
            f"window has {signal.shape[1]} steps, the encoder needs "
            f"{config.window_steps}"
        )
    batch = signal.shape[0]
    signal = signal[:, : config.window_steps]
    return signal.reshape(batch, config.num_tokens, config.patch_dim)


class SignalEncoder(nn.Module):
    """Linear patch tokenizer + [CLS] + transformer encoder."""

    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        self.config = config
        width = config.model_dim
        self.tokenizer = nn.Linear(config.patch_dim, width)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, width))
        self.position = nn.Parameter(
            0.02 * torch.randn(1, config.num_tokens + 1, width)
        )
        self.blocks = transformer(config, config.encoder_layers, width)
        self.norm = nn.LayerNorm(width)

    def tokens(self, signal: torch.Tensor) -> torch.Tensor:
        """(B, T, F) -> patch tokens with positions (B, K, d), before the encoder."""
        return self.tokenizer(patchify(signal, self.config)) + self.position[:, 1:]

    def encode_tokens(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, K', d) positioned tokens (all or the kept ones) -> (B, 1 + K', d),
        the [CLS] output first."""
        cls = (self.cls_token + self.position[:, :1]).expand(len(tokens), -1, -1)
        return self.norm(self.blocks(torch.cat([cls, tokens], dim=1)))

    def forward(self, signal: torch.Tensor) -> torch.Tensor:
        """(B, T, F) -> (B, 1 + K, d)."""
        return self.encode_tokens(self.tokens(signal))

    def embed(self, signal: torch.Tensor, pooling: str = "cls") -> torch.Tensor:
        """(B, T, F) -> (B, d): the [CLS] output, or the mean of the patch tokens."""
        encoded = self(signal)
        if pooling == "cls":
            return encoded[:, 0]
        if pooling == "mean":
            return encoded[:, 1:].mean(dim=1)
        raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
