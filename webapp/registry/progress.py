"""A training run's progress: the trainer's `progress` and `should_stop` callables,
writing to the run's row and pushing every epoch to the tabs that watch it."""

from __future__ import annotations

import logging
import math
import time

import numpy as np
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.utils import timezone

from webapp.registry.models import TrainingRun, training_group

log = logging.getLogger(__name__)

LOG_LINES = 50  # kept in TrainingRun.log_tail
CANCEL_CHECK_INTERVAL_S = 1.0  # should_stop reads the database at most this often
HEARTBEAT_INTERVAL_S = 10.0  # written while batches run, so long epochs look alive


def plain_json(value):
    """`value` with numpy scalars and arrays made plain, and NaN or infinity made
    None: PostgreSQL's jsonb, like the browser's JSON, has no NaN."""
    if isinstance(value, dict):
        return {str(key): plain_json(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [plain_json(item) for item in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def describe_epoch(metrics: dict) -> str:
    line = (
        f"epoch {metrics['epoch']}/{metrics['epochs']}: "
        f"train {metrics['train_mpjpe_mm']:.2f} mm, "
        f"validation {metrics['val_mpjpe_mm']:.2f} mm, "
        f"{metrics['epoch_s']:.1f} s"
    )
    return line + (", best so far" if metrics.get("improved") else "")


class RunReporter:
    def __init__(self, run: TrainingRun):
        self.run_id = run.pk
        self.history = list(run.history)
        self.lines = run.log_tail.splitlines()
        self._next_check_s = 0.0
        self._next_beat_s = 0.0

    def log(self, line: str, **fields) -> None:
        """Add a line to the log tail; `fields` are written with it."""
        stamp = timezone.now().strftime("%H:%M:%S")
        self.lines = (self.lines + [f"{stamp} {line}"])[-LOG_LINES:]
        TrainingRun.objects.filter(pk=self.run_id).update(
            log_tail="\n".join(self.lines), heartbeat_at=timezone.now(), **fields
        )

    def progress(self, epoch: int, metrics: dict) -> None:
        """The trainer's callback after every epoch."""
        entry = plain_json(metrics)
        # a resumed run repeats the epochs after its last checkpoint
        self.history = [h for h in self.history if h["epoch"] < epoch] + [entry]
        self.log(describe_epoch(metrics), epoch=epoch, history=self.history,
                 status=TrainingRun.Status.RUNNING)  # fmt: skip
        self._next_check_s = 0.0  # the next epoch's first batch looks for a cancel
        push_epoch(self.run_id, entry)

    def should_stop(self) -> bool:
        """True once the owner pressed Cancel; called between batches."""
        now_s = time.monotonic()
        if now_s < self._next_check_s:
            return False
        self._next_check_s = now_s + CANCEL_CHECK_INTERVAL_S
        runs = TrainingRun.objects.filter(pk=self.run_id)
        if now_s >= self._next_beat_s:
            self._next_beat_s = now_s + HEARTBEAT_INTERVAL_S
            runs.update(heartbeat_at=timezone.now())
        return runs.filter(cancel_requested=True).exists()


def push_epoch(run_id: int, metrics: dict) -> None:
    """Send an epoch's metrics to the run's open tabs. Best effort: the page also
    polls, so a channel layer that is down must not stop training."""
    event = {"type": "training.epoch", "run": run_id, "metrics": metrics}
    try:
        async_to_sync(get_channel_layer().group_send)(training_group(run_id), event)
    except Exception as exc:  # e.g. Redis unreachable; the run goes on
        log.warning("training run %s: live update not sent: %s", run_id, exc)
