"""Fixtures shared by the system tests."""

from dataclasses import dataclass

import pytest
from django.contrib.auth.models import User

from webapp.accounts.models import AgentToken
from webapp.recordings.models import RecordingSession, Subject

ALICE_PASSWORD = "pw-alice"


@dataclass
class AliceRecording:
    """Alice, her agent's token (and its secret) and a session to record."""

    user: User
    token: AgentToken
    secret: str
    session: RecordingSession


@pytest.fixture
def alice_recording(production_services, settings, tmp_path) -> AliceRecording:
    """In the test database, with the chunks and media folders under tmp_path (the
    servers the test starts use the same ones)."""
    settings.CHUNK_STORE_DIR = tmp_path / "chunks"
    settings.MEDIA_ROOT = tmp_path / "media"
    user = User.objects.create_user("alice", password=ALICE_PASSWORD)
    token, secret = AgentToken.issue(user, "alice's laptop")
    subject = Subject.objects.create(owner=user, name="Alice")
    session = RecordingSession.objects.create(owner=user, subject=subject)
    return AliceRecording(user, token, secret, session)
