"""What the zoo's models share: config checks and small layers."""

from __future__ import annotations


def check_common(config) -> None:
    """ValueError, naming the field, for impossible shared settings."""
    if config.num_channels < 1:
        raise ValueError(f"num_channels must be >= 1, got {config.num_channels}")
    if not config.sampling_rate_hz > 0:
        raise ValueError(
            f"sampling_rate_hz must be positive, got {config.sampling_rate_hz}"
        )
    if config.window_samples is not None and config.window_samples < 1:
        raise ValueError(f"window_samples must be >= 1, got {config.window_samples}")


def samples_in(seconds: float, sampling_rate_hz: float) -> int:
    """How many samples `seconds` holds at `sampling_rate_hz` (at least 1)."""
    return max(1, round(seconds * sampling_rate_hz))
