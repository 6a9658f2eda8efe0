"""One user's sessions are invisible to another; starting and stopping a recording."""

from datetime import timedelta

import pytest
from django.contrib.messages import get_messages
from django.utils import timezone

from webapp.recordings.models import RecordingSession

pytestmark = pytest.mark.django_db

Status = RecordingSession.Status


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


@pytest.mark.parametrize(
    "method,suffix",
    [
        ("get", ""),
        ("get", "status"),
        ("post", "start"),
        ("post", "stop"),
        ("get", "download"),
    ],
)
def test_it_refuses_another_users_session(
    alice, bob_client, make_session, method, suffix
):
    session = make_session(alice, status=Status.RECORDING, file="sessions/x.h5")
    response = getattr(bob_client, method)(f"/sessions/{session.pk}/{suffix}")
    assert response.status_code == 404
    session.refresh_from_db()
    assert session.status == Status.RECORDING


def test_the_session_list_shows_only_ones_own_sessions(
    alice, bob, bob_client, make_session
):
    alices = make_session(alice, protocol_name="alices-protocol")
    bobs = make_session(bob, protocol_name="bobs-protocol")
    response = bob_client.get("/sessions/")
    assert list(response.context["sessions"]) == [bobs]
    assert "alices-protocol" not in response.content.decode()
    assert f'href="/sessions/{alices.pk}/"' not in response.content.decode()


def test_the_status_json_lists_only_ones_own_online_agents(
    alice, bob, alice_client, make_session, make_token
):
    session = make_session(alice)
    mine = make_token(alice, name="mine")
    make_token(alice, name="asleep", online=False)
    make_token(bob, name="bobs")
    data = alice_client.get(f"/sessions/{session.pk}/status").json()
    assert data["status"] == "created"
    assert data["agents_online"] == [{"id": mine.pk, "name": "mine"}]
    assert data["download_url"] is None


def test_it_refuses_to_start_with_another_users_agent(
    alice, bob, alice_client, make_session, make_token
):
    session = make_session(alice)
    bobs_agent = make_token(bob)
    response = alice_client.post(
        f"/sessions/{session.pk}/start", {"agent": bobs_agent.pk}
    )
    assert response.status_code == 302
    session.refresh_from_db()
    assert (session.status, session.agent, session.started_at) == (
        Status.CREATED,
        None,
        None,
    )
    assert messages_of(response) == ["Choose one of your agents that is connected."]


@pytest.mark.parametrize(
    "presence",
    [
        {"connected": False},
        {"last_seen_at": timezone.now() - timedelta(minutes=5)},
        {"last_seen_at": None},
    ],
)
def test_it_refuses_to_start_with_an_agent_that_is_not_online(
    alice, alice_client, make_session, make_token, presence
):
    session = make_session(alice)
    agent = make_token(alice, **presence)
    response = alice_client.post(f"/sessions/{session.pk}/start", {"agent": agent.pk})
    session.refresh_from_db()
    assert session.status == Status.CREATED and session.agent is None
    assert messages_of(response) == ["Choose one of your agents that is connected."]


def test_it_refuses_to_start_with_a_revoked_agent(
    alice, alice_client, make_session, make_token
):
    session = make_session(alice)
    agent = make_token(alice, revoked_at=timezone.now())
    alice_client.post(f"/sessions/{session.pk}/start", {"agent": agent.pk})
    session.refresh_from_db()
    assert session.status == Status.CREATED


@pytest.mark.parametrize(
    "data", [{}, {"agent": ""}, {"agent": "not-a-number"}, {"agent": "-1"}]
)
def test_it_refuses_a_start_without_an_agent(alice, alice_client, make_session, data):
    session = make_session(alice)
    response = alice_client.post(f"/sessions/{session.pk}/start", data)
    assert response.status_code == 302
    assert messages_of(response) == ["Choose one of your agents that is connected."]
    session.refresh_from_db()
    assert session.status == Status.CREATED


def test_starting_with_an_online_agent_begins_the_recording(
    alice, alice_client, make_session, make_token
):
    session = make_session(alice)
    agent = make_token(alice, device_info={"kind": "simulated"})
    response = alice_client.post(f"/sessions/{session.pk}/start", {"agent": agent.pk})
    assert response.status_code == 302
    assert response["Location"] == f"/sessions/{session.pk}/"
    assert messages_of(response) == []
    session.refresh_from_db()
    assert session.status == Status.RECORDING
    assert session.agent == agent
    assert session.started_at is not None
    # the device is recorded by the agent's connection once it streams, not here


def test_a_session_is_recorded_only_once(alice, alice_client, make_session, make_token):
    session = make_session(alice, status=Status.COMPLETE)
    agent = make_token(alice)
    response = alice_client.post(f"/sessions/{session.pk}/start", {"agent": agent.pk})
    session.refresh_from_db()
    assert session.status == Status.COMPLETE and session.agent is None
    assert "create a new session" in messages_of(response)[0]


def test_stopping_moves_a_recording_to_stopping(
    alice, alice_client, make_session, make_token
):
    agent = make_token(alice)
    session = make_session(alice, status=Status.RECORDING, agent=agent)
    response = alice_client.post(f"/sessions/{session.pk}/stop")
    assert response.status_code == 302
    session.refresh_from_db()
    assert session.status == Status.STOPPING
    assert session.stopped_at is not None


def test_stopping_a_finished_session_changes_nothing(alice, alice_client, make_session):
    session = make_session(alice, status=Status.COMPLETE)
    alice_client.post(f"/sessions/{session.pk}/stop")
    session.refresh_from_db()
    assert session.status == Status.COMPLETE and session.stopped_at is None


def test_the_owner_downloads_the_file(alice, alice_client, make_session, storage):
    session = make_session(alice, status=Status.COMPLETE)
    (storage / "media" / "sessions").mkdir(parents=True)
    (storage / "media" / "sessions" / "rec.h5").write_bytes(b"\x89HDF\r\n\x1a\nbytes")
    session.file = "sessions/rec.h5"
    session.save()
    response = alice_client.get(f"/sessions/{session.pk}/download")
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == b"\x89HDF\r\n\x1a\nbytes"
    assert (
        response["Content-Disposition"]
        == f'attachment; filename="session-{session.pk}.h5"'
    )
    response.close()


def test_there_is_nothing_to_download_before_the_file(
    alice, alice_client, make_session
):
    session = make_session(alice)
    assert alice_client.get(f"/sessions/{session.pk}/download").status_code == 404
