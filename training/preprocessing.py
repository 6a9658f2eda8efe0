"""EMG preprocessing: a causal band-pass + mains notch, and per-channel normalization.

The filter is causal and stateful so live inference and training see the same
signal: `filter_emg` (offline, a whole session) is one `CausalFilter` pass, and a
stream cut into chunks of any length gives the same output. Normalization
statistics come from the training split only and are saved in every checkpoint.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy.signal import butter, iirnotch, sosfilt, sosfilt_zi, tf2sos

# The band ends below Nyquist: the Butterworth design needs edges inside (0, fs/2).
MAX_BAND_FRACTION_OF_NYQUIST = 0.9
# A flat (dead) channel has zero variance; dividing by this floor keeps it finite.
# Far below any real electrode's noise floor (a few µV).
MIN_STD_UV = 1e-2


@dataclass
class FilterConfig:
    band_low_hz: float = 20.0
    # Clamped below Nyquist: at 500 Hz (MindRove) the band ends at 0.9 * 250 Hz.
    band_high_hz: float = 450.0
    notch_hz: float | None = 50.0  # mains; 60.0 in the Americas; None: no notch
    order: int = 4  # Butterworth order (the band-pass has 2 * order poles)
    notch_quality: float = 30.0  # notch centre / -3 dB width

    def as_dict(self) -> dict:
        return asdict(self)


def band_edges_hz(config: FilterConfig, sampling_rate_hz: float) -> tuple[float, float]:
    """The band-pass edges (Hz) used at `sampling_rate_hz`: the high edge clamped to
    0.9 × Nyquist. ValueError names the problem when the band is impossible."""
    if not np.isfinite(sampling_rate_hz) or sampling_rate_hz <= 0:
        raise ValueError(f"sampling rate must be positive, got {sampling_rate_hz} Hz")
    nyquist_hz = sampling_rate_hz / 2
    high_hz = min(config.band_high_hz, MAX_BAND_FRACTION_OF_NYQUIST * nyquist_hz)
    if not 0 < config.band_low_hz < high_hz:
        raise ValueError(
            f"band edges must satisfy 0 < low < high; got low {config.band_low_hz} Hz"
            f" and high {high_hz:g} Hz (at {sampling_rate_hz:g} Hz sampling the high"
            f" edge is at most {MAX_BAND_FRACTION_OF_NYQUIST * nyquist_hz:g} Hz)"
        )
    return config.band_low_hz, high_hz


def _notch_sos(config: FilterConfig, sampling_rate_hz: float) -> np.ndarray:
    if not 0 < config.notch_hz < sampling_rate_hz / 2:
        raise ValueError(
            f"notch at {config.notch_hz} Hz must lie between 0 and Nyquist "
            f"({sampling_rate_hz / 2:g} Hz)"
        )
    if config.notch_quality <= 0:
        raise ValueError(f"notch quality must be positive, got {config.notch_quality}")
    b, a = iirnotch(config.notch_hz, config.notch_quality, fs=sampling_rate_hz)
    return tf2sos(b, a)


def design_sos(config: FilterConfig, sampling_rate_hz: float) -> np.ndarray:
    """Second-order sections (S, 6): Butterworth band-pass, then the notch (if any)."""
    if config.order < 1:
        raise ValueError(f"filter order must be at least 1, got {config.order}")
    low_hz, high_hz = band_edges_hz(config, sampling_rate_hz)
    band = butter(
        config.order, [low_hz, high_hz], btype="bandpass", fs=sampling_rate_hz,
        output="sos",
    )  # fmt: skip
    if config.notch_hz is None:
        return band
    return np.concatenate([band, _notch_sos(config, sampling_rate_hz)])


class CausalFilter:
    """Filters a multichannel stream chunk by chunk, carrying the filter state.

    The state starts at the steady state for the first sample of the first chunk,
    so a DC offset gives no start-up transient.
    """

    def __init__(self, sos: np.ndarray, num_channels: int) -> None:
        self.sos = np.asarray(sos, dtype=np.float64)
        self.num_channels = num_channels
        self._unit_state = sosfilt_zi(self.sos)[:, :, None]  # (S, 2, 1)
        self._state: np.ndarray | None = None  # (S, 2, C)

    def reset(self) -> None:
        """Forget the stream: the next chunk starts afresh."""
        self._state = None

    def process(self, emg: np.ndarray) -> np.ndarray:
        """Chunk (n, C) µV -> filtered (n, C) float32 µV."""
        emg = np.asarray(emg, dtype=np.float64)
        if emg.ndim != 2 or emg.shape[1] != self.num_channels:
            raise ValueError(
                f"expected EMG of shape (n, {self.num_channels}), got {emg.shape}"
            )
        if len(emg) == 0:
            return np.zeros((0, self.num_channels), np.float32)
        if self._state is None:
            self._state = self._unit_state * emg[0][None, None, :]
        filtered, self._state = sosfilt(self.sos, emg, axis=0, zi=self._state)
        return filtered.astype(np.float32)


def filter_emg(
    emg: np.ndarray, sampling_rate_hz: float, config: FilterConfig
) -> np.ndarray:
    """A whole recording (N, C) µV -> (N, C) float32, exactly as a live stream
    through a fresh `CausalFilter` would come out."""
    emg = np.asarray(emg)
    if emg.ndim != 2:
        raise ValueError(f"expected EMG of shape (n, C), got {emg.shape}")
    sos = design_sos(config, sampling_rate_hz)
    return CausalFilter(sos, emg.shape[1]).process(emg)


@dataclass
class Normalization:
    """Per-channel z-scoring of filtered EMG, fitted on the training split only."""

    mean: np.ndarray  # (C,) µV
    std: np.ndarray  # (C,) µV, at least MIN_STD_UV

    @classmethod
    def fit(cls, filtered_emg: list[np.ndarray]) -> Normalization:
        """Statistics over all samples of these (N_i, C) arrays together."""
        if not filtered_emg or sum(len(part) for part in filtered_emg) == 0:
            raise ValueError("cannot fit a normalization on no EMG samples")
        channels = {part.shape[1] for part in filtered_emg}
        if len(channels) > 1:
            raise ValueError(f"EMG parts differ in channel count: {sorted(channels)}")
        samples = np.concatenate(filtered_emg).astype(np.float64)  # (N, C)
        std = np.maximum(samples.std(axis=0), MIN_STD_UV)
        return cls(mean=samples.mean(axis=0), std=std)

    @property
    def num_channels(self) -> int:
        return len(self.mean)

    def apply(self, filtered_emg: np.ndarray) -> np.ndarray:
        """(N, C) µV -> (N, C) float32, zero mean and unit variance per channel."""
        if filtered_emg.shape[-1] != self.num_channels:
            raise ValueError(
                f"normalization is for {self.num_channels} channels, the EMG has "
                f"{filtered_emg.shape[-1]}"
            )
        return ((filtered_emg - self.mean) / self.std).astype(np.float32)

    def as_dict(self) -> dict:
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}

    @classmethod
    def from_dict(cls, values: dict) -> Normalization:
        mean = np.asarray(values["mean"], dtype=np.float64)
        std = np.asarray(values["std"], dtype=np.float64)
        if mean.ndim != 1 or mean.shape != std.shape:
            raise ValueError(
                f"normalization mean and std must be equal-length lists, got "
                f"{mean.shape} and {std.shape}"
            )
        if not np.all(std > 0):
            raise ValueError("normalization std must be positive for every channel")
        return cls(mean=mean, std=std)
