"""Replaying a stored session file as an EMG source."""

from __future__ import annotations

import time

import numpy as np
import pytest

from recorder.devices.base import DeviceError
from recorder.devices.registry import open_device
from recorder.devices.replay import ReplayDevice
from recorder.session_file import write_session
from tests.recorder.synthetic import make_emg_recording


@pytest.fixture
def session_path(tmp_path):
    recording = make_emg_recording(samples=300, drop_packets_at=(120,))
    write_session(tmp_path / "s.h5", recording)
    return tmp_path / "s.h5", recording


def read_until(device, samples: int, within_s: float = 3.0) -> list:
    chunks, got, deadline = [], 0, time.monotonic() + within_s
    while got < samples and time.monotonic() < deadline:
        chunk = device.read(timeout_s=0.2)
        chunks.append(chunk)
        got += len(chunk)
    return chunks


def joined(chunks, name):
    return np.concatenate([getattr(c, name) for c in chunks])


def test_it_yields_the_stored_samples_exactly(session_path):
    path, recording = session_path
    with ReplayDevice(path, realtime=False) as device:
        device.start()
        chunks = read_until(device, 300)
        assert len(device.read(timeout_s=0.01)) == 0  # played out
        device.stop()
    for name in ("emg", "package_num", "imu"):
        np.testing.assert_array_equal(joined(chunks, name), getattr(recording, name))
    np.testing.assert_array_equal(joined(chunks, "time"), recording.emg_time)
    assert device.dropped_packets == 1
    assert device.info.kind == "replay"
    assert device.info.channel_names == recording.attrs.channel_names


def test_without_realtime_it_reads_a_block_at_a_time(session_path):
    device = ReplayDevice(session_path[0], realtime=False, block_samples=50)
    device.start()
    assert [len(device.read()) for _ in range(7)] == [50] * 6 + [0]


def test_realtime_paces_at_the_recorded_rate(session_path):
    path, recording = session_path
    device = ReplayDevice(path, realtime=True)
    device.start()
    started = time.monotonic()
    chunks = read_until(device, 300)
    elapsed_s = time.monotonic() - started
    recorded_s = recording.emg_time[-1] - recording.emg_time[0]
    assert elapsed_s == pytest.approx(recorded_s, abs=0.1)
    assert len(chunks) > 5  # delivered gradually, not all at once
    np.testing.assert_array_equal(joined(chunks, "emg"), recording.emg)


def test_loop_starts_again_with_increasing_times(session_path):
    path, recording = session_path
    device = ReplayDevice(path, realtime=False, loop=True, block_samples=100)
    device.start()
    chunks = [device.read() for _ in range(6)]  # two laps
    times_s = joined(chunks, "time")
    np.testing.assert_array_equal(joined(chunks, "emg")[300:], recording.emg)
    assert (np.diff(times_s) > 0).all()
    assert device.dropped_packets == 2  # one per lap, none at the loop point


def test_the_registry_builds_it(session_path):
    device = open_device("replay", path=session_path[0], realtime=False)
    assert isinstance(device, ReplayDevice)


def test_a_missing_file_is_a_device_error(tmp_path):
    with pytest.raises(DeviceError, match="replay file not found"):
        ReplayDevice(tmp_path / "nope.h5")


def test_a_file_that_is_not_a_session_is_a_device_error(tmp_path):
    (tmp_path / "notes.h5").write_text("hello")
    with pytest.raises(DeviceError, match=r"cannot replay .*not a readable HDF5"):
        ReplayDevice(tmp_path / "notes.h5")
