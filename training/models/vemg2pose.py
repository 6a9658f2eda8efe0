"""vemg2pose, after emg2pose (001_*): a TDS featurizer and an LSTM that integrates
joint-angle velocities.

- Featurizer: a strided Conv1d block, then a TDS stage (Hannun et al.'s time-depth
  separable convolutions, as emg2pose): a strided input conv, then blocks of a 2-D
  conv over time only (channels × width feature layout) and a fully connected
  block, each residual with LayerNorm. All convolutions are "valid", so the network
  is causal. emg2pose strides 2 kHz EMG by 80 in all (25 Hz features); at 500 Hz that
  would leave 6.25 Hz, so the total stride here is sampling_rate_hz /
  feature_rate_hz (10 at 500 Hz, 40 at 2 kHz) for ~50 Hz features, emg2pose's
  rollout rate.
- Decoder (VEMG2PoseWithInitialState): an LSTM stepped over the feature frames,
  conditioned on its previous angles. For the first `position_s` it predicts the
  angles themselves (the initial state, since the regression task gives none), then
  angular velocities that are integrated: angles_t = angles_(t-1) + velocity_t.
- The angles at the window end go through the differentiable hand (hand.py) to
  joints.
Scaled down from emg2pose's widths for 8 channels and a CPU budget.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from training.models.common import check_common, samples_in
from training.models.hand import NUM_ANGLES, HandKinematics

VELOCITY_INIT_SCALE = 0.05


@dataclass
class VEmg2PoseConfig:
    num_channels: int = 8  # EMG electrodes
    sampling_rate_hz: float = 500.0
    window_samples: int | None = None  # None: window_s at sampling_rate_hz
    window_s: float = 1.0  # 500 samples at 500 Hz
    feature_rate_hz: float = 50.0  # TDS output = rollout rate
    stage_stride: int = 2  # of the TDS stage's input conv; the first conv does the rest
    conv_channels: int = 64  # first conv block (emg2pose: 256 for 16 channels)
    tds_channels: int = 4  # TDS layout: channels × width = conv_channels
    tds_blocks: int = 2
    tds_kernel: int = 5  # feature frames (100 ms at 50 Hz)
    lstm_hidden: int = 128
    lstm_layers: int = 2
    position_s: float = 0.25  # predict positions this long, then velocities
    dropout: float = 0.1
    augment: bool = False  # channel rotation + gain augmentation by the trainer

    def __post_init__(self) -> None:
        if self.window_samples is None:
            self.window_samples = samples_in(self.window_s, self.sampling_rate_hz)
        check_common(self)
        if self.conv_channels % self.tds_channels:
            raise ValueError(
                f"conv_channels ({self.conv_channels}) must be a multiple of "
                f"tds_channels ({self.tds_channels})"
            )
        if feature_frames(self) < 2:
            raise ValueError(
                f"window_samples {self.window_samples} is too short for vemg2pose: "
                "its featurizer leaves fewer than 2 frames"
            )

    @property
    def total_stride(self) -> int:
        """EMG samples per feature frame."""
        stride = round(self.sampling_rate_hz / self.feature_rate_hz)
        return max(self.stage_stride, stride - stride % self.stage_stride)

    @property
    def first_stride(self) -> int:
        return self.total_stride // self.stage_stride


def first_kernel(config: VEmg2PoseConfig) -> int:
    return 2 * config.first_stride  # each frame overlaps its neighbours by half


def stage_kernel(config: VEmg2PoseConfig) -> int:
    return 2 * config.stage_stride


def feature_frames(config: VEmg2PoseConfig) -> int:
    """Feature frames the featurizer leaves from one window."""
    frames = (config.window_samples - first_kernel(config)) // config.first_stride + 1
    frames = (frames - stage_kernel(config)) // config.stage_stride + 1
    return frames - config.tds_blocks * (config.tds_kernel - 1)


def crop_for_stride(signal: torch.Tensor, kernel: int, stride: int) -> torch.Tensor:
    """(B, C, T) -> its last samples such that a valid strided conv's last frame
    ends at the last sample."""
    frames = (signal.shape[-1] - kernel) // stride + 1
    return signal[..., signal.shape[-1] - ((frames - 1) * stride + kernel) :]


class TdsConvBlock(nn.Module):
    """Time-only 2-D conv over a (channels, width) layout, residual, LayerNorm.
    (B, channels × width, T) -> (B, channels × width, T - kernel + 1)."""

    def __init__(self, channels: int, width: int, kernel: int):
        super().__init__()
        self.channels, self.width, self.kernel = channels, width, kernel
        self.conv = nn.Conv2d(channels, channels, (1, kernel))
        self.norm = nn.LayerNorm(channels * width)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        batch, _, frames = features.shape
        grid = features.reshape(batch, self.channels, self.width, frames)
        out = torch.relu(self.conv(grid)).reshape(batch, -1, frames - self.kernel + 1)
        out = out + features[..., self.kernel - 1 :]
        return self.norm(out.transpose(1, 2)).transpose(1, 2)


class TdsFullyConnectedBlock(nn.Module):
    """Per-frame Linear-ReLU-Linear, residual, LayerNorm. (B, F, T) -> (B, F, T)."""

    def __init__(self, features: int):
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Linear(features, features), nn.ReLU(), nn.Linear(features, features)
        )
        self.norm = nn.LayerNorm(features)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        frames = features.transpose(1, 2)  # (B, T, F)
        return self.norm(frames + self.mlp(frames)).transpose(1, 2)


class TdsFeaturizer(nn.Module):
    """(B, T, C) EMG -> (B, conv_channels, frames) features at ~feature_rate_hz."""

    def __init__(self, config: VEmg2PoseConfig):
        super().__init__()
        self.config = config
        width = config.conv_channels // config.tds_channels
        self.first = nn.Conv1d(
            config.num_channels, config.conv_channels, first_kernel(config),
            stride=config.first_stride,
        )  # fmt: skip
        self.first_norm = nn.LayerNorm(config.conv_channels)
        self.stage_conv = nn.Conv1d(
            config.conv_channels, config.conv_channels, stage_kernel(config),
            stride=config.stage_stride,
        )  # fmt: skip
        blocks = []
        for _ in range(config.tds_blocks):
            blocks.append(TdsConvBlock(config.tds_channels, width, config.tds_kernel))
            blocks.append(TdsFullyConnectedBlock(config.conv_channels))
        self.blocks = nn.Sequential(*blocks)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, emg: torch.Tensor) -> torch.Tensor:
        config = self.config
        signal = crop_for_stride(
            emg.transpose(1, 2), first_kernel(config), config.first_stride
        )  # (B, C, T')
        features = self.first(signal)  # (B, F, T / first_stride)
        features = torch.relu(self.first_norm(features.transpose(1, 2)))
        features = self.dropout(features).transpose(1, 2)
        features = crop_for_stride(features, stage_kernel(config), config.stage_stride)
        features = self.stage_conv(features)  # (B, F, frames + context)
        return self.blocks(features)  # (B, F, frames)


class VelocityDecoder(nn.Module):
    """The state-conditioned LSTM rollout; (B, F, frames) -> angles (B, 20) rad at
    the last frame."""

    def __init__(self, config: VEmg2PoseConfig):
        super().__init__()
        self.position_steps = max(1, round(config.position_s * config.feature_rate_hz))
        sizes = [config.conv_channels + NUM_ANGLES] + [config.lstm_hidden] * (
            config.lstm_layers
        )
        self.cells = nn.ModuleList(
            nn.LSTMCell(inputs, config.lstm_hidden) for inputs in sizes[:-1]
        )
        # per step: [positions (20), velocities (20)]
        self.out = nn.Linear(config.lstm_hidden, 2 * NUM_ANGLES)
        # Velocities start near zero: summed over ~40 frames, default-sized ones
        # start the rollout far from any hand and training crawls back from there.
        with torch.no_grad():
            self.out.weight[NUM_ANGLES:] *= VELOCITY_INIT_SCALE
            self.out.bias[NUM_ANGLES:] = 0.0

    def forward(self, features: torch.Tensor, initial_angles=None) -> torch.Tensor:
        """`initial_angles` (B, 20) rad: the tracking task's given start pose; the
        rollout then integrates velocities from it from the first frame."""
        batch, _, frames = features.shape
        angles = features.new_zeros(batch, NUM_ANGLES)  # regression: no initial state
        position_steps = self.position_steps
        if initial_angles is not None:
            angles, position_steps = initial_angles.to(features.dtype), 0
        states = [None] * len(self.cells)
        for step in range(frames):
            hidden = torch.cat([features[:, :, step], angles], 1)  # (B, F + 20)
            for index, cell in enumerate(self.cells):
                states[index] = cell(hidden, states[index])
                hidden = states[index][0]  # (B, H)
            position, velocity = self.out(hidden).chunk(2, dim=1)  # (B, 20) each
            angles = position if step < position_steps else angles + velocity
        return angles


class VEmg2Pose(nn.Module):
    def __init__(self, config: VEmg2PoseConfig):
        super().__init__()
        self.config = config
        self.featurizer = TdsFeaturizer(config)
        self.decoder = VelocityDecoder(config)
        self.kinematics = HandKinematics()

    def forward(self, emg: torch.Tensor, initial_angles=None) -> dict:
        """emg (B, T, C) -> {"joints": (B, 21, 3) mm, "angles": (B, 20) rad,
        "pose": (B, 48)}. `initial_angles` (B, 20): the tracking task's start pose."""
        angles = self.decoder(self.featurizer(emg), initial_angles)
        pose, joints = self.kinematics(angles)
        return {"joints": joints, "angles": angles, "pose": pose}
