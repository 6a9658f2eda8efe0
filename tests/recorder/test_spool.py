"""The agent's spool: surviving a crash, acknowledgements, and the device streamer."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest

from recorder.devices.base import DeviceInfo, EmgChunk, EmgSource
from recorder.devices.simulated import SimulatedArmband
from recorder.protocol import STREAM_EMG, decode_chunk, encode_chunk
from recorder.spool import Spool, SpoolSession
from recorder.streamer import DeviceStreamer


def make_samples(first_packet: int, n: int = 10, channels: int = 4) -> EmgChunk:
    packets = np.arange(first_packet, first_packet + n, dtype=np.int64)
    rng = np.random.default_rng(first_packet)
    return EmgChunk(
        emg=rng.normal(0, 30, (n, channels)).astype(np.float32),
        time=packets / 500.0,
        package_num=packets,
    )


def spool_chunks(
    session: SpoolSession, first_packets: list[int], n: int = 10
) -> list[bytes]:
    written = []
    for first in first_packets:
        frame = encode_chunk(session.session_id, STREAM_EMG, session.next_seq,
                             make_samples(first, n))  # fmt: skip
        session.add_chunk(frame, n, dropped_packets=0)
        written.append(frame)
    return written


def test_a_reopened_session_restores_its_progress_and_frames(tmp_path):
    spool = Spool(tmp_path)
    session = spool.open_session(7)
    written = spool_chunks(session, [0, 10, 20, 30])
    # the agent crashes: nothing but the files on disk survives
    reopened = Spool(tmp_path).open_session(7)
    assert reopened.next_seq == 4
    assert reopened.samples == 40
    assert reopened.pending == {0, 1, 2, 3}
    assert [reopened.frame(seq) for seq in range(4)] == written
    assert not reopened.stopped


def test_a_reopened_session_continues_its_sequence(tmp_path):
    spool_chunks(SpoolSession(tmp_path / "session-1", 1), [0, 10])
    reopened = SpoolSession(tmp_path / "session-1", 1)
    spool_chunks(reopened, [20])
    again = SpoolSession(tmp_path / "session-1", 1)
    assert again.next_seq == 3
    assert [decode_chunk(again.frame(seq)).seq for seq in range(3)] == [0, 1, 2]


def test_acknowledged_chunks_are_no_longer_pending(tmp_path):
    session = SpoolSession(tmp_path / "session-1", 1)
    spool_chunks(session, [0, 10, 20])
    session.acknowledge([0, 2, 99])  # an unknown seq is ignored
    assert session.pending == {1}
    with pytest.raises(KeyError):
        session.frame(0)


def test_a_reopened_spool_sends_everything_again_since_acks_live_in_memory(tmp_path):
    session = SpoolSession(tmp_path / "session-1", 1)
    spool_chunks(session, [0, 10, 20])
    session.acknowledge([0, 1, 2])
    assert session.pending == set()
    reopened = SpoolSession(tmp_path / "session-1", 1)
    assert reopened.pending == {0, 1, 2}


def test_a_torn_last_chunk_is_dropped_on_reopen(tmp_path):
    session = SpoolSession(tmp_path / "session-1", 1)
    spool_chunks(session, [0, 10, 20])
    size = session.log.path.stat().st_size
    with open(session.log.path, "r+b") as handle:
        handle.truncate(size - 5)
    reopened = SpoolSession(tmp_path / "session-1", 1)
    assert (reopened.next_seq, reopened.samples, reopened.pending) == (2, 20, {0, 1})


def test_mark_stopped_persists_status_and_reason(tmp_path):
    session = SpoolSession(tmp_path / "session-3", 3)
    spool_chunks(session, [0])
    session.mark_stopped("stopped by user")
    state = json.loads((tmp_path / "session-3" / "state.json").read_text())
    assert state["status"] == "stopped" and state["reason"] == "stopped by user"
    reopened = SpoolSession(tmp_path / "session-3", 3)
    assert reopened.stopped
    assert reopened.state["reason"] == "stopped by user"


def test_session_ids_lists_only_sessions_with_a_state_file(tmp_path):
    spool = Spool(tmp_path)
    spool.open_session(12)
    spool.open_session(3)
    (tmp_path / "session-5").mkdir()  # no state.json: not a session
    (tmp_path / "other").mkdir()
    (tmp_path / "session-x").mkdir()
    assert spool.session_ids() == [3, 12]


def test_a_deleted_session_is_no_longer_listed(tmp_path):
    spool = Spool(tmp_path)
    spool.open_session(4).delete()
    assert spool.session_ids() == []


def test_dropped_packets_are_counted_again_from_the_log_after_a_crash(tmp_path):
    session = SpoolSession(tmp_path / "session-1", 1)
    # packets 0..9, then 23..27 and 30..34: 13 lost between the chunks, 2 inside one
    spool_chunks(session, [0], n=10)
    gap_inside = make_samples(23)
    gap_inside.package_num[5:] += 2
    gap_inside.time[5:] += 2 / 500.0
    session.add_chunk(encode_chunk(1, STREAM_EMG, 1, gap_inside), 10, dropped_packets=0)
    # the agent dies before mark_stopped: only the log knows about the gaps
    reopened = SpoolSession(tmp_path / "session-1", 1)
    assert reopened.state["dropped_packets"] == 15  # 13 between chunks + 2 inside
    reopened.mark_stopped("agent restarted during the recording")
    stopped = SpoolSession(tmp_path / "session-1", 1)
    assert stopped.state["dropped_packets"] == 15


def test_a_stopped_session_keeps_the_count_it_was_stopped_with(tmp_path):
    session = SpoolSession(tmp_path / "session-1", 1)
    spool_chunks(session, [0])
    session.add_chunk(
        encode_chunk(1, STREAM_EMG, 1, make_samples(50)), 10, dropped_packets=4
    )
    session.mark_stopped("stopped by user")
    assert SpoolSession(tmp_path / "session-1", 1).state["dropped_packets"] == 4


# ---------------------------------------------------------------- the device streamer


def stream(device: EmgSource, session: SpoolSession) -> tuple[DeviceStreamer, list]:
    calls = []
    streamer = DeviceStreamer(
        device, session, on_chunk=lambda: calls.append(1), chunk_s=0.001
    )
    streamer.start()
    streamer.join(timeout=10)
    assert not streamer.is_alive()
    return streamer, calls


def test_a_finite_device_is_spooled_exactly(tmp_path):
    session = Spool(tmp_path).open_session(1)
    streamer, calls = stream(
        SimulatedArmband(seed=3, realtime=False, duration_s=1.0), session
    )
    assert streamer.error is None
    assert session.stopped and session.state["reason"] == "device finished"
    assert session.samples == 500
    assert len(calls) >= session.next_seq  # once per chunk, and once at the end
    chunks = [
        decode_chunk(session.frame(seq), expected_channels=8)
        for seq in range(session.next_seq)
    ]
    assert [c.seq for c in chunks] == list(range(session.next_seq))
    spooled = EmgChunk.concatenate([c.samples for c in chunks])

    reference = SimulatedArmband(seed=3, realtime=False, duration_s=1.0)
    reference.start()
    expected = EmgChunk.concatenate([reference.read() for _ in range(10)])
    assert len(reference.read()) == 0 and reference.exhausted
    np.testing.assert_array_equal(spooled.emg, expected.emg)
    np.testing.assert_array_equal(spooled.imu, expected.imu)
    np.testing.assert_array_equal(spooled.package_num, np.arange(500))
    # times are on each device's own start clock: compare them relative to the start
    np.testing.assert_allclose(
        spooled.time - spooled.time[0], expected.time - expected.time[0], atol=1e-9
    )
    # and the whole recording survives a crash of the agent
    assert SpoolSession(tmp_path / "session-1", 1).samples == 500


def test_a_stop_request_ends_the_recording_as_stopped_by_user(tmp_path):
    session = Spool(tmp_path).open_session(2)
    device = SimulatedArmband(seed=0, realtime=False)  # endless
    streamer = DeviceStreamer(device, session, on_chunk=lambda: None, chunk_s=0.001)
    streamer.start()
    streamer.stop_requested.set()
    streamer.join(timeout=10)
    assert not streamer.is_alive()
    assert session.state["reason"] == "stopped by user" and session.stopped


class FailingDevice(EmgSource):
    """Delivers one good read, then fails."""

    def __init__(self):
        self.info = DeviceInfo("simulated", 500.0, tuple(f"ch{i}" for i in range(4)))
        self.reads = 0
        self.released = threading.Event()

    def start(self):
        pass

    def stop(self):
        pass

    def release(self):
        self.released.set()

    def read(self, timeout_s=1.0):
        self.reads += 1
        if self.reads > 1:
            raise OSError("the armband went away")
        return make_samples(0, n=10)


def test_a_failing_device_ends_the_recording_and_keeps_what_was_spooled(tmp_path):
    session = Spool(tmp_path).open_session(9)
    device = FailingDevice()
    streamer, _ = stream(device, session)
    assert streamer.error == "device failed: the armband went away"
    assert session.state["reason"].startswith("device failed")
    assert session.stopped and device.released.is_set()
    assert session.samples == 10 and session.pending == {0}
    reopened = Spool(tmp_path).open_session(9)
    assert reopened.stopped and reopened.state["reason"].startswith("device failed")
