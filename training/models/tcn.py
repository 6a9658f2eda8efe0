"""tcn: a small causal temporal-conv network on learned EMG envelopes (our design).

Why this shape:
- Surface EMG is band-limited noise whose power follows muscle activation, and
  activation sets the pose (holding a fist takes force) and its changes. So the
  front end is a learned filter bank (a Conv1d mixing electrodes and frequencies,
  ~16 ms long), squared and averaged into 20 ms frames, then logged: log-power
  envelopes at 50 Hz, the classic EMG feature, learned end to end. It throws away
  the carrier early, so everything after it runs at 50 Hz instead of 500 Hz: cheap.
- A causal dilated TCN (kernel 3, dilations 1..16) over the envelopes sees ~1.27 s,
  enough to average noisy envelopes and to read motion from their changes, without
  the sequential cost of an LSTM (every frame is computed in parallel).
- Heads on the last frame: 20 joint angles and a joint correction; the joints are
  forward kinematics of the angles (an anatomically valid hand with the model's
  bone lengths) plus the correction (for labels that are not exactly 20-DOF, and
  the person's bone lengths). The trainer's MPJPE reaches both heads through the
  joints, its angle L1 reaches the angles directly.
- Channel dropout (whole electrodes) makes it robust to a bad or shifted electrode.
- ~100k parameters: it fits many epochs into a short CPU budget.

Causality and streaming: every convolution sees only the past, and the default
window is exactly the receptive field, so the window-end output depends on all of
the window and on nothing before it. Live inference can therefore run it on a
sliding window, or stream it frame by frame with per-layer caches (the front end
advances in whole frames: `frame_samples`), and get exactly the window result.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional

from training.models.common import check_common, samples_in
from training.models.hand import NUM_ANGLES, NUM_JOINTS, HandKinematics

POWER_FLOOR = 1e-4  # added before the log; inputs are normalized to unit variance


@dataclass
class TcnConfig:
    num_channels: int = 8  # EMG electrodes
    sampling_rate_hz: float = 500.0
    window_samples: int | None = None  # None: the receptive field (317 at 500 Hz)
    frame_rate_hz: float = 50.0  # envelope frames; 10 samples each at 500 Hz
    filter_s: float = 0.016  # front-end filter length; 8 samples at 500 Hz
    filters: int = 32  # learned spatial-spectral filters
    hidden: int = 64  # TCN channels
    kernel: int = 3  # frames
    dilations: tuple[int, ...] = (1, 2, 4, 8)  # receptive field 31 frames, 0.63 s
    channel_dropout: float = 0.1  # chance of silencing a whole electrode (training)
    dropout: float = 0.1
    augment: bool = False  # channel rotation + gain augmentation by the trainer

    def __post_init__(self) -> None:
        self.dilations = tuple(self.dilations)
        if self.window_samples is None:
            self.window_samples = self.receptive_field_samples
        check_common(self)
        if not _each_a_multiple_of_the_last(self.dilations):
            raise ValueError(
                f"each of the dilations {self.dilations} must be a multiple of the "
                "one before it"
            )
        if self.window_samples < self.filter_samples - 1 + self.frame_samples:
            raise ValueError(
                f"window_samples {self.window_samples} is shorter than one tcn frame "
                f"({self.filter_samples - 1 + self.frame_samples} samples)"
            )

    @property
    def frame_samples(self) -> int:
        """EMG samples per envelope frame."""
        return samples_in(1.0 / self.frame_rate_hz, self.sampling_rate_hz)

    @property
    def filter_samples(self) -> int:
        return samples_in(self.filter_s, self.sampling_rate_hz)

    @property
    def receptive_field_frames(self) -> int:
        return 1 + (self.kernel - 1) * sum(self.dilations)

    @property
    def receptive_field_samples(self) -> int:
        """EMG samples the window-end output depends on."""
        frames = self.receptive_field_frames
        return frames * self.frame_samples + self.filter_samples - 1


def _each_a_multiple_of_the_last(dilations: tuple[int, ...]) -> bool:
    """The pyramid evaluation (Tcn.end_features) needs this."""
    steps = (1, *dilations)
    return all(steps[i + 1] % steps[i] == 0 for i in range(len(dilations)))


class EnvelopeFrontEnd(nn.Module):
    """(B, T, C) EMG -> (B, hidden, frames) log-power envelopes, causal; the last
    frame ends at the last sample."""

    def __init__(self, config: TcnConfig):
        super().__init__()
        self.frame_samples = config.frame_samples
        self.channel_dropout = nn.Dropout1d(config.channel_dropout)
        self.filter_bank = nn.Conv1d(
            config.num_channels, config.filters, config.filter_samples, bias=False
        )
        self.norm = nn.BatchNorm1d(config.filters)
        self.project = nn.Conv1d(config.filters, config.hidden, 1)

    def forward(self, emg: torch.Tensor) -> torch.Tensor:
        signal = self.channel_dropout(emg.transpose(1, 2))  # (B, C, T)
        filtered = self.filter_bank(signal)  # (B, F, T - filter + 1)
        frames = filtered.shape[-1] // self.frame_samples
        filtered = filtered[..., filtered.shape[-1] - frames * self.frame_samples :]
        power = functional.avg_pool1d(filtered * filtered, self.frame_samples)
        envelope = self.norm(torch.log(power + POWER_FLOOR))  # (B, F, frames)
        return self.project(envelope)  # (B, hidden, frames)


class TemporalBlock(nn.Module):
    """Residual causal dilated conv: (B, H, T) -> (B, H, T). The dilation is an
    argument: the same weights run dilated at the full frame rate (streaming) or
    undilated on frames already subsampled by the dilation (window end only)."""

    def __init__(self, channels: int, kernel: int, dropout: float):
        super().__init__()
        self.conv = nn.Conv1d(channels, channels, kernel)
        self.mix = nn.Conv1d(channels, channels, 1)
        self.dropout = nn.Dropout(dropout)

    def forward(self, features: torch.Tensor, dilation: int = 1) -> torch.Tensor:
        reach = dilation * (self.conv.kernel_size[0] - 1)
        padded = functional.pad(features, (reach, 0))  # causal: the past only
        conv = functional.conv1d(
            padded, self.conv.weight, self.conv.bias, dilation=dilation
        )
        return features + self.mix(self.dropout(functional.gelu(conv)))

    def step(
        self, features: torch.Tensor, past: torch.Tensor, dilation: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Streaming: new frames (B, H, k) and the `reach` input frames before them
        (B, H, reach; zeros at the stream start, as `forward`'s causal padding) ->
        (output (B, H, k), the `past` for the next step).

        The conv is one matmul over its stacked taps: a dilated conv1d on so few
        frames goes through a slow general path (~10x the cost on a CPU)."""
        kernel = self.conv.kernel_size[0]
        frames = features.shape[-1]
        extended = torch.cat([past, features], dim=-1)  # (B, H, reach + k)
        taps = torch.stack(
            [extended[..., tap * dilation : tap * dilation + frames]
             for tap in range(kernel)], dim=2,
        )  # (B, H, kernel, k): the weight's (H, H, kernel) layout  # fmt: skip
        conv = torch.matmul(self.conv.weight.flatten(1), taps.flatten(1, 2))
        conv = conv + self.conv.bias[:, None]  # (B, H, k)
        output = features + self.mix(self.dropout(functional.gelu(conv)))
        reach = dilation * (kernel - 1)
        return output, extended[..., extended.shape[-1] - reach :]


class Tcn(nn.Module):
    def __init__(self, config: TcnConfig):
        super().__init__()
        self.config = config
        self.front_end = EnvelopeFrontEnd(config)
        self.blocks = nn.ModuleList(
            TemporalBlock(config.hidden, config.kernel, config.dropout)
            for _ in config.dilations
        )
        self.angles_head = nn.Linear(config.hidden, NUM_ANGLES)
        # the 20 joints past the wrist, which stays at the origin
        self.correction_head = nn.Linear(config.hidden, (NUM_JOINTS - 1) * 3)
        self.kinematics = HandKinematics()

    def forward(self, emg: torch.Tensor) -> dict:
        """emg (B, T, C) -> {"joints": (B, 21, 3) mm, "angles": (B, 20) rad,
        "pose": (B, 48)}, all at the window end."""
        return self.heads(self.end_features(emg))

    def end_features(self, emg: torch.Tensor) -> torch.Tensor:
        """(B, T, C) -> (B, H) TCN output at the last frame. Only frames spaced by
        a block's dilation back from the end reach the last frame, so each block
        runs undilated on those (a pyramid): the same numbers as the dilated net,
        at ~40% of its cost."""
        features = self.front_end(emg)  # (B, H, frames), frame stride 1
        stride = 1
        for block, dilation in zip(self.blocks, self.config.dilations, strict=True):
            keep = dilation // stride
            features = features[..., (features.shape[-1] - 1) % keep :: keep]
            features, stride = block(features), dilation
        return features[:, :, -1]

    def frame_features(self, emg: torch.Tensor) -> torch.Tensor:
        """(B, T, C) -> (B, H, frames): the dilated net at every frame, as a
        streaming implementation computes it; frame f ends at sample
        T - 1 - (frames - 1 - f) * frame_samples."""
        features = self.front_end(emg)
        for block, dilation in zip(self.blocks, self.config.dilations, strict=True):
            features = block(features, dilation)
        return features

    def initial_stream_state(self, batch: int = 1) -> list[torch.Tensor]:
        """Per-block past frames for `stream_features` at a stream's start: zeros,
        exactly the causal padding `frame_features` sees."""
        reference = self.angles_head.weight
        return [
            reference.new_zeros(
                batch, self.config.hidden, dilation * (self.config.kernel - 1)
            )
            for dilation in self.config.dilations
        ]

    def stream_features(
        self, emg: torch.Tensor, state: list[torch.Tensor]
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Streaming `frame_features`: (B, T, C) EMG holding k new frames, T =
        filter_samples - 1 + k * frame_samples (the filter's history, then the
        frames), and the per-block state -> (features (B, H, k), the next state).
        Fed a stream frame by frame from `initial_stream_state`, it gives the
        numbers `frame_features` gives on the whole stream, each frame's work once."""
        features = self.front_end(emg)  # (B, H, k)
        next_state = []
        for block, dilation, past in zip(
            self.blocks, self.config.dilations, state, strict=True
        ):
            features, past = block.step(features, past, dilation)
            next_state.append(past)
        return features, next_state

    def heads(self, features: torch.Tensor) -> dict:
        """(B, H) features -> the output dict."""
        last = functional.gelu(features)
        angles = self.angles_head(last)  # (B, 20) rad
        pose, hand_joints = self.kinematics(angles)
        correction = self.correction_head(last).unflatten(1, (NUM_JOINTS - 1, 3))
        correction = functional.pad(correction, (0, 0, 1, 0))  # (B, 21, 3) mm
        return {"joints": hand_joints + correction, "angles": angles, "pose": pose}
