"""`python -m inference bench`: the cost of a live update, and how many streams one
process keeps up with.

It trains a small run of `--model` on simulated sessions (or loads
`--checkpoint`), then feeds `--streams` predictors simulated 8-channel 500 Hz EMG
in real-time-sized chunks: every 1/30 s each stream gets the samples that arrived
since its last chunk (~17), round-robin in this one process, for `--seconds` of
wall time. It prints one JSON line:
  update_ms_p50, update_ms_p99   compute time of one `push` (one stream's update)
  achieved_hz                     updates per second per stream (30 when it keeps up)
  poses_hz                        poses emitted per second per stream
  busy_fraction                   share of the wall time spent in updates (one core)
  threads                         torch threads (1: see inference.predictor)
  e2e_ms_p50, e2e_ms_p99, poses_per_s   through the server, with --e2e (else null)
`--e2e` then runs the server-side benchmark, `python manage.py bench_live` (the
webapp's; this package never imports Django), on the same checkpoint, and merges
its figures.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from inference.predictor import LivePredictor
from training.models import MODEL_NAMES

CHUNK_RATE_HZ = 30.0  # how often the agent sends a chunk
FEED_S = 20.0  # of simulated EMG, looped; each stream plays it from its own offset
MANAGE_PY = Path(__file__).resolve().parent.parent / "manage.py"
E2E_KEYS = ("e2e_ms_p50", "e2e_ms_p99", "poses_per_s")


def trained_checkpoint(model: str, out_dir: Path) -> Path:
    """A one-epoch run of `model` (its default, full-size config: the cost live
    inference will pay) on a short simulated session."""
    from training.data import from_recording
    from training.simulated import simulated_labeled_session
    from training.trainer import TrainConfig, train

    sessions = [
        [from_recording(simulated_labeled_session(seconds, session=index), name)]
        for index, (seconds, name) in enumerate([(12.0, "train"), (4.0, "val")])
    ]
    config = TrainConfig(model=model, epochs=1, stride_samples=25)
    return train(config, *sessions, out_dir).final_checkpoint


def feed_emg(sampling_rate_hz: float) -> np.ndarray:
    """(N, 8) float32 µV of a simulated arm to stream, FEED_S long."""
    from recorder.simulation import ArmbandSimulator, SimulatorConfig

    simulator = ArmbandSimulator(SimulatorConfig(sampling_rate_hz=sampling_rate_hz))
    emg, _, _ = simulator.next_emg(round(FEED_S * sampling_rate_hz))
    return emg


def looped(emg: np.ndarray, start: int, samples: int) -> np.ndarray:
    """`samples` of `emg` from `start`, wrapping around its end."""
    return emg[np.arange(start, start + samples) % len(emg)]


def run_streams(
    checkpoint: Path, streams: int, seconds: float, output_rate_hz: float = 60.0
) -> dict:
    """Feed `streams` predictors in real time for `seconds`; the engine figures."""
    predictors = [
        LivePredictor.from_checkpoint(checkpoint, output_rate_hz=output_rate_hz)
        for _ in range(streams)
    ]
    rate_hz = predictors[0].sampling_rate_hz
    emg = feed_emg(rate_hz)
    offsets = [index * len(emg) // streams for index in range(streams)]
    sent = [0] * streams
    update_ms, poses, rounds = [], 0, 0
    start_unix_s, started = time.time(), time.perf_counter()
    while (elapsed_s := time.perf_counter() - started) < seconds:
        # a late round is skipped, not made up: achieved_hz shows it
        rounds = max(rounds, int(elapsed_s * CHUNK_RATE_HZ))
        time.sleep(max(0.0, started + rounds / CHUNK_RATE_HZ - time.perf_counter()))
        arrived = int((time.perf_counter() - started) * rate_hz)
        for index, predictor in enumerate(predictors):
            chunk = looped(emg, offsets[index] + sent[index], arrived - sent[index])
            begun = time.perf_counter()
            frames = predictor.push(chunk, start_unix_s + sent[index] / rate_hz)
            update_ms.append((time.perf_counter() - begun) * 1e3)
            sent[index], poses = arrived, poses + len(frames)
        rounds += 1
    wall_s = time.perf_counter() - started
    return {
        "model": predictors[0].model_name,
        "streams": streams,
        "update_ms_p50": round(float(np.percentile(update_ms, 50)), 3),
        "update_ms_p99": round(float(np.percentile(update_ms, 99)), 3),
        "achieved_hz": round(len(update_ms) / streams / wall_s, 2),
        "poses_hz": round(poses / streams / wall_s, 2),
        "busy_fraction": round(sum(update_ms) / 1e3 / wall_s, 3),
        "e2e_ms_p50": None,
        "e2e_ms_p99": None,
        "poses_per_s": None,
        "threads": torch.get_num_threads(),
    }


def bench_live_arguments(checkpoint: Path, streams: int, seconds: float) -> list:
    """`manage.py` arguments of the server benchmark on the same model and streams."""
    return ["bench_live", "--checkpoint", str(checkpoint), "--streams", str(streams),
            "--seconds", str(seconds)]  # fmt: skip


def add_end_to_end(
    result: dict, checkpoint: Path, seconds: float, manage_py: Path = MANAGE_PY
) -> dict:
    """`result` with the server's end-to-end figures (E2E_KEYS) from `python
    manage.py bench_live` on the same model and streams; "e2e_error" says why
    when they could not be measured."""
    if not manage_py.is_file():
        return result | {"e2e_error": f"no {manage_py}: the server is not here"}
    command = [sys.executable, str(manage_py), *bench_live_arguments(
        checkpoint, result["streams"], seconds
    )]  # fmt: skip
    done = subprocess.run(
        command, capture_output=True, text=True, cwd=manage_py.parent, check=False
    )
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        error = done.stderr.strip().splitlines()[-1:] or [f"exit {done.returncode}"]
        return result | {"e2e_error": f"manage.py bench_live failed: {error[0]}"}
    measured = json.loads(lines[-1])
    return result | {key: measured.get(key) for key in E2E_KEYS}


def run_bench(args) -> int:
    with tempfile.TemporaryDirectory() as work_dir:
        checkpoint = args.checkpoint
        if checkpoint is None:
            print(f"training a one-epoch {args.model} to measure...", file=sys.stderr)
            checkpoint = trained_checkpoint(args.model, Path(work_dir))
        result = run_streams(
            Path(checkpoint), args.streams, args.seconds, args.output_rate_hz
        )
        if args.e2e:
            result = add_end_to_end(result, Path(checkpoint), args.seconds)
    print(json.dumps(result))
    return 0


def add_bench_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "bench",
        help="measure live update cost and concurrent streams",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--model",
        choices=MODEL_NAMES,
        default="tcn",
        help="zoo model to train and measure (default: tcn)",
    )
    parser.add_argument(
        "--checkpoint",
        type=Path,
        default=None,
        help="measure this checkpoint instead of training one",
    )
    parser.add_argument(
        "--streams", type=int, default=1, help="concurrent live streams (default: 1)"
    )
    parser.add_argument(
        "--seconds",
        type=float,
        default=10.0,
        help="wall time to stream for (default: 10)",
    )
    parser.add_argument(
        "--output-rate-hz",
        type=float,
        default=60.0,
        help="pose rate asked of each predictor (default: 60)",
    )
    parser.add_argument(
        "--e2e",
        action="store_true",
        help="also measure through the server (manage.py bench_live)",
    )
    parser.set_defaults(run=run_bench)
