"""The worker list: every Celery worker, alive or not, its queues, GPUs and job."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from webapp.jobs.models import Job, WorkerStatus
from webapp.jobs.workers import TASK_OBJECTS
from webapp.recordings.models import RecordingSession
from webapp.registry.models import TrainingRun

# a task's name -> the model whose id is its first argument (each has an owner)
TASK_MODELS = {
    "webapp.jobs.tasks.label_session": Job,
    "webapp.registry.tasks.train_model": TrainingRun,
    "webapp.recordings.tasks.assemble_session_file": RecordingSession,
}


@login_required
def workers(request):
    rows = [worker_row(worker, request.user) for worker in WorkerStatus.objects.all()]
    context = {"workers": rows, "offline_after_s": settings.WORKER_OFFLINE_AFTER_S}
    return render(request, "jobs/workers.html", context)


def worker_row(worker: WorkerStatus, user) -> dict:
    online = worker.online
    return {
        "worker": worker,
        "online": online,
        "job": current_job(worker, user) if online else None,
    }


def current_job(worker: WorkerStatus, user) -> dict | None:
    """What the worker runs now. Another user's job shows only its kind: its id and
    page are the owner's."""
    if not worker.task_name:
        return None
    kind = TASK_OBJECTS.get(worker.task_name, worker.task_name.rsplit(".", 1)[-1])
    model = TASK_MODELS.get(worker.task_name)
    own = model and model.objects.filter(pk=worker.task_object_id, owner=user).first()
    return {
        "kind": kind,
        "object": own or None,
        "started_at": worker.task_started_at,
    }
