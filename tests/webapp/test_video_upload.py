"""Saved videos uploaded on request: the owner's request, the agent's upload
endpoint (token, session, size, checksum) and the owner-only download."""

from __future__ import annotations

import hashlib
import json

import pytest
from asgiref.sync import sync_to_async
from django.test import Client

from recorder.protocol import make_message
from tests.webapp.ingest_helpers import connect_agent, receive, say_hello
from webapp.accounts.models import AgentToken
from webapp.recordings import views
from webapp.recordings.models import RecordingSession, SessionVideo, Subject
from webapp.recordings.video import pending_video_requests

pytestmark = pytest.mark.django_db

Status = RecordingSession.Status
State = SessionVideo.State
VIDEO = b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 16  # never decoded
FRAME_TIMES = b"frame,frame_time_s\n0,100.000000\n1,100.033000\n"


@pytest.fixture
def laptop(alice) -> tuple[AgentToken, str]:
    return AgentToken.issue(alice, "laptop")


@pytest.fixture
def recorded(alice, laptop, make_session, storage) -> RecordingSession:
    """Alice's finished session, recorded by her laptop's agent."""
    return make_session(alice, status=Status.COMPLETE, agent=laptop[0])


@pytest.fixture
def sent(monkeypatch) -> list[tuple[int, dict]]:
    """What the portal sends to agents: (token id, message)."""
    messages = []
    monkeypatch.setattr(
        views,
        "_send_to_agent",
        lambda agent, text: messages.append((agent.pk, json.loads(text))),
    )
    return messages


def upload(session_id, secret, body=VIDEO, sha256=None, frames=False):
    headers = {"HTTP_X_CONTENT_SHA256": sha256 or hashlib.sha256(body).hexdigest()}
    if secret is not None:
        headers["HTTP_AUTHORIZATION"] = f"Token {secret}"
    url = f"/agent/sessions/{session_id}/video" + ("/frames" if frames else "")
    return Client().post(url, data=body, content_type="video/mp4", **headers)


def stored_files(storage) -> list[str]:
    return sorted(p.name for p in (storage / "media").rglob("*") if p.is_file())


def test_an_upload_is_checked_stored_and_offered_to_the_owner(
    recorded, laptop, alice_client, storage
):
    assert upload(recorded.pk, laptop[1], FRAME_TIMES, frames=True).status_code == 200
    response = upload(recorded.pk, laptop[1])
    assert response.status_code == 200, response.content
    assert response.json()["sha256"] == hashlib.sha256(VIDEO).hexdigest()
    video = SessionVideo.objects.get(session=recorded)
    assert video.state == State.COMPLETE and video.size_bytes == len(VIDEO)
    mp4, csv = f"session-{recorded.pk}.mp4", f"session-{recorded.pk}.frames.csv"
    assert stored_files(storage) == sorted([mp4, csv])  # no partial file left
    page = alice_client.get(f"/sessions/{recorded.pk}/").content.decode()
    assert f'href="/sessions/{recorded.pk}/video"' in page
    download = alice_client.get(f"/sessions/{recorded.pk}/video")
    assert b"".join(download.streaming_content) == VIDEO
    frames = alice_client.get(f"/sessions/{recorded.pk}/video/frames")
    assert b"".join(frames.streaming_content) == FRAME_TIMES


def test_a_repeated_upload_replaces_the_file(recorded, laptop, alice_client, storage):
    assert upload(recorded.pk, laptop[1], b"first version").status_code == 200
    assert upload(recorded.pk, laptop[1]).status_code == 200
    assert upload(recorded.pk, laptop[1]).status_code == 200  # the same again
    download = alice_client.get(f"/sessions/{recorded.pk}/video")
    assert b"".join(download.streaming_content) == VIDEO
    assert SessionVideo.objects.get(session=recorded).size_bytes == len(VIDEO)
    assert stored_files(storage) == [f"session-{recorded.pk}.mp4"]


@pytest.mark.parametrize(
    "who,status,problem",
    [
        ("nobody", 401, "token is missing"),
        ("unknown", 401, "token is missing, unknown or revoked"),
        ("revoked", 401, "token is missing, unknown or revoked"),
        ("bob", 404, "does not exist"),  # another user's session does not exist
        ("other laptop", 403, "was not recorded by this agent"),
    ],
)
def test_only_the_agent_that_recorded_the_session_may_upload(
    recorded, laptop, alice, bob, storage, who, status, problem
):
    secret = {
        "nobody": None,
        "unknown": "emgagent_made-up",
        "revoked": laptop[1],
        "bob": AgentToken.issue(bob, "bob's laptop")[1],
        "other laptop": AgentToken.issue(alice, "desktop")[1],
    }[who]
    if who == "revoked":
        AgentToken.objects.filter(pk=laptop[0].pk).update(
            revoked_at=recorded.created_at
        )
    response = upload(recorded.pk, secret)
    assert response.status_code == status
    assert problem in response.json()["error"]
    assert stored_files(storage) == []
    assert not SessionVideo.objects.exists()


def test_a_video_over_the_size_limit_is_refused_with_413(
    recorded, laptop, alice_client, sent, settings, storage
):
    settings.VIDEO_UPLOAD_MAX_MB = 1
    alice_client.post(f"/sessions/{recorded.pk}/video/request")
    response = upload(recorded.pk, laptop[1], b"x" * (2**20 + 1))
    assert response.status_code == 413
    assert "at most 1 MB (VIDEO_UPLOAD_MAX_MB)" in response.json()["error"]
    assert stored_files(storage) == []
    page = alice_client.get(f"/sessions/{recorded.pk}/").content.decode()
    assert "The laptop did not send the video: the upload was refused" in page


def test_a_checksum_mismatch_is_refused_and_keeps_the_earlier_video(
    recorded, laptop, alice_client, storage
):
    assert upload(recorded.pk, laptop[1]).status_code == 200
    response = upload(recorded.pk, laptop[1], b"corrupted", sha256="0" * 64)
    assert response.status_code == 400
    assert "SHA-256 mismatch" in response.json()["error"]
    download = alice_client.get(f"/sessions/{recorded.pk}/video")
    assert b"".join(download.streaming_content) == VIDEO  # never half replaced
    assert stored_files(storage) == [f"session-{recorded.pk}.mp4"]


@pytest.mark.parametrize(
    "body,sha256,status,problem",
    [
        (VIDEO, "not-a-digest", 400, "X-Content-SHA256 must be the file's SHA-256"),
        (b"", None, 411, "Content-Length is required"),  # the client sends none
    ],
)
def test_bad_uploads_are_refused_naming_the_problem(
    recorded, laptop, body, sha256, status, problem
):
    response = upload(recorded.pk, laptop[1], body, sha256=sha256)
    assert response.status_code == status
    assert problem in response.json()["error"]


def test_an_empty_file_is_refused(recorded, laptop):
    response = Client().post(
        f"/agent/sessions/{recorded.pk}/video",
        data=b"",
        content_type="video/mp4",
        CONTENT_LENGTH="0",
        HTTP_AUTHORIZATION=f"Token {laptop[1]}",
        HTTP_X_CONTENT_SHA256=hashlib.sha256(b"").hexdigest(),
    )
    assert response.status_code == 400
    assert "the video is empty" in response.json()["error"]


def test_the_owner_requests_the_video_from_the_recording_agent(
    recorded, laptop, alice_client, sent
):
    page = alice_client.get(f"/sessions/{recorded.pk}/").content.decode()
    assert "Request the video" in page
    assert "asks that laptop to send its locally saved video" in page
    alice_client.post(f"/sessions/{recorded.pk}/video/request")
    assert sent == [
        (laptop[0].pk, {"v": 1, "type": "video.request", "session": recorded.pk})
    ]
    assert SessionVideo.objects.get(session=recorded).state == State.REQUESTED
    page = alice_client.get(f"/sessions/{recorded.pk}/").content.decode()
    assert "waiting for laptop to send it" in page
    # an offline agent is asked again when it reconnects, until the video arrives
    assert pending_video_requests(laptop[0].pk) == [
        make_message("video.request", session=recorded.pk)
    ]
    upload(recorded.pk, laptop[1])
    assert pending_video_requests(laptop[0].pk) == []


def test_a_session_without_an_agent_has_no_video_to_request(
    alice, alice_client, make_session, sent
):
    session = make_session(alice, status=Status.COMPLETE)
    page = alice_client.get(f"/sessions/{session.pk}/").content.decode()
    assert "Request the video" not in page
    response = alice_client.post(f"/sessions/{session.pk}/video/request", follow=True)
    assert "No agent recorded this session" in response.content.decode()
    assert sent == [] and not SessionVideo.objects.exists()


def test_another_user_can_neither_request_nor_download_the_video(
    recorded, laptop, bob_client, sent
):
    assert upload(recorded.pk, laptop[1]).status_code == 200
    assert bob_client.post(f"/sessions/{recorded.pk}/video/request").status_code == 404
    assert bob_client.get(f"/sessions/{recorded.pk}/video").status_code == 404
    assert bob_client.get(f"/sessions/{recorded.pk}/video/frames").status_code == 404
    assert sent == []
    assert SessionVideo.objects.get(session=recorded).state == State.COMPLETE


# ------------------------------------------------- through the agent's websocket


def make_requested_video(username: str) -> tuple[str, int]:
    from django.contrib.auth.models import User

    user = User.objects.create_user(username)
    token, secret = AgentToken.issue(user, "laptop")
    subject = Subject.objects.create(owner=user, name="Ann")
    session = RecordingSession.objects.create(
        owner=user, subject=subject, agent=token, status=Status.COMPLETE
    )
    SessionVideo.objects.create(session=session, state=State.REQUESTED)
    return secret, session.pk


@pytest.mark.django_db(transaction=True)
async def test_an_agent_gets_the_request_on_connecting_and_can_say_it_has_none(
    close_communicators,
):
    secret, session_id = await sync_to_async(make_requested_video)("carol")
    agent = await connect_agent(secret)
    assert (await say_hello(agent))["type"] == "agent.welcome"
    request = await receive(agent)
    assert request == {"v": 1, "type": "video.request", "session": session_id}
    reason = "this agent runs without --save-video, so it keeps no video"
    await agent.send_to(
        text_data=make_message("video.unavailable", session=session_id, reason=reason)
    )
    await agent.send_to(
        text_data=make_message("video.unavailable", session=999_999, reason=reason)
    )
    error = await receive(agent)  # someone else's (or no) session is named
    assert error["code"] == "unknown_session" and "999999" in error["message"]
    video = await sync_to_async(SessionVideo.objects.get)(session_id=session_id)
    assert video.state == State.FAILED and video.message == reason


@pytest.mark.django_db(transaction=True)
def test_the_agents_uploader_and_the_endpoint_agree(live_server, storage):
    """The agent's own HTTP client (recorder) against this server, end to end."""
    from recorder.camera.video import saved_video_paths, upload_saved_video

    secret, session_id = make_requested_video("dave")
    video_path, times_path = saved_video_paths(storage / "videos", session_id)
    video_path.parent.mkdir()
    video_path.write_bytes(VIDEO)
    times_path.write_bytes(FRAME_TIMES)
    server_url = live_server.url.replace("http://", "ws://")
    answer = upload_saved_video(server_url, secret, storage / "videos", session_id)
    assert answer["bytes"] == len(VIDEO)
    video = SessionVideo.objects.get(session_id=session_id)
    assert video.state == State.COMPLETE and video.frames_file
    with video.file.open("rb") as stored:
        assert stored.read() == VIDEO
