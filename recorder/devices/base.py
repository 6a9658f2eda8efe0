"""The EMG source interface every device implements.

The lifecycle follows BrainFlow's: prepare, start, read (repeatedly), stop, release.
`read` drains: each sample is returned exactly once, in order.
"""

from __future__ import annotations

import abc
from dataclasses import asdict, dataclass, field

import numpy as np


@dataclass(frozen=True)
class DeviceInfo:
    """What a device is; stored in the session file and shown in the portal."""

    kind: str  # "mindrove" | "simulated" | "replay"
    sampling_rate_hz: float
    channel_names: tuple[str, ...]
    description: str = ""
    has_imu: bool = False
    extra: dict = field(default_factory=dict)

    @property
    def num_channels(self) -> int:
        return len(self.channel_names)

    def as_dict(self) -> dict:
        info = asdict(self)
        info["channel_names"] = list(self.channel_names)
        return info


@dataclass
class EmgChunk:
    """A run of consecutive samples as read from a device.

    emg: (n, C) float32 in µV.
    time: (n,) float64 seconds on the device's own clock (board timestamps).
    package_num: (n,) int64, the device's packet counter, for drop detection.
    imu: (n, 6) float32 accelerometer xyz (g) then gyroscope xyz (deg/s), or None.
    """

    emg: np.ndarray
    time: np.ndarray
    package_num: np.ndarray
    imu: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.time)

    def slice(self, start: int, stop: int) -> EmgChunk:
        return EmgChunk(
            emg=self.emg[start:stop],
            time=self.time[start:stop],
            package_num=self.package_num[start:stop],
            imu=None if self.imu is None else self.imu[start:stop],
        )

    @classmethod
    def concatenate(cls, chunks: list[EmgChunk]) -> EmgChunk:
        """Join consecutive chunks (imu kept only when every chunk has it)."""
        imus = [c.imu for c in chunks]
        return cls(
            emg=np.concatenate([c.emg for c in chunks]),
            time=np.concatenate([c.time for c in chunks]),
            package_num=np.concatenate([c.package_num for c in chunks]),
            imu=None if any(i is None for i in imus) else np.concatenate(imus),
        )

    @classmethod
    def empty(cls, num_channels: int, with_imu: bool = False) -> EmgChunk:
        imu = np.zeros((0, 6), np.float32) if with_imu else None
        return cls(
            emg=np.zeros((0, num_channels), np.float32),
            time=np.zeros(0, np.float64),
            package_num=np.zeros(0, np.int64),
            imu=imu,
        )


class DeviceError(RuntimeError):
    """A device could not be found, opened or read; the message says which and why."""


class EmgSource(abc.ABC):
    """An armband, real or simulated. Use as a context manager to always release it."""

    info: DeviceInfo

    def prepare(self) -> None:  # noqa: B027 (optional hook)
        """Open the device (connect, allocate). Idempotent."""

    @abc.abstractmethod
    def start(self) -> None:
        """Begin acquiring samples."""

    @abc.abstractmethod
    def read(self, timeout_s: float = 1.0) -> EmgChunk:
        """Return the samples acquired since the last read, waiting (without spinning)
        up to `timeout_s` for at least one. May return an empty chunk on timeout."""

    @abc.abstractmethod
    def stop(self) -> None:
        """Stop acquiring. Samples not yet read are still returned by `read`."""

    def release(self) -> None:  # noqa: B027 (optional hook)
        """Free the device. Safe to call more than once, and after a failed prepare."""

    @property
    def exhausted(self) -> bool:
        """True once a finite source (a file, a fixed-length simulation) has no more."""
        return False

    @property
    def dropped_packets(self) -> int:
        """Packets the device's counter says were lost since start."""
        return 0

    def __enter__(self) -> EmgSource:
        self.prepare()
        return self

    def __exit__(self, *exc) -> None:
        self.release()
