"""Background jobs (labeling now, training later) and their live progress."""

from datetime import timedelta

from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils import timezone


class Job(models.Model):
    class Kind(models.TextChoices):
        LABELING = "labeling", "IK labeling"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        COMPLETE = "complete", "Complete"
        FAILED = "failed", "Failed"

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="jobs"
    )
    session = models.ForeignKey(
        "recordings.RecordingSession", on_delete=models.CASCADE, related_name="jobs"
    )
    kind = models.CharField(max_length=20, choices=Kind.choices)
    status = models.CharField(max_length=10, choices=Status.choices, default="queued")
    config = models.JSONField(default=dict, blank=True)
    progress_done = models.PositiveBigIntegerField(default=0)
    progress_total = models.PositiveBigIntegerField(default=0)
    progress_message = models.CharField(max_length=200, blank=True)
    # written with every progress report; a running job whose worker died goes quiet
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    result = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} job {self.pk}"

    def get_absolute_url(self) -> str:
        return reverse("job", args=[self.pk])

    @property
    def finished(self) -> bool:
        return self.status in (self.Status.COMPLETE, self.Status.FAILED)

    def seconds_left(self) -> float | None:
        """Estimated from the pace so far; None until there is a pace."""
        if self.status != self.Status.RUNNING or not self.progress_done:
            return None
        elapsed_s = (timezone.now() - self.started_at).total_seconds()
        remaining = self.progress_total - self.progress_done
        return elapsed_s / self.progress_done * remaining

    def is_stale(self) -> bool:
        """Running, but no news for longer than a worker could stay silent."""
        quiet_for = timedelta(seconds=settings.JOB_STALE_AFTER_S)
        beat = self.heartbeat_at or self.created_at
        return self.status == self.Status.RUNNING and timezone.now() - beat > quiet_for


class WorkerStatus(models.Model):
    """One Celery worker as it last reported itself (webapp/jobs/workers.py): the
    portal's worker list. A worker that stops writing goes offline."""

    name = models.CharField(max_length=200, unique=True)  # celery@host
    queues = models.JSONField(default=list)
    gpus = models.JSONField(default=list)  # GPU names; empty: CPU only
    pid = models.PositiveIntegerField(default=0)
    started_at = models.DateTimeField(default=timezone.now)
    last_seen_at = models.DateTimeField(default=timezone.now)
    stopped = models.BooleanField(default=False)  # shut down cleanly
    # the task it runs now: its dotted name and the id it was given ("" / None: idle)
    task_name = models.CharField(max_length=200, blank=True)
    task_object_id = models.BigIntegerField(null=True, blank=True)
    task_started_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def online(self) -> bool:
        quiet_since = timezone.now() - timedelta(
            seconds=settings.WORKER_OFFLINE_AFTER_S
        )
        return not self.stopped and self.last_seen_at >= quiet_since
