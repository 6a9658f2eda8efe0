"""Is the arm at rest? Band-passed EMG power over the last 100 ms.

A quiet arm gives the model nothing to read, so its pose there is a guess. The
test is honest and cheap: per channel, the RMS of the band-passed EMG over the
last `REST_WINDOW_S`, divided by that channel's standard deviation over the
training data (its typical level while the person moved); the arm rests when the
mean of these ratios is below `rest_fraction`. On the simulator, rest sits at
~0.1 of the training level and the lightest gesture (a thumb flexion) at ~0.3.
"""

from __future__ import annotations

import numpy as np

REST_WINDOW_S = 0.1
DEFAULT_REST_FRACTION = 0.2


class RestDetector:
    def __init__(
        self,
        training_std_uv: np.ndarray,
        sampling_rate_hz: float,
        rest_fraction: float = DEFAULT_REST_FRACTION,
    ) -> None:
        self.training_std_uv = np.asarray(training_std_uv, np.float64)  # (C,)
        self.window_samples = max(1, round(REST_WINDOW_S * sampling_rate_hz))
        self.rest_fraction = rest_fraction
        # the mean over channels of rms / std is a dot product with these
        num_channels = len(self.training_std_uv)
        self._channel_weights = 1.0 / (num_channels * self.training_std_uv)
        self.reset()

    def reset(self) -> None:
        """Forget the stream: until a window fills, the RMS is over what there is."""
        self._history = np.zeros((0, len(self.training_std_uv)), np.float32)
        self._recent = self._history

    def advance(self, filtered_uv: np.ndarray) -> None:
        """Take the next band-passed chunk (n, C) µV; `is_rest` then reads it."""
        keep = self.window_samples - 1  # the samples before the chunk that count
        self._history = self._recent[max(0, len(self._recent) - keep) :]
        self._recent = np.concatenate([self._history, filtered_uv])

    def is_rest(self, ends: list[int]) -> np.ndarray:
        """(m,) bool: whether the arm rests in the windows ending at samples `ends`
        of the chunk last given to `advance`."""
        levels = []
        for end in ends:  # usually one or two: a loop beats a cumulative sum
            stop = len(self._history) + end + 1
            levels.append(
                self._level(self._recent[max(0, stop - self.window_samples) : stop])
            )
        return np.array(levels) < self.rest_fraction

    def _level(self, window_uv: np.ndarray) -> float:
        """Mean over channels of the window's RMS / the training std."""
        squares_uv2 = np.square(window_uv, dtype=np.float64)
        mean_squares_uv2 = np.add.reduce(squares_uv2, axis=0) / len(window_uv)
        return float(np.dot(np.sqrt(mean_squares_uv2), self._channel_weights))
