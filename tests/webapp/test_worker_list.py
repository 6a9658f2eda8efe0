"""The worker list's housekeeping: retired workers' rows are deleted."""

from datetime import timedelta

import pytest
from django.utils import timezone

from webapp.jobs.models import WorkerStatus
from webapp.jobs.workers import forget_retired_workers

pytestmark = pytest.mark.django_db


def worker_seen(name: str, ago: timedelta) -> WorkerStatus:
    return WorkerStatus.objects.create(name=name, last_seen_at=timezone.now() - ago)


def test_workers_silent_past_the_limit_are_forgotten(settings):
    settings.WORKER_FORGET_AFTER_DAYS = 7
    worker_seen("celery@old-box", timedelta(days=8))
    worker_seen("celery@offline-box", timedelta(days=6))  # offline, not yet retired
    worker_seen("celery@gpu-box", timedelta(seconds=5))

    assert forget_retired_workers() == 1

    names = set(WorkerStatus.objects.values_list("name", flat=True))
    assert names == {"celery@offline-box", "celery@gpu-box"}
