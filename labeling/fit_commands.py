"""`fit` and `bench` subcommands of `python -m labeling`.

fit:   MediaPipe world landmarks from a file (.npy, .json or .pbtxt) -> IK labels,
       one summary JSON line, optionally an .npz of the fit.
bench: IK speed and accuracy on simulated landmarks, against the simulator's true
       joints; one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

from labeling.alignment import ALIGNMENTS, apply, umeyama
from labeling.bone_lengths import subject_hand
from labeling.hand_model import load_hand_model
from labeling.ik import (
    OPTIMIZERS,
    IKConfig,
    SequenceFit,
    StreamingIK,
    batched_threads,
)
from labeling.pbtxt import read_landmarks_pbtxt
from labeling.pipeline import check_landmarks, fit_in_blocks, ik_config

LANDMARK_SUFFIXES = (".npy", ".json", ".pbtxt")
MODES = ("batched", "streaming")
HANDS = ("right", "left")
FILE_SCORE = 1.0  # detection score given to every .npy/.json frame with landmarks
STREAMING_BENCH_FRAMES = 300
WARM_UP_FRAMES = 50


# --- reading landmark files -------------------------------------------------------


class LandmarkFile:
    """Landmarks (T, 21, 3) float64 metres (NaN for missing frames), scores (T,),
    and the handedness the file states (None when it states none)."""

    def __init__(self, landmarks_m, scores, handedness: str | None = None):
        self.landmarks_m = landmarks_m
        self.scores = scores
        self.handedness = handedness


def read_landmark_file(path: Path) -> LandmarkFile:
    """Read a .npy, .json or .pbtxt landmark file; ValueError says what is wrong."""
    suffix = path.suffix.lower()
    if suffix not in LANDMARK_SUFFIXES:
        raise ValueError(
            f"{path}: unknown landmark file type {suffix or '(none)'!r}; "
            f"expected one of {', '.join(LANDMARK_SUFFIXES)}"
        )
    if not path.is_file():
        raise FileNotFoundError(f"no such landmark file: {path}")
    try:
        if suffix == ".pbtxt":
            return _read_pbtxt(path)
        landmarks_m = _read_npy(path) if suffix == ".npy" else _read_json(path)
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError(f"cannot read {path}: {error}") from None
    return LandmarkFile(landmarks_m, _file_scores(landmarks_m))


def _file_scores(landmarks_m: np.ndarray) -> np.ndarray:
    """FILE_SCORE for frames with landmarks, NaN for missing ones."""
    detected = np.isfinite(landmarks_m).all(axis=(1, 2))
    return np.where(detected, FILE_SCORE, np.nan)


def _read_pbtxt(path: Path) -> LandmarkFile:
    try:
        detection = read_landmarks_pbtxt(path)
    except (KeyError, IndexError) as error:
        raise ValueError(f"{path}: not a hand landmark pbtxt, no {error}") from None
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from None
    landmarks_m = detection.world_landmarks_m[None].astype(np.float64)
    scores = np.array([detection.score], np.float64)
    return LandmarkFile(landmarks_m, scores, detection.handedness)


def _read_npy(path: Path) -> np.ndarray:
    try:
        array = np.load(path, allow_pickle=False)
    except ValueError as error:
        raise ValueError(f"{path}: not a numeric .npy array ({error})") from None
    if not isinstance(array, np.ndarray) or not (
        np.issubdtype(array.dtype, np.number) and not np.iscomplexobj(array)
    ):
        raise ValueError(f"{path}: landmarks must be real numbers, not {array.dtype}")
    _check_frames_shape(path, array.shape)
    return array.astype(np.float64)


def _check_frames_shape(path: Path, shape: tuple) -> None:
    if len(shape) != 3 or shape[1:] != (21, 3):
        raise ValueError(
            f"{path}: landmarks must have shape (frames, 21, 3) in metres, "
            f"not {tuple(shape)}"
        )


def _read_json(path: Path) -> np.ndarray:
    try:
        frames = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not valid JSON ({error})") from None
    if not isinstance(frames, list):
        raise ValueError(f"{path}: expected a JSON list of frames")
    landmarks_m = np.full((len(frames), 21, 3), np.nan)
    for index, frame in enumerate(frames):
        if frame is not None:
            landmarks_m[index] = _json_frame(path, index, frame)
    return landmarks_m


def _json_frame(path: Path, index: int, frame) -> np.ndarray:
    """One JSON frame: 21 [x, y, z] numbers in metres."""
    where = f"{path}: frame {index}"
    if not isinstance(frame, list) or len(frame) != 21:
        raise ValueError(f"{where} must be null or a list of 21 [x, y, z] points")
    for point in frame:
        if not isinstance(point, list) or len(point) != 3:
            raise ValueError(f"{where}: every point must be [x, y, z], not {point!r}")
        for value in point:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"{where}: {value!r} is not a number")
    return np.array(frame, np.float64)


# --- fit ------------------------------------------------------------------------


def fit_landmarks(landmarks_m, scores, config: IKConfig, model, mode: str):
    """SequenceFit of a whole recording, batched (in blocks) or frame by frame."""
    if mode == "streaming":
        model = subject_hand(landmarks_m, scores, config, model)
        return fit_streaming(landmarks_m, scores, config, model)
    return fit_in_blocks(landmarks_m, scores, config, model, _progress_to_stderr)


def fit_streaming(landmarks_m, scores, config: IKConfig, model) -> SequenceFit:
    """Live IK over every frame in order, gathered into a SequenceFit."""
    streaming = StreamingIK(config, model)
    fits = [
        streaming.fit_frame(frame, score)
        for frame, score in zip(landmarks_m, scores, strict=True)
    ]
    return SequenceFit(
        pose=np.stack([fit.pose for fit in fits]),
        joints_mm=np.stack([fit.joints_mm for fit in fits]),
        ik_error_mm=np.array([fit.residual_mm for fit in fits], np.float32),
        label_valid=np.array([fit.valid for fit in fits], bool),
    )


def _progress_to_stderr(done: int, total: int, message: str) -> None:
    if total > 1:
        print(f"{done}/{total} {message}", file=sys.stderr, flush=True)


def fit_summary(fit: SequenceFit, elapsed_s: float) -> dict:
    residual_mm = fit.ik_error_mm[np.isfinite(fit.ik_error_mm)]
    frames = len(fit.label_valid)
    return {
        "frames": frames,
        "mean_residual_mm": _rounded(residual_mm.mean()) if len(residual_mm) else None,
        "median_residual_mm": _rounded(np.median(residual_mm))
        if len(residual_mm)
        else None,
        "valid_fraction": _rounded(fit.label_valid.mean(), 4) if frames else 0.0,
        "fps": _rounded(frames / max(elapsed_s, 1e-9), 1),
    }


def _rounded(value, digits: int = 3) -> float:
    return round(float(value), digits)


def save_fit(out_path: Path, fit: SequenceFit) -> None:
    out_path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(out_path, **fit._asdict())


def run_fit(args: argparse.Namespace) -> int:
    recording = read_landmark_file(args.landmarks)
    check_landmarks(recording.landmarks_m, recording.scores)
    config = ik_config({"alignment": args.alignment, "optimizer": args.optimizer})
    hand = args.hand or recording.handedness or "right"
    model = load_hand_model(args.mano_dir, is_right=hand == "right")
    start = time.perf_counter()
    fit = fit_landmarks(
        recording.landmarks_m, recording.scores, config, model, args.mode
    )
    elapsed_s = time.perf_counter() - start
    if args.out is not None:
        save_fit(args.out, fit)
    print(json.dumps(fit_summary(fit, elapsed_s)), flush=True)
    return 0


def add_fit_parser(subparsers) -> None:
    defaults = IKConfig()
    parser = subparsers.add_parser(
        "fit",
        help="fit the hand model to landmarks from a file",
        description=(
            "Inverse kinematics on MediaPipe world landmarks. --landmarks is a .npy "
            "array (frames, 21, 3) in metres (NaN rows for missing frames), a JSON "
            "list of frames, each 21 [x, y, z] in metres or null for a missing "
            "frame, or a MediaPipe .pbtxt (one frame; its score and handedness are "
            f"used). Frames from .npy/.json get detection score {FILE_SCORE}. "
            'Prints {"frames", "mean_residual_mm", "median_residual_mm", '
            '"valid_fraction", "fps"} as the last line (fps: frames fitted per '
            "second). Bad input exits with status 2."
        ),
    )
    parser.add_argument(
        "--landmarks", type=Path, required=True, help=".npy, .json or .pbtxt file"
    )
    parser.add_argument(
        "--out",
        type=Path,
        help="save pose, joints_mm, ik_error_mm and label_valid to this .npz",
    )
    parser.add_argument("--alignment", choices=ALIGNMENTS, default=defaults.alignment)
    parser.add_argument("--optimizer", choices=OPTIMIZERS, default=defaults.optimizer)
    parser.add_argument(
        "--mode",
        choices=MODES,
        default="batched",
        help="batched: whole recording, smoothed (default); streaming: live IK",
    )
    parser.add_argument(
        "--hand",
        choices=HANDS,
        help="which hand the landmarks show (default: the .pbtxt's, else right)",
    )
    parser.add_argument(
        "--mano-dir",
        default=os.environ.get("MANO_MODEL_DIR") or None,
        help="directory holding mano/MANO_*.pkl (default: $MANO_MODEL_DIR if set, "
        "else the built-in model)",
    )
    parser.set_defaults(run=run_fit)


# --- bench ----------------------------------------------------------------------


def aligned_error_mm(points_mm: np.ndarray, truth_mm: np.ndarray) -> float:
    """Mean joint distance (mm) after a per-frame Umeyama similarity (with scale)
    takes points (B, 21, 3) onto truth (B, 21, 3)."""
    points = torch.as_tensor(points_mm, dtype=torch.float64)
    truth = torch.as_tensor(truth_mm, dtype=torch.float64)
    return float((apply(umeyama(points, truth), points) - truth).norm(dim=-1).mean())


def simulated_recording(frames: int, seed: int) -> tuple[np.ndarray, ...]:
    """Noisy landmarks (T, 21, 3) m, scores (T,), true joints (T, 21, 3) mm."""
    from recorder.simulation import ArmbandSimulator, SimulatorConfig

    simulator = ArmbandSimulator(SimulatorConfig(seed=seed))
    times_s = simulator.camera_times(0.0, frames / simulator.config.camera_fps)
    landmarks_m, scores = simulator.camera_landmarks(times_s)
    truth_mm = simulator.hand_state(times_s)["joints"]
    return landmarks_m.astype(np.float64), scores, truth_mm.astype(np.float64)


def bench_batched(landmarks_m, scores, truth_mm, seen, config, model) -> dict:
    """Batched IK as `fit` runs it (pipeline blocks), timed after a warm-up."""
    warm = slice(0, WARM_UP_FRAMES)
    fit_in_blocks(landmarks_m[warm], scores[warm], config, model, _no_progress)
    start = time.perf_counter()
    fit = fit_in_blocks(landmarks_m, scores, config, model, _no_progress)
    elapsed_s = time.perf_counter() - start
    true_error_mm = aligned_error_mm(fit.joints_mm[seen], truth_mm[seen])
    return {
        "batched_fps": _rounded(len(landmarks_m) / elapsed_s, 1),
        "residual_mm": _rounded(np.nanmean(fit.ik_error_mm)),
        "true_error_mm": _rounded(true_error_mm),
        "valid_fraction": _rounded(fit.label_valid.mean(), 4),
        "threads": batched_threads(config, model) or 1,
    }


def bench_streaming(landmarks_m, scores, truth_mm, seen, config, model) -> dict:
    """Per-frame latency of live IK on one thread (a fresh tracker after a warm-up
    run, so every cold start and lost-track restart counts), and its accuracy."""
    frames = min(STREAMING_BENCH_FRAMES, len(landmarks_m))
    fit_streaming(landmarks_m[:WARM_UP_FRAMES], scores[:WARM_UP_FRAMES], config, model)
    streaming = StreamingIK(config, model)
    durations_ms, fits = [], []
    for frame in range(frames):
        start = time.perf_counter()
        fits.append(streaming.fit_frame(landmarks_m[frame], scores[frame]))
        durations_ms.append(1000.0 * (time.perf_counter() - start))
    joints_mm = np.stack([fit.joints_mm for fit in fits]).astype(np.float64)
    window = seen[:frames]
    p50, p95 = np.percentile(durations_ms, [50, 95])
    return {
        "streaming_ms_p50": _rounded(p50),
        "streaming_ms_p95": _rounded(p95),
        "streaming_ms_max": _rounded(max(durations_ms)),
        "streaming_frames": frames,
        "streaming_residual_mm": _rounded(np.nanmean([f.residual_mm for f in fits])),
        "streaming_true_error_mm": _rounded(
            aligned_error_mm(joints_mm[window], truth_mm[:frames][window])
        ),
    }


def run_bench(args: argparse.Namespace) -> int:
    if args.frames < WARM_UP_FRAMES:
        raise ValueError(f"--frames must be at least {WARM_UP_FRAMES}")
    landmarks_m, scores, truth_mm = simulated_recording(args.frames, args.seed)
    seen = np.isfinite(landmarks_m).all(axis=(1, 2))
    config, model = IKConfig(), load_hand_model(None)
    noise_mm = aligned_error_mm(landmarks_m[seen] * 1000.0, truth_mm[seen])
    result = {"frames": args.frames, "seed": args.seed}
    result |= bench_batched(landmarks_m, scores, truth_mm, seen, config, model)
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        result |= bench_streaming(landmarks_m, scores, truth_mm, seen, config, model)
    finally:
        torch.set_num_threads(previous_threads)
    result["landmark_noise_mm"] = _rounded(noise_mm)
    print(json.dumps(result), flush=True)
    return 0


def _no_progress(done: int, total: int, message: str) -> None:
    pass


def add_bench_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "bench",
        help="measure IK speed and accuracy on simulated landmarks",
        description=(
            "Simulate a recording (noisy MediaPipe-like landmarks with the true "
            "joints), fit it in batched mode on all cores and, for the first "
            f"{STREAMING_BENCH_FRAMES} frames, in streaming mode on one thread. "
            "Prints one JSON line: batched_fps, streaming_ms_p50/p95/max, "
            "residual_mm (batched fit to its aligned landmarks), true_error_mm "
            "(batched joints vs true joints) and landmark_noise_mm (raw landmarks "
            "vs true joints), both after a per-frame Umeyama alignment with scale."
        ),
    )
    parser.add_argument("--frames", type=int, default=3000, help="simulated frames")
    parser.add_argument("--seed", type=int, default=1, help="simulated subject")
    parser.set_defaults(run=run_bench)
