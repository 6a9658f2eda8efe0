"""Plays a stored session file back as an armband, for demos, tests and debugging."""

from __future__ import annotations

import os
import time

import numpy as np

from recorder.devices.base import DeviceError, DeviceInfo, EmgChunk, EmgSource
from recorder.devices.packets import PacketCounter
from recorder.session_file import SessionFormatError, SessionRecording, read_session

BLOCK_SAMPLES = 50  # 100 ms at 500 Hz per read when not paced in real time


class ReplayDevice(EmgSource):
    """Yields a session's stored samples with their original times and package numbers.

    realtime: samples come out at the pace of their timestamps (sleeping, no spin);
    otherwise each read returns the next `block_samples` at once.
    loop: start again at the end; each lap's times are shifted by the session's
    length so time keeps increasing, while package numbers repeat as stored.
    The file is read when the device is built, so `info` is known before prepare.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        realtime: bool = True,
        loop: bool = False,
        block_samples: int = BLOCK_SAMPLES,
    ) -> None:
        self.path = path
        self.realtime = realtime
        self.loop = loop
        self.block_samples = block_samples
        self.recording = _load(path)
        self.info = _replay_info(self.recording, path)
        self._packets = PacketCounter(self.recording.attrs.package_modulus)
        self._position = 0  # next sample index within the current lap
        self._lap = 0
        self._started_at: float | None = None
        self._stopped_elapsed_s: float | None = None

    @property
    def _lap_s(self) -> float:
        times_s = self.recording.emg_time
        return float(times_s[-1] - times_s[0]) + 1.0 / self.info.sampling_rate_hz

    def start(self) -> None:
        self._started_at = time.monotonic()
        self._stopped_elapsed_s = None

    def stop(self) -> None:
        if self._started_at is not None and self._stopped_elapsed_s is None:
            self._stopped_elapsed_s = self._elapsed_s()

    @property
    def dropped_packets(self) -> int:
        return self._packets.dropped_packets

    @property
    def exhausted(self) -> bool:
        return not self.loop and self._position >= len(self.recording.emg_time)

    def read(self, timeout_s: float = 1.0) -> EmgChunk:
        """The samples due since the last read; waits up to `timeout_s` for one.
        Empty once the file is played out (without loop) or the device stopped."""
        if self._started_at is None:
            raise DeviceError(f"replay of {self.path} not started: call start() first")
        deadline = time.monotonic() + timeout_s
        while True:
            self._next_lap_if_done()
            if self._position >= len(self.recording.emg_time):
                return self._empty()
            end = self._due_end()
            if end > self._position:
                return self._take(end)
            wait_s = min(self._wait_for_next_s(), deadline - time.monotonic())
            if wait_s <= 0 or self._stopped_elapsed_s is not None:
                return self._empty()
            time.sleep(wait_s)

    def _elapsed_s(self) -> float:
        if self._stopped_elapsed_s is not None:
            return self._stopped_elapsed_s
        return time.monotonic() - self._started_at

    def _next_lap_if_done(self) -> None:
        played_out = self._position >= len(self.recording.emg_time)
        if played_out and self.loop and self._position > 0:
            self._position = 0
            self._lap += 1
            # The counter jumps back at the loop point; that is not a loss.
            self._packets.restart()

    def _due_end(self) -> int:
        """Index one past the last sample that should have been read by now."""
        if not self.realtime:
            sample_count = len(self.recording.emg_time)
            return min(self._position + self.block_samples, sample_count)
        times_s = self.recording.emg_time
        lap_elapsed_s = self._elapsed_s() - self._lap * self._lap_s
        return int(np.searchsorted(times_s, times_s[0] + lap_elapsed_s, side="right"))

    def _wait_for_next_s(self) -> float:
        if not self.realtime:
            return 0.0
        times_s = self.recording.emg_time
        due_at_s = times_s[self._position] - times_s[0] + self._lap * self._lap_s
        return max(due_at_s - self._elapsed_s(), 0.0) + 1e-4

    def _take(self, end: int) -> EmgChunk:
        rec, start = self.recording, self._position
        self._position = end
        self._packets.update(rec.package_num[start:end])
        return EmgChunk(
            emg=rec.emg[start:end].copy(),
            time=rec.emg_time[start:end] + self._lap * self._lap_s,
            package_num=rec.package_num[start:end].copy(),
            imu=None if rec.imu is None else rec.imu[start:end].copy(),
        )

    def _empty(self) -> EmgChunk:
        return EmgChunk.empty(self.info.num_channels, with_imu=self.info.has_imu)


def _load(path: str | os.PathLike) -> SessionRecording:
    try:
        return read_session(path)
    except FileNotFoundError as error:
        raise DeviceError(f"replay file not found: {path}") from error
    except SessionFormatError as error:
        raise DeviceError(f"cannot replay {path}: {error}") from error


def _replay_info(recording: SessionRecording, path: str | os.PathLike) -> DeviceInfo:
    attrs = recording.attrs
    return DeviceInfo(
        kind="replay",
        sampling_rate_hz=attrs.sampling_rate_hz,
        channel_names=tuple(attrs.channel_names),
        description=f"replay of {path}",
        has_imu=recording.imu is not None,
        extra={"path": str(path), "recorded_with": attrs.device_info},
    )
