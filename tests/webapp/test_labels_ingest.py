"""Camera labels through the agent ingest: stored once, acknowledged on their own
stream, assembled into the session file, and shown live (decimated)."""

from __future__ import annotations

import asyncio
import json

import numpy as np
import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import User

from recorder.chunk_log import ChunkLog
from recorder.protocol import STREAM_LABELS, encode_label_chunk, make_message
from recorder.session_file import read_session
from tests.recorder.camera_helpers import make_label_frames
from tests.webapp.ingest_helpers import (
    connect_agent,
    make_recording,
    receive,
    say_hello,
    send_chunk,
)
from webapp.asgi import application
from webapp.live.groups import hand_session_group
from webapp.recordings.ingest import ingest_group
from webapp.recordings.models import RecordingSession

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("ingest_storage", "close_communicators"),
]

T0 = 1_700_000_000.0  # the EMG test stream's first sample time (ingest_helpers)
FRAMES_PER_CHUNK = 6  # 0.2 s at 30 fps


@pytest.fixture
def alice():
    return sync_to_async(make_recording)("alice")


def label_chunk(session_id: int, seq: int) -> bytes:
    t0 = T0 + seq * FRAMES_PER_CHUNK / 30
    return encode_label_chunk(session_id, seq, make_label_frames(FRAMES_PER_CHUNK, t0))


async def send_labels(agent, session_id: int, seq: int) -> dict:
    await agent.send_to(bytes_data=label_chunk(session_id, seq))
    return await receive(agent)


def stop_report(session_id: int, chunks: int, label_chunks: int) -> str:
    return make_message(
        "recording.stopped", session=session_id, chunks=chunks, samples=50 * chunks,
        dropped_packets=0, reason="stopped by user", label_chunks=label_chunks,
    )  # fmt: skip


async def recording_agent(alice):
    secret, session = await alice
    agent = await connect_agent(secret)
    await say_hello(agent, [session.pk])
    return agent, session


async def test_a_label_chunk_is_stored_and_acknowledged_on_its_own_stream(
    alice, ingest_storage
):
    agent, session = await recording_agent(alice)
    assert (await send_chunk(agent, session.pk, 0))["stream"] == 0
    ack = await send_labels(agent, session.pk, 0)  # seq 0 again: its own seq space
    assert ack == {
        "v": 1,
        "type": "chunk.ack",
        "session": session.pk,
        "stream": STREAM_LABELS,
        "seqs": [0],
    }
    assert (await send_labels(agent, session.pk, 0))["seqs"] == [0]  # a resend
    log = ChunkLog(ingest_storage / "chunks" / f"session-{session.pk}")
    assert len(list(log.records())) == 2  # one EMG chunk, one label chunk


async def test_it_will_not_close_before_every_label_chunk_is_stored(alice):
    agent, session = await recording_agent(alice)
    await send_chunk(agent, session.pk, 0)
    await send_labels(agent, session.pk, 0)
    await agent.send_to(text_data=stop_report(session.pk, chunks=1, label_chunks=2))
    error = await receive(agent)
    assert error["code"] == "incomplete" and "1 are stored" in error["message"]
    assert (await sync_to_async(RecordingSession.objects.get)()).status == "recording"


async def test_the_session_file_holds_the_labels_with_missing_frames_as_nan(
    alice, ingest_storage
):
    agent, session = await recording_agent(alice)
    for seq in range(3):
        await send_chunk(agent, session.pk, seq)
    for seq in (1, 0, 1):  # out of order, with a duplicate
        await send_labels(agent, session.pk, seq)
    await agent.send_to(text_data=stop_report(session.pk, chunks=3, label_chunks=2))
    assert (await receive(agent))["type"] == "recording.closed"
    stored = await sync_to_async(RecordingSession.objects.get)()
    assert stored.status == "complete", stored.error
    recording = read_session(ingest_storage / "media" / stored.file.name)
    assert len(recording.frame_time) == 2 * FRAMES_PER_CHUNK
    assert np.all(np.diff(recording.frame_time) > 0)
    assert recording.frame_time[0] == pytest.approx(recording.emg_time[0])
    missing = ~recording.label_valid
    assert missing.tolist() == [False, True, False, False, False, False] * 2
    assert np.isnan(recording.joints[missing]).all()
    assert np.isnan(recording.landmarks[missing]).all()
    assert np.isfinite(recording.joints[~missing]).all()


async def test_it_refuses_a_label_chunk_far_ahead(alice):
    agent, session = await recording_agent(alice)
    error = await send_labels(agent, session.pk, 5000)
    assert error["code"] == "seq_too_far_ahead" and "label chunk" in error["message"]


async def watching_tab(session):
    user = await sync_to_async(User.objects.get)(username="alice")
    tab = WebsocketCommunicator(
        application,
        f"/ws/sessions/{session.pk}/live/",
        headers=[(b"origin", b"http://127.0.0.1")],
    )
    tab.scope["user"] = user
    connected, _ = await tab.connect()
    assert connected
    return tab


async def next_message_of(tab, kind: str, tries: int = 20) -> dict | None:
    for _ in range(tries):
        if await tab.receive_nothing(timeout=0.1):
            continue
        message = json.loads(await tab.receive_from())
        if message["type"] == kind:
            return message
    return None


async def test_a_watching_tab_gets_labels_at_15_fps_and_the_camera_state(alice):
    agent, session = await recording_agent(alice)
    tab = await watching_tab(session)
    await send_chunk(agent, session.pk, 0)  # the tab's watch reaches the agent's side
    await asyncio.sleep(0.2)
    for seq in range(5):  # 1 s of frames at 30 fps
        await send_labels(agent, session.pk, seq)
    frames = []
    while (labels := await next_message_of(tab, "live.labels", tries=5)) is not None:
        frames += labels["frames"]
    assert 10 <= len(frames) <= 15  # 30 fps in, at most 15 fps out, no missing hands
    assert all(len(f["joints"]) == 63 and f["valid"] for f in frames)
    assert all(np.isfinite(f["ik_error_mm"]) for f in frames)
    status = dict(state="no_frames", fps=0.0, latency_ms=0.0, message="no frames")
    await agent.send_to(
        text_data=make_message("camera.status", session=session.pk, **status)
    )
    camera = await next_message_of(tab, "live.camera")
    assert camera == {"type": "live.camera", "session": session.pk, **status}
    await tab.disconnect()


async def test_a_bad_camera_status_is_named(alice):
    agent, session = await recording_agent(alice)
    await agent.send_to(
        text_data=json.dumps(
            {"v": 1, "type": "camera.status", "session": session.pk,
             "state": "on fire", "fps": 1, "latency_ms": 1, "message": ""}
        )
    )  # fmt: skip
    error = await receive(agent)
    assert (
        error["code"] == "bad_schema" and "'state' must be one of" in error["message"]
    )


async def test_live_hand_tabs_get_the_camera_labels(alice):
    agent, session = await recording_agent(alice)
    layer = get_channel_layer()
    await send_chunk(agent, session.pk, 0)
    await layer.group_add(hand_session_group(session.pk), "hand-tab.x")
    await layer.group_send(
        ingest_group(session.pk), {"type": "hand.watch", "session": session.pk}
    )
    await receive(agent)  # recording.live: small chunks, please
    await send_labels(agent, session.pk, 0)
    received = []
    while True:
        try:
            received.append(await asyncio.wait_for(layer.receive("hand-tab.x"), 1))
        except TimeoutError:
            break
    labels = [m for m in received if m["type"] == "hand.labels"]
    assert len(labels) == 3  # 6 frames at 30 fps, one without a hand, at ≤ 15 fps
    assert labels[0]["t"] == T0 and len(labels[0]["joints"]) == 63
