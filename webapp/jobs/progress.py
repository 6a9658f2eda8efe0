"""Job progress as a `progress(done, total, message)` callable for plain functions."""

import time

from django.utils import timezone

from webapp.jobs.models import Job

REPORT_INTERVAL_S = 0.5  # at most two progress writes a second


class ProgressReporter:
    def __init__(self, job_id: int):
        self.job_id = job_id
        self._next_write_s = 0.0

    def __call__(self, done: int, total: int, message: str = "") -> None:
        now_s = time.monotonic()
        if now_s < self._next_write_s and done < total:
            return
        self._next_write_s = now_s + REPORT_INTERVAL_S
        Job.objects.filter(pk=self.job_id).update(
            progress_done=done,
            progress_total=total,
            progress_message=message[:200],
            heartbeat_at=timezone.now(),
        )
