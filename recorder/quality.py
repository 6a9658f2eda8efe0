"""Per-channel signal quality of raw EMG, for the live page and the signal check.

Computed on the last second or so of raw samples (µV):
- rms_uv: overall level. Healthy forearm EMG at rest is a few µV to tens of µV.
- noise_floor_uv: the quietest moments' level (10th percentile of 50 ms RMS), what
  the channel shows with the muscles relaxed; bursts of activity do not raise it.
- line_noise_ratio: share of power within ±2 Hz of the mains frequency and its
  first harmonic, after removing the mean. Above ~0.5 the electrode contact is poor.
- clipped_fraction: share of samples at the amplifier's rails.
- flat: the channel barely moves (disconnected electrode or dead channel).
- noisy: far louder than the band's other channels (a lifted or loose electrode
  picks up broadband noise; muscle activity raises neighbouring channels together).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

FLAT_STD_UV = 0.5
CLIP_LEVEL_UV = 0.98 * 6000.0  # MindRove's input range is about ±6 mV
LINE_NOISE_BAD_RATIO = 0.5
CLIPPED_BAD_FRACTION = 0.01
NOISY_RMS_RATIO = 5.0  # times the median RMS of all channels
NOISE_FLOOR_WINDOW_S = 0.05
NOISE_FLOOR_PERCENTILE = 10


@dataclass(frozen=True)
class ChannelQuality:
    rms_uv: float
    line_noise_ratio: float
    clipped_fraction: float
    flat: bool
    noisy: bool = False
    noise_floor_uv: float = 0.0

    @property
    def problem(self) -> str:
        """Advice for the person wearing the band, or "" when the channel looks fine."""
        if self.flat:
            return "flat: electrode not touching the skin, or channel dead"
        if self.clipped_fraction > CLIPPED_BAD_FRACTION:
            return "clipping: reseat the band, check for a loose electrode"
        if self.line_noise_ratio > LINE_NOISE_BAD_RATIO:
            return "mains hum: poor contact; moisten the skin or tighten the band"
        if self.noisy:
            return "noisy: far louder than the others; check this electrode's contact"
        return ""

    def as_dict(self) -> dict:
        return {**asdict(self), "problem": self.problem}


def channel_quality(
    emg_uv: np.ndarray, sampling_rate_hz: float, line_frequency_hz: float = 50.0
) -> list[ChannelQuality]:
    """Quality of each channel of `emg_uv` (n_samples, channels)."""
    centred = emg_uv - emg_uv.mean(axis=0)
    power = np.abs(np.fft.rfft(centred, axis=0)) ** 2  # (freqs, channels)
    freqs_hz = np.fft.rfftfreq(len(emg_uv), 1.0 / sampling_rate_hz)
    near_mains = np.zeros_like(freqs_hz, dtype=bool)
    for harmonic_hz in (line_frequency_hz, 2 * line_frequency_hz):
        near_mains |= np.abs(freqs_hz - harmonic_hz) <= 2.0
    total = power[1:].sum(axis=0) + 1e-12
    line_ratio = power[near_mains].sum(axis=0) / total
    rms = np.sqrt((centred**2).mean(axis=0))
    clipped = (np.abs(emg_uv) >= CLIP_LEVEL_UV).mean(axis=0)
    std = centred.std(axis=0)
    noisy = rms > NOISY_RMS_RATIO * max(float(np.median(rms)), FLAT_STD_UV)
    floor = noise_floor_uv(centred, sampling_rate_hz)
    return [
        ChannelQuality(
            float(rms[c]),
            float(line_ratio[c]),
            float(clipped[c]),
            bool(std[c] < FLAT_STD_UV),
            bool(noisy[c]),
            float(floor[c]),
        )
        for c in range(emg_uv.shape[1])
    ]


def noise_floor_uv(centred_uv: np.ndarray, sampling_rate_hz: float) -> np.ndarray:
    """Per channel (channels,): the 10th percentile of the RMS in 50 ms windows of
    `centred_uv` (n_samples, channels); the plain RMS when under one window."""
    window = max(1, int(NOISE_FLOOR_WINDOW_S * sampling_rate_hz))
    windows = len(centred_uv) // window
    if windows < 2:
        return np.sqrt((centred_uv**2).mean(axis=0))
    blocks = centred_uv[: windows * window].reshape(windows, window, -1)
    block_rms = np.sqrt((blocks**2).mean(axis=1))  # (windows, channels)
    return np.percentile(block_rms, NOISE_FLOOR_PERCENTILE, axis=0)


class RecentSamples:
    """A ring buffer of the most recent samples of every channel."""

    def __init__(self, num_channels: int, capacity: int):
        self.buffer = np.zeros((capacity, num_channels), np.float32)
        self.filled = 0
        self.end = 0

    def extend(self, emg: np.ndarray) -> None:
        emg = emg[-len(self.buffer) :]
        first = min(len(emg), len(self.buffer) - self.end)
        self.buffer[self.end : self.end + first] = emg[:first]
        self.buffer[: len(emg) - first] = emg[first:]
        self.end = (self.end + len(emg)) % len(self.buffer)
        self.filled = min(self.filled + len(emg), len(self.buffer))

    def latest(self) -> np.ndarray:
        """The buffered samples, oldest first."""
        if self.filled < len(self.buffer):
            return self.buffer[: self.filled].copy()
        return np.roll(self.buffer, -self.end, axis=0)
