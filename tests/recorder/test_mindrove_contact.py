"""MindRove electrode contact (impedance mode) over the SDK's playback board, which
replays rows 8-17 as written and takes no mode commands, and over a stand-in board
for the armband's mode commands (no armband needed)."""

from __future__ import annotations

import time

import numpy as np
import pytest

mindrove = pytest.importorskip("mindrove")
from mindrove.board_shim import BoardIds, BoardShim, MindroveConfigMode  # noqa: E402
from mindrove.data_filter import DataFilter  # noqa: E402
from mindrove.exit_codes import MindRoveError  # noqa: E402

from recorder.devices.base import DeviceError  # noqa: E402
from recorder.devices.mindrove import CONTACT_PAIRS, MindRoveArmband  # noqa: E402
from tests.recorder.test_mindrove import board_matrix  # noqa: E402

ARMBAND = BoardIds.MINDROVE_WIFI_BOARD.value
SAMPLES = 500  # 1 s at 500 Hz: the playback board replays in real time
RESISTANCE_ROWS = BoardShim.get_resistance_channels(ARMBAND)  # 8-17
KOHM = [5.0, 12.5, 30.0, 80.0, 150.0, 220.0, 400.0, 650.0, 1000.0, 2000.0]


@pytest.fixture
def playback_file(tmp_path):
    board_data = board_matrix()
    board_data[BoardShim.get_package_num_channel(ARMBAND)] = np.arange(SAMPLES)
    board_data[RESISTANCE_ROWS] = np.array(KOHM)[:, None]
    path = tmp_path / "armband.csv"
    DataFilter.write_file(board_data, str(path), "w")
    return str(path)


def read_samples(armband: MindRoveArmband, within_s: float) -> int:
    got, deadline = 0, time.monotonic() + within_s
    while time.monotonic() < deadline:
        got += len(armband.read(timeout_s=0.1))
    return got


def test_playback_gives_the_resistance_rows_per_named_pair(playback_file):
    with MindRoveArmband(playback_file=playback_file) as armband:
        armband.start()
        before = len(armband.read(timeout_s=0.2))
        reading = armband.read_contact(seconds=0.3, settle_s=0.1, emg_settle_s=0.05)
        after = read_samples(armband, within_s=2.5)
        armband.stop()
        assert not armband.in_impedance_mode
        # the set-aside samples are not lost packets: the counter restarted after them
        assert armband.dropped_packets == 0
    assert reading.pairs == CONTACT_PAIRS
    assert reading.resistance_kohm == tuple(KOHM)
    # every sample is either EMG or set aside, none twice
    assert before + reading.samples_set_aside + after == SAMPLES
    assert reading.samples_set_aside > 0


def test_contact_needs_a_streaming_board(playback_file):
    with MindRoveArmband(playback_file=playback_file) as armband:
        with pytest.raises(DeviceError, match="not streaming: call start"):
            armband.read_contact(seconds=0.1)


# ------------------------------------------------- the armband's mode commands


class StandInBoard:
    """Delivers impedance rows like the armband and records the mode commands."""

    def __init__(self, fail_on: bytes | None = None):
        self.fail_on = fail_on
        self.modes: list[bytes] = []
        self.rows = BoardShim.get_num_rows(ARMBAND)

    def config_board(self, mode: bytes) -> str:
        if mode == self.fail_on:
            raise MindRoveError("unable to config board", 17)
        self.modes.append(mode)
        return ""

    def get_board_data_count(self) -> int:
        return 5

    def get_board_data(self) -> np.ndarray:
        board_data = np.zeros((self.rows, 5))
        board_data[RESISTANCE_ROWS] = np.array(KOHM)[:, None]
        return board_data


def armband_on(board: StandInBoard) -> MindRoveArmband:
    armband = MindRoveArmband(ip_address="192.168.4.1")
    armband._board, armband._streaming = board, True
    return armband


def test_the_armband_goes_to_impedance_mode_and_back():
    board = StandInBoard()
    reading = armband_on(board).read_contact(
        seconds=0.05, settle_s=0.02, emg_settle_s=0.02
    )
    assert board.modes == [MindroveConfigMode.IMP_MODE, MindroveConfigMode.EEG_MODE]
    assert reading.resistance_kohm == tuple(KOHM)


def test_a_refused_impedance_mode_is_a_clear_error_and_leaves_emg_mode():
    armband = armband_on(StandInBoard(fail_on=MindroveConfigMode.IMP_MODE))
    with pytest.raises(DeviceError, match="could not switch to impedance mode"):
        armband.read_contact(seconds=0.05, settle_s=0.02, emg_settle_s=0.02)
    assert not armband.in_impedance_mode


def test_a_band_that_will_not_return_to_emg_mode_says_so():
    armband = armband_on(StandInBoard(fail_on=MindroveConfigMode.EEG_MODE))
    with pytest.raises(DeviceError, match="could not switch to EMG mode"):
        armband.read_contact(seconds=0.05, settle_s=0.02, emg_settle_s=0.02)
    assert armband.in_impedance_mode  # the device thread ends the recording on this
