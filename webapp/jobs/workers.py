"""The worker list's heartbeat: every Celery worker keeps its WorkerStatus row current
through Celery's signals, so the portal needs no slow broadcast to inspect workers.

- worker_ready (the worker's main process): the row, with the queues the worker
  consumes and its GPUs; then a thread that writes last_seen_at every
  WORKER_HEARTBEAT_S, also while a long job runs in the pool's child process;
- task_prerun / task_postrun (where the task runs): the current task and its id;
- worker_shutdown: the row says stopped. A SIGKILLed worker writes nothing more, and
  shows as offline WORKER_OFFLINE_AFTER_S later;
- a worker not seen for WORKER_FORGET_AFTER_DAYS is retired: the next worker that
  starts deletes its row (machines are renamed and replaced; the list stays short).
"""

from __future__ import annotations

import logging
import os
import subprocess
import threading
import time
from datetime import timedelta

from celery.signals import task_postrun, task_prerun, worker_ready, worker_shutdown
from django.conf import settings
from django.db import DatabaseError, connections
from django.utils import timezone

from webapp.jobs.models import WorkerStatus

log = logging.getLogger(__name__)

# a task's name -> what its first argument is the id of, for the worker list
TASK_OBJECTS = {
    "webapp.jobs.tasks.label_session": "labeling job",
    "webapp.registry.tasks.train_model": "training run",
    "webapp.recordings.tasks.assemble_session_file": "session file",
}


@worker_ready.connect
def register_worker(sender, **_) -> None:
    name = sender.hostname
    queues = sorted(sender.app.amqp.queues.consume_from)
    now = timezone.now()
    WorkerStatus.objects.update_or_create(
        name=name,
        defaults={"queues": queues, "gpus": gpu_names(), "pid": os.getpid(),
                  "started_at": now, "last_seen_at": now, "stopped": False,
                  "task_name": "", "task_object_id": None, "task_started_at": None},
    )  # fmt: skip
    forget_retired_workers()
    connections.close_all()  # a pool child forked later must not share it
    threading.Thread(
        target=_beat_forever, args=(name,), name="worker-heartbeat", daemon=True
    ).start()
    log.info("worker %s registered: queues %s", name, ", ".join(queues))


def forget_retired_workers() -> int:
    """Delete the rows of workers silent for WORKER_FORGET_AFTER_DAYS; how many."""
    silent_since = timezone.now() - timedelta(days=settings.WORKER_FORGET_AFTER_DAYS)
    deleted, _ = WorkerStatus.objects.filter(last_seen_at__lt=silent_since).delete()
    return deleted


def _beat_forever(name: str) -> None:
    while True:
        time.sleep(settings.WORKER_HEARTBEAT_S)
        beat(name)


def beat(name: str) -> bool:
    """Write that the worker is alive; False when the database did not answer (it
    may be restarting: the next beat tries again)."""
    try:
        WorkerStatus.objects.filter(name=name).update(last_seen_at=timezone.now())
        return True
    except DatabaseError as exc:
        log.warning("worker heartbeat not written: %s", exc)
        return False
    finally:
        connections.close_all()  # this thread's connection only


@worker_shutdown.connect
def unregister_worker(sender=None, **_) -> None:
    name = getattr(sender, "hostname", None)
    if name:
        WorkerStatus.objects.filter(name=name).update(
            stopped=True, task_name="", task_object_id=None, task_started_at=None
        )


@task_prerun.connect
def task_started(task=None, args=None, **_) -> None:
    name = task.request.hostname  # None when run eagerly, in no worker
    if not name:
        return
    first = args[0] if args else None
    now = timezone.now()
    WorkerStatus.objects.filter(name=name).update(
        task_name=task.name, task_started_at=now, last_seen_at=now,
        task_object_id=first if isinstance(first, int) else None,
    )  # fmt: skip


@task_postrun.connect
def task_ended(task=None, **_) -> None:
    name = task.request.hostname
    if not name:
        return
    WorkerStatus.objects.filter(name=name).update(
        task_name="", task_object_id=None, task_started_at=None,
        last_seen_at=timezone.now(),
    )  # fmt: skip


def gpu_names() -> list[str]:
    """This machine's GPUs that the worker may use, by name (nvidia-smi: no torch in
    the worker's main process); empty when it has none."""
    try:
        listing = subprocess.run(
            ["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return []
    names = [line.strip() for line in listing.splitlines() if line.strip()]
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is None:
        return names
    indices = [part.strip() for part in visible.split(",") if part.strip()]
    if not all(index.isdigit() for index in indices):
        return names  # GPU UUIDs: can't map them to names here; list them all
    return [names[int(i)] for i in indices if int(i) < len(names)]
