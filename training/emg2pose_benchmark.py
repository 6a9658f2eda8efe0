"""`python -m training benchmark`: the zoo on emg2pose-format data, emg2pose's way.

Every emg2pose-layout file in `--data` is one session; its `/emg2pose` attributes
give the user and the stage. The generalization splits (training/splits.py) hold
out users, stages or both; each model trains once per task (regression, or
tracking from the given start pose: training/tracking.py) for at most `--budget-s`
seconds on the seen users' seen stages, picks its best epoch on a validation user,
and is scored on every requested split with emg2pose's metrics
(training/emg2pose_metrics.py: angular error, landmark and fingertip distance
through this product's hand model), beside the mean pose (and, for tracking, the
held start pose). It writes results.md (the paper's table layout, then details)
and results.json into `--out`, and prints one final JSON line.

`--simulate N` first writes N simulated users × `--stages` stages into `--data`
(training/emg2pose_sim.py), so it runs end to end without the real dataset.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import h5py
import numpy as np

from training import metrics
from training.checkpoint import load_model
from training.data import DataError
from training.emg2pose_data import GROUP, read_emg2pose
from training.emg2pose_metrics import HAND_MODEL_NOTE, emg2pose_scores
from training.emg2pose_report import write_reports
from training.emg2pose_sim import SIMULATED_STAGES, write_simulated_emg2pose
from training.evaluation import predict
from training.models import MODEL_NAMES
from training.splits import SPLITS, TaggedSession, make_split
from training.tracking import TASKS, hold_pose, task_dataset
from training.trainer import TrainConfig, train

FILE_PATTERNS = ("*.h5", "*.hdf5")


def emg2pose_files(data_dir: Path) -> list[Path]:
    if not data_dir.is_dir():
        raise DataError(f"--data {data_dir} is not a folder")
    paths = sorted(p for pattern in FILE_PATTERNS for p in data_dir.glob(pattern))
    if not paths:
        raise DataError(f"{data_dir} holds no emg2pose files (*.h5, *.hdf5)")
    return paths


def file_metadata(path: Path) -> dict:
    """The `/emg2pose` group's attributes as str (read_emg2pose checked the file)."""
    with h5py.File(path, "r") as h5:
        attrs = h5[GROUP].attrs
        return {
            key: value.decode() if isinstance(value, bytes) else str(value)
            for key, value in attrs.items()
            if key in ("user", "stage", "session")
        }


def load_tagged_sessions(data_dir: Path) -> list[TaggedSession]:
    tagged = []
    for path in emg2pose_files(data_dir):
        session = read_emg2pose(path)
        meta = file_metadata(path)
        tagged.append(
            TaggedSession(session, meta.get("user", ""), meta.get("stage", ""))
        )
    names = [t.session.name for t in tagged]
    if len(set(names)) < len(names):
        raise DataError(f"session names in {data_dir} must be unique, got {names}")
    print(f"read {len(tagged)} sessions from {data_dir}", file=sys.stderr)
    return tagged


def train_config(name: str, task: str, args, sampling_rate_hz: float) -> TrainConfig:
    model_config = {}
    if task == "tracking":  # one tracking horizon for every model, as a fair race
        model_config["window_samples"] = round(
            args.tracking_window_s * sampling_rate_hz
        )
    return TrainConfig(
        model=name,
        task=task,
        model_config=model_config,
        epochs=args.max_epochs,
        batch_size=args.batch_size,
        time_budget_s=args.budget_s,
        early_stopping_patience=None,
        seed=args.seed,
        device=args.device,
        stride_samples=args.stride,
    )


def score_split(loaded, task: str, sessions: list, stride: int) -> dict:
    """{"model", "mean_pose" and, for tracking, "hold_pose": emg2pose scores}."""
    dataset = task_dataset(
        task,
        sessions,
        loaded.window_samples,
        stride,
        loaded.filter_config,
        loaded.normalization,
    )
    predicted = predict(loaded.model, dataset)
    true_angles = predicted["true_angles"]
    scores = {
        "model": emg2pose_scores(predicted["angles"], true_angles)
        | {"mpjpe_mm": metrics.mpjpe_mm(predicted["joints"], predicted["true_joints"])},
        "mean_pose": emg2pose_scores(
            np.broadcast_to(loaded.baseline_pose["angles_rad"], true_angles.shape),
            true_angles,
        ),
    }
    if task == "tracking":
        scores["hold_pose"] = emg2pose_scores(hold_pose(dataset)["angles"], true_angles)
    return scores


def bench_model(name: str, task: str, split, args, scratch: Path) -> dict:
    train_sessions = [t.session for t in split.train]
    config = train_config(name, task, args, train_sessions[0].sampling_rate_hz)
    result = train(
        config,
        train_sessions,
        [t.session for t in split.validation],
        scratch / task / name,
    )
    loaded = load_model(result.final_checkpoint)
    scores = {
        split_name: score_split(loaded, task, [t.session for t in tagged], args.stride)
        for split_name, tagged in split.tests.items()
    }
    return {
        "task": task,
        "model": name,
        "params": result.parameters,
        "epochs": result.epochs,
        "window_samples": loaded.window_samples,
        "splits": scores,
    }


def summary_line(results: list[dict], split, args) -> dict:
    """The final JSON line: headline numbers per task, model and split."""
    headline = {}
    for result in results:
        for split_name, scores in result["splits"].items():
            key = f"{result['task']}/{result['model']}/{split_name}"
            headline[key] = {
                "angular_error_deg": round(scores["model"]["angular_error_deg"], 2),
                "landmark_distance_mm": round(
                    scores["model"]["landmark_distance_mm"], 2
                ),
                "fingertip_distance_mm": round(
                    scores["model"]["fingertip_distance_mm"], 2
                ),
                "mean_pose_angular_error_deg": round(
                    scores["mean_pose"]["angular_error_deg"], 2
                ),
            }
            if "hold_pose" in scores:
                headline[key]["hold_pose_angular_error_deg"] = round(
                    scores["hold_pose"]["angular_error_deg"], 2
                )
    return {
        "benchmark": "emg2pose",
        "data": str(args.data),
        "test_users": split.test_users,
        "test_stages": split.test_stages,
        "results": headline,
        "table": str(args.out / "results.md"),
        "hand_model": HAND_MODEL_NOTE,
    }


def run_benchmark(args: argparse.Namespace) -> int:
    if args.simulate:
        if args.data.is_dir() and any(args.data.glob("*.h5")):
            raise DataError(
                f"--simulate writes into --data, but {args.data} already "
                "holds .h5 files; remove them or drop --simulate"
            )
        write_simulated_emg2pose(
            args.data, args.simulate, args.stages, args.seconds_per_stage
        )
    tagged = load_tagged_sessions(args.data)
    split = make_split(tagged, args.split, args.test_users, args.test_stages)
    print(
        f"held out users {split.test_users}, stages {split.test_stages}; "
        f"{split.validation_note}",
        file=sys.stderr,
    )
    results = []
    with tempfile.TemporaryDirectory() as scratch:  # checkpoints: a fresh run each
        for task in args.task:
            for name in args.models:
                results.append(bench_model(name, task, split, args, Path(scratch)))
                print(f"done: {task} {name}", file=sys.stderr, flush=True)
    write_reports(args.out, results, split, args)
    print(json.dumps(summary_line(results, split, args)), flush=True)
    return 0


def add_benchmark_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "benchmark",
        help="emg2pose's benchmark: the zoo on emg2pose-format data, by split and task",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--data",
        type=Path,
        required=True,
        help="folder of emg2pose-layout files (or, with --simulate, "
        "where to write them)",
    )
    parser.add_argument(
        "--split",
        nargs="+",
        choices=SPLITS,
        default=["user"],
        help="held-out user, stage or both; several share one "
        "training per model (default: user)",
    )
    parser.add_argument(
        "--task",
        nargs="+",
        choices=TASKS,
        default=["regression"],
        help="regression, and/or tracking from the given start pose",
    )
    parser.add_argument(
        "--models", nargs="+", choices=MODEL_NAMES, default=list(MODEL_NAMES)
    )
    parser.add_argument(
        "--budget-s",
        type=float,
        default=120.0,
        help="training wall time per model and task (whole epochs; default 120)",
    )
    parser.add_argument(
        "--test-users",
        nargs="+",
        default=None,
        help="users to hold out (default: the last quarter, sorted)",
    )
    parser.add_argument(
        "--test-stages",
        nargs="+",
        default=None,
        help="stages to hold out (default: the last quarter, sorted)",
    )
    parser.add_argument(
        "--tracking-window-s",
        type=float,
        default=1.0,
        help="tracking horizon: every model's window in the "
        "tracking task (default 1.0)",
    )
    parser.add_argument(
        "--stride",
        type=int,
        default=25,
        help="samples between windows, training and scoring (default 25)",
    )
    parser.add_argument("--max-epochs", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto")
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("emg2pose-benchmark"),
        help="results.md and results.json go here",
    )
    parser.add_argument(
        "--simulate",
        type=int,
        default=0,
        metavar="N_USERS",
        help="first write N simulated users into --data",
    )
    parser.add_argument(
        "--stages",
        type=int,
        default=3,
        help=f"simulated stages per user (1-{len(SIMULATED_STAGES)}; default 3)",
    )
    parser.add_argument(
        "--seconds-per-stage",
        type=float,
        default=60.0,
        help="simulated seconds per user and stage (default 60)",
    )
    parser.set_defaults(run=run_benchmark)
