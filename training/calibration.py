"""Per-user calibration: fine-tune a pre-trained model on one person's short
calibration recording (the 1-minute protocol), producing a new checkpoint.

`finetune(base_checkpoint, calibration_sessions, out_dir, config)`:
- the base checkpoint's model, weights and filter are kept (its `filter` overrides
  change only what belongs to the site, e.g. the mains notch at 60 Hz);
- the normalization is refitted on the calibration EMG by default: a new person's
  skin and electrode contact change every channel's amplitude, which is what the
  per-channel z-scoring is for (config.normalization = "checkpoint" keeps the base's);
- a few epochs at one constant learning rate, with frozen parameters (by name
  prefix; by default the tcn's layers after its front end, DEFAULT_FROZEN);
- without separate held-out sessions, the last `validation_fraction` of each
  calibration recording (by time) is held out: its windows see none of the EMG the
  training windows see, so the reported MPJPE is on unseen movement.
The result is an ordinary checkpoint folder (last.pt, best.pt, final.pt, resumable),
with the base's provenance under "finetuned_from"; live inference loads it as any.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from training.checkpoint import read_checkpoint, save_checkpoint
from training.data import DataError, LabeledSession, WindowDataset, check_compatible
from training.preprocessing import Normalization
from training.trainer import (
    LAST,
    Progress,
    RunState,
    ShouldStop,
    TrainConfig,
    TrainResult,
    finish,
    run_epoch,
    stop_reason,
)

NORMALIZATIONS = ("calibration", "checkpoint")
NO_LR_DROP_EPOCH = 1_000_000  # one constant rate; fixed, so a resume may add epochs
# What a person changes is how muscles reach the electrodes (anatomy, where the band
# sits): the tcn's front end (electrode/frequency filters). What muscle activity means
# for the hand is shared, so by default those layers stay as pre-trained; chosen on
# a development subject of calibrate-bench (docs/benchmarks.md). Other models: none.
DEFAULT_FROZEN = {"tcn": ("blocks", "angles_head", "correction_head")}


@dataclass
class FineTuneConfig:
    epochs: int = 10
    learning_rate: float = 1e-3  # only the front end moves (see DEFAULT_FROZEN)
    batch_size: int = 64  # a minute holds few windows: more, smaller steps
    stride_samples: int = 10  # 20 ms between window ends, as in pre-training
    # parameter-name prefixes kept fixed; None: the model's DEFAULT_FROZEN
    freeze: tuple[str, ...] | None = None
    normalization: str = "calibration"  # or "checkpoint": the base's statistics
    validation_fraction: float = 0.2  # of each calibration, when none is held out
    early_stopping_patience: int | None = None  # epochs; None: run them all
    augment: bool | None = None  # None: as the base model was trained
    filter: dict = field(default_factory=dict)  # FilterConfig overrides (site)
    seed: int = 0
    device: str = "auto"
    time_budget_s: float | None = None

    def __post_init__(self) -> None:
        if self.freeze is not None:
            self.freeze = tuple(self.freeze)
        if self.epochs < 1 or self.batch_size < 1 or self.stride_samples < 1:
            raise ValueError("epochs, batch_size and stride_samples must be >= 1")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate}")
        if self.normalization not in NORMALIZATIONS:
            raise ValueError(
                f"normalization must be one of {NORMALIZATIONS}, "
                f"got {self.normalization!r}"
            )
        if not 0 < self.validation_fraction < 1:
            raise ValueError(
                f"validation_fraction must be in (0, 1), got {self.validation_fraction}"
            )

    def as_dict(self) -> dict:
        return asdict(self)


def time_slice(
    session: LabeledSession, start_s: float, end_s: float, name: str
) -> LabeledSession:
    """The part of a session in [start_s, end_s) of its clock: EMG and label frames
    both cut, so its windows see only EMG from inside the part."""
    emg_kept = (session.emg_time >= start_s) & (session.emg_time < end_s)
    frames_kept = (session.frame_time >= start_s) & (session.frame_time < end_s)
    return dataclasses.replace(
        session, name=name, emg=session.emg[emg_kept],
        emg_time=session.emg_time[emg_kept],
        frame_time=session.frame_time[frames_kept],
        joints_mm=session.joints_mm[frames_kept],
        joint_angles=session.joint_angles[frames_kept],
        label_valid=session.label_valid[frames_kept],
    )  # fmt: skip


def split_tail(
    session: LabeledSession, fraction: float
) -> tuple[LabeledSession, LabeledSession]:
    """(the first 1 - fraction, the last fraction) of a session by time."""
    start_s, end_s = float(session.emg_time[0]), float(session.emg_time[-1])
    cut_s = end_s - fraction * (end_s - start_s)
    percent = round(100 * fraction)
    head = time_slice(session, start_s, cut_s, f"{session.name} (first "
                                               f"{100 - percent}%)")  # fmt: skip
    tail = time_slice(session, cut_s, end_s + 1.0, f"{session.name} (last {percent}%)")
    return head, tail


def base_train_config(base: dict, config: FineTuneConfig) -> TrainConfig:
    """The TrainConfig of the fine-tune run: the base's model and filter, the
    fine-tune's schedule (one constant learning rate)."""
    saved = base.get("train_config") or {}
    return TrainConfig(
        model=base["model_name"], model_config=dict(base["model_config"]),
        epochs=config.epochs, batch_size=config.batch_size,
        learning_rate=config.learning_rate, lr_drop_epoch=NO_LR_DROP_EPOCH,
        lr_after_drop=config.learning_rate, stride_samples=config.stride_samples,
        early_stopping_patience=config.early_stopping_patience,
        angle_loss_mm_per_rad=saved.get("angle_loss_mm_per_rad", 20.0),
        augment=saved.get("augment") if config.augment is None else config.augment,
        seed=config.seed, device=config.device, time_budget_s=config.time_budget_s,
        filter=dict(base["filter"]) | config.filter,
    )  # fmt: skip


class FineTuneRun(RunState):
    """A trainer run that starts from a base checkpoint's weights instead of a
    fresh model; everything else (epochs, checkpoints, resume) is the trainer's."""

    def __init__(self, base: dict, base_path: Path, config: FineTuneConfig,
                 train_sessions, validation_sessions):  # fmt: skip
        check_model_channels(base, train_sessions + validation_sessions)
        if (base.get("train_config") or {}).get("task", "regression") != "regression":
            raise ValueError(
                f"{base_path} is a tracking-task model (it needs the start pose); "
                "fine-tune a regression model"
            )
        super().__init__(base_train_config(base, config), train_sessions,
                         validation_sessions)  # fmt: skip
        self.model.load_state_dict(base["state_dict"])
        if config.normalization == "checkpoint":
            self._use_normalization(Normalization.from_dict(base["normalization"]))
        prefixes = config.freeze
        if prefixes is None:
            prefixes = DEFAULT_FROZEN.get(base["model_name"], ())
        self.frozen = freeze_parameters(self.model, prefixes)
        trainable = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.Adam(trainable, config.learning_rate)
        self.provenance = {
            "checkpoint": str(base_path),
            "model_name": base["model_name"],
            "data": base.get("data"),
            "metrics": base.get("metrics"),
            "finetune_config": config.as_dict(),
            "frozen_parameters": self.frozen,
        }

    def _use_normalization(self, normalization: Normalization) -> None:
        self.normalization = normalization
        window = self.model.config.window_samples
        self.train_data = self._dataset(self.train_data.sessions, window)
        self.validation_data = self._dataset(self.validation_data.sessions, window)

    def contents(self, epoch: int) -> dict:
        return super().contents(epoch) | {"finetuned_from": self.provenance}


def check_model_channels(base: dict, sessions: list[LabeledSession]) -> None:
    """DataError unless the sessions have the base model's channels and rate."""
    check_compatible(sessions)
    expected = len(base["channel_names"])
    rate_hz = base["model_config"].get("sampling_rate_hz")
    for session in sessions:
        if session.num_channels != expected:
            raise DataError(
                f"the base model expects {expected} EMG channels, session "
                f"{session.name} has {session.num_channels}"
            )
        if rate_hz is not None and session.sampling_rate_hz != rate_hz:
            raise DataError(
                f"the base model expects EMG at {rate_hz:g} Hz, session "
                f"{session.name} is sampled at {session.sampling_rate_hz:g} Hz"
            )


def freeze_parameters(model: torch.nn.Module, prefixes: tuple[str, ...]) -> list[str]:
    """Fix the parameters whose names start with any prefix; returns their names.
    ValueError names a prefix that matches nothing (a typo freezes nothing)."""
    names = [name for name, _ in model.named_parameters()]
    for prefix in prefixes:
        if not any(name.startswith(prefix) for name in names):
            tops = sorted({name.split(".")[0] for name in names})
            raise ValueError(
                f"freeze: no parameter of this model starts with {prefix!r}; its "
                f"layers are {', '.join(tops)}"
            )
    frozen = []
    for name, parameter in model.named_parameters():
        if name.startswith(tuple(prefixes)):
            parameter.requires_grad_(False)
            frozen.append(name)
    if len(frozen) == len(names):
        raise ValueError("freeze: that fixes every parameter; nothing would adapt")
    return frozen


def calibration_split(
    calibration_sessions: list[LabeledSession],
    validation_sessions: list[LabeledSession] | None,
    fraction: float,
) -> tuple[list[LabeledSession], list[LabeledSession]]:
    """(train, validation): the given held-out sessions, else each calibration's
    last `fraction` by time."""
    if not calibration_sessions:
        raise DataError("fine-tuning needs a labeled calibration session")
    if validation_sessions:
        return list(calibration_sessions), list(validation_sessions)
    parts = [split_tail(session, fraction) for session in calibration_sessions]
    return [head for head, _ in parts], [tail for _, tail in parts]


def finetune(
    base_checkpoint: str | Path,
    calibration_sessions: list[LabeledSession],
    out_dir: str | Path,
    config: FineTuneConfig | None = None,
    validation_sessions: list[LabeledSession] | None = None,
    progress: Progress | None = None,
    should_stop: ShouldStop | None = None,
) -> TrainResult:
    """Fine-tune the base checkpoint on the calibration sessions (or resume, when
    `out_dir` holds last.pt); see the module docstring. Raises DataError,
    CheckpointError, ValueError with a message for a person, TrainingCancelled."""
    config = config or FineTuneConfig()
    base_path = Path(base_checkpoint)
    base = read_checkpoint(base_path)
    train_part, validation_part = calibration_split(
        calibration_sessions, validation_sessions, config.validation_fraction
    )
    out_dir = Path(out_dir)
    run = FineTuneRun(base, base_path, config, train_part, validation_part)
    done = run.resume_from(out_dir / LAST) if (out_dir / LAST).exists() else 0
    stopped, started = "completed", time.monotonic()
    for epoch in range(done + 1, config.epochs + 1):
        metrics = run_epoch(run, epoch, should_stop or (lambda: False))
        save_checkpoint(out_dir / LAST, run.contents(epoch))
        if metrics["improved"]:
            save_checkpoint(out_dir / "best.pt", run.contents(epoch))
        if progress:
            progress(epoch, metrics)
        stopped = stop_reason(run, run.config, started)
        if stopped != "completed":
            break
    return finish(run, out_dir, stopped)


def evaluate_checkpoint(checkpoint: str | Path, sessions: list[LabeledSession],
                        stride_samples: int = 10) -> dict:  # fmt: skip
    """{"model": ..., "baseline": ...} metrics of a checkpoint on labeled sessions,
    with its own filter and normalization."""
    from training.checkpoint import load_model
    from training.evaluation import evaluate_model

    loaded = load_model(checkpoint)
    check_model_channels(loaded.contents, sessions)
    dataset = WindowDataset(
        sessions, loaded.window_samples, stride_samples, loaded.filter_config,
        loaded.normalization,
    )  # fmt: skip
    return evaluate_model(loaded.model, dataset, loaded.baseline_pose)


# ------------------------------------------------------------------ the command


def run_finetune(args: argparse.Namespace) -> int:
    from training.commands import print_epoch, read_sessions, summary_line

    config = FineTuneConfig(
        epochs=args.epochs, learning_rate=args.lr, batch_size=args.batch_size,
        freeze=args.freeze, normalization=args.normalization,
        validation_fraction=args.validation_fraction, seed=args.seed,
        device=args.device,
        filter={} if args.notch_hz is None else {"notch_hz": args.notch_hz or None},
    )  # fmt: skip
    calibration = read_sessions(args.sessions)
    held_out = read_sessions(args.held_out) if args.held_out else None
    result = finetune(args.checkpoint, calibration, args.out, config, held_out,
                      progress=print_epoch)  # fmt: skip
    print(json.dumps(summary_line(result) | {"base": str(args.checkpoint)}),
          flush=True)  # fmt: skip
    return 0


def add_finetune_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "finetune",
        help="fine-tune a pre-trained checkpoint on one person's calibration",
        description=(
            "Adapt a pre-trained model to a new person from a short labeled "
            "recording (the 1-minute calibration protocol): the base's weights and "
            "filter are kept, the normalization is refitted on the calibration "
            "(--normalization checkpoint keeps the base's), and the model trains "
            "for a few epochs at a low learning rate. Without --held-out, the last "
            "--validation-fraction of each calibration is held out for validation. "
            "Writes an ordinary checkpoint folder (re-running resumes) and prints "
            "one JSON line."
        ),
    )
    parser.add_argument("--checkpoint", type=Path, required=True,
                        help="the pre-trained model (final.pt)")  # fmt: skip
    parser.add_argument(
        "--sessions", type=Path, nargs="+", required=True,
        help="the person's labeled calibration session file(s)",
    )  # fmt: skip
    parser.add_argument("--out", type=Path, required=True, help="checkpoint folder")
    parser.add_argument("--held-out", type=Path, nargs="+", default=None,
                        help="other sessions of the person to validate on")  # fmt: skip
    defaults = FineTuneConfig()
    parser.add_argument("--epochs", type=int, default=defaults.epochs)
    parser.add_argument("--lr", type=float, default=defaults.learning_rate)
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument(
        "--freeze", nargs="*", default=None, metavar="PREFIX",
        help="parameter-name prefixes to keep fixed; default: the tcn's layers "
        "after its front end (other models: none); --freeze alone: none",
    )  # fmt: skip
    parser.add_argument(
        "--normalization", choices=NORMALIZATIONS, default=defaults.normalization,
        help="refit on the calibration (default) or keep the checkpoint's",
    )  # fmt: skip
    parser.add_argument("--validation-fraction", type=float,
                        default=defaults.validation_fraction)  # fmt: skip
    parser.add_argument(
        "--notch-hz", type=float, default=None,
        help="mains notch where this person records (50 or 60; 0: none); default: "
        "the checkpoint's",
    )  # fmt: skip
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda[:N]")
    parser.set_defaults(run=run_finetune)
