"""Training runs. A run trains one EMG -> pose model on the owner's labeled sessions;
once complete it is the model's entry in the registry: metrics beside the mean-pose
baseline, checkpoint and exports, all kept in the run's folder."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils import timezone

from webapp import storage

LAST_CHECKPOINT = "last.pt"  # written after every epoch: a resume starts from it
FINAL_CHECKPOINT = "final.pt"  # the best epoch's weights with the evaluation


def training_group(run_id: int) -> str:
    """The Channels group that hears a run's `training.epoch` events."""
    return f"training.{run_id}"


def hide_storage_paths(message: str) -> str:
    """An engine's message for the page: paths relative to the storage root."""
    for root in (settings.MEDIA_ROOT, settings.STORAGE_CACHE_DIR):
        message = message.replace(f"{root}/", "")
    return message


class TrainingRunQuerySet(models.QuerySet):
    def interrupt_stale(self) -> int:
        """Running runs whose worker went quiet are interrupted: they can resume."""
        quiet_since = timezone.now() - timedelta(seconds=settings.JOB_STALE_AFTER_S)
        return self.filter(
            status=TrainingRun.Status.RUNNING, heartbeat_at__lt=quiet_since
        ).update(status=TrainingRun.Status.INTERRUPTED)


class TrainingRun(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        COMPLETE = "complete", "Complete"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"
        # the worker stopped reporting (killed, machine lost); last.pt remains
        INTERRUPTED = "interrupted", "Interrupted"

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="training_runs"
    )
    name = models.CharField(max_length=100, blank=True)
    model_name = models.CharField(max_length=40)
    # TrainConfig fields besides model and epochs: batch_size, seed, ...
    config = models.JSONField(default=dict, blank=True)
    train_sessions = models.ManyToManyField(
        "recordings.RecordingSession", related_name="training_runs"
    )
    validation_sessions = models.ManyToManyField(
        "recordings.RecordingSession", related_name="validation_runs"
    )
    status = models.CharField(max_length=12, choices=Status.choices, default="queued")
    epoch = models.PositiveIntegerField(default=0)  # epochs finished
    epochs = models.PositiveIntegerField(default=100)  # asked for
    history = models.JSONField(default=list, blank=True)  # one dict per epoch
    log_tail = models.TextField(blank=True)  # the last LOG_LINES lines
    # written with every epoch and while batches run; a dead worker goes quiet
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    cancel_requested = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # "completed", "early_stopping", "time_budget": why training ended
    stop_reason = models.CharField(max_length=20, blank=True)
    device = models.CharField(max_length=100, blank=True)
    parameters = models.PositiveBigIntegerField(null=True, blank=True)
    # {"model": {...}, "baseline": {...}, "windows": W} on the held-out sessions
    metrics = models.JSONField(default=dict, blank=True)
    # format -> {"max_abs_diff_mm": ..., "exported_at": ...}
    exports = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    # a fine-tune job: this run adapts `base`'s model to the person in its training
    # sessions (their calibration recording) instead of training a fresh one; kept
    # while a fine-tuned model needs it
    base = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT,
        related_name="finetuned_runs",
    )  # fmt: skip

    objects = TrainingRunQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.name or f"Model {self.pk}"

    def get_absolute_url(self) -> str:
        return reverse("training_run", args=[self.pk])

    @property
    def finished(self) -> bool:
        return self.status in (
            self.Status.COMPLETE, self.Status.FAILED, self.Status.CANCELLED
        )  # fmt: skip

    @property
    def storage_prefix(self) -> str:
        """The storage key of the folder of this run's checkpoints and exports."""
        return f"models/{self.pk}"

    @property
    def checkpoint_key(self) -> str:
        return f"{self.storage_prefix}/{FINAL_CHECKPOINT}"

    @property
    def folder(self) -> Path:
        """The run's local folder: the stored one itself with local storage, a
        working folder with object storage (webapp/storage.py)."""
        return storage.local_folder(self.storage_prefix)

    @property
    def checkpoint_path(self) -> Path:
        return self.folder / FINAL_CHECKPOINT

    @property
    def can_resume(self) -> bool:
        resumable = (self.Status.INTERRUPTED, self.Status.FAILED)
        last_key = f"{self.storage_prefix}/{LAST_CHECKPOINT}"
        return self.status in resumable and storage.exists(last_key)

    @property
    def is_finetune(self) -> bool:
        return self.base_id is not None

    @property
    def mpjpe_mm(self) -> float | None:
        return self.metrics.get("model", {}).get("mpjpe_mm")

    @property
    def baseline_mpjpe_mm(self) -> float | None:
        return self.metrics.get("baseline", {}).get("mpjpe_mm")

    def seconds_left(self) -> float | None:
        """From the pace of the last few epochs; None until there is a pace."""
        paces = [h["epoch_s"] for h in self.history[-5:] if h.get("epoch_s")]
        if self.status != self.Status.RUNNING or not paces:
            return None
        return sum(paces) / len(paces) * max(self.epochs - self.epoch, 0)
