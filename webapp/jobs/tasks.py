"""Celery tasks of the jobs app: read through recorder, compute in labeling, write
back through recorder. Every failure ends the job with a message a person can act on.
"""

import dataclasses
import logging

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.utils import timezone

from recorder.session_file import SessionFormatError, read_session, write_session
from webapp import storage
from webapp.jobs.models import Job
from webapp.jobs.progress import ProgressReporter
from webapp.recordings.tasks import file_sha256

log = logging.getLogger(__name__)
LABELING_TIME_LIMIT_S = settings.LABELING_TIME_LIMIT_S


@shared_task(
    acks_late=True,
    soft_time_limit=LABELING_TIME_LIMIT_S,
    time_limit=LABELING_TIME_LIMIT_S + settings.TIME_LIMIT_GRACE_S,
)
def label_session(job_id: int) -> str:
    """Fit the hand model to a session's landmarks; store pose, joints, ik_error and
    label_valid in its file. The raw landmarks are never changed."""
    job = Job.objects.select_related("session").get(pk=job_id)
    if job.finished:
        return job.status  # a redelivered task
    now = timezone.now()
    Job.objects.filter(pk=job_id).update(
        status=Job.Status.RUNNING, started_at=now, heartbeat_at=now
    )
    try:
        summary = _label_file(job)
    except (ValueError, OSError, SoftTimeLimitExceeded) as exc:  # LabelingError too
        return _fail(job_id, _describe(exc))
    Job.objects.filter(pk=job_id).update(
        status=Job.Status.COMPLETE, finished_at=timezone.now(), result=summary
    )
    return Job.Status.COMPLETE


def _label_file(job: Job) -> dict:
    from labeling.pipeline import label_recording  # torch: only in labeling workers

    key = job.session.file.name
    recording = read_session(storage.local_copy(key))
    fit, summary = label_recording(
        recording.landmarks, recording.landmark_score, job.config,
        mano_dir=settings.MANO_MODEL_DIR or None, progress=ProgressReporter(job.pk),
        handedness=recording.attrs.handedness,
    )  # fmt: skip
    labelled = dataclasses.replace(
        recording, pose=fit.pose, joints=fit.joints_mm, ik_error=fit.ik_error_mm,
        label_valid=fit.label_valid,
    )  # fmt: skip
    with storage.writing(key) as path:
        write_session(path, labelled)  # atomic: readers see the old or the new file
        sha256 = file_sha256(path)
    job.session.__class__.objects.filter(pk=job.session.pk).update(file_sha256=sha256)
    return summary


def _fail(job_id: int, message: str) -> str:
    log.error("job %s failed: %s", job_id, message)
    Job.objects.filter(pk=job_id).update(
        status=Job.Status.FAILED, finished_at=timezone.now(), error=message
    )
    return Job.Status.FAILED


def _describe(exc: Exception) -> str:
    if isinstance(exc, SoftTimeLimitExceeded):
        return f"labeling took longer than {LABELING_TIME_LIMIT_S // 60} minutes"
    if isinstance(exc, SessionFormatError):
        return f"the session file cannot be used: {exc}"
    if isinstance(exc, OSError):
        return f"the session file could not be read or written: {exc}"
    return str(exc)
