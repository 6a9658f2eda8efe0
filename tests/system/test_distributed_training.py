"""A training run split over two DistributedDataParallel processes inside a real
Celery worker (production mode). The worker's pool runs the job in a daemonic
process; the ranks it spawns must still start, train, and end with the job."""

import pytest
from django.contrib.auth.models import User

from recorder.session_file import write_session
from tests.system.processes import Process, server_environment, wait_until
from tests.training.sessions import labeled_recording
from webapp.processes import worker_command
from webapp.recordings.importing import import_session_file
from webapp.registry.models import TrainingRun
from webapp.registry.tasks import train_model

pytestmark = [pytest.mark.system, pytest.mark.django_db(transaction=True)]

SMALL_V5 = {"conv_channels": [8, 16], "lstm_hidden": 16, "lstm_layers": 1}


@pytest.fixture
def run(production_services, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    alice = User.objects.create_user("alice", password="pw-alice")
    sessions = []
    for number in range(2):
        path = tmp_path / f"source-{number}.h5"
        write_session(path, labeled_recording(4.0, session=number))
        sessions.append(import_session_file(alice, path, "Sim"))
    run = TrainingRun.objects.create(
        owner=alice, model_name="v5", epochs=2,
        config={"batch_size": 64, "stride_samples": 25, "model_config": SMALL_V5},
    )  # fmt: skip
    run.train_sessions.set(sessions[:1])
    run.validation_sessions.set(sessions[1:])
    return run


def test_a_worker_trains_a_run_on_two_ddp_processes(run, tmp_path):
    env = server_environment(tmp_path) | {"TRAINING_PROCESSES": "2"}
    worker = Process("worker", worker_command("info", "training"), env, tmp_path)
    try:
        train_model.delay(run.pk)
        finished = lambda: (run.refresh_from_db(), run.finished)[1]  # noqa: E731
        wait_until(finished, 300, "the training run")
    except Exception:
        print(worker.log())
        raise
    finally:
        worker.kill()
    assert run.status == "complete", f"{run.error}\n{worker.log()}"
    assert run.device == "2 cpu processes (DDP)"
    assert [h["epoch"] for h in run.history] == [1, 2]
    assert run.metrics["model"]["mpjpe_mm"] > 0
    assert run.checkpoint_path.is_file()
