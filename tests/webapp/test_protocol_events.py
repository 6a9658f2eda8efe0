"""Protocol events from the recording page: timed on the EMG's clock, stored once,
refused with a reason, and written into the session file in order."""

from __future__ import annotations

import json

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import User

from recorder.protocol import make_message
from recorder.session_file import read_session
from tests.webapp.ingest_helpers import (
    OPEN_COMMUNICATORS,
    connect_agent,
    make_recording,
    receive,
    say_hello,
    send_chunk,
)
from webapp.asgi import application
from webapp.protocols.clock import AgentClock, newest_sample_time
from webapp.protocols.models import ProtocolEvent
from webapp.recordings.models import RecordingSession

SAMPLE_RATE_HZ = 500.0


# ---------------------------------------------------------------- the clock


def test_the_clock_uses_the_fastest_update_in_its_window():
    clock = AgentClock(window_s=10)
    clock.observe(agent_s=1000.0, server_s=50.30)  # 0.30 s on the way
    clock.observe(agent_s=1000.1, server_s=50.15)  # 0.05 s: the fastest
    clock.observe(agent_s=1000.2, server_s=50.40)
    assert clock.agent_time(51.0) == pytest.approx(1000.95)


def test_the_clock_forgets_updates_older_than_its_window():
    clock = AgentClock(window_s=10)
    clock.observe(agent_s=1000.0, server_s=50.0)  # offset 950 s
    clock.observe(agent_s=900.0, server_s=70.0)  # the agent restarted its clock
    assert clock.agent_time(70.0) == pytest.approx(900.0)


def test_the_clock_needs_emg_before_it_can_say_anything():
    with pytest.raises(ValueError, match="no EMG has been seen"):
        AgentClock().agent_time(1.0)


def test_the_newest_sample_of_a_live_update():
    update = {"t0": 100.0, "dt": 0.004, "emg": [[0.0] * 25] * 8}
    assert newest_sample_time(update) == pytest.approx(100.096)


# ---------------------------------------------------------------- over the socket

pytestmark_db = pytest.mark.django_db(transaction=True)


async def open_tab(session: RecordingSession, username: str) -> WebsocketCommunicator:
    tab = WebsocketCommunicator(
        application,
        f"/ws/sessions/{session.pk}/live/",
        headers=[(b"origin", b"http://127.0.0.1")],
    )
    OPEN_COMMUNICATORS.append(tab)
    tab.scope["user"] = await sync_to_async(User.objects.get)(username=username)
    connected, _ = await tab.connect()
    assert connected
    return tab


async def next_of_type(tab, kind: str, timeout_s: float = 5) -> dict:
    while True:
        message = json.loads(await tab.receive_from(timeout=timeout_s))
        if message["type"] == kind:
            return message


def event(event_id: str, kind: str, name: str = "fist", **fields) -> str:
    message = {"type": "protocol.event", "event_id": event_id, "kind": kind}
    return json.dumps({**message, "name": name, "detail": {"step": 1}, **fields})


async def stream_until_watched(agent, tab, session_id: int) -> tuple[int, dict]:
    """Send chunks until the tab gets live EMG; returns (chunks sent, the update)."""
    for seq in range(50):
        await send_chunk(agent, session_id, seq)
        if not await tab.receive_nothing(timeout=0.1):
            return seq + 1, await next_of_type(tab, "live.emg")
    raise AssertionError("no live EMG reached the tab")


@pytestmark_db
async def test_events_are_timed_on_the_emg_clock_and_land_in_the_file(
    ingest_storage, close_communicators
):
    secret, session = await sync_to_async(make_recording)("alice", "calibration", None)
    tab = await open_tab(session, "alice")
    await tab.send_to(text_data=event("run-1", "protocol.start", "calibration"))
    refused = await next_of_type(tab, "protocol.error")
    assert refused["code"] == "clock_not_ready" and refused["event_id"] == "run-1"

    agent = await connect_agent(secret)
    await say_hello(agent, [session.pk])
    chunks, update = await stream_until_watched(agent, tab, session.pk)
    newest_s = newest_sample_time(update)
    kinds = ["protocol.start", "step.start", "step.end", "protocol.end"]
    times = []
    for i, kind in enumerate(kinds):
        await tab.send_to(text_data=event(f"run-{i + 1}", kind))
        ack = await next_of_type(tab, "protocol.ack")
        assert ack["event_id"] == f"run-{i + 1}"
        times.append(ack["time_s"])
    # on the agent's clock: just after the newest sample the tab has seen
    assert newest_s <= times[0] < newest_s + 1.0
    assert times == sorted(times)

    # a resend after a lost ack is stored once, with its first time
    await tab.send_to(text_data=event("run-2", "step.start", age_ms=500))
    assert (await next_of_type(tab, "protocol.ack"))["time_s"] == times[1]
    assert await sync_to_async(ProtocolEvent.objects.count)() == 4

    # the test stream's clock does not run in real time: 2 s more of it, so that
    # the events lie inside the recording as they do with a real agent
    for seq in range(chunks, chunks + 20):
        await send_chunk(agent, session.pk, seq)
    chunks += 20
    await agent.send_to(
        text_data=make_message(
            "recording.stopped",
            session=session.pk,
            chunks=chunks,
            samples=chunks * 50,
            dropped_packets=0,
            reason="stopped by user",
        )
    )
    assert (await receive(agent))["type"] == "recording.closed"
    stored = await sync_to_async(RecordingSession.objects.get)()
    recording = read_session(ingest_storage / "media" / stored.file.name)
    file_kinds = [e.kind for e in recording.events]
    assert file_kinds == ["recording", *kinds, "recording"]
    assert [e.time_s for e in recording.events[1:-1]] == times
    assert recording.events[2].detail == {"step": 1}
    assert recording.emg_time[0] <= times[0] and times[-1] <= recording.emg_time[-1]


@pytestmark_db
@pytest.mark.parametrize(
    "message, code",
    [
        ("not json", "bad_json"),
        (json.dumps({"type": "live.emg"}), "bad_type"),
        (event("e1", "step.wave"), "bad_kind"),
        (event("", "step.start"), "bad_event_id"),
        (event("e1", "step.start", detail=[1, 2]), "bad_detail"),
        (event("e1", "step.start", age_ms=-5), "bad_age"),
    ],
)
async def test_a_bad_event_is_refused_with_a_reason(
    message, code, ingest_storage, close_communicators
):
    _, session = await sync_to_async(make_recording)("alice", "calibration", None)
    tab = await open_tab(session, "alice")
    await tab.send_to(text_data=message)
    refused = await next_of_type(tab, "protocol.error")
    assert refused["code"] == code and refused["message"]


@pytestmark_db
async def test_a_closed_session_takes_no_more_events(
    ingest_storage, close_communicators
):
    secret, session = await sync_to_async(make_recording)("alice", "calibration", None)
    tab = await open_tab(session, "alice")
    agent = await connect_agent(secret)
    await say_hello(agent, [session.pk])
    await stream_until_watched(agent, tab, session.pk)
    await sync_to_async(RecordingSession.objects.update)(status="assembling")
    await tab.send_to(text_data=event("late", "step.end"))
    refused = await next_of_type(tab, "protocol.error")
    assert refused["code"] == "session_closed" and "assembling" in refused["message"]
    assert not await sync_to_async(ProtocolEvent.objects.exists)()
