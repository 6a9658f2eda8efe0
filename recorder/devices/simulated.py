"""The simulated armband behind the EmgSource interface, so everything runs without
hardware. Samples come from `recorder.simulation.ArmbandSimulator`."""

from __future__ import annotations

import time

import numpy as np

from recorder.devices.base import DeviceInfo, EmgChunk, EmgSource
from recorder.simulation import ArmbandSimulator, SimulatorConfig

OFFLINE_CHUNK_SAMPLES = 50  # what one read returns when realtime=False (0.1 s)


class SimulatedArmband(EmgSource):
    """A MindRove-like armband worn by a simulated subject.

    realtime=True paces samples by the wall clock: sample i is due at
    start + i / rate (time.time() seconds) and `read` sleeps until one is due.
    realtime=False returns OFFLINE_CHUNK_SAMPLES at once per read. After `duration_s`
    of samples, reads return empty chunks. `drop_packet_every=N` omits every Nth sample
    (its package_num is skipped), to exercise drop detection. `clock_offset_s` makes
    the board's clock run that far ahead of the host's (MindRove's board clock need
    not agree with the laptop's); the camera's clock sync must absorb it.
    """

    def __init__(
        self,
        seed: int = 0,
        realtime: bool = True,
        line_frequency_hz: float = 50.0,
        band_rotation_deg: float = 0.0,
        duration_s: float | None = None,
        drop_packet_every: int | None = None,
        clock_offset_s: float = 0.0,
        **config,
    ) -> None:
        self.simulator = ArmbandSimulator(
            SimulatorConfig(
                seed=seed,
                line_frequency_hz=line_frequency_hz,
                band_rotation_deg=band_rotation_deg,
                **config,
            )
        )
        self.realtime = realtime
        self.drop_packet_every = drop_packet_every
        self.clock_offset_s = clock_offset_s
        rate = self.simulator.config.sampling_rate_hz
        self._total_samples = (
            None if duration_s is None else int(round(duration_s * rate))
        )
        self._start_time_s: float | None = None
        self._stop_index: int | None = None  # samples acquired when stopped
        self._next_index = 0
        self._dropped = 0
        self.info = DeviceInfo(
            kind="simulated",
            sampling_rate_hz=rate,
            channel_names=self.simulator.channel_names,
            description="simulated MindRove-like 8-channel forearm armband",
            has_imu=True,
            extra={
                "seed": seed,
                "bad_channels": self.simulator.bad_channels,
                "line_frequency_hz": line_frequency_hz,
                "band_rotation_deg": band_rotation_deg,
                "realtime": realtime,
            },
        )

    @property
    def start_time_s(self) -> float | None:
        """Host time (time.time()) of sample 0, or None before start."""
        return self._start_time_s

    def start(self) -> None:
        self._start_time_s = time.time()
        self._stop_index = None

    def stop(self) -> None:
        if self._start_time_s is not None and self._stop_index is None:
            self._stop_index = self._acquired_samples()

    @property
    def dropped_packets(self) -> int:
        return self._dropped

    @property
    def exhausted(self) -> bool:
        """A fixed-length simulation (duration_s) has delivered all its samples."""
        return (
            self._total_samples is not None and self._next_index >= self._total_samples
        )

    def _acquired_samples(self) -> int:
        """How many samples exist by now (wall clock, duration and stop permitting)."""
        if self._start_time_s is None:
            return 0
        if self._stop_index is not None:
            return self._stop_index
        rate = self.info.sampling_rate_hz
        due = int((time.time() - self._start_time_s) * rate) + 1
        return due if self._total_samples is None else min(due, self._total_samples)

    def read(self, timeout_s: float = 1.0) -> EmgChunk:
        if self._start_time_s is None:
            return EmgChunk.empty(self.info.num_channels, with_imu=True)
        if self.realtime:
            num_samples = self._wait_for_samples(timeout_s)
        else:
            num_samples = self._offline_samples()
        return self._chunk(num_samples)

    def _offline_samples(self) -> int:
        if self._stop_index is not None:
            return 0
        limit = self._total_samples if self._total_samples is not None else np.inf
        return int(min(OFFLINE_CHUNK_SAMPLES, limit - self._next_index))

    def _wait_for_samples(self, timeout_s: float) -> int:
        """Sleep until at least one sample is due (or the timeout); return how many."""
        deadline_s = time.time() + timeout_s
        while True:
            available = self._acquired_samples() - self._next_index
            finished = self._stop_index is not None or (
                self._total_samples is not None
                and self._next_index >= self._total_samples
            )
            if available > 0 or finished:
                return max(available, 0)
            next_due_s = (
                self._start_time_s + self._next_index / self.info.sampling_rate_hz
            )
            wait_s = min(next_due_s, deadline_s) - time.time()
            if wait_s <= 0:
                return 0
            # A hair past the due time so float rounding cannot cause a spin.
            time.sleep(wait_s + 1e-4)

    def _chunk(self, num_samples: int) -> EmgChunk:
        if num_samples <= 0:
            return EmgChunk.empty(self.info.num_channels, with_imu=True)
        emg, sample_index, imu = self.simulator.next_emg(num_samples)
        self._next_index += num_samples
        if self.drop_packet_every:
            kept = (sample_index + 1) % self.drop_packet_every != 0
            self._dropped += int(np.count_nonzero(~kept))
            emg, sample_index, imu = emg[kept], sample_index[kept], imu[kept]
        times_s = self._start_time_s + self.clock_offset_s
        times_s = times_s + sample_index / self.info.sampling_rate_hz
        return EmgChunk(emg=emg, time=times_s, package_num=sample_index, imu=imu)
