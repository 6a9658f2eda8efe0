"""The seed's IK validation (Tables I-III, per-joint analysis), reproduced honestly.

`python -m labeling experiments [--out docs] [--frames N] [--seed S]` fits
(a) simulated sessions, where the true joints are known, and (b) the real MediaPipe
landmark files (one frame each, no truth), and writes `OUT/ik_experiments.md` and
plots in `OUT/img/`. Every row reports two different numbers:
- the fit residual (mm): fitted joints vs the aligned landmarks, the quantity the
  seed calls "9.71 mm accuracy";
- on simulated data, the true error (mm): fitted joints vs the true joints, next to
  the raw landmark noise (landmarks vs the same truth, same alignment).
Simulated sessions are fitted in batched mode (`fit_sequence`); the default config
is also run through `StreamingIK`, the live mode.
"""

from __future__ import annotations

import os
import time
from dataclasses import replace
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from labeling.alignment import align, apply
from labeling.bone_lengths import fit_bone_scale, subject_hand
from labeling.hand_model import HandModel
from labeling.ik import IKConfig, StreamingIK, fit_sequence
from labeling.pbtxt import read_landmarks_pbtxt

REAL_LANDMARKS_DIR = (
    Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mediapipe_hands"
)
SIM_SESSIONS = 3  # independent simulated sessions, seeds seed .. seed + 2
STREAM_OPTIMIZER_FRAMES = 150  # streaming timing per optimizer (one session)
NO_TERMS = {
    "direction_weight": 0.0,
    "smoothness_weight": 0.0,
    "regularization_weight": 0.0,
    "joint_limit_weight": 0.0,
}
# Table I: terms added one at a time (cumulative); the last row is IKConfig().
ABLATION_ROWS = {
    "position only": NO_TERMS,
    "+ bone direction": {**NO_TERMS, "direction_weight": 0.5},
    "+ smoothness": {"regularization_weight": 0.0, "joint_limit_weight": 0.0},
    "+ regularization (seed's full loss)": {"joint_limit_weight": 0.0},
    "full + joint limits (our default)": {},
}
# Tables II and III vary one setting of the default config.
ALIGNMENT_ROWS = {
    "Umeyama with scale (default)": {"alignment": "umeyama_scale"},
    "Umeyama rigid": {"alignment": "umeyama_rigid"},
    "Kabsch": {"alignment": "kabsch"},
}
OPTIMIZER_ROWS = {
    "Adam (default)": {"optimizer": "adam"},
    "SGD (momentum 0.9)": {"optimizer": "sgd"},
    "L-BFGS (strong Wolfe)": {"optimizer": "lbfgs"},
}


class Session(NamedTuple):
    truth_mm: np.ndarray  # (T, 21, 3) true joints, wrist origin
    landmarks_m: np.ndarray  # (T, 21, 3) noisy landmarks, NaN where detection failed
    scores: np.ndarray  # (T,)
    detected: np.ndarray  # (T,) bool


class RealFrame(NamedTuple):
    name: str
    landmarks_m: np.ndarray  # (21, 3)
    score: float
    handedness: str


def simulated_sessions(frames: int, seed: int) -> list[Session]:
    """SIM_SESSIONS simulated sessions of `frames` camera frames (30 fps) each."""
    from recorder.simulation import ArmbandSimulator, SimulatorConfig

    sessions = []
    for session_seed in range(seed, seed + SIM_SESSIONS):
        sim = ArmbandSimulator(SimulatorConfig(seed=session_seed))
        times = sim.camera_times(0.0, frames / sim.config.camera_fps)
        truth_mm = sim.hand_state(times)["joints"].astype(np.float64)
        landmarks_m, scores = sim.camera_landmarks(times)
        detected = np.isfinite(landmarks_m).all((1, 2))
        sessions.append(Session(truth_mm, landmarks_m, scores, detected))
    return sessions


def real_frames(landmarks_dir: Path = REAL_LANDMARKS_DIR) -> list[RealFrame]:
    """The real MediaPipe landmark files (*.pbtxt), one detected frame each."""
    paths = sorted(Path(landmarks_dir).glob("*.pbtxt"))
    if not paths:
        raise FileNotFoundError(
            f"no MediaPipe landmark files (*.pbtxt) in {landmarks_dir}; the real-data "
            "half of the experiments needs shared/data/mediapipe_hands next to the repo"
        )
    frames = []
    for path in paths:
        detection = read_landmarks_pbtxt(path)
        name = path.stem.removesuffix("_landmarks")
        landmarks_m = np.asarray(detection.world_landmarks_m, np.float64)
        frames.append(
            RealFrame(name, landmarks_m, detection.score, detection.handedness)
        )
    return frames


def aligned_distances_mm(points_mm: np.ndarray, target_mm: np.ndarray, method: str):
    """Per-joint distances (T, 21) mm after aligning points (T, 21, 3) onto target
    (T, 21, 3) by `method`, and the transform's scale (T,)."""
    points = torch.as_tensor(points_mm, dtype=torch.float64)
    target = torch.as_tensor(target_mm, dtype=torch.float64)
    transform = align(points, target, method)
    distances = (apply(transform, points) - target).norm(dim=-1)
    return distances.numpy(), transform.scale.numpy()


def truth_distances_mm(points_mm: np.ndarray, truth_mm: np.ndarray) -> np.ndarray:
    """(T, 21) mm distances to the truth after a similarity (Procrustes) alignment:
    the one yardstick for fits and raw landmarks alike."""
    return aligned_distances_mm(points_mm, truth_mm, "umeyama_scale")[0]


def wrist_relative_mm(points_mm: np.ndarray, truth_mm: np.ndarray) -> np.ndarray:
    """(T,) mean joint distance with both wrists at the origin and no alignment."""
    points = points_mm - points_mm[:, :1]
    return np.linalg.norm(points - (truth_mm - truth_mm[:, :1]), axis=-1).mean(1)


def raw_noise(sessions: list[Session]) -> dict:
    """The landmarks themselves scored against the truth (detected frames)."""
    landmarks_mm = np.concatenate(
        [s.landmarks_m[s.detected] * 1000.0 for s in sessions]
    ).astype(np.float64)
    truth_mm = np.concatenate([s.truth_mm[s.detected] for s in sessions])
    per_joint = truth_distances_mm(landmarks_mm, truth_mm)
    return {
        "true_mean": float(per_joint.mean()),
        "true_median": float(np.median(per_joint.mean(1))),
        "true_wrist_mean": float(wrist_relative_mm(landmarks_mm, truth_mm).mean()),
        "per_joint_true": per_joint.mean(0),
    }


def fit_sessions(sessions: list[Session], config: IKConfig) -> dict:
    """Batched fits of every session -> arrays over the detected frames."""
    fits, seconds = [], 0.0
    for session in sessions:
        start = time.perf_counter()
        hand = subject_hand(session.landmarks_m, session.scores, config, HandModel())
        fits.append(fit_sequence(session.landmarks_m, session.scores, config, hand))
        seconds += time.perf_counter() - start
    detected = [s.detected for s in sessions]
    return {
        "joints_mm": np.concatenate(
            [f.joints_mm[d] for f, d in zip(fits, detected, strict=True)]
        ),
        "residual_mm": np.concatenate(
            [f.ik_error_mm[d] for f, d in zip(fits, detected, strict=True)]
        ),
        "valid": np.concatenate([f.label_valid for f in fits]),
        "ms_per_frame": 1000.0 * seconds / sum(len(d) for d in detected),
    }


def score_fit(fit: dict, sessions: list[Session], config: IKConfig) -> dict:
    """Residual and true-error summary of `fit_sessions` output."""
    truth_mm = np.concatenate([s.truth_mm[s.detected] for s in sessions])
    landmarks_mm = np.concatenate([s.landmarks_m[s.detected] for s in sessions]) * 1e3
    joints_mm = fit["joints_mm"].astype(np.float64)
    true_per_joint = truth_distances_mm(joints_mm, truth_mm)
    residual_per_joint, scale = aligned_distances_mm(
        landmarks_mm, joints_mm, config.alignment
    )
    return {
        "residual_mean": float(np.mean(fit["residual_mm"])),
        "residual_median": float(np.median(fit["residual_mm"])),
        "true_mean": float(true_per_joint.mean()),
        "true_median": float(np.median(true_per_joint.mean(1))),
        "true_wrist_mean": float(wrist_relative_mm(joints_mm, truth_mm).mean()),
        "valid_pct": 100.0 * float(np.mean(fit["valid"])),
        "ms_per_frame": fit["ms_per_frame"],
        "scale_mean": float(scale.mean()),
        "scale_sd": float(scale.std()),
        "per_joint_true": true_per_joint.mean(0),
        "per_joint_residual": residual_per_joint.mean(0),
    }


MIRROR = np.array([-1.0, 1.0, 1.0])  # x -> -x: a left hand seen as a right


def model_for(handedness: str) -> HandModel:
    return HandModel(is_right=handedness != "left")


def real_hand(frame: RealFrame, frames: list[RealFrame], config: IKConfig):
    """The hand for one real file, its bones fitted to the OTHER files (one frame
    alone has about as many unknowns as data, so it could absorb its own residual
    into its bones). Alone, a file gets the average bones."""
    model = model_for(frame.handedness)
    others = [other for other in frames if other is not frame]
    if not others or not config.fit_bone_lengths:
        return model
    # the other hands as this side's hand: a hand of the other side is mirrored
    landmarks_m = np.stack([
        other.landmarks_m * (1.0 if other.handedness == frame.handedness else MIRROR)
        for other in others
    ])  # fmt: skip
    scale = fit_bone_scale(landmarks_m, np.ones(len(others)), config, model)
    return model.with_bone_scale(scale)


def fit_real(frames: list[RealFrame], config: IKConfig) -> dict:
    """Per-frame fits of the real files: residual only (no truth exists)."""
    residuals, per_joint = {}, []
    for frame in frames:
        fit = fit_sequence(
            frame.landmarks_m[None],
            np.array([frame.score]),
            config,
            real_hand(frame, frames, config),
        )
        residuals[frame.name] = float(fit.ik_error_mm[0])
        distances, _ = aligned_distances_mm(
            frame.landmarks_m[None] * 1000.0,
            fit.joints_mm.astype(np.float64),
            config.alignment,
        )
        per_joint.append(distances[0])
    return {
        "real_residual_mean": float(np.mean(list(residuals.values()))),
        "real_residuals": residuals,
        "real_per_joint_residual": np.mean(per_joint, 0),
    }


def run_row(settings: dict, sessions, frames: list[RealFrame]) -> dict:
    config = replace(IKConfig(), **settings)
    fit = fit_sessions(sessions, config)
    return {**score_fit(fit, sessions, config), **fit_real(frames, config)}


def run_table(rows: dict, sessions, frames, cache: dict) -> dict:
    """name -> row results; rows with the same settings are fitted once."""
    results = {}
    for name, settings in rows.items():
        key = tuple(sorted(replace(IKConfig(), **settings).as_dict().items()))
        if key not in cache:
            cache[key] = run_row(settings, sessions, frames)
        results[name] = cache[key]
    return results


def run_streaming(sessions: list[Session], config: IKConfig, frames: int) -> dict:
    """StreamingIK over the first `frames` frames of each session, one thread."""
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        runs = [_stream_session(s, config, frames) for s in sessions]
    finally:
        torch.set_num_threads(previous_threads)
    joints_mm = np.concatenate([r[0] for r in runs])
    residual_mm = np.concatenate([r[1] for r in runs])
    durations_ms = np.concatenate([r[2] for r in runs])
    truth_mm = np.concatenate(
        [s.truth_mm[:frames][s.detected[:frames]] for s in sessions]
    )
    true_per_joint = truth_distances_mm(joints_mm, truth_mm)
    return {
        "residual_mean": float(np.mean(residual_mm)),
        "residual_median": float(np.median(residual_mm)),
        "true_mean": float(true_per_joint.mean()),
        "true_median": float(np.median(true_per_joint.mean(1))),
        "true_wrist_mean": float(wrist_relative_mm(joints_mm, truth_mm).mean()),
        "ms_per_frame": float(np.median(durations_ms)),
        "ms_p95": float(np.percentile(durations_ms, 95)),
    }


def _stream_session(session: Session, config: IKConfig, frames: int):
    """-> joints (n, 21, 3), residual (n,), durations ms (n,) over detected frames
    (the cold-start first frame's duration is left out of the timings)."""
    streaming = StreamingIK(config)
    joints, residuals, durations = [], [], []
    for index in range(min(frames, len(session.scores))):
        start = time.perf_counter()
        fit = streaming.fit_frame(session.landmarks_m[index], session.scores[index])
        elapsed_ms = 1000.0 * (time.perf_counter() - start)
        if not session.detected[index]:
            continue
        joints.append(fit.joints_mm.astype(np.float64))
        residuals.append(fit.residual_mm)
        if index > 0:
            durations.append(elapsed_ms)
    return np.stack(joints), np.array(residuals), np.array(durations)


def run_streaming_rows(sessions: list[Session], frames: int) -> dict:
    """Streaming rows: the default (linearised Adam steps) on every session, and each
    optimizer on full torch steps over the first session's first frames."""
    rows = {"default (linearised Adam)": run_streaming(sessions, IKConfig(), frames)}
    short = min(frames, STREAM_OPTIMIZER_FRAMES)
    for name, settings in OPTIMIZER_ROWS.items():
        config = replace(IKConfig(), streaming_linearized=False, **settings)
        rows[f"{name}, torch steps"] = run_streaming(sessions[:1], config, short)
    return rows


def run_experiments(
    out_dir: Path, frames: int, seed: int, landmarks_dir: Path = REAL_LANDMARKS_DIR
) -> dict:
    """Run every experiment, write OUT/ik_experiments.md and OUT/img/*.png, and
    return the results (per table: row name -> numbers)."""
    from labeling import experiments_report

    started, load_before = time.perf_counter(), os.getloadavg()[0]
    frames_real = real_frames(landmarks_dir)
    sessions = simulated_sessions(frames, seed)
    cache: dict = {}
    results = {
        "frames": frames,
        "seed": seed,
        "sessions": len(sessions),
        "raw": raw_noise(sessions),
        "ablation": run_table(ABLATION_ROWS, sessions, frames_real, cache),
        "alignment": run_table(ALIGNMENT_ROWS, sessions, frames_real, cache),
        "optimizer": run_table(OPTIMIZER_ROWS, sessions, frames_real, cache),
        "streaming": run_streaming_rows(sessions, frames),
        "real_frames": [(f.name, f.handedness, f.score) for f in frames_real],
        "real_mirrored": fit_real(
            [f._replace(handedness="left") for f in frames_real], IKConfig()
        ),
        # is 60 iterations from the flat hand enough for a lone real frame?
        "real_long": fit_real(frames_real, IKConfig(sequence_iterations=600)),
    }
    results["seconds"] = time.perf_counter() - started
    results["load_average"] = (load_before, os.getloadavg()[0])
    experiments_report.write_report(Path(out_dir), results)
    return results


def run_experiments_command(args) -> int:
    results = run_experiments(args.out, args.frames, args.seed)
    default = results["ablation"]["full + joint limits (our default)"]
    print(
        f"wrote {args.out / 'ik_experiments.md'}: default residual "
        f"{default['residual_mean']:.2f} mm, true error {default['true_mean']:.2f} mm, "
        f"raw landmarks {results['raw']['true_mean']:.2f} mm "
        f"({results['seconds']:.0f} s)"
    )
    return 0


def add_experiments_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "experiments",
        help="reproduce the seed's IK validation tables on simulated and real data",
        description=(
            "Loss ablation, alignment and optimizer comparisons and per-joint errors "
            "for the IK, on simulated sessions (fit residual and error against the "
            "true joints) and on the real MediaPipe landmark files (residual only). "
            "Writes OUT/ik_experiments.md and plots in OUT/img/."
        ),
    )
    parser.add_argument(
        "--out", type=Path, default=Path("docs"), help="output folder (default: docs)"
    )
    parser.add_argument(
        "--frames",
        type=int,
        default=900,
        help=f"frames per simulated session, {SIM_SESSIONS} sessions (default: 900)",
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="first simulator seed (default: 0)"
    )
    parser.set_defaults(run=run_experiments_command)
