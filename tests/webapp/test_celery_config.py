"""The Celery app as production runs it: routed queues, late acknowledgement, one job
at a time per worker process, redelivery of a lost worker's job, time limits from
the environment."""

import json
import os
import subprocess
import sys

from django.conf import settings

from webapp.celery import app
from webapp.jobs.tasks import label_session
from webapp.processes import worker_command
from webapp.recordings.tasks import assemble_session_file
from webapp.registry.tasks import train_model

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))


def queue_of(task_name: str) -> str:
    return app.amqp.router.route({}, task_name)["queue"].name


def test_labeling_and_training_go_to_their_own_queues():
    assert queue_of("webapp.jobs.tasks.label_session") == "labeling"
    assert queue_of("webapp.registry.tasks.train_model") == "training"
    assert queue_of("webapp.recordings.tasks.assemble_session_file") == "default"


def test_a_worker_takes_one_job_at_a_time_and_acknowledges_it_when_done():
    assert app.conf.task_acks_late is True
    assert app.conf.worker_prefetch_multiplier == 1
    assert app.conf.task_reject_on_worker_lost is True
    for task in (label_session, train_model, assemble_session_file):
        assert task.acks_late is True


def test_every_job_type_has_a_soft_and_a_hard_time_limit():
    limits = {
        label_session: settings.LABELING_TIME_LIMIT_S,
        train_model: settings.TRAINING_TIME_LIMIT_S,
        assemble_session_file: settings.ASSEMBLY_TIME_LIMIT_S,
    }
    for task, soft_s in limits.items():
        assert task.soft_time_limit == soft_s
        assert task.time_limit == soft_s + settings.TIME_LIMIT_GRACE_S


def test_time_limits_come_from_the_environment():
    script = (
        "import django, json; django.setup();"
        "from webapp.jobs.tasks import label_session as l;"
        "from webapp.registry.tasks import train_model as t;"
        "from webapp.recordings.tasks import assemble_session_file as a;"
        "print(json.dumps([[x.soft_time_limit, x.time_limit] for x in (l, t, a)]))"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "webapp.settings",
           "LABELING_TIME_LIMIT_S": "700", "TRAINING_TIME_LIMIT_S": "9000",
           "ASSEMBLY_TIME_LIMIT_S": "50", "TIME_LIMIT_GRACE_S": "30"}  # fmt: skip
    output = subprocess.run(
        [sys.executable, "-c", script], env=env, cwd=ROOT, capture_output=True,
        text=True, check=True,
    ).stdout  # fmt: skip
    assert json.loads(output.splitlines()[-1]) == [[700, 730], [9000, 9030], [50, 80]]


def test_a_bad_time_limit_is_refused_by_name():
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "webapp.settings",
           "LABELING_TIME_LIMIT_S": "an hour"}  # fmt: skip
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"], env=env, cwd=ROOT,
        capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode != 0
    assert "LABELING_TIME_LIMIT_S='an hour' is not an integer" in result.stderr


def test_workers_run_jobs_in_a_child_process_so_limits_apply():
    command = worker_command()
    assert command[command.index("-P") + 1] == "prefork"
    assert command[command.index("-c") + 1] == "1"
