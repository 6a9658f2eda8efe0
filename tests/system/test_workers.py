"""The portal's worker list, with a real Celery worker process in production mode
(PostgreSQL, Redis broker): it appears with its queues and GPUs, shows the job it
runs, and goes offline when it is killed."""

import signal

import pytest
from django.contrib.auth.models import User
from django.test import Client

from recorder.session_file import write_session
from recorder.simulate_file import simulate_session
from tests.system.processes import Process, server_environment, wait_until
from webapp.jobs.models import Job, WorkerStatus
from webapp.jobs.tasks import label_session
from webapp.processes import worker_command
from webapp.recordings.importing import import_session_file

pytestmark = [pytest.mark.system, pytest.mark.django_db(transaction=True)]

OFFLINE_AFTER_S = 4


@pytest.fixture
def lab(production_services, settings, tmp_path):
    settings.CHUNK_STORE_DIR = tmp_path / "chunks"
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.WORKER_OFFLINE_AFTER_S = OFFLINE_AFTER_S
    alice = User.objects.create_user("alice", password="pw-alice")
    bob = User.objects.create_user("bob", password="pw-bob")
    env = server_environment(tmp_path) | {"WORKER_HEARTBEAT_S": "1"}
    command = worker_command("info", queues="labeling") + ["-n", "cpu-box@%h"]
    worker = Process("worker", command, env, tmp_path)
    yield {"alice": alice, "bob": bob, "worker": worker, "tmp_path": tmp_path}
    worker.kill()


def page_row(user, worker_name: str) -> str:
    """The worker's table row on /workers/, as `user` sees it."""
    client = Client()
    client.force_login(user)
    html = client.get("/workers/").content.decode()
    start = html.index(f'data-worker="{worker_name}"')
    return html[start : html.index("</tr>", start)]


def labeling_job(owner, tmp_path) -> Job:
    """A labeling job on a long enough session that it is seen running."""
    path = tmp_path / "source.h5"
    write_session(path, simulate_session(6.0, seed=5))
    session = import_session_file(owner, path, "Sim")
    config = {"alignment": "umeyama_scale", "optimizer": "adam"}
    return Job.objects.create(
        owner=owner, session=session, kind=Job.Kind.LABELING, config=config
    )


def test_a_worker_shows_its_queues_its_job_and_going_offline(lab):
    worker = wait_until(
        lambda: WorkerStatus.objects.filter(name__startswith="cpu-box@").first(),
        90, "the worker to register",
    )  # fmt: skip
    assert worker.queues == ["labeling"]
    row = page_row(lab["alice"], worker.name)
    assert "online" in row and "labeling" in row and "idle" in row
    assert ("none (CPU)" in row) == (worker.gpus == [])

    job = labeling_job(lab["alice"], lab["tmp_path"])
    label_session.delay(job.pk)
    running = lambda: "labeling job #" in page_row(lab["alice"], worker.name)  # noqa: E731
    wait_until(running, 120, "the running job on the worker list")
    assert f'href="/jobs/{job.pk}/"' in page_row(lab["alice"], worker.name)
    # bob sees that the worker is busy, not whose job or which
    bobs_row = page_row(lab["bob"], worker.name)
    assert "labeling job (another user's)" in bobs_row
    assert f"/jobs/{job.pk}/" not in bobs_row

    finished = lambda: (job.refresh_from_db(), job.finished)[1]  # noqa: E731
    wait_until(finished, 180, "the labeling job")
    assert job.status == "complete", job.error
    wait_until(lambda: "idle" in page_row(lab["alice"], worker.name), 10, "idle")

    lab["worker"].kill(signal.SIGKILL)  # no clean shutdown: it just stops beating
    offline = lambda: "offline" in page_row(lab["alice"], worker.name)  # noqa: E731
    wait_until(offline, OFFLINE_AFTER_S + 5, "the killed worker to show offline")


def test_the_worker_list_needs_a_login(client, db):
    response = client.get("/workers/")
    assert response.status_code == 302 and "/login/" in response["Location"]
