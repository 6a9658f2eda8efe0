"""The seed paper's EMG networks (000_*, Section III-C), the ones to beat.

Both share one backbone: Conv1D (C -> 64 -> 128) extracting spatial patterns, then a
2-layer LSTM (256 hidden) over a 50-sample window (100 ms at 500 Hz); the last step's
hidden state feeds a linear head.
- v4 (EMG -> MANO θ): 45 finger axis-angles, turned into joints by forward kinematics
  with a zero global orient, so it trains on MPJPE through the hand model. ~1.0M
  parameters. The seed measured 34.92 mm.
- v5 (EMG -> joints): 63 values, 21 joints × 3 mm, straight out of the head (MPJPE
  loss). ~1.0M parameters. The seed measured 14.92 mm (on a random window split).
  Its head's bias starts at the rest hand (`start_at_rest_hand`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from training.models.common import check_common
from training.models.hand import (
    NUM_JOINTS,
    HandKinematics,
    pose_from_finger_pose,
    start_at_rest_hand,
)


@dataclass
class SeedConfig:
    num_channels: int = 8  # EMG electrodes (MindRove armband)
    sampling_rate_hz: float = 500.0
    window_samples: int = 50  # 100 ms at 500 Hz, as the seed
    conv_channels: tuple[int, int] = (64, 128)  # the seed's Conv1D (C -> 64 -> 128)
    kernel_size: int = 5  # samples; 10 ms at 500 Hz ("same" padding)
    lstm_hidden: int = 256
    lstm_layers: int = 2
    dropout: float = 0.0  # between the LSTM layers; the seed names none
    augment: bool = False  # channel rotation + gain augmentation by the trainer

    def __post_init__(self) -> None:
        self.conv_channels = tuple(self.conv_channels)  # a list, from JSON
        check_common(self)


class SeedBackbone(nn.Module):
    """Conv1D ×2 + LSTM; (B, T, C) EMG -> (B, lstm_hidden) at the window end."""

    def __init__(self, config: SeedConfig):
        super().__init__()
        first, second = config.conv_channels
        padding = config.kernel_size // 2
        self.conv = nn.Sequential(
            nn.Conv1d(config.num_channels, first, config.kernel_size, padding=padding),
            nn.ReLU(),
            nn.Conv1d(first, second, config.kernel_size, padding=padding),
            nn.ReLU(),
        )
        self.lstm = nn.LSTM(
            second,
            config.lstm_hidden,
            num_layers=config.lstm_layers,
            batch_first=True,
            dropout=config.dropout if config.lstm_layers > 1 else 0.0,
        )

    def forward(self, emg: torch.Tensor) -> torch.Tensor:
        features = self.conv(emg.transpose(1, 2))  # (B, 128, T)
        hidden, _ = self.lstm(features.transpose(1, 2))  # (B, T, H)
        return hidden[:, -1]  # (B, H)


class SeedThetaModel(nn.Module):
    """v4: EMG -> 45 MANO finger θ -> joints by forward kinematics."""

    def __init__(self, config: SeedConfig):
        super().__init__()
        self.config = config
        self.backbone = SeedBackbone(config)
        self.head = nn.Linear(config.lstm_hidden, 45)
        self.kinematics = HandKinematics()

    def forward(self, emg: torch.Tensor) -> dict:
        """emg (B, T, C) -> {"joints": (B, 21, 3) mm, "pose": (B, 48)}."""
        pose = pose_from_finger_pose(self.head(self.backbone(emg)))  # (B, 48)
        return {"joints": self.kinematics.joints_from_pose(pose), "pose": pose}


class SeedJointsModel(nn.Module):
    """v5: EMG -> 63 joint coordinates (mm) directly."""

    def __init__(self, config: SeedConfig):
        super().__init__()
        self.config = config
        self.backbone = SeedBackbone(config)
        self.head = nn.Linear(config.lstm_hidden, NUM_JOINTS * 3)
        start_at_rest_hand(self.head)

    def forward(self, emg: torch.Tensor) -> dict:
        """emg (B, T, C) -> {"joints": (B, 21, 3) mm}."""
        joints = self.head(self.backbone(emg))  # (B, 63)
        return {"joints": joints.unflatten(1, (NUM_JOINTS, 3))}
