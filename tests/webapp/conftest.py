"""Fixtures for the portal's page tests: two users who must never see each other's
data."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from webapp.accounts.models import AgentToken
from webapp.recordings.models import RecordingSession, Subject

PASSWORD = "correct-horse-battery"


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


@pytest.fixture
def storage(settings, tmp_path):
    settings.CHUNK_STORE_DIR = tmp_path / "chunks"
    settings.MEDIA_ROOT = tmp_path / "media"
    return tmp_path


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
