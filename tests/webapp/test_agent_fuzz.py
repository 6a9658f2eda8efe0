"""Fuzzing the agent protocol against the real ingest consumer (Channels'
WebsocketCommunicator, the real database and chunk store).

Hypothesis writes messages an agent might send by mistake or by malice: text that
is no JSON, JSON that is no message, messages of every type with fields missing,
of the wrong type, with huge or negative numbers or with another user's session,
random bytes, and real chunks truncated, extended, corrupted, re-headered,
out of order or carrying NaN. Every one must be answered (an error naming the
problem, or the protocol's answer to a harmless duplicate or ping), none may crash
the consumer, and the chunks and database rows stored before must be unchanged.
"""

from __future__ import annotations

import json
import math
import time
from collections import Counter
from dataclasses import dataclass

import numpy as np
import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.db import connections
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from recorder.chunk_log import ChunkLog
from recorder.devices.base import EmgChunk
from recorder.protocol import (
    HEADER,
    MAX_CHUNK_BYTES,
    MAX_TEXT_BYTES,
    STREAM_EMG,
    ChunkHeader,
    encode_chunk,
    encode_label_chunk,
    make_message,
)
from tests.recorder.camera_helpers import make_label_frames
from tests.webapp.ingest_helpers import (
    DEVICE,
    chunk_frame,
    connect_agent,
    make_recording,
    receive,
    say_hello,
)
from webapp.accounts.models import AgentToken
from webapp.asgi import application
from webapp.recordings.models import RecordingSession, SessionVideo

pytestmark = pytest.mark.django_db(transaction=True)

EXAMPLES = 100
MESSAGES_PER_EXAMPLE = 100  # on one connection: 10,000 messages in all
STORED_CHUNKS = 5  # EMG chunks 0..4 and label chunk 0 are stored before fuzzing
TEXT_ERRORS = frozenset({"bad_json", "bad_schema", "bad_version", "bad_type"})
CHUNK_ERRORS = frozenset(
    {"bad_chunk", "too_large", "bad_version", "bad_stream", "bad_channels",
     "bad_checksum", "bad_time", "not_finite", "bad_labels", "unknown_session",
     "session_closed", "seq_too_far_ahead"}
)  # fmt: skip
HUGE_INTS = [2**31, 2**53 + 1, 2**63 - 1, 2**63, 2**64 - 1, 2**64, 10**30]
NEGATIVE_INTS = [-1, -(2**31), -(2**63), -(2**64), -(10**30)]


@dataclass(frozen=True)
class Target:
    """The sessions the fuzzing agent's messages point at."""

    secret: str
    own: int  # being recorded by this agent: chunks 0..4 stored
    closed: int  # recorded by this agent, complete
    bobs: int  # being recorded by bob's agent
    missing: int  # no such session

    def others(self) -> list[int]:
        """Session ids this agent may not act on."""
        return [self.bobs, self.missing, 0, *HUGE_INTS, *NEGATIVE_INTS]


@dataclass(frozen=True)
class Message:
    payload: str | bytes
    # error codes that answer it, or the answer's type ("agent.pong", "chunk.ack")
    expect: frozenset[str] | str
    what: str  # the strategy that made it, for the report


# ---------------------------------------------------------------- text messages


def json_values():
    scalars = (
        st.none() | st.booleans() | st.integers() | st.text(max_size=20)
        | st.floats(allow_nan=False, allow_infinity=False)
    )  # fmt: skip
    return st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=8), inner, max_size=4),
        max_leaves=10,
    )


def garbage_text():
    texts = st.text(max_size=200).filter(lambda text: '"type"' not in text)
    return texts.map(lambda text: Message(text, TEXT_ERRORS, "garbage text"))


def random_json():
    values = json_values().filter(lambda v: not (isinstance(v, dict) and "type" in v))
    return values.map(lambda v: Message(json.dumps(v), TEXT_ERRORS, "random JSON"))


def oversized_text():
    return st.integers(MAX_TEXT_BYTES + 1, 3 * MAX_TEXT_BYTES).map(
        lambda n: Message("x" * n, frozenset({"too_large"}), "oversized text")
    )


def base_messages(target: Target) -> dict[str, tuple[dict, frozenset[str]]]:
    """A message of each type an agent sends, each one an error as it stands, and
    the codes it and any mutation of it may be answered with."""
    schema = frozenset({"bad_schema"})
    return {
        # a hello whose device has no channels
        "agent.hello": (
            {"agent_version": "x", "device": {**DEVICE, "channel_names": []},
             "sessions": []}, schema | {"bad_json"}),
        # recording.stopped before all its chunks are stored
        "recording.stopped": (
            {"session": target.own, "chunks": STORED_CHUNKS + 1, "samples": 1,
             "dropped_packets": 0, "reason": "x"}, schema | {"incomplete"}),
        "camera.status": (
            {"session": target.bobs, "state": "ok", "fps": 30, "latency_ms": 1,
             "message": ""}, schema | {"unknown_session"}),
        # a contact report with one name too many
        "device.contact_report": (
            {"session": target.own, "pairs": ["a", "b"], "resistance_kohm": [1],
             "message": ""}, schema | {"bad_contact_report", "unknown_session"}),
        "video.unavailable": (
            {"session": target.missing, "reason": "x"},
            schema | {"unknown_session"}),
    }  # fmt: skip


def wrong_values(types: tuple[type, ...]):
    candidates = [None, True, False, "1", [], {}, [1], {"a": 1}, 1.5, 7, -3]
    return [
        v
        for v in candidates
        if isinstance(v, bool) or not isinstance(v, types)  # bool is never valid
    ]


@st.composite
def mutated_message(draw, target: Target):
    from recorder.protocol import MESSAGE_FIELDS

    bases = base_messages(target)
    kind = draw(st.sampled_from(sorted(bases)))
    fields, codes = bases[kind]
    message = {"v": 1, "type": kind, **fields}
    how = draw(st.sampled_from(["drop", "retype", "number", "version", "extra"]))
    name = draw(st.sampled_from(sorted(MESSAGE_FIELDS[kind])))
    types = MESSAGE_FIELDS[kind][name]
    if how == "drop":
        del message[name]
    elif how == "retype":
        message[name] = draw(st.sampled_from(wrong_values(types)))
    elif how == "number" and int in types:
        message[name] = draw(st.sampled_from(HUGE_INTS + NEGATIVE_INTS))
    elif how == "number" and float in types:
        message[name] = draw(st.sampled_from([math.nan, math.inf, -math.inf, 1e308]))
    elif how == "version":
        message["v"] = draw(st.sampled_from([0, 2, True, "1", None, [1], 10**30]))
        codes = frozenset({"bad_version"})
    else:  # an unknown field changes nothing: the message stays an error
        extra = draw(st.text(min_size=1, max_size=8).filter(lambda k: k not in message))
        message[extra] = draw(json_values())
    # NaN and infinities are no JSON; a session number may name no session of ours
    codes = codes | {"bad_json", "unknown_session"}
    return Message(json.dumps(message), codes, f"{kind}: {how} {name}")


@st.composite
def wrong_session(draw, target: Target):
    """A message that would be fine, about a session this agent may not touch."""
    session = draw(st.sampled_from(target.others()))
    kind = draw(st.sampled_from(["camera", "contact", "video", "stopped"]))
    if kind == "camera":
        text = make_message("camera.status", session=session, state="ok", fps=30,
                            latency_ms=5, message="")  # fmt: skip
    elif kind == "contact":
        text = make_message("device.contact_report", session=session, pairs=["a"],
                            resistance_kohm=[10.0], message="")  # fmt: skip
    elif kind == "video":
        text = make_message("video.unavailable", session=session, reason="none")
    else:
        text = make_message("recording.stopped", session=session, chunks=0,
                            samples=0, dropped_packets=0, reason="done")  # fmt: skip
    return Message(text, frozenset({"unknown_session"}), f"{kind} of session {session}")


@st.composite
def bad_stop_counts(draw, target: Target):
    """A stop report for our own session, all its chunks stored, with a count no
    recording can have: it must not close the session."""
    counts = {"chunks": draw(st.integers(0, STORED_CHUNKS)), "samples": 250,
              "dropped_packets": 0, "label_chunks": 1}  # fmt: skip
    name = draw(st.sampled_from(sorted(counts)))
    counts[name] = draw(st.sampled_from(NEGATIVE_INTS + HUGE_INTS[3:]))
    text = json.dumps(
        {"v": 1, "type": "recording.stopped", "session": target.own, "reason": "x",
         **counts}
    )  # fmt: skip
    return Message(text, frozenset({"bad_schema"}), f"stopped: bad {name}")


@st.composite
def bad_hello(draw):
    """A hello with a device the server cannot store, or a garbled session list."""
    device = dict(DEVICE)
    field = draw(st.sampled_from(["names", "rate", "extra", "line", "sessions"]))
    sessions = [{"session": 1, "status": "recording"}]
    if field == "names":
        device["channel_names"] = draw(
            st.sampled_from([[], "ch1", None, [f"c{i}" for i in range(65)], 8])
        )
    elif field == "rate":
        device["sampling_rate_hz"] = draw(
            st.sampled_from([0, -500, 1e9, True, "500", None, [500]])
        )
    elif field == "extra":
        device["extra"] = draw(st.sampled_from([[], "x", 5, None]))
    elif field == "line":
        device["extra"] = {"line_frequency_hz": draw(
            st.sampled_from(["50", [50], -50, 0, 1e9, True, None]))}  # fmt: skip
    else:
        sessions = draw(st.sampled_from(
            [[{"session": [1]}], [{"session": {}}], ["1"], [None], [{"status": "x"}],
             [{"session": True}], [{"session": "1"}]]))  # fmt: skip
    text = json.dumps(
        {"v": 1, "type": "agent.hello", "agent_version": "x", "device": device,
         "sessions": sessions}
    )  # fmt: skip
    return Message(text, frozenset({"bad_schema"}), f"hello: bad {field}")


def server_only_type():
    kinds = st.sampled_from(
        ["chunk.ack", "agent.welcome", "recording.start", "error", "agent.pong",
         "x.y", "", "agent.hello.extra"]
    )  # fmt: skip
    return kinds.map(
        lambda kind: Message(
            json.dumps({"v": 1, "type": kind}),
            frozenset({"bad_type", "bad_schema"}),
            f"type {kind}",
        )
    )


def ping():
    return st.just(Message(make_message("agent.ping"), "agent.pong", "ping"))


# ---------------------------------------------------------------- binary chunks


def random_bytes():
    return st.binary(max_size=400).map(
        lambda b: Message(b, CHUNK_ERRORS, "random bytes")
    )


@st.composite
def truncated_or_extended(draw, target: Target):
    seq = draw(st.integers(0, 2 * STORED_CHUNKS))
    frame = chunk_frame(target.own, seq, n=draw(st.integers(1, 20)))
    if draw(st.booleans()):
        cut = draw(st.integers(0, len(frame) - 1))
        return Message(frame[:cut], frozenset({"bad_chunk"}), "truncated chunk")
    extra = draw(st.binary(min_size=1, max_size=64))
    return Message(frame + extra, frozenset({"bad_chunk"}), "extended chunk")


@st.composite
def corrupted_payload(draw, target: Target):
    frame = bytearray(chunk_frame(target.own, draw(st.integers(0, 20)), n=10))
    at = draw(st.integers(HEADER.size, len(frame) - 1))
    frame[at] ^= draw(st.integers(1, 255))
    return Message(bytes(frame), frozenset({"bad_checksum"}), "corrupted payload")


def reheader(frame: bytes, **fields) -> bytes:
    header = ChunkHeader._make(HEADER.unpack_from(frame))._replace(**fields)
    return HEADER.pack(*header) + frame[HEADER.size :]


@st.composite
def bad_header(draw, target: Target):
    """A real chunk with one header field wrong."""
    frame = chunk_frame(target.own, draw(st.integers(0, 20)), n=10)
    field = draw(st.sampled_from(
        ["magic", "version", "stream_id", "channels", "n", "first_time_s", "seq",
         "session_id", "closed"]))  # fmt: skip
    if field == "magic":
        value, codes = draw(st.binary(min_size=4, max_size=4)), {"bad_chunk"}
        if value == b"EMGC":
            value = b"EMGX"
    elif field == "version":
        value, codes = draw(st.sampled_from([0, 2, 255])), {"bad_version"}
    elif field == "stream_id":
        value, codes = draw(st.integers(2, 255)), {"bad_stream"}
    elif field == "channels":
        value, codes = (
            draw(st.sampled_from([0, 1, 7, 9, 64, 65, 255])),
            {"bad_channels"},
        )
    elif field == "n":
        value = draw(st.sampled_from([0, 9, 11, 5000, 5001, 2**32 - 1]))
        codes = {"bad_chunk"}
    elif field == "first_time_s":
        value = draw(st.sampled_from([0.0, -1.0, 1e300, math.nan, math.inf]))
        codes = {"bad_time"}
    elif field == "seq":  # far ahead of what is stored: out of the window
        value = draw(st.sampled_from([1024 + STORED_CHUNKS, 10**9, 2**63, 2**64 - 1]))
        codes = {"seq_too_far_ahead"}
    elif field == "session_id":
        value = draw(st.sampled_from(
            [s for s in target.others() if 0 <= s < 2**64]))  # fmt: skip
        codes = {"unknown_session"}
    else:
        field, value, codes = "session_id", target.closed, {"session_closed"}
    return Message(reheader(frame, **{field: value}), frozenset(codes), f"{field}")


@st.composite
def bad_samples(draw, target: Target):
    """A chunk whose checksum is right but whose samples are not."""
    seq = draw(st.integers(STORED_CHUNKS, STORED_CHUNKS + 20))
    n = draw(st.integers(2, 20))
    index = np.arange(seq * n, (seq + 1) * n)
    emg = np.zeros((n, 8), np.float32)
    times = 1_700_000_000.0 + index / 500.0
    flaw = draw(st.sampled_from(["nan", "inf", "imu", "time", "backwards"]))
    imu = np.zeros((n, 6), np.float32)
    codes = {"not_finite"}
    if flaw == "nan":
        emg[draw(st.integers(0, n - 1)), draw(st.integers(0, 7))] = np.nan
    elif flaw == "inf":
        emg[draw(st.integers(0, n - 1)), 0] = -np.inf
    elif flaw == "imu":
        imu[0, 0] = np.nan
    elif flaw == "time":
        times[-1] = np.nan
        codes = {"bad_time"}
    else:
        times = times[::-1].copy()
        codes = {"bad_time"}
    samples = EmgChunk(emg=emg, time=times, package_num=index, imu=imu)
    frame = encode_chunk(target.own, STREAM_EMG, seq, samples)
    return Message(frame, frozenset(codes), f"samples: {flaw}")


@st.composite
def bad_labels(draw, target: Target):
    seq = draw(st.integers(1, 10))
    frames = make_label_frames(6, 1_700_000_000.0 + seq)
    flaw = draw(st.sampled_from(["valid_without_joints", "inf", "far", "joints"]))
    codes = {"bad_labels"}
    if flaw == "valid_without_joints":
        frames.label_valid[1] = True  # frame 1 has no hand
    elif flaw == "inf":
        frames.pose[0, 0] = np.inf
        codes = {"not_finite"}
    elif flaw == "far":
        seq, codes = 5000, {"seq_too_far_ahead"}
    frame = encode_label_chunk(target.own, seq, frames)
    if flaw == "joints":
        frame, codes = reheader(frame, channels=20), {"bad_chunk"}
    return Message(frame, frozenset(codes), f"labels: {flaw}")


@st.composite
def duplicate(draw, target: Target):
    """A stored chunk again, exactly or with other samples: acknowledged, and the
    first copy is kept."""
    seq = draw(st.integers(0, STORED_CHUNKS - 1))
    n = draw(st.sampled_from([50, 10]))  # 50: the stored copy; 10: another one
    return Message(chunk_frame(target.own, seq, n=n), "chunk.ack", "duplicate")


def oversized_chunk():
    return st.integers(MAX_CHUNK_BYTES + 1, MAX_CHUNK_BYTES + 4096).map(
        lambda n: Message(b"EMGC" + bytes(n - 4), frozenset({"too_large"}), "huge")
    )


def any_message(target: Target):
    return st.one_of(
        garbage_text(), random_json(), oversized_text(), mutated_message(target),
        wrong_session(target), bad_stop_counts(target), bad_hello(),
        server_only_type(), ping(),
        random_bytes(), truncated_or_extended(target), corrupted_payload(target),
        bad_header(target), bad_samples(target), bad_labels(target),
        duplicate(target), oversized_chunk(),
    )  # fmt: skip


# ---------------------------------------------------------------- the run


async def exchange(target: Target, messages: list[Message], answered: Counter):
    """One agent connection: hello, then every message, each answered in turn."""
    headers = [(b"authorization", f"Token {target.secret}".encode())]
    agent = WebsocketCommunicator(application, "/ws/agent/", headers=headers)
    connected, _ = await agent.connect()
    assert connected
    try:
        await agent.send_to(
            text_data=make_message(
                "agent.hello", agent_version="fuzz", device=DEVICE,
                sessions=[{"session": target.own, "status": "recording"}],
            )
        )  # fmt: skip
        assert json.loads(await agent.receive_from(5))["type"] == "agent.welcome"
        for message in messages:
            await send(agent, message.payload)
            reply = json.loads(await agent.receive_from(10))
            check_reply(message, reply)
            answered[reply.get("code", reply["type"])] += 1
        assert await agent.receive_nothing(timeout=0.01)
    finally:
        await agent.disconnect()


async def send(agent: WebsocketCommunicator, payload: str | bytes) -> None:
    # as daphne passes it on; send_to() refuses the empty messages a socket can send
    key = "bytes" if isinstance(payload, bytes) else "text"
    await agent.send_input({"type": "websocket.receive", key: payload})


def check_reply(message: Message, reply: dict) -> None:
    if isinstance(message.expect, str):
        assert reply["type"] == message.expect, (message.what, reply)
        return
    assert reply["type"] == "error", (message.what, reply)
    assert reply["code"] in message.expect, (message.what, reply)
    assert reply["message"], (message.what, reply)


def prepare() -> Target:
    """Alice's agent records a session with chunks 0..4 and label chunk 0 stored."""
    secret, own = make_recording("alice")
    _, bobs = make_recording("bob")
    closed = RecordingSession.objects.create(
        owner=own.owner, subject=own.subject, agent=own.agent, status="complete"
    )
    target = Target(secret, own.pk, closed.pk, bobs.pk, own.pk + 10**6)
    async_to_sync(store_first_chunks)(target)
    return target


async def store_first_chunks(target: Target) -> None:
    good = [chunk_frame(target.own, seq) for seq in range(STORED_CHUNKS)]
    good.append(encode_label_chunk(target.own, 0, make_label_frames(6)))
    messages = [Message(frame, "chunk.ack", "good chunk") for frame in good]
    await exchange(target, messages, Counter())


def stored_state(target: Target) -> dict:
    chunk_dir = settings.CHUNK_STORE_DIR / f"session-{target.own}"
    return {
        "chunks": [record.frame for record in ChunkLog(chunk_dir).records()],
        "folders": sorted(p.name for p in settings.CHUNK_STORE_DIR.iterdir()),
        "sessions": list(RecordingSession.objects.order_by("pk").values()),
        "tokens": list(AgentToken.objects.order_by("pk").values("pk", "revoked_at")),
        "videos": list(SessionVideo.objects.values()),
    }


def restore_sessions(state: dict) -> None:
    for row in state["sessions"]:
        RecordingSession.objects.filter(pk=row["id"]).update(**row)


def test_no_generated_message_crashes_ingest_or_changes_stored_data(ingest_storage):
    target = prepare()
    before = stored_state(target)
    assert len(before["chunks"]) == STORED_CHUNKS + 1
    answered = Counter()
    started_s = time.monotonic()

    @hypothesis_settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(
        st.lists(
            any_message(target),
            min_size=MESSAGES_PER_EXAMPLE,
            max_size=MESSAGES_PER_EXAMPLE,
        )
    )
    def one_connection(messages):
        try:
            async_to_sync(exchange)(target, messages, answered)
            assert stored_state(target) == before, "a message changed stored data"
        finally:  # the next example starts from the same state
            restore_sessions(before)

    try:
        one_connection()
    finally:
        async_to_sync(get_channel_layer().flush)()
        connections.close_all()
    elapsed_s = time.monotonic() - started_s
    assert stored_state(target) == before
    sent = sum(answered.values())
    print(
        json.dumps(
            {"messages": sent, "seconds": round(elapsed_s, 1),
             "answers": dict(answered.most_common())}
        )
    )  # fmt: skip
    assert sent >= EXAMPLES * MESSAGES_PER_EXAMPLE


# ------------------------------------------------- what the fuzzing found, one by one


@pytest.fixture
def recording(ingest_storage):
    return sync_to_async(make_recording)("alice")


def hello(device: dict | None = None, sessions: list | None = None) -> str:
    return json.dumps(
        {"v": 1, "type": "agent.hello", "agent_version": "x",
         "device": device or DEVICE, "sessions": sessions or []}
    )  # fmt: skip


@pytest.mark.usefixtures("close_communicators")
@pytest.mark.parametrize(
    "device,sessions,problem",
    [
        ({**DEVICE, "extra": []}, [], "device.extra must be an object"),
        ({**DEVICE, "extra": {"line_frequency_hz": "50"}}, [], "line_frequency_hz"),
        (DEVICE, [{"session": [1]}], "integer 'session'"),
        (DEVICE, ["1"], "integer 'session'"),
    ],
)
async def test_a_hello_with_a_garbled_device_or_session_list_is_refused(
    recording, device, sessions, problem
):
    secret, _ = await recording
    agent = await connect_agent(secret)
    await agent.send_to(text_data=hello(device, sessions))
    error = await receive(agent)
    assert error["code"] == "bad_schema" and problem in error["message"]
    await agent.send_to(text_data=make_message("agent.ping"))  # still not welcomed
    assert (await receive(agent))["code"] == "hello_first"


@pytest.mark.usefixtures("close_communicators")
@pytest.mark.parametrize("session_id", [0, -1, 2**63, 2**64 - 1])
async def test_a_session_id_beyond_the_database_names_no_session(recording, session_id):
    secret, session = await recording
    agent = await connect_agent(secret)
    await say_hello(agent, [session.pk])
    if session_id >= 0:
        await agent.send_to(bytes_data=chunk_frame(session_id, 0))
        assert (await receive(agent))["code"] == "unknown_session"
    await agent.send_to(
        text_data=make_message("video.unavailable", session=session_id, reason="x")
    )
    error = await receive(agent)
    assert error["code"] == "unknown_session" and str(session_id) in error["message"]


@pytest.mark.usefixtures("close_communicators")
@pytest.mark.parametrize(
    "name,value", [("dropped_packets", -1), ("samples", -5), ("chunks", -1),
                   ("dropped_packets", 2**31), ("label_chunks", 2**40)]
)  # fmt: skip
async def test_a_stop_report_with_an_impossible_count_leaves_the_session_recording(
    recording, name, value
):
    secret, session = await recording
    agent = await connect_agent(secret)
    await say_hello(agent, [session.pk])
    report = {"session": session.pk, "chunks": 0, "samples": 0, "dropped_packets": 0,
              "reason": "done", name: value}  # fmt: skip
    await agent.send_to(text_data=make_message("recording.stopped", **report))
    error = await receive(agent)
    assert error["code"] == "bad_schema" and f"{name} {value}" in error["message"]
    await session.arefresh_from_db()
    assert session.status == "recording"
