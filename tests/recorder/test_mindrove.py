"""The MindRove adapter over the real SDK's playback board (no armband needed).

The playback board replays in real time, so the generated file is 1 s long.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

mindrove = pytest.importorskip("mindrove")
from mindrove.board_shim import BoardIds, BoardShim  # noqa: E402
from mindrove.data_filter import DataFilter  # noqa: E402

from recorder.devices.base import DeviceError  # noqa: E402
from recorder.devices.mindrove import MindRoveArmband  # noqa: E402

ARMBAND = BoardIds.MINDROVE_WIFI_BOARD.value
SAMPLES = 500  # 1 s at 500 Hz
MISSING_AFTER = 200  # the packet after this sample is lost


def board_matrix() -> np.ndarray:
    """A (39, SAMPLES) armband data matrix with recognisable values on every row."""
    rows = BoardShim.get_num_rows(ARMBAND)
    board_data = np.full((rows, SAMPLES), -999.0)  # rows the adapter must not use
    sample = np.arange(SAMPLES)
    for channel, row in enumerate(BoardShim.get_emg_channels(ARMBAND)):
        board_data[row] = 100.0 * (channel + 1) + 0.25 * sample
    for axis, row in enumerate(BoardShim.get_accel_channels(ARMBAND)):
        board_data[row] = 0.5 + axis
    for axis, row in enumerate(BoardShim.get_gyro_channels(ARMBAND)):
        board_data[row] = 10.0 + axis
    packet = sample + 7
    packet[MISSING_AFTER + 1 :] += 1
    board_data[BoardShim.get_package_num_channel(ARMBAND)] = packet
    board_data[BoardShim.get_timestamp_channel(ARMBAND)] = 1.7e9 + packet / 500.0
    return board_data


@pytest.fixture
def playback_file(tmp_path):
    board_data = board_matrix()
    path = tmp_path / "armband.csv"
    DataFilter.write_file(board_data, str(path), "w")
    return str(path), board_data


def read_all(armband: MindRoveArmband, samples: int, within_s: float = 5.0):
    chunks, got, deadline = [], 0, time.monotonic() + within_s
    while got < samples and time.monotonic() < deadline:
        chunk = armband.read(timeout_s=0.5)
        chunks.append(chunk)
        got += len(chunk)
    return chunks


def test_playback_delivers_emg_times_and_imu_from_the_right_rows(playback_file):
    path, board_data = playback_file
    with MindRoveArmband(playback_file=path) as armband:
        armband.start()
        chunks = read_all(armband, SAMPLES)
        armband.stop()
    emg = np.concatenate([c.emg for c in chunks])
    times_s = np.concatenate([c.time for c in chunks])
    imu = np.concatenate([c.imu for c in chunks])
    assert len(emg) == SAMPLES
    assert emg.dtype == np.float32 and emg.shape[1] == 8
    emg_rows = BoardShim.get_emg_channels(ARMBAND)
    np.testing.assert_allclose(emg, board_data[emg_rows].T, rtol=1e-6)
    timestamp_row = BoardShim.get_timestamp_channel(ARMBAND)
    np.testing.assert_allclose(times_s, board_data[timestamp_row], atol=1e-5)
    np.testing.assert_allclose(imu[0], [0.5, 1.5, 2.5, 10, 11, 12])


def test_playback_counts_the_missing_packet(playback_file):
    path, board_data = playback_file
    with MindRoveArmband(playback_file=path) as armband:
        armband.start()
        chunks = read_all(armband, SAMPLES)
        assert armband.dropped_packets == 1
    package_num = np.concatenate([c.package_num for c in chunks])
    assert package_num.dtype == np.int64
    np.testing.assert_array_equal(
        package_num, board_data[BoardShim.get_package_num_channel(ARMBAND)]
    )


def test_info_describes_the_armband(playback_file):
    armband = MindRoveArmband(playback_file=playback_file[0])
    assert armband.info.kind == "mindrove"
    assert armband.info.sampling_rate_hz == 500
    assert armband.info.num_channels == 8
    assert armband.info.has_imu


def test_a_bad_playback_path_is_a_clear_device_error(tmp_path):
    armband = MindRoveArmband(playback_file=str(tmp_path / "nope.csv"))
    with pytest.raises(DeviceError, match=r"playback file not found: .*nope\.csv"):
        armband.prepare()
    armband.release()


def test_release_is_idempotent(playback_file):
    armband = MindRoveArmband(playback_file=playback_file[0])
    armband.prepare()
    armband.release()
    armband.release()


def test_read_before_prepare_is_a_device_error():
    with pytest.raises(DeviceError, match="not open"):
        MindRoveArmband(playback_file="x.csv").read(timeout_s=0.01)


def test_a_file_that_is_not_board_data_is_a_clear_device_error(tmp_path):
    (tmp_path / "notes.csv").write_text("hello\n")
    armband = MindRoveArmband(playback_file=str(tmp_path / "notes.csv"), timeout_s=0.5)
    try:
        with pytest.raises(DeviceError, match="39-row file"):
            armband.prepare()
            armband.start()
            armband.read(timeout_s=1.5)
    finally:
        armband.release()


def test_an_unreachable_armband_is_reported_as_not_found():
    # Tests only ever talk to this machine: no armband listens on loopback.
    armband = MindRoveArmband(ip_address="127.0.0.1", timeout_s=0.5)
    try:
        with pytest.raises(DeviceError, match=r"not found at 127\.0\.0\.1: is it on"):
            armband.prepare()
            armband.start()
            armband.read(timeout_s=1.5)
    finally:
        armband.release()
