"""Model checkpoints: one file holds everything needed to use a model.

A checkpoint is a `torch.save`d dict:
    format, format_version      "emg-hand-model", CHECKPOINT_VERSION
    model_name, model_config    the zoo name and its config dataclass as a dict
    state_dict                  the weights
    filter, normalization       the preprocessing (FilterConfig, Normalization dicts)
    channel_names               the EMG channels the model expects, in order
    train_config                the TrainConfig as a dict
    epoch, history              epochs done, and per-epoch metrics
    optimizer, scheduler, rng   training state, so an interrupted run resumes
    baseline_pose               the training split's mean joints and angles
    metrics                     the final evaluation (in the final checkpoint)
    data                        names of the training and validation sessions
Live inference (and `evaluate`) rebuild the model from the file alone.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from training.models import model_from_config
from training.preprocessing import FilterConfig, Normalization
from training.tracking import TrackingModel

FORMAT_NAME = "emg-hand-model"
CHECKPOINT_VERSION = 1
REQUIRED_KEYS = (
    "model_name",
    "model_config",
    "state_dict",
    "filter",
    "normalization",
    "channel_names",
)


class CheckpointError(ValueError):
    """A checkpoint file cannot be used; the message names the file and the problem."""


@dataclass
class LoadedModel:
    """A model rebuilt from its checkpoint, in eval mode, with its preprocessing."""

    model: torch.nn.Module
    model_name: str
    filter_config: FilterConfig
    normalization: Normalization
    channel_names: tuple[str, ...]
    sampling_rate_hz: float
    baseline_pose: dict  # "joints_mm" (21, 3), "angles_rad" (20,): training mean
    contents: dict  # the whole checkpoint dict (history, metrics, configs)

    @property
    def window_samples(self) -> int:
        return self.model.config.window_samples


def save_checkpoint(path: str | Path, contents: dict) -> None:
    """Write atomically (temp file, fsync, rename): a crash mid-save leaves the
    previous checkpoint intact."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    contents = {"format": FORMAT_NAME, "format_version": CHECKPOINT_VERSION} | contents
    handle, temp_path = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            torch.save(contents, file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp_path, path)
    except BaseException:
        Path(temp_path).unlink(missing_ok=True)
        raise


def read_checkpoint(path: str | Path) -> dict:
    """The checkpoint dict, checked; CheckpointError for anything else."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint file at {path}")
    try:
        # our own files hold numpy arrays and plain containers besides tensors
        contents = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # torch raises many types for a damaged file
        raise CheckpointError(
            f"{path} is not a readable checkpoint (corrupt or truncated?): {exc}"
        ) from None
    _check_contents(path, contents)
    return contents


def _check_contents(path: Path, contents) -> None:
    if not isinstance(contents, dict) or contents.get("format") != FORMAT_NAME:
        raise CheckpointError(f"{path} is not an {FORMAT_NAME} checkpoint")
    version = contents.get("format_version")
    if not isinstance(version, int) or version > CHECKPOINT_VERSION:
        raise CheckpointError(
            f"{path} has checkpoint format version {version}; this software reads "
            f"up to {CHECKPOINT_VERSION}, so upgrade it"
        )
    missing = [key for key in REQUIRED_KEYS if key not in contents]
    if missing:
        raise CheckpointError(f"{path} lacks {', '.join(missing)}")


def load_model(path: str | Path, device: str | torch.device = "cpu") -> LoadedModel:
    """Rebuild the model in a checkpoint, from the file alone."""
    contents = read_checkpoint(path)
    try:
        model = model_from_config(contents["model_name"], contents["model_config"])
        if contents.get("train_config", {}).get("task") == "tracking":
            model = TrackingModel(model)  # needs the start pose: benchmarks only
        model.load_state_dict(contents["state_dict"])
    except (ValueError, RuntimeError, TypeError) as exc:
        raise CheckpointError(
            f"{path}: the weights do not fit the model: {exc}"
        ) from None
    model.to(device).eval()
    return LoadedModel(
        model=model,
        model_name=contents["model_name"],
        filter_config=FilterConfig(**contents["filter"]),
        normalization=Normalization.from_dict(contents["normalization"]),
        channel_names=tuple(contents["channel_names"]),
        sampling_rate_hz=float(model.config.sampling_rate_hz),
        baseline_pose=_baseline(contents),
        contents=contents,
    )


def _baseline(contents: dict) -> dict:
    baseline = contents.get("baseline_pose") or {}
    return {key: np.asarray(value) for key, value in baseline.items()}
