"""The live hand: agent chunks -> inference worker -> every tab on the session,
through Channels' WebsocketCommunicator, with a tiny trained model."""

from __future__ import annotations

import asyncio
import json
import time

import numpy as np
import pytest
from asgiref.sync import sync_to_async
from channels.exceptions import ChannelFull
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import User
from django.db import connections

from tests.webapp.ingest_helpers import (
    OPEN_COMMUNICATORS,
    chunk_frame,
    close_all,
    connect_agent,
    make_recording,
    make_samples,
    receive,
    say_hello,
    send_chunk,
)
from webapp.live.checkpoints import register_checkpoint, train_tiny_model
from webapp.live.groups import hand_session_group, inference_channel, labels_event
from webapp.live.worker import stop_in_process
from webapp.recordings.models import RecordingSession

pytestmark = pytest.mark.django_db(transaction=True)

CHUNK_SAMPLES = 20  # 40 ms at 500 Hz, as the agent sends them


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    return train_tiny_model(tmp_path_factory.mktemp("tiny-model"))


@pytest.fixture(autouse=True)
async def live_setup(settings, tmp_path):
    settings.CHUNK_STORE_DIR = tmp_path / "chunks"
    settings.MEDIA_ROOT = tmp_path / "media"
    # the tabs start the worker in this event loop, whatever the channel layer
    settings.INFERENCE_IN_PROCESS = True
    yield
    await close_all()
    await stop_in_process()
    await sync_to_async(connections.close_all)()
    await get_channel_layer().flush()


def make_user_with_model(username: str, checkpoint) -> tuple[str, object, int]:
    """A recording session of the user's agent, and a complete model of theirs."""
    secret, session = make_recording(username)
    run = register_checkpoint(session.owner, checkpoint, f"{username}'s tiny tcn")
    return secret, session, run.pk


@pytest.fixture
async def alices(tiny_checkpoint):
    """(agent secret, recording session, model run id) of alice."""
    return await sync_to_async(make_user_with_model)("alice", tiny_checkpoint)


async def open_tab(session_id: int, username: str) -> WebsocketCommunicator:
    from webapp.asgi import application

    tab = WebsocketCommunicator(
        application,
        f"/ws/sessions/{session_id}/hand/",
        headers=[(b"origin", b"http://127.0.0.1")],
    )
    tab.scope["user"] = await sync_to_async(User.objects.get)(username=username)
    OPEN_COMMUNICATORS.append(tab)
    return tab


async def watching_tab(session_id: int, run_id: int, username="alice"):
    """A connected tab that picked the model; returns (tab, the model message)."""
    tab = await open_tab(session_id, username)
    connected, _ = await tab.connect()
    assert connected
    assert (await tab.receive_json_from(timeout=5))["type"] == "session"
    await tab.send_json_to({"type": "display", "rate_hz": 240})
    await tab.send_json_to({"type": "select", "run": run_id})
    return tab, await next_of(tab, {"model", "error"}, timeout_s=20)


async def next_of(tab, types: set[str], timeout_s: float = 5) -> dict:
    deadline = time.monotonic() + timeout_s
    while (message := await receive_within(tab, deadline)) is not None:
        if message["type"] in types:
            return message
    raise TimeoutError(f"no {types} message within {timeout_s} s")


async def drain(tab, seconds: float) -> list[dict]:
    """Every message the tab gets in the next `seconds`."""
    messages = []
    deadline = time.monotonic() + seconds
    while (message := await receive_within(tab, deadline)) is not None:
        messages.append(message)
    return messages


async def receive_within(tab, deadline: float) -> dict | None:
    # receive_nothing, unlike a receive that times out, leaves the consumer running
    while time.monotonic() < deadline:
        if not await tab.receive_nothing(timeout=0.02):
            return json.loads(await tab.receive_from())
    return None


async def stream(agent, session_id: int, chunks: int, start_seq: int = 0):
    """Chunks of 40 ms at about the pace an armband makes them; returns the
    recording.live messages the server sent the agent meanwhile."""
    told = []
    for seq in range(start_seq, start_seq + chunks):
        await agent.send_to(bytes_data=chunk_frame(session_id, seq, n=CHUNK_SAMPLES))
        while (reply := await receive(agent))["type"] == "recording.live":
            told.append(reply)
        assert reply["type"] == "chunk.ack", reply
        await asyncio.sleep(0.01)
    return told


def poses(messages: list[dict]) -> list[dict]:
    return [m for m in messages if m["type"] == "pose"]


# ------------------------------------------------------------------ delivery


async def test_two_tabs_of_a_session_get_the_same_poses(alices):
    secret, session, run_id = alices
    first, model = await watching_tab(session.pk, run_id)
    second, _ = await watching_tab(session.pk, run_id)
    assert model["model_name"] == "tcn" and model["num_channels"] == 8
    agent = await connect_agent(secret)
    await say_hello(agent, [session.pk])
    await stream(agent, session.pk, 60)
    got_first, got_second = poses(await drain(first, 1)), poses(await drain(second, 1))
    assert got_first and got_second, "the tabs got no poses"
    # one predictor: a pose both tabs got is the same pose
    by_time = {p["t"]: p for p in got_first}
    shared = [p for p in got_second if p["t"] in by_time]
    assert shared and all(by_time[p["t"]]["joints"] == p["joints"] for p in shared)
    assert all(len(p["joints"]) == 63 and p["status"] in ("ok", "rest") for p in shared)
    # pose time is the agent's sample time of the chunks just sent (1.7e9 + i/500)
    assert 1_700_000_000.0 < got_first[-1]["t"] <= 1_700_000_000.0 + 60 * 0.04


async def test_tabs_that_pick_a_model_while_it_loads_all_get_it(alices, monkeypatch):
    """The second tab's request arrives while the first one's model is loading: it is
    answered once the model is there (it used to wait for nothing and report that no
    worker was running)."""
    from webapp.live import predictors

    def slow_load(*args, **kwargs):
        time.sleep(1.0)
        return load(*args, **kwargs)

    load = predictors.load_checkpoint
    monkeypatch.setattr(predictors, "load_checkpoint", slow_load)
    _, session, run_id = alices
    tabs = [await open_tab(session.pk, "alice") for _ in range(3)]
    for tab in tabs:
        assert (await tab.connect())[0]
        assert (await tab.receive_json_from(timeout=5))["type"] == "session"
    for tab in tabs:
        await tab.send_json_to({"type": "select", "run": run_id})
    answers = [await next_of(tab, {"model", "error"}, timeout_s=6) for tab in tabs]
    assert [answer["type"] for answer in answers] == ["model"] * 3, answers


async def test_a_watch_refused_by_a_full_worker_channel_is_sent_again(
    alices, monkeypatch
):
    """A worker far behind fills its channel; the tab's request for the model is
    then sent again at its next beat, and the model arrives (the tab used to crash
    on ChannelFull)."""
    monkeypatch.setattr("webapp.live.consumers.WATCH_INTERVAL_S", 0.3)
    layer = get_channel_layer()
    send = layer.send
    refused = []

    async def full_for_the_first_watch(channel, message):
        if message["type"] == "inference.watch" and not refused:
            refused.append(message)
            raise ChannelFull()
        return await send(channel, message)

    monkeypatch.setattr(layer, "send", full_for_the_first_watch)
    _, session, run_id = alices
    _, answer = await watching_tab(session.pk, run_id)
    assert refused and refused[0]["reply_to"]
    assert answer["type"] == "model", answer


async def test_the_agent_sends_small_chunks_only_while_a_hand_watches(
    alices, monkeypatch
):
    monkeypatch.setattr("webapp.recordings.ingest.WATCH_TTL_S", 0.3)
    secret, session, run_id = alices
    tab, _ = await watching_tab(session.pk, run_id)
    agent = await connect_agent(secret)
    await say_hello(agent, [session.pk])
    told = await stream(agent, session.pk, 5)
    assert told == [{"v": 1, "type": "recording.live", "session": session.pk,
                     "live": True, "chunk_s": 0.04}]  # fmt: skip
    await tab.disconnect()
    await asyncio.sleep(0.5)  # the watch lapses
    told = await stream(agent, session.pk, 3, start_seq=5)
    assert [message["live"] for message in told] == [False]


async def test_a_server_over_its_live_chunk_budget_asks_for_longer_chunks(
    alices, settings
):
    settings.LIVE_CHUNKS_PER_S = 10  # one watched agent at 40 ms would be 25 a second
    secret, session, run_id = alices
    await watching_tab(session.pk, run_id)
    agent = await connect_agent(secret)
    await say_hello(agent, [session.pk])
    told = await stream(agent, session.pk, 3)
    assert [(m["live"], m["chunk_s"]) for m in told] == [(True, 0.1)]


async def test_another_users_session_is_refused(alices):
    _, session, _ = alices
    await sync_to_async(User.objects.create_user)("bob", password="pw-bob")
    tab = await open_tab(session.pk, "bob")
    connected, code = await tab.connect()
    assert not connected and code == 4003


async def test_another_users_model_is_refused(alices, tiny_checkpoint):
    _, _, alices_run = alices
    _, bobs_session, _ = await sync_to_async(make_user_with_model)(
        "bob", tiny_checkpoint
    )
    _, reply = await watching_tab(bobs_session.pk, alices_run, username="bob")
    assert reply["code"] == "unknown_model"
    assert f"model {alices_run} is not one of your complete models" == reply["message"]


async def test_a_model_for_another_channel_count_is_refused_clearly(alices):
    _, session, run_id = alices
    sixteen = {"sampling_rate_hz": 500.0, "channel_names": [f"c{i}" for i in range(16)]}
    await sync_to_async(RecordingSession.objects.filter(pk=session.pk).update)(
        device_info=sixteen
    )
    _, reply = await watching_tab(session.pk, run_id)
    assert reply["type"] == "error" and reply["code"] == "channel_mismatch"
    assert "8 channels" in reply["message"] and "16" in reply["message"]


async def test_a_nan_burst_holds_the_pose_and_the_worker_carries_on(alices):
    _, session, run_id = alices
    tab, _ = await watching_tab(session.pk, run_id)
    layer = get_channel_layer()

    async def inject(seq: int, emg: np.ndarray) -> None:
        chunk = {
            "session": session.pk,
            "first_time_s": 1_700_000_000.0 + seq * CHUNK_SAMPLES / 500,
            "num_channels": 8,
            "sampling_rate_hz": 500.0,
            "emg": emg.astype("<f4").tobytes(),
            "received_at_s": time.time(),
        }
        await layer.send(
            inference_channel(session.pk),
            {"type": "inference.batch", "chunks": [chunk]},
        )
        await asyncio.sleep(0.01)

    for seq in range(30):
        await inject(seq, make_samples(seq, CHUNK_SAMPLES).emg)
    for seq in range(30, 35):
        await inject(seq, np.full((CHUNK_SAMPLES, 8), np.nan, np.float32))
    for seq in range(35, 80):
        await inject(seq, make_samples(seq, CHUNK_SAMPLES).emg)
    statuses = [p["status"] for p in poses(await drain(tab, 1.5))]
    assert "held" in statuses, statuses
    after_burst = statuses[statuses.index("held") :]
    assert any(s != "held" for s in after_burst), "the pose never came back"


async def test_an_agent_disconnect_is_shown_on_the_page(alices):
    secret, session, run_id = alices
    tab, _ = await watching_tab(session.pk, run_id)
    agent = await connect_agent(secret)
    await say_hello(agent, [session.pk])
    await send_chunk(agent, session.pk, 0, n=CHUNK_SAMPLES)
    assert (await next_of(tab, {"agent"}))["state"] == "streaming"
    await agent.disconnect()
    assert (await next_of(tab, {"agent"}))["state"] == "disconnected"


async def test_camera_labels_reach_the_tabs(alices):
    _, session, run_id = alices
    tab, _ = await watching_tab(session.pk, run_id)
    joints = [float(i) for i in range(63)]
    await get_channel_layer().group_send(
        hand_session_group(session.pk), labels_event(1_700_000_000.5, joints)
    )
    labels = await next_of(tab, {"labels"})
    assert labels == {"type": "labels", "t": 1_700_000_000.5, "joints": joints}


async def test_a_smoothing_change_reaches_every_tab_of_the_model(alices):
    _, session, run_id = alices
    first, model = await watching_tab(session.pk, run_id)
    second, _ = await watching_tab(session.pk, run_id)
    assert model["smoothing"]["enabled"] is True
    change = {"enabled": False, "min_cutoff_hz": 2.0, "beta": 0.1}
    await first.send_json_to({"type": "smoothing", **change})
    for tab in (first, second):
        assert (await next_of(tab, {"smoothing"}))["smoothing"] == change


@pytest.mark.parametrize(
    "text, problem",
    [
        ("{not json", "not valid JSON"),
        ('{"type": "dance"}', "'dance' is not a message type"),
        ('{"type": "select", "run": "one"}', "select: run must be an integer"),
        (
            '{"type": "smoothing", "enabled": true, "min_cutoff_hz": 1, "beta": -1}',
            "smoothing: beta=-1 is out of range 0..100",
        ),
        ('{"type": "display", "rate_hz": 0}', "display: rate_hz=0 is out of range"),
    ],
)
async def test_a_bad_message_from_a_tab_is_named(alices, text, problem):
    _, session, run_id = alices
    tab, _ = await watching_tab(session.pk, run_id)
    await tab.send_to(text_data=text)
    error = await next_of(tab, {"error"})
    assert error["code"] == "bad_message" and problem in error["message"], error
