"""The MindRove armband (8 EMG channels at 500 Hz) through the `mindrove` SDK.

The SDK is a BrainFlow fork. Every row of the board's data matrix is found by lookup
on the armband's board description, never by a hard-coded slice. With
`playback_file`, the SDK's playback board replays a 39-row file written by
`DataFilter.write_file` at the armband's rate, through the same code path.

What the SDK does not document, learned by probing SDK 5.3.0:
- Preparing the Wi-Fi board succeeds even with no armband in reach; it then simply
  delivers no samples. "Not found" is therefore detected in `read`, after `timeout_s`.
- The playback board passes the file's package counter through unchanged, and by
  default replaces the file's timestamps with the wall clock; "old_timestamps" keeps
  them, which is what we want when replaying a recording.
- The counter's wrap-around range on the armband itself is not in the SDK; pass
  `package_modulus` once known. Without it, a backward jump is logged as a wrap/reset.

Electrode contact (`read_contact`): `config_board(MindroveConfigMode.IMP_MODE)` puts
the band in impedance mode, where rows 8-17 (`get_resistance_channels`) carry the
impedance between electrode pairs; `EEG_MODE` puts it back. The SDK's docstring
names the pairs (6-Ref, 5-6, 5-4, 3-4, 2-3, 1-2, Ref-4, Ref-Drl, 3-Drl, 1-Drl) but
no unit: values are passed on unscaled and taken to be kΩ, unverified without an
armband. The playback board takes no mode commands (they are skipped for it) and
replays rows 8-17 as written, which is how the tests check the rows.
"""

from __future__ import annotations

import logging
import math
import os
import time
from dataclasses import dataclass

import numpy as np
from mindrove.board_shim import (
    BoardIds,
    BoardShim,
    MindroveConfigMode,
    MindRoveInputParams,
)
from mindrove.exit_codes import MindRoveError

from recorder.devices.base import DeviceError, DeviceInfo, EmgChunk, EmgSource
from recorder.devices.packets import PacketCounter

log = logging.getLogger(__name__)

ARMBAND = BoardIds.MINDROVE_WIFI_BOARD.value
PLAYBACK = BoardIds.PLAYBACK_FILE_BOARD.value
DEFAULT_IP_ADDRESS = "192.168.4.1"  # the armband's own access point
RING_BUFFER_SAMPLES = 500 * 60 * 10  # 10 min at 500 Hz, should reads stall
# Waking for every 2 ms sample costs CPU for nothing; 10 ms batches ~5 samples.
MIN_WAIT_S = 0.01
# The SDK's docstring of get_resistance_channels, in row order (10 rows).
CONTACT_PAIRS = (
    "6-Ref", "5-6", "5-4", "3-4", "2-3", "1-2", "Ref-4", "Ref-DRL", "3-DRL", "1-DRL",
)  # fmt: skip
# MindRove's own examples wait 2 s after switching to IMP_MODE before reading.
IMPEDANCE_SETTLE_S = 2.0
# The examples wait 0.1 s after switching back; 0.5 s lets the EMG front end recover
# from the measuring current before samples count again.
EMG_SETTLE_S = 0.5
DEFAULT_CONTACT_S = 2.0


@dataclass(frozen=True)
class ContactReading:
    """Electrode contact from impedance mode: one median value per electrode pair.

    resistance_kohm holds None where a pair gave no finite reading. samples_set_aside
    is how many samples the check took out of the EMG stream (they are not EMG).
    """

    pairs: tuple[str, ...]
    resistance_kohm: tuple[float | None, ...]
    samples_set_aside: int


class MindRoveArmband(EmgSource):
    """The armband over Wi-Fi, or a recorded 39-row file replayed by the SDK."""

    def __init__(
        self,
        ip_address: str | None = None,
        playback_file: str | None = None,
        timeout_s: float = 15.0,
        package_modulus: int | None = None,
    ) -> None:
        self.ip_address = ip_address
        self.playback_file = playback_file
        self.timeout_s = timeout_s
        self.rows = _armband_rows()
        self.info = DeviceInfo(
            kind="mindrove",
            sampling_rate_hz=float(self.rows["sampling_rate_hz"]),
            channel_names=tuple(f"emg{i + 1}" for i in range(len(self.rows["emg"]))),
            description=self._where(),
            has_imu=True,
            extra={"ip_address": ip_address, "playback_file": playback_file},
        )
        self._packets = PacketCounter(package_modulus)
        self._board: BoardShim | None = None
        self._streaming = False
        # True while the band may be in impedance mode: its EMG rows are not EMG then
        self.in_impedance_mode = False
        self._started_at: float | None = None
        self._samples_read = 0

    def _where(self) -> str:
        if self.playback_file:
            return f"MindRove playback of {self.playback_file}"
        return f"MindRove armband at {self.ip_address or DEFAULT_IP_ADDRESS}"

    # ------------------------------------------------------------ lifecycle

    def prepare(self) -> None:
        if self._board is not None:
            return
        _route_sdk_logging()
        if self.playback_file and not os.path.isfile(self.playback_file):
            raise DeviceError(f"MindRove playback file not found: {self.playback_file}")
        board = BoardShim(*self._board_params())
        try:
            board.prepare_session()
            if self.playback_file:
                # Keep the recorded timestamps instead of the replay's wall clock.
                board.config_board("old_timestamps")
        except MindRoveError as error:
            raise self._device_error("open", error) from error
        self._board = board

    def _board_params(self) -> tuple[int, MindRoveInputParams]:
        params = MindRoveInputParams()
        params.timeout = math.ceil(self.timeout_s)
        if self.playback_file:
            params.file = self.playback_file
            params.master_board = ARMBAND
            return PLAYBACK, params
        if self.ip_address:
            params.ip_address = self.ip_address
        return ARMBAND, params

    def start(self) -> None:
        self.prepare()
        try:
            self._board.start_stream(RING_BUFFER_SAMPLES)
        except MindRoveError as error:
            raise self._device_error("start streaming from", error) from error
        self._streaming = True
        self._started_at = time.monotonic()

    def stop(self) -> None:
        if not self._streaming:
            return
        self._streaming = False
        try:
            self._board.stop_stream()
        except MindRoveError as error:
            raise self._device_error("stop", error) from error

    def release(self) -> None:
        board, self._board = self._board, None
        self._streaming = False
        if board is None:
            return
        try:
            board.release_session()
        except MindRoveError as error:
            # Releasing is cleanup; failing it must not hide the error that led here.
            log.warning("could not release %s: %s", self._where(), error)

    @property
    def dropped_packets(self) -> int:
        return self._packets.dropped_packets

    # ------------------------------------------------------------ reading

    def read(self, timeout_s: float = 1.0) -> EmgChunk:
        """Drains every sample acquired since the last read, waiting up to
        `timeout_s` for at least one. Empty chunk on timeout or once stopped."""
        if self._board is None:
            raise DeviceError(f"{self._where()} is not open: call prepare() first")
        deadline = time.monotonic() + timeout_s
        wait_s = max(MIN_WAIT_S, 1.0 / self.info.sampling_rate_hz)
        while True:
            board_data = self._drain()
            if board_data is not None:
                return self._to_chunk(board_data)
            self._check_found()
            remaining_s = deadline - time.monotonic()
            if remaining_s <= 0 or not self._streaming:
                return EmgChunk.empty(self.info.num_channels, with_imu=True)
            time.sleep(min(wait_s, remaining_s))

    def _drain(self) -> np.ndarray | None:
        """All buffered rows as (39, n), or None when nothing is buffered."""
        try:
            if self._board.get_board_data_count() == 0:
                return None
            return self._board.get_board_data()
        except MindRoveError as error:
            raise self._device_error("read from", error) from error

    def _check_found(self) -> None:
        if self._samples_read or not self._streaming:
            return
        if time.monotonic() - self._started_at < self.timeout_s:
            return
        if self.playback_file:
            raise DeviceError(
                f"{self._where()} gave no samples in {self.timeout_s:g} s: "
                "is it a 39-row file written by DataFilter.write_file?"
            )
        raise DeviceError(
            f"MindRove armband not found at {self.ip_address or DEFAULT_IP_ADDRESS}: "
            "is it on and is this laptop on its Wi-Fi?"
        )

    def _to_chunk(self, board_data: np.ndarray) -> EmgChunk:
        rows = self.rows
        # The counter travels as float64 in the matrix; round before the int cast.
        package_num = np.rint(board_data[rows["package_num"]]).astype(np.int64)
        imu = board_data[rows["accel"] + rows["gyro"]].T.astype(np.float32)
        self._packets.update(package_num)
        self._samples_read += len(package_num)
        return EmgChunk(
            emg=board_data[rows["emg"]].T.astype(np.float32),
            time=board_data[rows["timestamp"]].astype(np.float64),
            package_num=package_num,
            imu=imu,
        )

    # ------------------------------------------------------------ contact

    def read_contact(
        self,
        seconds: float = DEFAULT_CONTACT_S,
        settle_s: float = IMPEDANCE_SETTLE_S,
        emg_settle_s: float = EMG_SETTLE_S,
    ) -> ContactReading:
        """Electrode contact, measured in impedance mode while streaming.

        Call it from the thread that reads the device, after draining what it holds:
        every sample from the switch to impedance mode until `emg_settle_s` after the
        switch back is set aside (about settle_s + seconds + emg_settle_s of EMG), and
        the packet counter restarts after them, so they do not count as lost packets.
        If the band cannot be put back into EMG mode, this raises with
        `in_impedance_mode` still True: the caller must stop recording.
        """
        if self._board is None or not self._streaming:
            raise DeviceError(f"{self._where()} is not streaming: call start() first")
        set_aside = 0
        self._set_mode(MindroveConfigMode.IMP_MODE, "impedance")
        self.in_impedance_mode = True
        try:
            set_aside += self._drain_for(settle_s).shape[1]
            board_data = self._drain_for(seconds)
            set_aside += board_data.shape[1]
        finally:
            self._set_mode(MindroveConfigMode.EEG_MODE, "EMG")
            self.in_impedance_mode = False
        set_aside += self._drain_for(emg_settle_s).shape[1]
        self._packets.restart()
        log.info("contact check set aside %d samples of %s", set_aside, self._where())
        return _contact_reading(board_data, self.rows["resistance"], set_aside)

    def _set_mode(self, mode: bytes, name: str) -> None:
        if self.playback_file:
            # The playback board rejects mode commands; it replays rows as written.
            log.debug("playback: %s mode command skipped", name)
            return
        try:
            self._board.config_board(mode)
        except MindRoveError as error:
            raise self._device_error(f"switch to {name} mode", error) from error

    def _drain_for(self, seconds: float) -> np.ndarray:
        """Every row the board delivers in the next `seconds`, as (39, n)."""
        parts = []
        deadline = time.monotonic() + seconds
        while True:
            board_data = self._drain()
            if board_data is not None:
                parts.append(board_data)
            remaining_s = deadline - time.monotonic()
            if remaining_s <= 0:
                break
            time.sleep(min(MIN_WAIT_S, remaining_s))
        if not parts:
            return np.zeros((self.rows["num_rows"], 0))
        return np.concatenate(parts, axis=1)

    def _device_error(self, action: str, error: MindRoveError) -> DeviceError:
        if self.playback_file:
            hint = "is it a 39-row MindRove file written by DataFilter.write_file?"
        else:
            hint = "is it on, charged, and is this laptop on its Wi-Fi?"
        return DeviceError(f"could not {action} {self._where()}: {hint} (SDK: {error})")


def _armband_rows() -> dict:
    """Where each signal lives in the armband's data matrix, looked up in the SDK."""
    return {
        "emg": BoardShim.get_emg_channels(ARMBAND),
        "accel": BoardShim.get_accel_channels(ARMBAND),
        "gyro": BoardShim.get_gyro_channels(ARMBAND),
        "package_num": BoardShim.get_package_num_channel(ARMBAND),
        "timestamp": BoardShim.get_timestamp_channel(ARMBAND),
        "sampling_rate_hz": BoardShim.get_sampling_rate(ARMBAND),
        "resistance": BoardShim.get_resistance_channels(ARMBAND),
        "num_rows": BoardShim.get_num_rows(ARMBAND),
    }


def _contact_reading(
    board_data: np.ndarray, resistance_rows: list[int], set_aside: int
) -> ContactReading:
    """The median of each resistance row: robust to the odd sample caught mid-switch."""
    if board_data.shape[1] == 0:
        raise DeviceError(
            "the armband sent no samples in impedance mode: is it still connected?"
        )
    pairs = _pair_names(len(resistance_rows))
    values = []
    for row in resistance_rows:
        readings = board_data[row]
        readings = readings[np.isfinite(readings)]
        values.append(float(np.median(readings)) if readings.size else None)
    return ContactReading(pairs, tuple(values), set_aside)


def _pair_names(count: int) -> tuple[str, ...]:
    """The SDK's pair names when the rows match its docstring, else numbered pairs."""
    if count == len(CONTACT_PAIRS):
        return CONTACT_PAIRS
    return tuple(f"pair {i + 1}" for i in range(count))


def _route_sdk_logging() -> None:
    """The SDK logs to stderr from C++, out of reach of Python logging: keep it quiet
    unless this module's logger is at DEBUG, when its own log is wanted too."""
    if log.isEnabledFor(logging.DEBUG):
        BoardShim.enable_dev_board_logger()
    else:
        BoardShim.disable_board_logger()
