"""python -m training: train, evaluate, benchmark and export EMG -> pose models.

    python -m training train --sessions a.h5 b.h5 c.h5 --model tcn --out runs/tcn
    python -m training evaluate --checkpoint runs/tcn/final.pt --sessions d.h5
    python -m training bench --minutes 20 --sessions 5 --budget-s 120
    python -m training export --checkpoint runs/tcn/final.pt --format onnx
    python -m training finetune --checkpoint PRE.pt --sessions calib.h5 --out DIR
    python -m training calibrate-bench
    python -m training benchmark --data DIR --split user --task regression

Every command ends with one JSON line on stdout; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import sys

from training import commands
from training.bench import add_bench_parser
from training.calibration import add_finetune_parser
from training.calibration_bench import add_calibrate_bench_parser
from training.checkpoint import CheckpointError
from training.cpep.bench import add_cpep_bench_parser
from training.data import DataError
from training.emg2pose_benchmark import add_benchmark_parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m training",
        description="Train and evaluate EMG -> hand-pose models on labeled sessions.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True)
    commands.add_train_parser(subparsers)
    commands.add_evaluate_parser(subparsers)
    add_bench_parser(subparsers)
    commands.add_export_parser(subparsers)
    add_finetune_parser(subparsers)
    add_calibrate_bench_parser(subparsers)
    add_benchmark_parser(subparsers)
    add_cpep_bench_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (DataError, CheckpointError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
