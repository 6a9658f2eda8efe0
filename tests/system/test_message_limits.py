"""Message size limits through a real daphne process: the largest chunk the protocol
allows gets through, one over the protocol's limit is answered with too_large, and
one over daphne's own websocket limit (1 MiB) makes daphne (autobahn) drop the
connection, without a close frame; the server serves the next one."""

from __future__ import annotations

import asyncio
import json

import numpy as np
import pytest
import websockets
from asgiref.sync import sync_to_async
from django.db import connections

from recorder.devices.base import EmgChunk
from recorder.protocol import (
    MAX_CHANNELS,
    MAX_CHUNK_BYTES,
    MAX_SAMPLES_PER_CHUNK,
    MAX_TEXT_BYTES,
    STREAM_EMG,
    encode_chunk,
    make_message,
)
from tests.system.processes import server_environment, start_server
from tests.webapp.ingest_helpers import make_recording
from webapp.processes import free_port

pytestmark = [
    pytest.mark.system,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("production_services"),
]
DAPHNE_MAX_MESSAGE_BYTES = 2**20  # daphne's default --websocket-max-message-size
DEVICE = {
    "kind": "simulated",
    "sampling_rate_hz": 500.0,
    "channel_names": [f"ch{i + 1}" for i in range(MAX_CHANNELS)],
    "extra": {},
}


def largest_chunk(session_id: int) -> bytes:
    n = MAX_SAMPLES_PER_CHUNK
    samples = EmgChunk(
        emg=np.zeros((n, MAX_CHANNELS), np.float32),
        time=1_700_000_000.0 + np.arange(n) / 500.0,
        package_num=np.arange(n, dtype=np.int64),
        imu=np.zeros((n, 6), np.float32),
    )
    frame = encode_chunk(session_id, STREAM_EMG, 0, samples)
    assert len(frame) == MAX_CHUNK_BYTES
    return frame


def connect(port: int, secret: str):
    return websockets.connect(
        f"ws://127.0.0.1:{port}/ws/agent/",
        additional_headers={"Authorization": f"Token {secret}"},
        max_size=None,
    )


async def say_hello(agent, session_id: int) -> None:
    await agent.send(
        make_message("agent.hello", agent_version="test", device=DEVICE,
                     sessions=[{"session": session_id, "status": "recording"}])
    )  # fmt: skip
    assert json.loads(await agent.recv())["type"] == "agent.welcome"


async def talk(port: int, secret: str, session_id: int) -> None:
    async with connect(port, secret) as agent:
        await say_hello(agent, session_id)
        await agent.send(largest_chunk(session_id))
        ack = json.loads(await agent.recv())
        assert ack["type"] == "chunk.ack" and ack["seqs"] == [0]
        for message in (
            b"EMGC" + bytes(MAX_CHUNK_BYTES - 3),
            "x" * (MAX_TEXT_BYTES + 1),
        ):
            await agent.send(message)
            error = json.loads(await agent.recv())
            assert error["code"] == "too_large" and "limit" in error["message"]
        await agent.send(bytes(DAPHNE_MAX_MESSAGE_BYTES + 1))
        with pytest.raises(websockets.ConnectionClosedError):
            await agent.recv()
    async with connect(port, secret) as agent:
        await say_hello(agent, session_id)


async def test_daphne_passes_what_the_protocol_allows_and_answers_or_closes_the_rest(
    tmp_path, settings
):
    settings.CHUNK_STORE_DIR = tmp_path / "chunks"
    settings.MEDIA_ROOT = tmp_path / "media"
    secret, session = await sync_to_async(make_recording)("alice", channels=64)
    port = free_port()
    env = await sync_to_async(server_environment)(tmp_path)
    server = await asyncio.to_thread(start_server, port, env, tmp_path)
    try:
        await talk(port, secret, session.pk)
    finally:
        server.kill()
        # the thread that made the recording holds a connection to the test database
        await sync_to_async(connections.close_all)()
