"""`python -m training bench`: every zoo model, the same data, the same time budget.

The data is the seed's setup, simulated: one person, `--sessions` sessions sharing
`--minutes` of recording (default 5 × 4 min), labeled the way the product labels
them (IK on the simulated webcam landmarks; `--labels truth` skips the IK). The last
session is held out whole. Each model trains for at most `--budget-s` seconds of
wall time (whole epochs; the epoch that passes the budget finishes), and is scored
on the held-out session against its labels and against the simulator's truth,
always beside the mean-pose baseline. One JSON line per model, then a summary line.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from training.checkpoint import load_model
from training.data import WindowDataset, from_recording
from training.evaluation import evaluate_model
from training.models import MODEL_NAMES
from training.simulated import simulated_session_with_truth, with_truth_labels
from training.trainer import TrainConfig, train

REFERENCE_MODEL = "v5"  # the seed's model, the one to beat


def simulate_sessions(args) -> list:
    """[(LabeledSession as labeled, LabeledSession with the truth)] per session."""
    seconds = args.minutes * 60.0 / args.sessions
    pairs = []
    for index in range(args.sessions):
        started = time.monotonic()
        simulated = simulated_session_with_truth(
            seconds, subject_seed=args.seed, session=index, labels=args.labels
        )
        name = f"session-{index}"
        truth = with_truth_labels(simulated.recording, simulated.truth)
        pairs.append((from_recording(simulated.recording, name),
                      from_recording(truth, name)))  # fmt: skip
        print(f"simulated and labeled {name} ({seconds:.0f} s) in "
              f"{time.monotonic() - started:.1f} s", file=sys.stderr)  # fmt: skip
    return pairs


def score_on_truth(checkpoint: Path, truth_session) -> dict:
    """The trained model and its baseline, scored against the simulator's truth."""
    loaded = load_model(checkpoint)
    dataset = WindowDataset(
        [truth_session], loaded.window_samples, 10, loaded.filter_config,
        loaded.normalization,
    )  # fmt: skip
    return evaluate_model(loaded.model, dataset, loaded.baseline_pose)


def bench_model(name: str, pairs: list, args, out_dir: Path) -> dict:
    config = TrainConfig(
        model=name, epochs=args.max_epochs, batch_size=args.batch_size,
        time_budget_s=args.budget_s, early_stopping_patience=None, seed=args.seed,
        device=args.device, stride_samples=args.stride,
    )  # fmt: skip
    labeled = [pair[0] for pair in pairs]
    result = train(config, labeled[:-1], labeled[-1:], out_dir / name)
    on_truth = score_on_truth(result.final_checkpoint, pairs[-1][1])
    model, baseline = result.metrics["model"], result.metrics["baseline"]
    return {
        "model": name,
        "params": result.parameters,
        "mpjpe_mm": round(model["mpjpe_mm"], 2),
        "angle_mae_deg": round(model["angle_mae_deg"], 2),
        "baseline_mpjpe_mm": round(baseline["mpjpe_mm"], 2),
        "train_windows_per_s": round(result.train_windows_per_s, 1),
        "epochs": result.epochs,
        "fingertip_mm": round(model["fingertip_error_mm"], 2),
        "jitter_mm": round(model["jitter_mm"], 3),
        "mpjpe_vs_truth_mm": round(on_truth["model"]["mpjpe_mm"], 2),
        "baseline_vs_truth_mm": round(on_truth["baseline"]["mpjpe_mm"], 2),
    }


def summary(lines: list[dict]) -> dict:
    """The best model against the seed's v5 and the mean-pose baseline."""
    best = min(lines, key=lambda line: line["mpjpe_mm"])
    result = {"best_model": best["model"], "best_mpjpe_mm": best["mpjpe_mm"]}
    baseline = best["baseline_mpjpe_mm"]
    result["best_vs_baseline_pct"] = round(100 * (1 - best["mpjpe_mm"] / baseline), 1)
    reference = [line for line in lines if line["model"] == REFERENCE_MODEL]
    if reference:
        v5 = reference[0]["mpjpe_mm"]
        result["best_vs_v5_pct"] = round(100 * (1 - best["mpjpe_mm"] / v5), 1)
    return result


def run_bench(args: argparse.Namespace) -> int:
    if args.sessions < 2:
        raise ValueError("--sessions must be at least 2 (one is held out)")
    pairs = simulate_sessions(args)
    with tempfile.TemporaryDirectory() as scratch:
        out_dir = args.out or Path(scratch)
        lines = []
        for name in args.models:
            lines.append(bench_model(name, pairs, args, out_dir))
            print(json.dumps(lines[-1]), flush=True)
    print(json.dumps({"summary": summary(lines)}), flush=True)
    return 0


def add_bench_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "bench",
        help="train every zoo model on simulated sessions under one time budget",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--minutes",
        type=float,
        default=20.0,
        help="minutes of recording in all (default: 20)",
    )
    parser.add_argument(
        "--sessions",
        type=int,
        default=5,
        help="sessions sharing them; the last is held out",
    )
    parser.add_argument(
        "--budget-s",
        type=float,
        default=120.0,
        help="training wall time per model (default: 120)",
    )
    parser.add_argument(
        "--stride",
        type=int,
        default=25,
        help="samples between training windows (default 25: the seed's ~24,000 "
        "windows from 20 minutes)",
    )
    parser.add_argument("--max-epochs", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument(
        "--models", nargs="+", choices=MODEL_NAMES, default=list(MODEL_NAMES)
    )
    parser.add_argument(
        "--labels",
        choices=("ik", "truth"),
        default="ik",
        help="train on IK labels (the product's path) or the truth",
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="simulated person and training seed"
    )
    parser.add_argument("--device", default="auto")
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="keep the checkpoints here (default: a temp folder)",
    )
    parser.set_defaults(run=run_bench)
