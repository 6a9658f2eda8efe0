"""NeuroPose-style encoder-decoder (Liu et al. 2021; emg2pose's baseline, 001_*).

The EMG window is an image of time × electrodes with one feature channel:
- encoder: Conv2d-BatchNorm-ReLU-Dropout-MaxPool stages, each pooling time (and the
  electrodes, by 2, while more than one is left);
- bottleneck: residual blocks of two 3×3 convs;
- decoder: Conv-BatchNorm-ReLU-Dropout-Upsample stages restoring the time axis;
- the feature and electrode axes are flattened and a linear head gives the 20 joint
  angles per time step, as emg2pose's NeuroPose (and the original's bounded angle
  outputs); the last step is the pose at the window end, and the differentiable
  hand (hand.py) turns it into joints.
Convolutions are "same"-padded over the whole window (not causal), as NeuroPose's.
Scaled down (channels 16/32/64) from emg2pose's 32/128/256 for a CPU budget.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from training.models.common import check_common, samples_in
from training.models.hand import NUM_ANGLES, HandKinematics


@dataclass
class NeuroPoseConfig:
    num_channels: int = 8  # EMG electrodes
    sampling_rate_hz: float = 500.0
    window_samples: int | None = None  # None: window_s at sampling_rate_hz
    window_s: float = 1.0  # 500 samples at 500 Hz
    encoder_channels: tuple[int, ...] = (16, 32, 64)
    # time pooling per encoder stage at 500 Hz (500 -> 100 -> 20 -> 10 frames); the
    # first stage's scales with the sampling rate (20 at 2 kHz)
    time_pooling: tuple[int, ...] = (5, 5, 2)
    residual_blocks: int = 2
    dropout: float = 0.05
    augment: bool = False  # channel rotation + gain augmentation by the trainer

    def __post_init__(self) -> None:
        if self.window_samples is None:
            self.window_samples = samples_in(self.window_s, self.sampling_rate_hz)
        check_common(self)
        self.encoder_channels = tuple(self.encoder_channels)
        self.time_pooling = tuple(self.time_pooling)
        if len(self.encoder_channels) != len(self.time_pooling):
            raise ValueError(
                "encoder_channels and time_pooling need one entry per stage"
            )
        if self.window_samples < math.prod(self.pooling()[0]):
            raise ValueError(
                f"window_samples {self.window_samples} is shorter than the encoder's "
                f"total time pooling {math.prod(self.pooling()[0])}"
            )

    def pooling(self) -> tuple[list[int], list[int]]:
        """(time pooling, electrode pooling) per encoder stage, at this rate."""
        scale = max(1, round(self.sampling_rate_hz / 500.0))
        time = [self.time_pooling[0] * scale, *self.time_pooling[1:]]
        electrodes, remaining = [], self.num_channels
        for _ in time:
            electrodes.append(2 if remaining > 1 else 1)
            remaining = math.ceil(remaining / electrodes[-1])
        return time, electrodes

    def electrodes_left(self) -> int:
        remaining = self.num_channels
        for pool in self.pooling()[1]:
            remaining = math.ceil(remaining / pool)
        return remaining


def conv_unit(inputs: int, outputs: int, dropout: float) -> list[nn.Module]:
    return [
        nn.Conv2d(inputs, outputs, 3, padding=1),
        nn.BatchNorm2d(outputs),
        nn.ReLU(),
        nn.Dropout(dropout),
    ]


class ResidualBlock(nn.Module):
    def __init__(self, channels: int, dropout: float):
        super().__init__()
        self.body = nn.Sequential(
            *conv_unit(channels, channels, dropout),
            *conv_unit(channels, channels, dropout),
        )

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return features + self.body(features)  # (B, F, T', E')


class NeuroPose(nn.Module):
    def __init__(self, config: NeuroPoseConfig):
        super().__init__()
        self.config = config
        time_pools, electrode_pools = config.pooling()
        channels = (1, *config.encoder_channels)
        encoder = []
        for index, (time_pool, electrode_pool) in enumerate(
            zip(time_pools, electrode_pools, strict=True)
        ):
            encoder += conv_unit(channels[index], channels[index + 1], config.dropout)
            pool = (time_pool, electrode_pool)
            encoder.append(nn.MaxPool2d(pool, ceil_mode=True))
        self.encoder = nn.Sequential(*encoder)
        self.bottleneck = nn.Sequential(
            *(
                ResidualBlock(channels[-1], config.dropout)
                for _ in range(config.residual_blocks)
            )
        )
        decoder = []
        for index in reversed(range(len(time_pools))):
            outputs = channels[max(index, 1)]
            decoder += conv_unit(channels[index + 1], outputs, config.dropout)
            decoder.append(nn.Upsample(scale_factor=(time_pools[index], 1)))
        self.decoder = nn.Sequential(*decoder)
        self.head = nn.Linear(channels[1] * config.electrodes_left(), NUM_ANGLES)
        self.kinematics = HandKinematics()

    def forward(self, emg: torch.Tensor) -> dict:
        """emg (B, T, C) -> {"joints": (B, 21, 3) mm, "angles": (B, 20) rad,
        "pose": (B, 48)}."""
        image = emg.unsqueeze(1)  # (B, 1, T, C): time × electrodes
        features = self.decoder(self.bottleneck(self.encoder(image)))  # (B, F, T", E')
        last = features[:, :, -1].flatten(1)  # (B, F × E') at the window end
        angles = self.head(last)  # (B, 20) rad
        pose, joints = self.kinematics(angles)
        return {"joints": joints, "angles": angles, "pose": pose}
