"""The training task: the run's sessions read through `training.data`, trained by
`training.trainer.train`, the result written back to the run. Every failure ends the
run with a message a person can act on.

A worker that dies mid-run leaves last.pt behind; the task is acknowledged late and
rejected on a lost worker, so the broker hands it out again, and training resumes
from that checkpoint (so does the Resume button of an interrupted run).
"""

from __future__ import annotations

import logging
from datetime import timedelta
from functools import partial

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db.models import Q
from django.db.models.functions import Coalesce, Now
from django.utils import timezone

from webapp import storage
from webapp.registry.models import LAST_CHECKPOINT, TrainingRun, hide_storage_paths
from webapp.registry.progress import RunReporter, plain_json

log = logging.getLogger(__name__)
Status = TrainingRun.Status

TIME_LIMIT_S = settings.TRAINING_TIME_LIMIT_S
# the trainer itself stops after the epoch that passes this, and still evaluates
TIME_BUDGET_S = max(TIME_LIMIT_S - 600, TIME_LIMIT_S // 2)


@shared_task(acks_late=True, reject_on_worker_lost=True,
             soft_time_limit=TIME_LIMIT_S,
             time_limit=TIME_LIMIT_S + settings.TIME_LIMIT_GRACE_S)  # fmt: skip
def train_model(run_id: int) -> str:
    """Train (or resume) a queued or interrupted run. Does nothing for a finished run,
    and waits (retries) while another worker is training it."""
    from training.trainer import TrainingCancelled  # torch: only in training workers

    claimed = _claim(run_id)
    run = TrainingRun.objects.get(pk=run_id)
    if not claimed:
        return _watch_other_worker(run)
    reporter = RunReporter(run)
    try:
        result = _train(run, reporter)
    except TrainingCancelled:
        reporter.log("cancelled", status=Status.CANCELLED, finished_at=timezone.now())
        return Status.CANCELLED
    except (ValueError, OSError, RuntimeError, SoftTimeLimitExceeded) as exc:
        return _fail(reporter, describe_failure(exc))  # DataError, CheckpointError
    except Exception as exc:  # a bug: still end the run, and keep the traceback
        log.exception("training run %s crashed", run_id)
        return _fail(reporter, f"training crashed: {exc!r}")
    return _complete(reporter, result)


def _claim(run_id: int) -> bool:
    """Mark the run running, unless it is finished or another worker is on it."""
    quiet_since = timezone.now() - timedelta(seconds=settings.JOB_STALE_AFTER_S)
    claimable = Q(status__in=[Status.QUEUED, Status.INTERRUPTED]) | Q(
        status=Status.RUNNING, heartbeat_at__lt=quiet_since
    )
    claimed = TrainingRun.objects.filter(claimable, pk=run_id).update(
        status=Status.RUNNING, heartbeat_at=Now(),
        started_at=Coalesce("started_at", Now()), error="",
    )  # fmt: skip
    return claimed == 1


def _watch_other_worker(run: TrainingRun) -> str:
    """A second copy of the task while another worker trains the run: the broker
    handed it out again because that worker died (its heartbeat is then still
    fresh) or the run outlasted the visibility timeout. Look again once the run
    could be stale, and take it over then, so a dead worker's run never stays
    "running"; a finished run ends the watch."""
    if run.status != Status.RUNNING:
        return run.status
    raise train_model.retry(countdown=settings.JOB_STALE_AFTER_S + 1, max_retries=None)


def _train(run: TrainingRun, reporter: RunReporter):
    if run.is_finetune:
        return _finetune(run, reporter)
    import torch

    from training.distributed import train_distributed
    from training.trainer import TrainConfig, resolve_device, train

    config = TrainConfig(model=run.model_name, epochs=run.epochs, device="auto",
                         time_budget_s=TIME_BUDGET_S, **run.config)  # fmt: skip
    device = resolve_device(config.device)
    # checkpoints are written locally and stored after every epoch, so another
    # worker (another machine, with STORAGE=s3) resumes from the last one
    checkpoints = storage.FolderSync(run.storage_prefix)
    checkpoints.pull(LAST_CHECKPOINT)
    resuming = (checkpoints.folder / LAST_CHECKPOINT).is_file()
    processes = settings.TRAINING_PROCESSES or (
        torch.cuda.device_count() if device.type == "cuda" else 1
    )
    on = f"{processes} {device.type} processes (DDP)" if processes > 1 else device
    reporter.log(
        f"{'resuming' if resuming else 'training'} {run.model_name} on {on}",
        device=str(on),
    )
    train_sessions = load_sessions(run.train_sessions.order_by("pk"))
    validation_sessions = load_sessions(run.validation_sessions.order_by("pk"))
    reporter.log(
        f"{len(train_sessions)} training and {len(validation_sessions)} held-out "
        "sessions loaded"
    )

    def progress(epoch: int, metrics: dict) -> None:
        checkpoints.push()
        reporter.progress(epoch, metrics)

    trainer = train
    if processes > 1:
        trainer = partial(train_distributed, world_size=processes)
    try:
        return trainer(
            config, train_sessions, validation_sessions, checkpoints.folder,
            progress=progress, should_stop=reporter.should_stop,
        )  # fmt: skip
    finally:
        checkpoints.push()  # final.pt, or what a failed run got done


def _finetune(run: TrainingRun, reporter: RunReporter):
    """A fine-tune job: the base run's final checkpoint adapted to the person in
    the run's training sessions (held-out sessions, if any, validate it)."""
    from training.calibration import FineTuneConfig, finetune
    from training.trainer import resolve_device

    config = FineTuneConfig(epochs=run.epochs, device="auto",
                            time_budget_s=TIME_BUDGET_S, **run.config)  # fmt: skip
    device = resolve_device(config.device)
    checkpoints = storage.FolderSync(run.storage_prefix)  # as _train's
    checkpoints.pull(LAST_CHECKPOINT)
    resuming = (checkpoints.folder / LAST_CHECKPOINT).is_file()
    base_checkpoint = storage.local_copy(run.base.checkpoint_key)
    reporter.log(
        f"{'resuming fine-tuning' if resuming else 'fine-tuning'} {run.base} "
        f"({run.model_name}) on {device}",
        device=str(device),
    )
    calibration = load_sessions(run.train_sessions.order_by("pk"))
    held_out = load_sessions(run.validation_sessions.order_by("pk"))
    reporter.log(
        f"{len(calibration)} calibration session(s) loaded; validating on "
        + (f"{len(held_out)} held-out session(s)" if held_out else
           f"the last {config.validation_fraction:.0%} of the calibration")
    )  # fmt: skip

    def progress(epoch: int, metrics: dict) -> None:
        checkpoints.push()
        reporter.progress(epoch, metrics)

    try:
        return finetune(
            base_checkpoint, calibration, checkpoints.folder, config, held_out,
            progress=progress, should_stop=reporter.should_stop,
        )  # fmt: skip
    finally:
        checkpoints.push()


def load_sessions(sessions) -> list:
    """Each session's file through the training engine; named "#<id>" in messages."""
    from training.data import DataError, load_session

    loaded = []
    for session in sessions:
        if not session.file:
            raise DataError(f"session #{session.pk} has no file yet")
        path = storage.local_copy(session.file.name)
        loaded.append(load_session(path, name=f"#{session.pk}"))
    return loaded


def _complete(reporter: RunReporter, result) -> str:
    model_mm = result.metrics["model"]["mpjpe_mm"]
    baseline_mm = result.metrics["baseline"]["mpjpe_mm"]
    reporter.log(
        f"finished after {result.epochs} epochs ({result.stopped}): held-out MPJPE "
        f"{model_mm:.2f} mm, mean-pose baseline {baseline_mm:.2f} mm",
        status=Status.COMPLETE, finished_at=timezone.now(), epoch=result.epochs,
        history=plain_json(result.history), stop_reason=result.stopped,
        parameters=result.parameters,
        metrics=plain_json(
            result.metrics | {"train_windows_per_s": result.train_windows_per_s}
        ),
    )  # fmt: skip
    return Status.COMPLETE


def _fail(reporter: RunReporter, message: str) -> str:
    log.error("training run %s failed: %s", reporter.run_id, message)
    reporter.log(f"failed: {message}", status=Status.FAILED,
                 finished_at=timezone.now(), error=message)  # fmt: skip
    return Status.FAILED


def describe_failure(exc: BaseException) -> str:
    """A message for the run page, without the server's storage paths."""
    if isinstance(exc, SoftTimeLimitExceeded):
        return (
            f"training took longer than {TIME_LIMIT_S / 3600:g} hours; Resume "
            "continues from the last epoch"
        )
    message = str(exc) or exc.__class__.__name__
    if isinstance(exc, OSError):
        message = f"a file could not be read or written: {message}"
    return hide_storage_paths(message)
