"""The inference worker's bookkeeping and the tab's drop-stale throttle, without
Channels: a stand-in predictor records what it is fed."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest

from inference import InferenceInputError, PoseFrame
from webapp.live.predictors import LATE_AFTER_S, SHED_AFTER_S, PredictorRoom
from webapp.live.throttle import LatestOnly

RATE_HZ = 500.0
T0 = 1_700_000_000.0


class RecordingPredictor:
    """Emits one pose per push, at the push's last sample; remembers every push."""

    model_name, num_channels, sampling_rate_hz = "stand-in", 8, RATE_HZ

    def __init__(self):
        self.pushes: list[tuple[int, float]] = []  # (samples, first time)
        self.resets = 0

    def push(self, emg_uv, first_time_s):
        self.pushes.append((len(emg_uv), first_time_s))
        last_s = first_time_s + (len(emg_uv) - 1) / RATE_HZ
        return [PoseFrame(last_s, np.zeros((21, 3), np.float32), "ok", 1.0)]

    def reset(self):
        self.resets += 1

    def set_smoothing(self, config):
        pass

    def check_channels(self, num_channels):
        if num_channels != self.num_channels:
            raise InferenceInputError(
                f"model stand-in expects 8 channels, the stream has {num_channels}"
            )


@pytest.fixture
def room():
    predictor = RecordingPredictor()
    room = PredictorRoom(load=lambda *args, **kwargs: predictor)
    room.watch({"session": 1, "run": 7, "checkpoint": "x.pt", "reply_to": None})
    room.predictor = predictor
    return room


def samples(first_index: int, n: int = 20, channels: int = 8, late_s: float = 0.0):
    emg = np.zeros((n, channels), np.float32)
    return {
        "session": 1,
        "first_time_s": T0 + first_index / RATE_HZ,
        "num_channels": channels,
        "sampling_rate_hz": RATE_HZ,
        "emg": emg.tobytes(),
        "received_at_s": time.time() - late_s,
    }


def test_it_sends_the_newest_pose_to_the_models_tabs(room):
    [(kind, group, event)] = room.push(samples(0))
    assert (kind, group, event["type"]) == ("group", "session.1.hand.7", "hand.pose")
    assert event["t"] == pytest.approx(T0 + 19 / RATE_HZ)


def test_resent_samples_are_not_fed_twice(room):
    room.push(samples(0))
    room.push(samples(10))  # overlaps the first chunk by 10 samples
    assert room.predictor.pushes == [(20, T0), (10, pytest.approx(T0 + 20 / RATE_HZ))]
    assert room.push(samples(0)) == []  # a whole chunk again: nothing new


def test_a_gap_in_the_samples_starts_the_filters_afresh(room):
    room.push(samples(0))
    resets = room.predictor.resets
    room.push(samples(20 + int(RATE_HZ)))  # a second later
    assert room.predictor.resets == resets + 1


def test_a_worker_behind_feeds_every_sample_but_sends_only_now_and_then(room):
    room.push(samples(0))  # sent: fresh
    late = [room.push(samples(20 * k, late_s=2 * LATE_AFTER_S)) for k in range(1, 6)]
    assert len(room.predictor.pushes) == 6, "every late sample still feeds the model"
    assert sum(len(out) for out in late) == 0, "late poses right after a pose are stale"


def test_a_worker_far_behind_sheds_samples_and_restarts_on_fresh_ones(room):
    room.push(samples(0))
    assert room.push(samples(20, late_s=2 * SHED_AFTER_S)) == []
    assert len(room.predictor.pushes) == 1, "samples that old are not fed"
    resets = room.predictor.resets
    assert room.push(samples(20 + int(RATE_HZ)))  # fresh again: a pose, new filters
    assert room.predictor.resets == resets + 1


def test_another_channel_count_in_the_stream_is_refused_once(room):
    [(_, _, error)] = room.push(samples(0, channels=4))
    assert error["code"] == "channel_mismatch"
    assert "expects 8 channels, the stream has 4" in error["message"]
    assert room.push(samples(20, channels=4)) == []
    assert room.predictor.pushes == []


def test_another_sampling_rate_is_refused(room):
    message = samples(0) | {"sampling_rate_hz": 250.0}
    [(_, _, error)] = room.push(message)
    assert error["code"] == "rate_mismatch"
    assert (
        "trained on EMG at 500 Hz but this armband samples at 250 Hz"
        in (error["message"])
    )


def test_an_unloadable_checkpoint_is_reported_to_the_tab(tmp_path):
    room = PredictorRoom()
    broken = tmp_path / "final.pt"
    broken.write_bytes(b"not a checkpoint")
    [(kind, reply_to, error)] = room.watch(
        {"session": 1, "run": 7, "checkpoint": str(broken), "reply_to": "tab.1"}
    )
    assert (kind, reply_to, error["code"]) == ("channel", "tab.1", "model_failed")
    assert "cannot be loaded" in error["message"]


def test_unwatched_predictors_are_forgotten(room):
    room.clock = lambda: time.monotonic() + 60
    room.expire()
    assert room.watched == {}


async def test_a_slow_tab_gets_the_newest_pose_not_a_backlog():
    sent = []

    async def send(message):
        sent.append(message["n"])

    throttle = LatestOnly(send, interval_s=0.05)
    for n in range(10):
        await throttle.offer({"n": n})
    await asyncio.sleep(0.1)
    assert sent == [0, 9]
    assert throttle.replaced == 8


def test_chunks_skipped_for_a_full_channel_are_reported_once_per_interval(caplog):
    from webapp.live.groups import SkippedChunks

    skipped = SkippedChunks(log_interval_s=60.0)
    for session_id in range(500):
        skipped.count(session_id)
    reports = [r for r in caplog.records if "chunks skipped" in r.getMessage()]
    assert len(reports) == 1 and skipped.skipped == 499


async def test_chunks_for_a_worker_leave_together_in_one_message_per_channel():
    from channels.layers import InMemoryChannelLayer

    from webapp.live.groups import FORWARD_BATCH_S, SampleForwarder

    layer = InMemoryChannelLayer()
    forwarder = SampleForwarder(layer)
    for session in (1, 3, 1, 2):
        forwarder.add(f"inference-{session % 2}", {"session": session})
    await asyncio.sleep(3 * FORWARD_BATCH_S)
    odd = await asyncio.wait_for(layer.receive("inference-1"), 1)
    even = await asyncio.wait_for(layer.receive("inference-0"), 1)
    assert odd == {
        "type": "inference.batch",
        "chunks": [{"session": 1}, {"session": 3}, {"session": 1}],
    }
    assert even["chunks"] == [{"session": 2}]


async def test_chunks_that_arrive_while_a_batch_is_sent_are_not_left_behind():
    from channels.layers import InMemoryChannelLayer

    from webapp.live.groups import FORWARD_BATCH_S, SampleForwarder

    layer = InMemoryChannelLayer()
    forwarder = SampleForwarder(layer)
    send = layer.send

    async def slow_send(channel, message):
        forwarder.add("inference-0", {"session": 2})  # arrives meanwhile
        layer.send = send
        await send(channel, message)

    layer.send = slow_send
    forwarder.add("inference-0", {"session": 1})
    await asyncio.sleep(3 * FORWARD_BATCH_S)
    first = await asyncio.wait_for(layer.receive("inference-0"), 1)
    second = await asyncio.wait_for(layer.receive("inference-0"), 1)
    assert [first["chunks"], second["chunks"]] == [[{"session": 1}], [{"session": 2}]]


def test_a_batch_feeds_every_chunk_in_order(room):
    outgoing = room.push_batch({"chunks": [samples(0), samples(20), samples(40)]})
    assert [n for n, _ in room.predictor.pushes] == [20, 20, 20]
    assert len(outgoing) == 3 and all(kind == "group" for kind, *_ in outgoing)
