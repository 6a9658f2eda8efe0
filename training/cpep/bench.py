"""`python -m training cpep-bench`: CPEP gesture classification, seen and unseen
gestures, on multi-subject simulated data, beside the seed's baselines and ablations.

Pipeline (training/cpep): pose and EMG masked autoencoders pre-trained on the
pre-training subjects' windows, then CPEP aligns the EMG encoder to the frozen pose
encoder. Gestures are classified on held-out test subjects: zero-shot by retrieval
among the reference subjects' example poses (k = 10), and by linear probes (seen
gestures: trained on the pre-training subjects; unseen: on the reference subjects).
Unseen gestures appear in no training stage before their probe. Accuracy is macro.

Compared (linear probes on frozen embeddings): the supervised pose regressor's
encoder (PoseT, the baseline), the EMG-only MAE, and the pose MAE on the true pose
(an upper bound: it sees the pose, not the EMG). Ablations as in the seed: frozen
EMG encoder (only the head trains), random init, average pooling instead of [CLS].
A table goes to stderr, one JSON line to stdout.

`--emg2pose DIR` runs the same on emg2pose-layout files instead (a file's stage is
its gesture; see emg2pose_gestures.py), as the seed did on emg2pose itself.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path

import torch

from training.cpep.baselines import train_pose_regressor
from training.cpep.checkpoint import CpepModel, save_cpep
from training.cpep.contrastive import align, embed_windows
from training.cpep.emg2pose_gestures import read_staged, staged_gesture_data
from training.cpep.encoders import (
    SIZES,
    EncoderConfig,
    SignalEncoder,
    emg_config,
    pose_config,
)
from training.cpep.gesture_data import (
    DEFAULT_UNSEEN,
    GestureData,
    GestureSetup,
    build_gesture_data,
)
from training.cpep.mae import pretrain_mae
from training.cpep.optim import OptimConfig
from training.cpep.retrieval import fit_linear_probe, knn_classify, macro_accuracy
from training.cpep.windows import frame_rate_hz, random_channel_rotation
from training.data import check_compatible
from training.preprocessing import FilterConfig

SIMULATED_EMG_RATE_HZ = 500.0
SIMULATED_CAMERA_FPS = 30.0
NUM_ANGLES = 20
NUM_CHANNELS = 8


def linear_probe_scores(embed, data: GestureData) -> dict:
    """Macro accuracy of linear probes on `embed` (windows -> embeddings): seen
    gestures trained on the pre-training subjects, unseen on the reference ones,
    both scored on the test subjects."""
    scores = {}
    for task, gestures, train in (
        ("in_dist", data.seen, data.pretrain_gestures),
        ("unseen", data.unseen, data.reference),
    ):
        train, test = train.with_gestures(gestures), data.test.with_gestures(gestures)
        probe = fit_linear_probe(embed(train), train.gesture)
        predicted = probe.predict(embed(test))
        scores[f"lp_{task}"] = macro_accuracy(test.gesture, predicted)
    return scores


def zero_shot_scores(emg_embed, pose_embed, data: GestureData) -> dict:
    """Macro accuracy of k-NN retrieval of the reference subjects' example poses
    for the test subjects' EMG, among the seen and among the unseen gestures."""
    scores = {}
    for task, gestures in (("in_dist", data.seen), ("unseen", data.unseen)):
        gallery = data.reference.with_gestures(gestures)
        test = data.test.with_gestures(gestures)
        predicted = knn_classify(emg_embed(test), pose_embed(gallery), gallery.gesture)
        scores[f"zs_{task}"] = macro_accuracy(test.gesture, predicted)
    return scores


def emg_embedding(encoder: SignalEncoder, pooling: str = "cls"):
    encoder.eval()
    return lambda windows: embed_windows(
        lambda emg: encoder.embed(emg, pooling), windows.emg
    )


def pose_embedding(encoder: SignalEncoder, pooling: str = "cls"):
    encoder.eval()
    return lambda windows: embed_windows(
        lambda pose: encoder.embed(pose, pooling), windows.pose
    )


def cpep_variant(emg_encoder, pose_encoder, data, optim, **options):
    """Aligns a copy of `emg_encoder`: (zero-shot and probe scores, embedder)."""
    pooling = options.get("pooling", "cls")
    result = align(
        copy.deepcopy(emg_encoder), pose_encoder, data.pretrain.emg,
        data.pretrain.pose, optim, **options,
    )  # fmt: skip
    embedder = result.embedder

    def emg_embed(windows):
        return embed_windows(embedder, windows.emg)

    scores = zero_shot_scores(emg_embed, pose_embedding(pose_encoder, pooling), data)
    scores.update(linear_probe_scores(emg_embed, data))
    scores["temperature"] = embedder.temperature
    return scores, embedder


def run_methods(data: GestureData, args, emg, pose) -> dict[str, dict]:
    """Every method's scores, by name, with encoders configured as `emg` and
    `pose` say."""
    mae_optim = optim_config(args, args.mae_epochs)
    cpep_optim = optim_config(args, args.cpep_epochs)
    shift = args.max_channel_shift

    def rotate(windows, generator):
        return random_channel_rotation(windows, shift, generator)

    pose_mae = pretrain_mae(pose, data.pretrain.pose, mae_optim, label="pose-mae")
    emg_mae = pretrain_mae(
        emg, data.pretrain.emg, mae_optim, augment=rotate, label="emg-mae"
    )
    torch.manual_seed(args.seed + 1)
    random_encoder = SignalEncoder(emg)
    methods = {}
    methods["cpep"], embedder = cpep_variant(
        emg_mae.encoder, pose_mae.encoder, data, cpep_optim,
        max_channel_shift=shift, label="cpep",
    )  # fmt: skip
    if args.out is not None:
        save_cpep(CpepModel(
            embedder, pose_mae.encoder, data.emg_normalization,
            data.pose_normalization, FilterConfig(), data.sampling_rate_hz,
            data.pose_rate_hz,
        ), args.out)  # fmt: skip
    methods["cpep_frozen_emg"], _ = cpep_variant(
        emg_mae.encoder, pose_mae.encoder, data, cpep_optim, train_encoder=False,
        max_channel_shift=shift, label="cpep-frozen",
    )  # fmt: skip
    methods["cpep_random_init"], _ = cpep_variant(
        random_encoder, pose_mae.encoder, data, cpep_optim,
        max_channel_shift=shift, label="cpep-randinit",
    )  # fmt: skip
    methods["cpep_avg_pool"], _ = cpep_variant(
        emg_mae.encoder, pose_mae.encoder, data, cpep_optim, pooling="mean",
        max_channel_shift=shift, label="cpep-avgpool",
    )  # fmt: skip
    regressor = train_pose_regressor(
        emg, pose, data.pretrain.emg, data.pretrain.pose, mae_optim,
        max_channel_shift=shift,
    )  # fmt: skip
    methods["poset_supervised"] = linear_probe_scores(
        emg_embedding(regressor.encoder), data
    )
    methods["emg_mae"] = linear_probe_scores(emg_embedding(emg_mae.encoder), data)
    methods["pose_mae_upper_bound"] = linear_probe_scores(
        pose_embedding(pose_mae.encoder), data
    )
    return methods


def optim_config(args, epochs: int) -> OptimConfig:
    return OptimConfig(
        epochs=epochs, batch_size=args.batch_size, learning_rate=args.learning_rate,
        weight_decay=1e-5, restart_epochs=epochs, seed=args.seed,
    )  # fmt: skip


def print_table(methods: dict[str, dict]) -> None:
    columns = ("lp_in_dist", "zs_in_dist", "lp_unseen", "zs_unseen")
    print(f"{'method':22s}" + "".join(f"{c:>12s}" for c in columns), file=sys.stderr)
    for name, scores in methods.items():
        cells = "".join(
            f"{scores[c]:12.3f}" if c in scores else f"{'-':>12s}" for c in columns
        )
        print(f"{name:22s}{cells}", file=sys.stderr)


def summary(methods: dict, data: GestureData, seconds: float, args) -> dict:
    cpep = methods["cpep"]
    rounded = {
        name: {key: round(value, 4) for key, value in scores.items()}
        for name, scores in methods.items()
    }
    return {
        "zero_shot_unseen_acc": round(cpep["zs_unseen"], 4),
        "linear_probe_unseen_acc": round(cpep["lp_unseen"], 4),
        "zero_shot_in_dist_acc": round(cpep["zs_in_dist"], 4),
        "linear_probe_in_dist_acc": round(cpep["lp_in_dist"], 4),
        "chance": round(1 / len(data.unseen), 4),
        "chance_in_dist": round(1 / len(data.seen), 4),
        "baseline_lp_unseen_acc": round(methods["poset_supervised"]["lp_unseen"], 4),
        "baseline_lp_in_dist_acc": round(methods["poset_supervised"]["lp_in_dist"], 4),
        "emg_mae_lp_unseen_acc": round(methods["emg_mae"]["lp_unseen"], 4),
        "methods": rounded,
        "seen": data.seen,
        "unseen": data.unseen,
        "windows": {
            "pretrain": len(data.pretrain),
            "pretrain_gestures": len(data.pretrain_gestures),
            "reference": len(data.reference),
            "test": len(data.test),
        },
        "size": args.size,
        "seconds": round(seconds, 1),
    }


def setup_from_args(args) -> GestureSetup:
    return GestureSetup(
        unseen=tuple(args.unseen), pretrain_subjects=args.pretrain_subjects,
        reference_subjects=args.reference_subjects, test_subjects=args.test_subjects,
        cycles=args.cycles, labels=args.labels, seed=args.seed,
    )  # fmt: skip


def gesture_data_from_args(args) -> tuple[GestureData, EncoderConfig, EncoderConfig]:
    """The windows (emg2pose files when --emg2pose names a folder, else simulated
    subjects) and the encoders scaled to their rates."""
    if args.emg2pose is None:
        emg = emg_config(NUM_CHANNELS, SIMULATED_EMG_RATE_HZ, args.size)
        pose = pose_config(NUM_ANGLES, SIMULATED_CAMERA_FPS, args.size)
        setup = setup_from_args(args)
        return build_gesture_data(setup, emg.window_steps, pose.window_steps), emg, pose
    staged = read_staged(args.emg2pose)
    sessions = [session for session, _ in staged]
    check_compatible(sessions)
    first = sessions[0]
    emg = emg_config(first.num_channels, first.sampling_rate_hz, args.size)
    pose = pose_config(NUM_ANGLES, frame_rate_hz(first), args.size)
    data = staged_gesture_data(
        staged, args.unseen, args.reference_subjects, args.test_subjects,
        emg.window_steps, pose.window_steps,
    )  # fmt: skip
    return data, emg, pose


def run_cpep_bench(args: argparse.Namespace) -> int:
    started = time.monotonic()
    if args.threads:
        torch.set_num_threads(args.threads)
    data, emg, pose = gesture_data_from_args(args)
    print(
        f"encoders: emg {asdict(emg)}\n          pose {asdict(pose)}", file=sys.stderr
    )
    methods = run_methods(data, args, emg, pose)
    print_table(methods)
    line = summary(methods, data, time.monotonic() - started, args)
    print(json.dumps(line), flush=True)
    return 0


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def add_cpep_bench_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "cpep-bench",
        help="CPEP zero-shot and linear-probe gesture classification, simulated",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--size", choices=tuple(SIZES), default="small",
        help="encoder size: paper (d=256, 4+2 layers; for a GPU), small (d=64, "
        "2+1; the CPU default), tiny (d=16, 1+1; tests)",
    )  # fmt: skip
    parser.add_argument(
        "--unseen", nargs="+", default=list(DEFAULT_UNSEEN),
        help="gestures of protocol 000 held out of all training",
    )  # fmt: skip
    parser.add_argument(
        "--emg2pose", type=Path, default=None, metavar="DIR",
        help="emg2pose-layout files instead of simulated subjects: a file's stage "
        "is its gesture (name the unseen stages with --unseen); users are split "
        "into pre-training, --reference-subjects and --test-subjects",
    )  # fmt: skip
    parser.add_argument("--pretrain-subjects", type=positive_int, default=6)
    parser.add_argument("--reference-subjects", type=positive_int, default=3)
    parser.add_argument("--test-subjects", type=positive_int, default=3)
    parser.add_argument(
        "--cycles", type=positive_int, default=3,
        help="protocol repetitions per subject (default 3)",
    )  # fmt: skip
    parser.add_argument("--mae-epochs", type=positive_int, default=15)
    parser.add_argument("--cpep-epochs", type=positive_int, default=15)
    parser.add_argument("--batch-size", type=positive_int, default=64)
    parser.add_argument(
        "--learning-rate", type=float, default=1e-3,
        help="AdamW learning rate (the seed's 1e-4 is for 100 epochs of 370 h)",
    )  # fmt: skip
    parser.add_argument(
        "--max-channel-shift", type=int, default=1,
        help="channel-rotation augmentation: up to this many electrodes either way",
    )  # fmt: skip
    parser.add_argument(
        "--out", type=Path, default=None, metavar="FILE",
        help="save the CPEP model (embedder, pose encoder, filter, normalizations) "
        "here, for live gesture recognition (inference.cpep_gestures)",
    )  # fmt: skip
    parser.add_argument("--labels", choices=("truth", "ik"), default="truth")
    parser.add_argument("--seed", type=int, default=0, help="first subject's seed")
    parser.add_argument(
        "--threads", type=int, default=0,
        help="torch CPU threads (0: torch's default)",
    )  # fmt: skip
    parser.set_defaults(run=run_cpep_bench)
