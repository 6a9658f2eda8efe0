"""One-Euro smoothing of live joints (Casiez, Roussel & Vogel, CHI 2012).

A low-pass filter whose cutoff rises with speed: slow movements (where jitter
shows) are smoothed hard, fast ones pass with little lag. Each of the 63 joint
coordinates is filtered on its own; speeds are in mm/s.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class OneEuroConfig:
    min_cutoff_hz: float = 1.0  # cutoff at rest: lower = smoother, more lag
    beta: float = 0.05  # cutoff rise per mm/s of speed: higher = less lag when fast
    d_cutoff_hz: float = 1.0  # low-pass on the speed estimate itself

    def __post_init__(self) -> None:
        if not (self.min_cutoff_hz > 0 and self.d_cutoff_hz > 0):
            raise ValueError(
                f"One-Euro cutoffs must be positive, got min_cutoff_hz "
                f"{self.min_cutoff_hz} and d_cutoff_hz {self.d_cutoff_hz}"
            )
        if not self.beta >= 0:
            raise ValueError(f"One-Euro beta must be 0 or more, got {self.beta}")


def _smoothing_factor(cutoff_hz, elapsed_s: float):
    """Exponential smoothing weight of the new value for a first-order low-pass."""
    time_constant_s = 1.0 / (2 * math.pi * cutoff_hz)
    return 1.0 / (1.0 + time_constant_s / elapsed_s)


class OneEuroFilter:
    """Stateful; `config` may be replaced at any time and applies from the next
    value on."""

    def __init__(self, config: OneEuroConfig) -> None:
        self.config = config
        self.reset()

    def reset(self) -> None:
        self._last_time_s: float | None = None
        self._value: np.ndarray | None = None
        self._speed: np.ndarray | None = None

    def __call__(self, value: np.ndarray, time_s: float) -> np.ndarray:
        """value (any shape) at `time_s` -> smoothed value, same shape, float32."""
        value = np.asarray(value, np.float64)
        if self._last_time_s is None:
            self._value, self._speed = value, np.zeros_like(value)
            self._last_time_s = time_s
        elif time_s > self._last_time_s:
            self._update(value, time_s - self._last_time_s)
            self._last_time_s = time_s
        return self._value.astype(np.float32)

    def _update(self, value: np.ndarray, elapsed_s: float) -> None:
        speed = (value - self._value) / elapsed_s
        speed_weight = _smoothing_factor(self.config.d_cutoff_hz, elapsed_s)
        self._speed = self._speed + speed_weight * (speed - self._speed)
        cutoff_hz = self.config.min_cutoff_hz + self.config.beta * np.abs(self._speed)
        weight = _smoothing_factor(cutoff_hz, elapsed_s)
        self._value = self._value + weight * (value - self._value)
