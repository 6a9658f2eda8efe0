"""The agent ingest consumer, through Channels' WebsocketCommunicator."""

from __future__ import annotations

import asyncio
import json
import os
import struct

import numpy as np
import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.contrib.auth.models import User
from django.utils import timezone

from recorder.chunk_log import LOG_NAME, ChunkLog
from recorder.protocol import (
    HEADER,
    MAX_CHUNK_BYTES,
    STREAM_EMG,
    decode_chunk,
    encode_chunk,
    make_message,
)
from recorder.session_file import read_session
from tests.webapp.ingest_helpers import (
    chunk_frame,
    connect_agent,
    make_recording,
    make_samples,
    receive,
    say_hello,
    send_chunk,
)
from webapp.accounts.models import AgentToken
from webapp.recordings.ingest import OWNER_FILE
from webapp.recordings.models import RecordingSession

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("ingest_storage", "close_communicators"),
]


@pytest.fixture
def alice():
    return sync_to_async(make_recording)("alice")


@pytest.fixture
def bob():
    return sync_to_async(make_recording)("bob")


async def test_it_refuses_a_bad_token(alice):
    await alice
    agent = await connect_agent("emgagent_not-a-real-token")
    error = await receive(agent)
    assert error["type"] == "error" and error["code"] == "bad_token"
    assert (await agent.receive_output())["type"] == "websocket.close"


async def test_it_refuses_a_missing_token():
    agent = await connect_agent(None)
    assert (await receive(agent))["code"] == "bad_token"


async def test_it_refuses_a_revoked_token(alice):
    secret, _ = await alice
    await sync_to_async(AgentToken.objects.update)(revoked_at=timezone.now())
    agent = await connect_agent(secret)
    assert (await receive(agent))["code"] == "bad_token"


async def test_it_welcomes_an_agent_and_marks_it_online(alice):
    secret, _ = await alice
    agent = await connect_agent(secret)
    welcome = await say_hello(agent)
    assert welcome["type"] == "agent.welcome" and welcome["agent"] == "alice's laptop"
    token = await sync_to_async(AgentToken.objects.get)()
    assert token.is_online() and token.device_info["sampling_rate_hz"] == 500.0
    await agent.disconnect()
    assert not (await sync_to_async(AgentToken.objects.get)()).connected


async def test_it_stores_and_acknowledges_a_chunk(alice, ingest_storage):
    secret, session = await alice
    agent = await connect_agent(secret)
    await say_hello(agent, [session.pk])
    ack = await send_chunk(agent, session.pk, 0)
    assert ack == {
        "v": 1,
        "type": "chunk.ack",
        "session": session.pk,
        "stream": 0,
        "seqs": [0],
    }
    stored = list(
        ChunkLog(ingest_storage / "chunks" / f"session-{session.pk}").records()
    )
    assert [decode_chunk(r.frame).seq for r in stored] == [0]


@pytest.mark.parametrize("owned_by_another", [False, True])
async def test_it_sets_aside_the_chunks_of_an_older_session_with_the_same_id(
    alice, ingest_storage, owned_by_another
):
    # Ids repeat when the database is reset, or when two databases share the chunk
    # store (the embedded and the Redis mode of bench_live): the old session's chunks
    # made every new chunk look stored already, so it was neither stored nor
    # forwarded to the live hand (no poses at all).
    secret, session = await alice
    folder = ingest_storage / "chunks" / f"session-{session.pk}"
    old = ChunkLog(folder)
    old.open_for_append()
    old.append_many([chunk_frame(session.pk, seq, n=10) for seq in range(3)])
    if owned_by_another:
        (folder / OWNER_FILE).write_text("2020-01-01T00:00:00+00:00")
    else:  # a folder from before owner files, last written before the session
        before_s = session.created_at.timestamp() - 60
        os.utime(folder / LOG_NAME, (before_s, before_s))

    agent = await connect_agent(secret)
    await say_hello(agent, [session.pk])
    await send_chunk(agent, session.pk, 0)

    stored = [r.frame for r in ChunkLog(folder).records()]
    assert stored == [chunk_frame(session.pk, 0)]
    (aside,) = ingest_storage.glob(f"chunks/session-{session.pk}.stale-*")
    assert len(list(ChunkLog(aside).records())) == 3


async def test_it_keeps_its_own_chunks_when_the_agent_reconnects(alice, ingest_storage):
    secret, session = await alice
    for seq in range(2):
        agent = await connect_agent(secret)
        await say_hello(agent, [session.pk])
        await send_chunk(agent, session.pk, seq)
        await agent.disconnect()
    folder = ingest_storage / "chunks" / f"session-{session.pk}"
    stored = [decode_chunk(r.frame).seq for r in ChunkLog(folder).records()]
    assert stored == [0, 1]
    assert not list(ingest_storage.glob("chunks/*.stale-*"))


@pytest.mark.parametrize(
    "text, code",
    [
        ("{not json", "bad_json"),
        ('["a list"]', "bad_schema"),
        ('{"v": 2, "type": "agent.ping"}', "bad_version"),
        ('{"v": 1, "type": "agent.dance"}', "bad_type"),
        ('{"v": 1, "type": "recording.stopped", "session": 1}', "bad_schema"),
        (
            '{"v": 1, "type": "chunk.ack", "session": 1, "stream": 0, "seqs": []}',
            "bad_type",
        ),
        ('{"v": 1, "type": "agent.ping", "pad": "' + "x" * 70_000 + '"}', "too_large"),
        ('{"v": 1, "type": "agent.ping", "n": NaN}', "bad_json"),
    ],
)
async def test_it_names_the_problem_with_a_malformed_message(alice, text, code):
    secret, session = await alice
    agent = await connect_agent(secret)
    await say_hello(agent, [session.pk])
    await agent.send_to(text_data=text)
    error = await receive(agent)
    assert error["type"] == "error" and error["code"] == code, error
    # the connection survives: the agent can carry on
    await agent.send_to(text_data=make_message("agent.ping"))
    assert (await receive(agent))["type"] == "agent.pong"


async def test_it_wants_hello_before_chunks(alice):
    secret, session = await alice
    agent = await connect_agent(secret)
    error = await send_chunk(agent, session.pk, 0)
    assert error["code"] == "hello_first"


def corrupt_checksum(frame: bytes) -> bytes:
    return frame[: HEADER.size - 4] + bytes(4) + frame[HEADER.size :]


def corrupt_payload(frame: bytes) -> bytes:
    return frame[:-1] + bytes([frame[-1] ^ 0xFF])


def wrong_magic(frame: bytes) -> bytes:
    return b"XXXX" + frame[4:]


def truncated(frame: bytes) -> bytes:
    return frame[:-10]


def with_version(version: int):
    return lambda frame: frame[:4] + struct.pack("<B", version) + frame[5:]


@pytest.mark.parametrize(
    "mangle, code",
    [
        (corrupt_checksum, "bad_checksum"),
        (corrupt_payload, "bad_checksum"),
        (wrong_magic, "bad_chunk"),
        (truncated, "bad_chunk"),
        (with_version(9), "bad_version"),
        (lambda frame: frame[:10], "bad_chunk"),
        (lambda frame: b"\0" * (MAX_CHUNK_BYTES + 1), "too_large"),
    ],
)
async def test_it_rejects_a_damaged_chunk(alice, ingest_storage, mangle, code):
    secret, session = await alice
    agent = await connect_agent(secret)
    await say_hello(agent, [session.pk])
    await agent.send_to(bytes_data=mangle(chunk_frame(session.pk, 0)))
    assert (await receive(agent))["code"] == code
    assert not (ingest_storage / "chunks" / f"session-{session.pk}").exists()


async def test_it_rejects_the_wrong_channel_count(alice):
    secret, session = await alice
    agent = await connect_agent(secret)
    await say_hello(agent, [session.pk])
    error = await send_chunk(agent, session.pk, 0, channels=4)
    assert error["code"] == "bad_channels" and "announced 8" in error["message"]


async def test_it_rejects_nan_samples(alice, ingest_storage):
    secret, session = await alice
    agent = await connect_agent(secret)
    await say_hello(agent, [session.pk])
    samples = make_samples(0)
    samples.emg[3, 2] = np.nan
    await agent.send_to(bytes_data=encode_chunk(session.pk, STREAM_EMG, 0, samples))
    assert (await receive(agent))["code"] == "not_finite"
    assert not (ingest_storage / "chunks" / f"session-{session.pk}").exists()


async def test_a_replayed_chunk_is_stored_once_and_acknowledged_again(
    alice, ingest_storage
):
    secret, session = await alice
    agent = await connect_agent(secret)
    await say_hello(agent, [session.pk])
    first = await send_chunk(agent, session.pk, 0)
    again = await send_chunk(agent, session.pk, 0)
    assert first == again and again["seqs"] == [0]
    assert (
        len(
            list(
                ChunkLog(ingest_storage / "chunks" / f"session-{session.pk}").records()
            )
        )
        == 1
    )


async def test_out_of_order_chunks_within_the_window_are_kept(alice):
    secret, session = await alice
    agent = await connect_agent(secret)
    await say_hello(agent, [session.pk])
    for seq in (1, 0, 2):
        assert (await send_chunk(agent, session.pk, seq))["seqs"] == [seq]


async def test_a_chunk_far_ahead_is_refused(alice):
    secret, session = await alice
    agent = await connect_agent(secret)
    await say_hello(agent, [session.pk])
    error = await send_chunk(agent, session.pk, 5000)
    assert error["code"] == "seq_too_far_ahead"


async def test_it_refuses_chunks_for_another_users_session(alice, bob, ingest_storage):
    alice_secret, alice_session = await alice
    _, bobs_session = await bob
    agent = await connect_agent(alice_secret)
    await say_hello(agent, [alice_session.pk])
    error = await send_chunk(agent, bobs_session.pk, 0)
    assert error["code"] == "unknown_session"
    assert not (ingest_storage / "chunks" / f"session-{bobs_session.pk}").exists()


async def test_a_bad_agent_does_not_disturb_another(alice, bob):
    alice_secret, alice_session = await alice
    bob_secret, _ = await bob
    good, bad = await connect_agent(alice_secret), await connect_agent(bob_secret)
    await say_hello(good, [alice_session.pk])
    await say_hello(bad)
    await bad.send_to(bytes_data=b"garbage" * 100)
    await bad.send_to(text_data="{")
    assert (await send_chunk(good, alice_session.pk, 0))["type"] == "chunk.ack"


async def stop_report(session_id: int, chunks: int, samples: int) -> str:
    return make_message(
        "recording.stopped",
        session=session_id,
        chunks=chunks,
        samples=samples,
        dropped_packets=0,
        reason="stopped by user",
    )


async def test_it_refuses_to_close_a_recording_with_missing_chunks(alice):
    secret, session = await alice
    agent = await connect_agent(secret)
    await say_hello(agent, [session.pk])
    await send_chunk(agent, session.pk, 0)
    await agent.send_to(text_data=await stop_report(session.pk, chunks=3, samples=150))
    error = await receive(agent)
    assert error["code"] == "incomplete"
    assert (await sync_to_async(RecordingSession.objects.get)()).status == "recording"


async def test_stopping_assembles_the_session_file_from_every_chunk(
    alice, ingest_storage
):
    secret, session = await alice
    agent = await connect_agent(secret)
    await say_hello(agent, [session.pk])
    for seq in (0, 2, 1, 2, 3):  # out of order, with a duplicate
        await send_chunk(agent, session.pk, seq)
    await agent.send_to(text_data=await stop_report(session.pk, chunks=4, samples=200))
    closed = await receive(agent)
    assert closed == {
        "v": 1,
        "type": "recording.closed",
        "session": session.pk,
        "status": "assembling",
    }
    stored = await sync_to_async(RecordingSession.objects.get)()
    assert stored.status == "complete" and stored.sample_count == 200
    recording = read_session(ingest_storage / "media" / stored.file.name)
    expected = np.concatenate([make_samples(seq).emg for seq in range(4)])
    np.testing.assert_array_equal(recording.emg, expected)
    np.testing.assert_array_equal(recording.package_num, np.arange(200))
    assert not (ingest_storage / "chunks" / f"session-{session.pk}").exists()


async def test_a_repeated_stop_report_is_answered_without_redoing_work(alice):
    secret, session = await alice
    agent = await connect_agent(secret)
    await say_hello(agent, [session.pk])
    await send_chunk(agent, session.pk, 0)
    report = await stop_report(session.pk, chunks=1, samples=50)
    await agent.send_to(text_data=report)
    await receive(agent)
    await agent.send_to(text_data=report)
    assert (await receive(agent))["status"] == "complete"


async def test_chunks_after_the_recording_closed_are_refused(alice):
    secret, session = await alice
    await sync_to_async(RecordingSession.objects.update)(status="complete")
    agent = await connect_agent(secret)
    await say_hello(agent, [session.pk])
    assert (await receive(agent))["type"] == "recording.closed"  # forget it, agent
    assert (await send_chunk(agent, session.pk, 0))["code"] == "session_closed"


async def test_a_reconnecting_agent_is_told_to_start_a_recording_it_missed(alice):
    secret, session = await alice
    agent = await connect_agent(secret)
    await say_hello(agent)
    command = await receive(agent)
    assert command["type"] == "recording.start" and command["session"] == session.pk


async def test_a_reconnecting_agent_is_told_to_stop(alice):
    secret, session = await alice
    await sync_to_async(RecordingSession.objects.update)(status="stopping")
    agent = await connect_agent(secret)
    await say_hello(agent, [session.pk])
    assert (await receive(agent)) == {
        "v": 1,
        "type": "recording.stop",
        "session": session.pk,
    }


async def test_the_owner_watches_live_samples(alice):
    from channels.testing import WebsocketCommunicator

    from webapp.asgi import application

    secret, session = await alice
    user = await sync_to_async(User.objects.get)(username="alice")
    browser = WebsocketCommunicator(
        application,
        f"/ws/sessions/{session.pk}/live/",
        headers=[(b"origin", b"http://127.0.0.1")],
    )
    browser.scope["user"] = user
    connected, _ = await browser.connect()
    assert connected
    agent = await connect_agent(secret)
    await say_hello(agent, [session.pk])
    # the agent's connection learns of the watching tab soon after its first chunk
    live = None
    for seq in range(50):
        await send_chunk(agent, session.pk, seq)
        if not await browser.receive_nothing(timeout=0.1):
            live = json.loads(await browser.receive_from())
            break
    assert live is not None, "no live samples reached the watching tab"
    assert live["type"] == "live.emg" and live["seq"] == seq
    assert len(live["emg"]) == 8 and len(live["emg"][0]) == 25
    await browser.disconnect()


async def test_nobody_watching_means_no_live_traffic(alice):
    secret, session = await alice
    layer = get_channel_layer()
    await layer.group_add(f"session.{session.pk}.live", "eavesdropper.x")
    agent = await connect_agent(secret)
    await say_hello(agent, [session.pk])
    for seq in range(10):
        await send_chunk(agent, session.pk, seq)
    # only the "streaming" announcement, never samples, reaches a non-watching member
    received = []
    while True:
        try:
            received.append(await asyncio.wait_for(layer.receive("eavesdropper.x"), 1))
        except TimeoutError:
            break
    assert [message["type"] for message in received] == ["live.streaming"]


@pytest.mark.parametrize(
    "device, problem",
    [
        ({"sampling_rate_hz": 500.0, "channel_names": []}, "1 to 64 channels"),
        ({"sampling_rate_hz": 500.0, "channel_names": ["c"] * 65}, "1 to 64 channels"),
        ({"sampling_rate_hz": "fast", "channel_names": ["c"]}, "must be a number"),
        ({"sampling_rate_hz": 0, "channel_names": ["c"]}, "out of range"),
    ],
)
async def test_it_refuses_a_device_it_cannot_store(alice, device, problem):
    secret, _ = await alice
    agent = await connect_agent(secret)
    await agent.send_to(
        text_data=make_message(
            "agent.hello", agent_version="test", device=device, sessions=[]
        )
    )
    error = await receive(agent)
    assert error["code"] == "bad_schema" and problem in error["message"]


async def test_a_chunk_that_cannot_be_stored_is_not_acknowledged(alice, ingest_storage):
    secret, session = await alice
    agent = await connect_agent(secret)
    await say_hello(agent, [session.pk])
    await send_chunk(agent, session.pk, 0)
    log_path = ingest_storage / "chunks" / f"session-{session.pk}" / "chunks.log"
    log_path.unlink()
    log_path.mkdir()  # appending now fails, as a full disk would
    error = await send_chunk(agent, session.pk, 1)
    assert error["type"] == "error" and error["code"] == "storage_failed"
    # the agent keeps chunk 1, reconnects with backoff and sends it again
    closed = await agent.receive_output()
    assert closed == {"type": "websocket.close", "code": 4507}


async def test_revoking_a_token_disconnects_its_agent(alice):
    from django.test import Client

    secret, session = await alice
    agent = await connect_agent(secret)
    await say_hello(agent, [session.pk])
    owner = Client()
    await sync_to_async(owner.force_login)(await sync_to_async(User.objects.get)())
    token = await sync_to_async(AgentToken.objects.get)()
    await sync_to_async(owner.post)(f"/tokens/{token.pk}/revoke")
    error = await receive(agent)
    assert error["code"] == "token_revoked"
    assert (await agent.receive_output())["type"] == "websocket.close"


def test_live_chunks_lengthen_when_a_server_has_more_watched_agents_than_its_budget():
    from webapp.recordings.ingest import live_chunk_s

    assert live_chunk_s(1, 250) == live_chunk_s(10, 250) == 0.04  # 25 a second each
    assert live_chunk_s(20, 250) == 0.08
    assert live_chunk_s(50, 250) == live_chunk_s(500, 250) == 0.2  # recording's own
