"""A training worker killed with SIGKILL mid-run (the whole worker, as when its
machine is lost): the run resumes from its last checkpoint on another worker and
finishes, with every epoch trained once after the checkpoint. Real Celery workers
on a private Redis, with a short visibility timeout so the broker hands the job out
again within seconds (production: an hour)."""

import re

import pytest
from celery import Celery
from django.contrib.auth.models import User

from recorder.session_file import write_session
from tests.system.faults import PrivateRedis, wait_for
from tests.system.processes import Process, server_environment
from tests.training.sessions import labeled_recording
from webapp.processes import worker_command
from webapp.recordings.importing import import_session_file
from webapp.registry.models import TrainingRun

pytestmark = [pytest.mark.system, pytest.mark.django_db(transaction=True)]

EPOCHS = 8
# a tiny tcn on few windows: epochs of a few seconds on a busy 2-core machine
CONFIG = {"batch_size": 64, "stride_samples": 25, "early_stopping_patience": None,
          "model_config": {"filters": 8, "hidden": 16}}  # fmt: skip
WORKER_ENV = {
    # a run without news for this long may be taken over (the trainer beats every
    # 10 s at most) ...
    "JOB_STALE_AFTER_S": "15",
    # ... and a dead worker's job is handed out again after this (more than the
    # second copy's wait, JOB_STALE_AFTER_S + 1)
    "CELERY_VISIBILITY_TIMEOUT_S": "25",
}


@pytest.fixture
def run(production_services, settings, tmp_path) -> TrainingRun:
    """Alice's run: a tiny tcn on two 4 s labeled sessions, a third held out."""
    settings.MEDIA_ROOT = tmp_path / "media"
    alice = User.objects.create_user("alice", password="pw-alice")
    sessions = []
    for k in range(3):
        path = tmp_path / f"source-{k}.h5"
        write_session(path, labeled_recording(4.0, subject_seed=0, session=k))
        sessions.append(import_session_file(alice, path, "Simulated"))
    run = TrainingRun.objects.create(
        owner=alice, model_name="tcn", epochs=EPOCHS, config=CONFIG
    )
    run.train_sessions.set(sessions[:2])
    run.validation_sessions.set(sessions[2:])
    return run


def start_training_worker(name: str, env: dict, logs) -> Process:
    command = [*worker_command("info", queues="training"), "-n", f"{name}@%h"]
    worker = Process(name, command, env, logs)
    wait_for(lambda: " ready." in worker.log(), 90, f"{name} to be ready")
    return worker


def epochs_after_resuming(log_tail: str) -> list[int]:
    """The epoch numbers the run's log shows after its last "resuming" line."""
    after = log_tail.rsplit("resuming", 1)[1]
    return [int(k) for k in re.findall(r"epoch (\d+)/", after)]


def test_a_killed_training_worker_hands_its_run_to_another_that_resumes_it(
    run, tmp_path
):
    redis = PrivateRedis(tmp_path / "redis")
    env = server_environment(tmp_path) | WORKER_ENV | {"REDIS_URL": redis.url}
    workers = []
    try:
        workers = [start_training_worker(f"first-{run.pk}", env, tmp_path)]
        # not the current app: later tests' tasks must still go to the suite's broker
        private_broker = Celery(broker=redis.url, set_as_current=False)
        with private_broker:
            private_broker.send_task(
                "webapp.registry.tasks.train_model", args=[run.pk], queue="training"
            )
        # epochs take a fraction of a second on a quiet machine: poll often, and
        # kill at once (starting the second worker first let the run finish)
        checkpointed = lambda: (run.refresh_from_db(), run.epoch)[1] >= 1  # noqa: E731
        wait_for(checkpointed, 120, "the first epoch's checkpoint", interval_s=0.01)
        workers[0].kill()  # SIGKILL to the worker and its pool: no goodbye
        epoch_at_kill = run.epoch  # a later checkpoint only moves the resume later
        assert epoch_at_kill < EPOCHS, "the run finished before the kill"
        # started now, so that only the first worker can have taken the job
        workers.append(start_training_worker(f"second-{run.pk}", env, tmp_path))
        finished = lambda: (run.refresh_from_db(), run.status)[1] != "running"  # noqa: E731
        wait_for(finished, 120, "the run to finish on the second worker")
    except BaseException:
        for worker in workers:
            print(f"--- {worker.name}\n{worker.log()}")
        raise
    finally:
        for worker in workers:
            worker.kill()
        redis.kill()

    assert run.status == "complete", f"{run.error}\n{run.log_tail}"
    assert run.epoch == EPOCHS
    assert [h["epoch"] for h in run.history] == list(range(1, EPOCHS + 1))
    assert "resuming" in run.log_tail, run.log_tail
    resumed = epochs_after_resuming(run.log_tail)
    # from the checkpoint on: at least one epoch was not trained again
    assert resumed and resumed[0] >= epoch_at_kill + 1 >= 2, run.log_tail
    assert resumed == list(range(resumed[0], EPOCHS + 1)), run.log_tail
    assert "succeeded" in workers[1].log()
