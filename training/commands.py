"""The train, evaluate and export commands of `python -m training`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from training.checkpoint import load_model
from training.data import (
    DataError,
    WindowDataset,
    check_compatible,
    load_session,
    split_sessions,
)
from training.emg2pose_data import read_emg2pose
from training.evaluation import evaluate_model
from training.export import export_model
from training.models import MODEL_NAMES
from training.trainer import TrainConfig, train


def read_sessions(paths: list[Path]) -> list:
    """Session files (ours) or emg2pose HDF5 files, by their content."""
    import h5py

    sessions = []
    for path in paths:
        try:
            with h5py.File(path, "r") as file:
                is_emg2pose = "emg2pose" in file
        except OSError as exc:
            raise DataError(
                f"{path} is not a readable HDF5 session file: {exc}"
            ) from None
        reader = read_emg2pose if is_emg2pose else load_session
        sessions.append(reader(path))
    return sessions


def print_epoch(epoch: int, metrics: dict) -> None:
    print(
        f"epoch {epoch}/{metrics['epochs']}: train MPJPE "
        f"{metrics['train_mpjpe_mm']:.2f} mm, validation MPJPE "
        f"{metrics['val_mpjpe_mm']:.2f} mm, "
        f"{metrics['train_windows_per_s']:.0f} windows/s",
        file=sys.stderr,
        flush=True,
    )


def summary_line(result) -> dict:
    model, baseline = result.metrics["model"], result.metrics["baseline"]
    return {
        "checkpoint": str(result.final_checkpoint),
        "epochs": result.epochs,
        "stopped": result.stopped,
        "params": result.parameters,
        "mpjpe_mm": round(model["mpjpe_mm"], 3),
        "angle_mae_deg": round(model["angle_mae_deg"], 3),
        "baseline_mpjpe_mm": round(baseline["mpjpe_mm"], 3),
        "train_windows_per_s": round(result.train_windows_per_s, 1),
    }


def run_train(args: argparse.Namespace) -> int:
    sessions = read_sessions(args.sessions)
    if args.random_windows is None:
        train_sessions, validation_sessions = split_sessions(
            sessions, args.holdout, args.held_out
        )
    else:  # the trainer splits windows at random, and warns
        train_sessions, validation_sessions = sessions, []
    config = TrainConfig(
        model=args.model, epochs=args.epochs, batch_size=args.batch_size,
        seed=args.seed, device=args.device, time_budget_s=args.budget_s,
        early_stopping_patience=args.patience or None,
        random_split_fraction=args.random_windows,
    )  # fmt: skip
    result = train(config, train_sessions, validation_sessions, args.out, print_epoch)
    print(json.dumps(summary_line(result)), flush=True)
    return 0


def add_train_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train a model on labeled sessions",
        description=(
            "Train a zoo model on labeled session files (or emg2pose HDF5 files). "
            "Whole sessions are held out for validation (or whole subjects with "
            "--holdout subject). Re-running with the same --out resumes from its "
            "last.pt. Prints one line per epoch on stderr and a JSON summary."
        ),
    )
    parser.add_argument("--sessions", type=Path, nargs="+", required=True)
    parser.add_argument("--model", choices=MODEL_NAMES, default="tcn")
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--out", type=Path, required=True, help="checkpoint folder")
    parser.add_argument(
        "--holdout", choices=("session", "subject"), default="session",
        help="what the validation split holds out whole (default: session)",
    )  # fmt: skip
    parser.add_argument(
        "--held-out", nargs="+", default=None, metavar="NAME",
        help="the sessions (or subjects) to hold out; default: the last session",
    )  # fmt: skip
    parser.add_argument(
        "--random-windows", type=float, default=None, metavar="FRACTION",
        help="validate on this fraction of random windows instead (measures "
        "interpolation, as the seed's 14.92 mm; for comparison only)",
    )  # fmt: skip
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda[:N]")
    parser.add_argument(
        "--budget-s",
        type=float,
        default=None,
        help="stop after the epoch that passes this many seconds",
    )
    parser.add_argument(
        "--patience",
        type=int,
        default=20,
        help="early stopping patience in epochs; 0: off",
    )
    parser.set_defaults(run=run_train)


def run_evaluate(args: argparse.Namespace) -> int:
    loaded = load_model(args.checkpoint)
    sessions = read_sessions(args.sessions)
    check_model_fits(loaded, sessions)
    dataset = WindowDataset(
        sessions, loaded.window_samples, args.stride, loaded.filter_config,
        loaded.normalization,
    )  # fmt: skip
    result = evaluate_model(loaded.model, dataset, loaded.baseline_pose)
    line = {"checkpoint": str(args.checkpoint), "model_name": loaded.model_name}
    print(json.dumps(line | result), flush=True)
    return 0


def check_model_fits(loaded, sessions) -> None:
    """DataError unless the sessions have the channels the model was trained on."""
    check_compatible(sessions)
    expected, found = len(loaded.channel_names), sessions[0].num_channels
    if found != expected:
        raise DataError(
            f"the model expects {expected} EMG channels, session "
            f"{sessions[0].name} has {found}"
        )


def add_evaluate_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="score a checkpoint on labeled sessions, beside the mean-pose baseline",
    )
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--sessions", type=Path, nargs="+", required=True)
    parser.add_argument(
        "--stride", type=int, default=10, help="samples between windows"
    )
    parser.set_defaults(run=run_evaluate)


def run_export(args: argparse.Namespace) -> int:
    out = args.out or args.checkpoint.with_suffix(
        ".onnx" if args.format == "onnx" else ".torchscript.pt"
    )
    report = export_model(args.checkpoint, args.format, out)
    print(json.dumps(report), flush=True)
    return 0


def add_export_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "export",
        help="export a checkpoint to TorchScript or ONNX, checked against PyTorch",
    )
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--format", choices=("torchscript", "onnx"), required=True)
    parser.add_argument("--out", type=Path, default=None)
    parser.set_defaults(run=run_export)
