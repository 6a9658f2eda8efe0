"""Labeling command line: `python -m labeling COMMAND ...`; see `--help`.

detect: webcam photos -> MediaPipe hand landmarks (JSON lines + an .npz).
fit:    landmarks from a .npy/.json/.pbtxt file -> IK labels (labeling.fit_commands).
bench:  IK speed and accuracy on simulated landmarks (labeling.fit_commands).
The `experiments` subcommand comes next, as one more entry in SUBCOMMANDS.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from labeling.experiments import add_experiments_parser
from labeling.fit_commands import add_bench_parser, add_fit_parser
from labeling.landmarks import DETECTOR_KINDS, NUM_LANDMARKS

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")


def image_paths_under(image_or_dir: Path) -> list[Path]:
    """The image itself, or every image below a directory, sorted."""
    if image_or_dir.is_file():
        return [image_or_dir]
    if not image_or_dir.is_dir():
        raise FileNotFoundError(f"no such image or directory: {image_or_dir}")
    return sorted(
        path
        for path in image_or_dir.rglob("*")
        if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file()
    )


def save_detections(out_path: Path, image_paths: list[Path], detections) -> None:
    """Write an .npz: image_paths (N,), detected (N,) bool, image_landmarks and
    world_landmarks_m (N, 21, 3) (metres), scores (N,), handedness (N,) str.
    Frames without a hand hold NaN landmarks and scores and handedness ""."""
    count = len(image_paths)
    image_landmarks = np.full((count, NUM_LANDMARKS, 3), np.nan)
    world_landmarks_m = np.full((count, NUM_LANDMARKS, 3), np.nan)
    scores = np.full(count, np.nan)
    handedness = np.full(count, "", dtype="<U5")
    for index, detection in enumerate(detections):
        if detection is None:
            continue
        image_landmarks[index] = detection.image_landmarks
        world_landmarks_m[index] = detection.world_landmarks_m
        scores[index] = detection.score
        handedness[index] = detection.handedness
    out_path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(
        out_path,
        image_paths=np.array([str(path) for path in image_paths]),
        detected=np.array([d is not None for d in detections], dtype=bool),
        image_landmarks=image_landmarks,
        world_landmarks_m=world_landmarks_m,
        scores=scores,
        handedness=handedness,
    )


def run_detect(args: argparse.Namespace) -> int:
    from labeling.landmarks import open_detector, read_rgb_image

    image_paths = image_paths_under(args.image_or_dir)
    detector = open_detector(args.detector, model_path=args.model)
    detections = []
    try:
        for path in image_paths:
            detection = detector.detect(read_rgb_image(path))
            detections.append(detection)
            print_detection_line(path, detection)
    finally:
        detector.close()
    found = sum(detection is not None for detection in detections)
    print(json.dumps({"images": len(image_paths), "detected": found}), flush=True)
    if args.out is not None:
        save_detections(args.out, image_paths, detections)
    return 0


def print_detection_line(path: Path, detection) -> None:
    line = {
        "image": str(path),
        "detected": detection is not None,
        "handedness": detection.handedness if detection else None,
        "score": round(detection.score, 4) if detection else None,
    }
    print(json.dumps(line), flush=True)


def add_detect_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "detect",
        help="find hand landmarks in photos",
        description=(
            "Run a hand landmark detector on an image or on every image below a "
            "directory. Prints one JSON line per image (image, detected, handedness, "
            'score), then {"images": N, "detected": K}. Handedness is the '
            "person's actual hand in an unmirrored photo."
        ),
    )
    parser.add_argument("image_or_dir", type=Path, help="an image file or directory")
    parser.add_argument(
        "--out",
        type=Path,
        help="save landmarks to this .npz (NaN where no hand was found)",
    )
    parser.add_argument(
        "--detector",
        choices=sorted(DETECTOR_KINDS),
        default="mediapipe",
        help="mediapipe: bundled legacy models (default); mediapipe-tasks: --model",
    )
    parser.add_argument(
        "--model", type=Path, help="a hand_landmarker .task file (mediapipe-tasks)"
    )
    parser.set_defaults(run=run_detect)


SUBCOMMANDS = {
    "detect": add_detect_parser,
    "fit": add_fit_parser,
    "bench": add_bench_parser,
    "experiments": add_experiments_parser,
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m labeling",
        description="Turn webcam video into hand pose labels for EMG training.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True)
    for add_subcommand in SUBCOMMANDS.values():
        add_subcommand(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
