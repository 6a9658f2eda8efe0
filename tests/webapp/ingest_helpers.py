"""Helpers for the ingest tests: a real agent's view of the websocket protocol."""

from __future__ import annotations

import json

import numpy as np
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import User
from django.utils import timezone

from recorder.devices.base import EmgChunk
from recorder.protocol import STREAM_EMG, encode_chunk, make_message
from webapp.accounts.models import AgentToken
from webapp.asgi import application
from webapp.recordings.models import RecordingSession, Subject

DEVICE = {
    "kind": "simulated",
    "sampling_rate_hz": 500.0,
    "channel_names": [f"ch{i + 1}" for i in range(8)],
    "extra": {},
}


def make_samples(seq: int, n: int = 50, channels: int = 8) -> EmgChunk:
    """Chunk `seq` of a deterministic test stream: sample k has time k/500 s."""
    index = np.arange(seq * n, (seq + 1) * n)
    rng = np.random.default_rng(seq)
    return EmgChunk(
        emg=rng.normal(0, 20, (n, channels)).astype(np.float32),
        time=1_700_000_000.0 + index / 500.0,
        package_num=index.astype(np.int64),
        imu=np.zeros((n, 6), np.float32),
    )


def chunk_frame(session_id: int, seq: int, **options) -> bytes:
    return encode_chunk(session_id, STREAM_EMG, seq, make_samples(seq, **options))


# every communicator a test opens, so the test's teardown can close them all
OPEN_COMMUNICATORS: list[WebsocketCommunicator] = []


async def connect_agent(secret: str | None) -> WebsocketCommunicator:
    headers = [(b"authorization", f"Token {secret}".encode())] if secret else []
    agent = WebsocketCommunicator(application, "/ws/agent/", headers=headers)
    OPEN_COMMUNICATORS.append(agent)
    connected, _ = await agent.connect()
    assert connected
    return agent


async def say_hello(
    agent: WebsocketCommunicator,
    recording: list[int] = (),
    sessions: list[dict] | None = None,
) -> dict:
    """Send agent.hello, saying the agent is recording the sessions in `recording`."""
    if sessions is None:
        sessions = [{"session": pk, "status": "recording"} for pk in recording]
    await agent.send_to(
        text_data=make_message(
            "agent.hello", agent_version="test", device=DEVICE, sessions=sessions
        )
    )
    return await receive(agent)


async def close_all() -> None:
    while OPEN_COMMUNICATORS:
        await OPEN_COMMUNICATORS.pop().disconnect()


async def receive(agent: WebsocketCommunicator, timeout_s: float = 5) -> dict:
    return json.loads(await agent.receive_from(timeout=timeout_s))


async def send_chunk(agent, session_id: int, seq: int, **options) -> dict:
    await agent.send_to(bytes_data=chunk_frame(session_id, seq, **options))
    return await receive(agent)


def make_recording(
    username: str, protocol_name: str = "free", channels: int | None = 8
) -> tuple[str, RecordingSession]:
    """A user with an agent token and a session that agent is recording (its
    device as the agent announced it: `channels` channels at 500 Hz)."""
    user = User.objects.create_user(username, password="pw-" + username)
    token, secret = AgentToken.issue(user, f"{username}'s laptop")
    subject = Subject.objects.create(owner=user, name=username.title())
    device = {"kind": "simulated", "sampling_rate_hz": 500.0}
    if channels is not None:
        device["channel_names"] = [f"ch{i + 1}" for i in range(channels)]
    session = RecordingSession.objects.create(
        owner=user,
        subject=subject,
        agent=token,
        status="recording",
        protocol_name=protocol_name,
        started_at=timezone.now(),
        device_info=device,
    )
    return secret, session
