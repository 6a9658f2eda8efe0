"""python -m inference: live inference tools.

    python -m inference bench --model tcn --streams 50 --seconds 20

Every command ends with one JSON line on stdout; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import sys

from inference.bench import add_bench_parser
from training.checkpoint import CheckpointError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m inference",
        description="Streaming EMG -> hand-pose inference from a model checkpoint.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True)
    add_bench_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "bench" and args.streams < 1:
        print("error: --streams must be at least 1", file=sys.stderr)
        return 2
    try:
        return args.run(args)
    except (CheckpointError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
