"""Fixtures for the portal's page tests: two users who must never see each other's
data."""

from __future__ import annotations

import itertools

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.contrib.auth.models import User
from django.db import connections
from django.test import Client
from django.utils import timezone

from recorder.session_file import write_session
from tests.webapp.ingest_helpers import close_all
from webapp.accounts.models import AgentToken
from webapp.celery import app as celery_app
from webapp.recordings.importing import import_session_file
from webapp.recordings.models import RecordingSession, Subject

PASSWORD = "correct-horse-battery"
_file_numbers = itertools.count()


@pytest.fixture
def alice(db):
    return User.objects.create_user("alice", password=PASSWORD)


@pytest.fixture
def bob(db):
    return User.objects.create_user("bob", password=PASSWORD)


def _logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def alice_client(alice):
    return _logged_in(alice)


@pytest.fixture
def bob_client(bob):
    return _logged_in(bob)


def use_tmp_storage(settings, tmp_path):
    settings.CHUNK_STORE_DIR = tmp_path / "chunks"
    settings.MEDIA_ROOT = tmp_path / "media"
    return tmp_path


@pytest.fixture
def storage(settings, tmp_path):
    return use_tmp_storage(settings, tmp_path)


@pytest.fixture
def ingest_storage(settings, tmp_path):
    """`storage`, with Celery tasks run at once: a stopped recording's file is
    assembled within the test."""
    celery_app.conf.task_always_eager = True
    yield use_tmp_storage(settings, tmp_path)
    celery_app.conf.task_always_eager = False


@pytest.fixture
def make_labeled_session(alice, storage):
    """A recording written to a session file and imported as `owner`'s session
    (alice's unless told), as the portal's import does."""

    def make(recording, owner=None):
        path = storage / f"source-{next(_file_numbers)}.h5"
        write_session(path, recording)
        return import_session_file(owner or alice, path, "Simulated")

    return make


@pytest.fixture
async def close_communicators():
    """Close the websockets a test opened, and what they leave behind."""
    yield
    await close_all()
    # the consumers' DB helpers ran on asgiref's thread: close its connection, or the
    # test database cannot be dropped at the end of the run
    await sync_to_async(connections.close_all)()
    # groups and messages in Redis outlive a test; session ids repeat across tests
    await get_channel_layer().flush()


@pytest.fixture
def make_subject():
    def make(owner, name: str = "Ann", **fields) -> Subject:
        return Subject.objects.create(owner=owner, name=name, **fields)

    return make


@pytest.fixture
def make_session(make_subject):
    """A session of `owner`; makes a subject for it unless one is given."""

    def make(owner, subject: Subject | None = None, **fields) -> RecordingSession:
        subject = subject or make_subject(owner, name=f"subject of {owner.username}")
        return RecordingSession.objects.create(owner=owner, subject=subject, **fields)

    return make


@pytest.fixture
def make_token():
    """An agent token; online (connected, just seen) unless told otherwise."""

    def make(owner, name: str = "laptop", online: bool = True, **fields) -> AgentToken:
        token, _secret = AgentToken.issue(owner, name)
        if online:
            fields = {"connected": True, "last_seen_at": timezone.now(), **fields}
        if fields:
            AgentToken.objects.filter(pk=token.pk).update(**fields)
            token.refresh_from_db()
        return token

    return make
