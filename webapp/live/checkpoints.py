"""Checkpoints for the live hand: register one as a finished model, or train a tiny
one in seconds (benchmarks and tests, when no real model is at hand)."""

from __future__ import annotations

from pathlib import Path

from django.db import transaction
from django.utils import timezone

from training.checkpoint import read_checkpoint
from webapp import storage
from webapp.registry.models import TrainingRun

# a narrow tcn: the live code path of the real model, trained in ~3 s on a CPU
TINY_TCN = {"filters": 8, "hidden": 16}


def train_tiny_model(out_dir: Path, seconds: float = 8.0) -> Path:
    """Train a tiny tcn on simulated labeled sessions; returns its final.pt."""
    from training.data import from_recording
    from training.simulated import simulated_labeled_session
    from training.trainer import TrainConfig, train

    def session(seconds_: float, number: int):
        recording = simulated_labeled_session(
            seconds_, 0, number, "truth", bad_channel_probability=0.0
        )
        return from_recording(recording, f"tiny-{number}")

    config = TrainConfig(
        model="tcn", model_config=TINY_TCN, epochs=2, batch_size=64,
        stride_samples=25, early_stopping_patience=None, device="cpu",
    )  # fmt: skip
    train(config, [session(seconds, 0)], [session(seconds / 2, 1)], out_dir)
    return Path(out_dir) / "final.pt"


def register_checkpoint(user, checkpoint: Path, name: str) -> TrainingRun:
    """A complete training run of `user` holding a copy of `checkpoint`.

    Raises CheckpointError naming the problem when the file is not a checkpoint.
    """
    contents = read_checkpoint(checkpoint)
    history = contents.get("history") or []
    with transaction.atomic():
        run = TrainingRun.objects.create(
            owner=user,
            name=name,
            model_name=contents["model_name"],
            status=TrainingRun.Status.COMPLETE,
            epoch=len(history),
            epochs=len(history),
            history=history,
            metrics=contents.get("metrics") or {},
            parameters=contents.get("parameters"),
            stop_reason=contents.get("stopped", "completed"),
            started_at=timezone.now(),
            finished_at=timezone.now(),
        )
        storage.store_file(checkpoint, run.checkpoint_key)
    return run
