"""Checkpoints and EMG streams for the inference tests, built in code.

`untrained_checkpoint` saves a zoo model with its initial weights and the
normalization of real (simulated) EMG: streaming must reproduce any weights, so
these are as good as trained ones for equivalence and far faster to make. The
trained checkpoints come from `conftest.py`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from recorder.simulation import ArmbandSimulator, SimulatorConfig
from training.checkpoint import save_checkpoint
from training.models import build_model
from training.preprocessing import FilterConfig, Normalization, filter_emg

SAMPLING_RATE_HZ = 500.0
START_TIME_S = 1_760_000_000.0  # a unix time, as the agent's clock gives


def simulated_emg(seconds: float, seed: int = 0, **config) -> np.ndarray:
    """(N, 8) float32 µV of a simulated arm (no bad electrode unless asked)."""
    config = {"bad_channel_probability": 0.0} | config
    simulator = ArmbandSimulator(SimulatorConfig(seed=seed, **config))
    emg, _, _ = simulator.next_emg(round(seconds * SAMPLING_RATE_HZ))
    return emg


def untrained_checkpoint(
    path: Path, model_name: str, num_channels: int = 8, **model_config
) -> Path:
    torch.manual_seed(0)
    model = build_model(model_name, num_channels=num_channels, **model_config)
    emg = simulated_emg(4.0)[:, np.arange(num_channels) % 8]
    filtered = filter_emg(emg, SAMPLING_RATE_HZ, FilterConfig())
    save_checkpoint(path, {
        "model_name": model_name,
        "model_config": vars(model.config),
        "state_dict": model.state_dict(),
        "filter": FilterConfig().as_dict(),
        "normalization": Normalization.fit([filtered]).as_dict(),
        "channel_names": [f"ch{k + 1}" for k in range(num_channels)],
    })  # fmt: skip
    return path


def random_chunks(total: int, rng: np.random.Generator, largest: int = 60):
    """(start, stop) pairs cutting `total` samples into random lengths 1..largest."""
    start = 0
    while start < total:
        stop = min(total, start + int(rng.integers(1, largest + 1)))
        yield start, stop
        start = stop


def stream(predictor, emg: np.ndarray, chunks, start_time_s: float = START_TIME_S):
    """Every frame `predictor` emits for `emg` pushed in `chunks`."""
    frames = []
    for start, stop in chunks:
        chunk_time_s = start_time_s + start / SAMPLING_RATE_HZ
        frames += predictor.push(emg[start:stop], chunk_time_s)
    return frames


def realtime_chunks(total: int, samples: int = 17) -> list[tuple[int, int]]:
    """(start, stop) pairs of `samples` each: a 30 Hz agent at 500 Hz."""
    return [(start, min(total, start + samples)) for start in range(0, total, samples)]


def sample_of(frame, start_time_s: float = START_TIME_S) -> int:
    """The stream sample a frame's input ends at."""
    return round((frame.time_s - start_time_s) * SAMPLING_RATE_HZ)
