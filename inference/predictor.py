"""The live predictor: EMG chunks in, hand poses out at a fixed rate.

Stateful and causal, so each update does only the new samples' work:
- the checkpoint's band-pass + notch (`CausalFilter`) carries its state from
  chunk to chunk, so the stream is filtered exactly as the whole recording would be;
- the training normalization is applied per sample;
- the model runs incrementally (`inference.runners`): a tcn with per-layer caches
  at its 20 ms frame rate (in numpy on CPU: `inference.tcn_numpy`); window models
  (v4, v5, vemg2pose, neuropose) on their short window of recent samples,
  recomputed for each output.
Every pose is the model's output on the window ending at its `time_s` sample:
the same number offline evaluation gives there.

Output rate: ticks every 1 / output_rate_hz from the stream's first sample. The
pose for a tick is the newest output whose input ends at or before it: the window
ending at the tick's sample for window models; the newest complete frame for a
tcn. A model output is emitted once, as soon as it is computed (nothing waits for
the tick), so a tcn emits at min(output rate, 50 Hz frame rate), never the same
output twice. Ticks that fall in a gap between chunks' timestamps are skipped.

Start and bad input: the first window (0.1 s for v5, 0.63 s for tcn) gives no
pose. A sample with a NaN or inf on any channel cannot be filtered, so the stream
restarts after it (filter, window and caches forgotten); until a fresh window has
filled, each tick repeats the last good pose as status "held".

Threads: `from_checkpoint` sets torch and numpy's BLAS to one thread for the
process (torch runs the window models; a tcn on CPU runs in numpy). An update
works on a few hundred samples; splitting such small tensors across threads costs
more in synchronisation than it saves, and the server runs many predictors side
by side, each best on one core.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from inference.frames import InferenceInputError, PoseFrame
from inference.rest import DEFAULT_REST_FRACTION, RestDetector
from inference.runners import runner_for
from inference.smoothing import OneEuroConfig, OneEuroFilter
from training.checkpoint import LoadedModel, load_model
from training.preprocessing import CausalFilter, design_sos

# Tick arithmetic is in ticks: this slack absorbs float round-off in unix times.
TICK_SLACK = 1e-6


class LivePredictor:
    """One live stream's predictor. Not thread-safe: one stream, one caller."""

    def __init__(
        self,
        loaded: LoadedModel,
        output_rate_hz: float = 60.0,
        smoothing: OneEuroConfig | None = None,
        device: str | torch.device = "cpu",
        rest_fraction: float = DEFAULT_REST_FRACTION,
    ) -> None:
        if not (math.isfinite(output_rate_hz) and output_rate_hz > 0):
            raise ValueError(f"output rate must be positive, got {output_rate_hz} Hz")
        self.loaded = loaded
        self.output_rate_hz = float(output_rate_hz)
        self.device = torch.device(device)
        self._filter = CausalFilter(
            design_sos(loaded.filter_config, loaded.sampling_rate_hz),
            self.num_channels,
        )
        self._rest = RestDetector(
            loaded.normalization.std, loaded.sampling_rate_hz, rest_fraction
        )
        self._runner = runner_for(loaded.model.to(self.device).eval(), self.device)
        self._smoother = OneEuroFilter(smoothing) if smoothing else None
        self.reset()

    @classmethod
    def from_checkpoint(
        cls,
        path: str | Path,
        output_rate_hz: float = 60.0,
        smoothing: OneEuroConfig | None = None,
        device: str | torch.device = "cpu",
    ) -> LivePredictor:
        """A predictor for the model in checkpoint `path` (the file alone: config,
        weights, filter and normalization). CheckpointError for a bad file."""
        torch.set_num_threads(1)  # see the module docstring
        # numpy's BLAS too: OpenBLAS threads a one-frame update's product (it is
        # just big enough), and its idle worker then spins a core between updates
        threadpool_limits(limits=1, user_api="blas")
        return cls(load_model(path, device), output_rate_hz, smoothing, device)

    @property
    def model_name(self) -> str:
        return self.loaded.model_name

    @property
    def num_channels(self) -> int:
        return self.loaded.normalization.num_channels

    @property
    def sampling_rate_hz(self) -> float:
        return self.loaded.sampling_rate_hz

    def check_channels(self, num_channels: int) -> None:
        """InferenceInputError unless a stream of `num_channels` fits the model."""
        if num_channels != self.num_channels:
            raise InferenceInputError(
                f"model {self.model_name} expects {self.num_channels} channels, "
                f"the stream has {num_channels}"
            )

    def set_smoothing(self, config: OneEuroConfig | None) -> None:
        """One-Euro smoothing from the next pose on; None turns it off. Changing
        the parameters keeps the filter's state, so the output does not jump."""
        if config is None:
            self._smoother = None
        elif self._smoother is None:
            self._smoother = OneEuroFilter(config)
        else:
            self._smoother.config = config

    def reset(self) -> None:
        """Forget the stream entirely, as a fresh predictor."""
        self._restart_stream()
        self._tick_origin_s: float | None = None
        self._next_tick = 0  # index of the first tick not yet consumed
        self._last_pose_mm: np.ndarray | None = None
        if self._smoother is not None:
            self._smoother.reset()

    def _restart_stream(self) -> None:
        """Forget the signal (filter state, window, caches); keep the clock and the
        last pose."""
        self._filter.reset()
        self._rest.reset()
        self._runner.reset()

    def push(self, emg_uv: np.ndarray, first_sample_time_s: float) -> list[PoseFrame]:
        """Take the next chunk, (n, C) float µV, whose first sample is at
        `first_sample_time_s` (agent clock, unix s; the rest follow at the model's
        sampling rate), and return the poses due, oldest first (often none or one).
        InferenceInputError for an array of the wrong shape, dtype or channels."""
        started = time.perf_counter()
        emg = self._checked(emg_uv, first_sample_time_s)
        sample_period_s = 1.0 / self.sampling_rate_hz
        frames = []
        for start, stop, finite in _finite_runs(emg):
            run_start_s = first_sample_time_s + start * sample_period_s
            if finite:
                frames += self._push_finite(emg[start:stop], run_start_s)
            else:
                frames += self._push_unusable(stop - start, run_start_s)
        update_ms = (time.perf_counter() - started) * 1e3
        for frame in frames:
            frame.update_ms = update_ms
        return frames

    def _checked(self, emg_uv, first_sample_time_s) -> np.ndarray:
        if not isinstance(emg_uv, np.ndarray):
            raise InferenceInputError(
                f"EMG must be a numpy array, got {type(emg_uv).__name__}"
            )
        if emg_uv.ndim != 2:
            raise InferenceInputError(
                f"EMG must be 2-D (samples, channels), got shape {emg_uv.shape}"
            )
        if not np.issubdtype(emg_uv.dtype, np.floating):
            raise InferenceInputError(
                f"EMG must be floating-point µV (float32 or float64), got "
                f"{emg_uv.dtype}"
            )
        self.check_channels(emg_uv.shape[1])
        if not math.isfinite(first_sample_time_s):
            raise InferenceInputError(
                f"first_sample_time_s must be a finite time, got {first_sample_time_s}"
            )
        return emg_uv

    def _push_finite(self, emg_uv: np.ndarray, start_s: float) -> list[PoseFrame]:
        filtered_uv = self._filter.process(emg_uv)
        self._rest.advance(filtered_uv)
        self._runner.advance(self.loaded.normalization.apply(filtered_uv))
        sample_period_s = 1.0 / self.sampling_rate_hz
        output_span_s = self._runner.step_samples * sample_period_s
        output_ends = set(self._runner.output_ends())
        warm_from = self._runner.first_output_in_chunk()
        plan = []  # (chunk sample, True for a model output / False for held)
        for sample in range(len(emg_uv)):
            sample_s = start_s + sample * sample_period_s
            if sample < warm_from:
                if self._claims_tick(sample_s, sample_period_s):
                    plan.append((sample, False))
            elif sample in output_ends and self._claims_tick(sample_s, output_span_s):
                plan.append((sample, True))
        return self._frames(plan, start_s)

    def _frames(self, plan: list[tuple[int, bool]], start_s: float) -> list[PoseFrame]:
        outputs = [sample for sample, is_output in plan if is_output]
        if outputs:
            joints_mm = iter(self._runner.joints_at(outputs))
            at_rest = iter(self._rest.is_rest(outputs))
        frames = []
        for sample, is_output in plan:
            time_s = start_s + sample / self.sampling_rate_hz
            if is_output:
                status = "rest" if next(at_rest) else "ok"
                frames.append(self._output_frame(next(joints_mm), time_s, status))
            elif self._last_pose_mm is not None:
                frames.append(PoseFrame(time_s, self._last_pose_mm.copy(), "held"))
        return frames

    def _output_frame(self, joints_mm: np.ndarray, time_s: float, status: str):
        if self._smoother is not None:
            joints_mm = self._smoother(joints_mm, time_s)
        self._last_pose_mm = np.asarray(joints_mm, np.float32)
        return PoseFrame(time_s, self._last_pose_mm.copy(), status)

    def _push_unusable(self, samples: int, start_s: float) -> list[PoseFrame]:
        """NaN/inf samples: the stream restarts after them; ticks repeat the last
        good pose."""
        self._restart_stream()
        sample_period_s = 1.0 / self.sampling_rate_hz
        plan = [
            (sample, False)
            for sample in range(samples)
            if self._claims_tick(start_s + sample * sample_period_s, sample_period_s)
        ]
        return self._frames(plan, start_s)

    def _claims_tick(self, start_s: float, span_s: float) -> bool:
        """Whether an output tick falls in [start_s, start_s + span_s), consuming the
        ticks there; ticks before start_s not yet consumed fell in a gap of the
        stream and are skipped."""
        if self._tick_origin_s is None or self._clock_went_back(start_s):
            self._tick_origin_s, self._next_tick = start_s, 0
        first = max(self._next_tick, self._ticks_until(start_s))
        after = self._ticks_until(start_s + span_s)
        self._next_tick = max(first, after)
        return first < after

    def _clock_went_back(self, time_s: float) -> bool:
        """More than a tick before the ticks already used: the agent's clock was
        reset, so the ticks start again from here."""
        return self._ticks_until(time_s) < self._next_tick - 1

    def _ticks_until(self, time_s: float) -> int:
        """The index of the first tick at or after `time_s`."""
        ticks = (time_s - self._tick_origin_s) * self.output_rate_hz
        return math.ceil(ticks - TICK_SLACK)


def _finite_runs(emg: np.ndarray):
    """(start, stop, finite) for each run of samples that are all finite or not."""
    finite = np.isfinite(emg).all(axis=1)
    if finite.all():  # the usual case, quickly
        return [(0, len(emg), True)] if len(emg) else []
    edges = np.flatnonzero(np.diff(finite)) + 1
    bounds = [0, *edges.tolist(), len(emg)]
    return [
        (start, stop, bool(finite[start]))
        for start, stop in zip(bounds[:-1], bounds[1:], strict=True)
        if stop > start
    ]
