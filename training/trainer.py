"""The training loop: labeled sessions in, a checkpointed EMG -> pose model out.

One call, `train(config, train_sessions, validation_sessions, out_dir)`:
- preprocessing: causal band-pass + notch, then per-channel normalization whose
  statistics come from the training sessions only (saved in the checkpoint);
- windows of `window_samples` (the model's) every `stride_samples`, the target the
  label at the window end; windows without a valid label are not in the data;
- Adam with the seed's schedule (1e-3, then 5e-4 from epoch 78), MPJPE loss on the
  joints, plus an L1 angle term for models that also predict angles;
- after every epoch: validation, `last.pt` (everything needed to resume) and, when
  validation MPJPE improved, `best.pt`; `progress(epoch, metrics)` is called;
- early stopping, a wall-time budget (benchmarks) and cancellation;
- deterministic: the seed fixes the initial weights, every epoch's shuffling and
  augmentation, and dropout; an interrupted run resumed from `last.pt` ends with the
  same weights as an uninterrupted one.
The final evaluation (best weights, validation sessions) goes next to the mean-pose
baseline into `final.pt` and the returned TrainResult.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from training.augment import augment_batch
from training.checkpoint import CheckpointError, read_checkpoint, save_checkpoint
from training.data import (
    WindowDataset,
    check_compatible,
    fit_normalization,
    random_window_split,
)
from training.evaluation import evaluate_model, mean_targets
from training.models import count_parameters
from training.preprocessing import FilterConfig
from training.tracking import build_task_model, check_task, model_outputs, task_dataset

Progress = Callable[[int, dict], None]
ShouldStop = Callable[[], bool]
LAST, BEST, FINAL = "last.pt", "best.pt", "final.pt"


@dataclass
class TrainConfig:
    model: str = "v5"
    model_config: dict = field(default_factory=dict)  # overrides of its dataclass
    # "tracking": the model also gets the label at the window start (training.tracking)
    task: str = "regression"
    epochs: int = 100
    batch_size: int = 256
    learning_rate: float = 1e-3  # seed: Adam at 1e-3 ...
    lr_drop_epoch: int = 78  # ... and from this epoch (1-based) ...
    lr_after_drop: float = 5e-4  # ... at 5e-4
    stride_samples: int = 10  # between window ends; 20 ms at 500 Hz
    early_stopping_patience: int | None = 20  # epochs without improvement; None: off
    angle_loss_mm_per_rad: float = 20.0  # weight of the angle L1 beside MPJPE (mm)
    augment: bool | None = None  # channel rotation + gain; None: the model's choice
    seed: int = 0
    device: str = "auto"  # "cpu", "cuda", "cuda:1"; auto: CUDA when available
    mixed_precision: bool = True  # float16 autocast on CUDA; ignored on CPU
    time_budget_s: float | None = None  # stop after the epoch that passes it
    filter: dict = field(default_factory=dict)  # FilterConfig overrides
    # Validate on this fraction of random windows instead of held-out sessions.
    # Overlapping windows leak between the sides: it measures interpolation (the
    # seed's 14.92 mm), so it is off unless asked for, and warns when used.
    random_split_fraction: float | None = None

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or self.stride_samples < 1:
            raise ValueError("epochs, batch_size and stride_samples must be >= 1")
        fraction = self.random_split_fraction
        if fraction is not None and not 0 < fraction < 1:
            raise ValueError(f"random_split_fraction must be in (0, 1), got {fraction}")
        FilterConfig(**self.filter)  # fails now, naming the field, if wrong
        check_task(self.task)

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class TrainResult:
    out_dir: Path
    epochs: int  # epochs completed
    stopped: str  # "completed" | "early_stopping" | "time_budget" | "cancelled"
    metrics: dict  # {"model": ..., "baseline": ...} on the validation sessions
    history: list[dict]
    train_windows_per_s: float
    parameters: int

    @property
    def final_checkpoint(self) -> Path:
        return self.out_dir / FINAL


class TrainingCancelled(Exception):
    """should_stop() said so; last.pt holds the last finished epoch."""


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} asked for, but this machine has no CUDA")
    return device


def learning_rate(config: TrainConfig, epoch: int) -> float:
    """The seed's step schedule; `epoch` counts from 1."""
    if epoch >= config.lr_drop_epoch:
        return config.lr_after_drop
    return config.learning_rate


class RunState:
    """The state of one training run: data, model, optimizer, history."""

    def __init__(self, config: TrainConfig, train_sessions, validation_sessions):
        check_compatible(list(train_sessions) + list(validation_sessions))
        self.config = config
        self.device = resolve_device(config.device)
        self.filter_config = FilterConfig(**config.filter)
        self.normalization = fit_normalization(train_sessions, self.filter_config)
        first = train_sessions[0]
        torch.manual_seed(config.seed)  # the initial weights
        self.model = build_task_model(
            config.task, config.model,
            **{"num_channels": first.num_channels,
               "sampling_rate_hz": first.sampling_rate_hz} | config.model_config,
        ).to(self.device)  # fmt: skip
        window = self.model.config.window_samples
        if config.random_split_fraction is None:
            self.train_data = self._dataset(train_sessions, window)
            self.validation_data = self._dataset(validation_sessions, window)
        else:
            self.train_data, self.validation_data = random_window_split(
                self._dataset(train_sessions, window),
                config.random_split_fraction,
                config.seed,
            )
        self.baseline_pose = mean_targets(self.train_data)
        self.optimizer = torch.optim.Adam(self.model.parameters(), config.learning_rate)
        use_amp = config.mixed_precision and self.device.type == "cuda"
        self.amp_dtype = torch.float16 if use_amp else None
        self.scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
        self.history: list[dict] = []
        self.best_mpjpe_mm = float("inf")
        self.stale_epochs = 0
        self.channel_names = first.channel_names
        self.data_names = {
            "train_sessions": [s.name for s in train_sessions],
            "validation_sessions": [s.name for s in validation_sessions],
        }

    def _dataset(self, sessions, window: int) -> WindowDataset:
        return task_dataset(
            self.config.task, sessions, window, self.config.stride_samples,
            self.filter_config,
            self.normalization,
        )  # fmt: skip

    @property
    def augment(self) -> bool:
        if self.config.augment is not None:
            return self.config.augment
        return bool(getattr(self.model.config, "augment", False))

    def epoch_generator(self, epoch: int) -> torch.Generator:
        """The generator for one epoch's shuffle and augmentation."""
        return torch.Generator().manual_seed(self.config.seed * 1_000_003 + epoch)

    def contents(self, epoch: int) -> dict:
        """Everything a checkpoint holds after `epoch` epochs."""
        return {
            "model_name": self.config.model,
            "model_config": asdict(self.model.config),
            "state_dict": {k: v.cpu() for k, v in self.model.state_dict().items()},
            "filter": self.filter_config.as_dict(),
            "normalization": self.normalization.as_dict(),
            "channel_names": list(self.channel_names),
            "train_config": self.config.as_dict(),
            "epoch": epoch,
            "history": self.history,
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict(),
            "rng": torch.get_rng_state(),
            "best_mpjpe_mm": self.best_mpjpe_mm,
            "stale_epochs": self.stale_epochs,
            "baseline_pose": {k: v.tolist() for k, v in self.baseline_pose.items()},
            "data": self.data_names,
            "parameters": count_parameters(self.model),
        }

    def resume_from(self, path: Path) -> int:
        """Load `last.pt`; returns the epochs it had done."""
        contents = read_checkpoint(path)
        saved = {"task": "regression"} | contents.get("train_config", {})
        current = self.config.as_dict()
        for key in ("epochs", "time_budget_s", "device"):  # may change on resume
            saved.pop(key, None)
            current.pop(key)
        if saved != current or contents["data"] != self.data_names:
            raise CheckpointError(
                f"{path} is from a different run (other settings or sessions); "
                "use another output folder or delete it"
            )
        self.model.load_state_dict(contents["state_dict"])
        self.optimizer.load_state_dict(contents["optimizer"])
        self.scaler.load_state_dict(contents["scaler"])
        torch.set_rng_state(contents["rng"])
        self.history = list(contents["history"])
        self.best_mpjpe_mm = contents["best_mpjpe_mm"]
        self.stale_epochs = contents["stale_epochs"]
        return int(contents["epoch"])


def train(
    config: TrainConfig,
    train_sessions,
    validation_sessions,
    out_dir: str | Path,
    progress: Progress | None = None,
    should_stop: ShouldStop | None = None,
) -> TrainResult:
    """Train (or resume, when `out_dir` holds `last.pt`) and evaluate; see the
    module docstring. Raises DataError / CheckpointError / ValueError with a
    message for a person, TrainingCancelled when `should_stop()` turns true."""
    if config.random_split_fraction is not None:
        # one pool of sessions, split into random windows (see TrainConfig)
        train_sessions = list(train_sessions) + list(validation_sessions)
        validation_sessions = []
    elif not train_sessions or not validation_sessions:
        raise ValueError("training needs at least one training and one validation "
                         "session")  # fmt: skip
    out_dir = Path(out_dir)
    run = RunState(config, train_sessions, validation_sessions)
    done = run.resume_from(out_dir / LAST) if (out_dir / LAST).exists() else 0
    stopped, started = "completed", time.monotonic()
    for epoch in range(done + 1, config.epochs + 1):
        metrics = run_epoch(run, epoch, should_stop or _never)
        save_checkpoint(out_dir / LAST, run.contents(epoch))
        if metrics["improved"]:
            save_checkpoint(out_dir / BEST, run.contents(epoch))
        if progress:
            progress(epoch, metrics)
        stopped = stop_reason(run, config, started)
        if stopped != "completed":
            break
    return finish(run, out_dir, stopped)


def stop_reason(run: RunState, config: TrainConfig, started: float) -> str:
    """Why the run stops after this epoch: "early_stopping", "time_budget", or
    "completed" (the reason a run that reaches its last epoch gives)."""
    patience = config.early_stopping_patience
    if patience is not None and run.stale_epochs >= patience:
        return "early_stopping"
    budget = config.time_budget_s
    if budget is not None and time.monotonic() - started >= budget:
        return "time_budget"
    return "completed"


def run_epoch(
    run: RunState, epoch: int, should_stop: ShouldStop, train_pass=None
) -> dict:
    """One pass over the training windows, then validation; updates the history.
    `train_pass` replaces the single-device pass (training/distributed.py)."""
    for group in run.optimizer.param_groups:
        group["lr"] = learning_rate(run.config, epoch)
    started = time.monotonic()
    train_loss, train_mpjpe, windows = (train_pass or _train_pass)(
        run, epoch, should_stop
    )
    train_s = time.monotonic() - started
    validation = _validation_pass(run)
    improved = validation["mpjpe_mm"] < run.best_mpjpe_mm
    if improved:
        run.best_mpjpe_mm = validation["mpjpe_mm"]
    run.stale_epochs = 0 if improved else run.stale_epochs + 1
    metrics = {
        "epoch": epoch,
        "epochs": run.config.epochs,
        "lr": learning_rate(run.config, epoch),
        "train_loss": train_loss,
        "train_mpjpe_mm": train_mpjpe,
        "val_loss": validation["loss"],
        "val_mpjpe_mm": validation["mpjpe_mm"],
        "train_windows_per_s": windows / max(train_s, 1e-9),
        "epoch_s": time.monotonic() - started,
    }
    run.history.append(metrics)
    return metrics | {"improved": improved}


def _train_pass(run: RunState, epoch: int, should_stop: ShouldStop):
    run.model.train()
    generator = run.epoch_generator(epoch)
    loader = DataLoader(
        run.train_data, batch_size=run.config.batch_size, shuffle=True,
        generator=generator,
    )  # fmt: skip
    loss_sum = mpjpe_sum = 0.0
    windows = 0
    for batch in loader:
        if should_stop():
            raise TrainingCancelled(f"cancelled during epoch {epoch}")
        batch = to_device(batch, run.device)
        if run.augment:
            batch["emg"] = augment_batch(batch["emg"], generator)
        loss, mpjpe = _step(run, batch)
        count = len(batch["emg"])
        loss_sum, mpjpe_sum, windows = (
            loss_sum + loss * count, mpjpe_sum + mpjpe * count, windows + count
        )  # fmt: skip
    return loss_sum / windows, mpjpe_sum / windows, windows


def _step(run: RunState, batch: dict) -> tuple[float, float]:
    run.optimizer.zero_grad(set_to_none=True)
    with torch.autocast(
        run.device.type, dtype=run.amp_dtype, enabled=run.amp_dtype is not None
    ):
        outputs = model_outputs(run.model, batch)
    loss, mpjpe = loss_terms(outputs, batch, run.config.angle_loss_mm_per_rad)
    run.scaler.scale(loss).backward()
    run.scaler.step(run.optimizer)
    run.scaler.update()
    return float(loss.detach()), float(mpjpe.detach())


def loss_terms(outputs: dict, batch: dict, angle_weight: float):
    """(loss, MPJPE in mm): mean joint distance (B, 21), plus the weighted angle L1
    for models that predict angles. Computed in float32."""
    joints = outputs["joints"].float()
    mpjpe = (joints - batch["joints"]).norm(dim=-1).mean()
    loss = mpjpe
    if "angles" in outputs:
        angle_error = (outputs["angles"].float() - batch["angles"]).abs().mean()
        loss = loss + angle_weight * angle_error
    return loss, mpjpe


@torch.no_grad()
def _validation_pass(run: RunState) -> dict:
    run.model.eval()
    loader = DataLoader(run.validation_data, batch_size=1024)
    loss_sum = mpjpe_sum = 0.0
    for batch in loader:
        batch = to_device(batch, run.device)
        loss, mpjpe = loss_terms(
            model_outputs(run.model, batch), batch, run.config.angle_loss_mm_per_rad
        )
        loss_sum += float(loss) * len(batch["emg"])
        mpjpe_sum += float(mpjpe) * len(batch["emg"])
    count = len(run.validation_data)
    return {"loss": loss_sum / count, "mpjpe_mm": mpjpe_sum / count}


def finish(run: RunState, out_dir: Path, stopped: str) -> TrainResult:
    """Evaluate the best epoch's weights; write final.pt with the metrics."""
    best = read_checkpoint(out_dir / BEST)
    run.model.load_state_dict(best["state_dict"])
    metrics = evaluate_model(run.model, run.validation_data, run.baseline_pose)
    contents = run.contents(int(best["epoch"])) | {
        "metrics": metrics,
        "stopped": stopped,
        "epochs_run": len(run.history),
    }
    save_checkpoint(out_dir / FINAL, contents)
    throughput = [h["train_windows_per_s"] for h in run.history]
    return TrainResult(
        out_dir=out_dir,
        epochs=len(run.history),
        stopped=stopped,
        metrics=metrics,
        history=run.history,
        train_windows_per_s=float(np.median(throughput)) if throughput else 0.0,
        parameters=count_parameters(run.model),
    )


def to_device(batch: dict, device: torch.device) -> dict:
    return {
        key: value.to(device, non_blocking=True) if torch.is_tensor(value) else value
        for key, value in batch.items()
    }


def _never() -> bool:
    return False
