"""Counting lost packets from a device's packet counter.

A device numbers its packets; a jump of more than one between neighbours means packets
were lost on the way. Counters are finite, so they wrap: with a known `modulus` (the
number of distinct counter values) the jump is taken modulo it. When the modulus is
unknown (None), a backward jump is taken as a wrap or a counter reset and counts no
loss, since its size cannot be known.
"""

from __future__ import annotations

import logging

import numpy as np

log = logging.getLogger(__name__)


def missing_after(package_num: np.ndarray, modulus: int | None = None) -> np.ndarray:
    """Packets missing between each sample and the next.

    package_num: (n,) counter values in arrival order.
    Returns (n - 1,) int64: entry i is how many packets were lost between sample i
    and sample i + 1 (0 when they are consecutive).
    """
    counter = np.asarray(package_num, dtype=np.int64)
    steps = np.diff(counter)
    if modulus is not None:
        missing = np.mod(steps - 1, modulus)
    else:
        # Unknown range: only forward jumps can be measured.
        missing = np.maximum(steps - 1, 0)
    # A repeated value is a duplicate sample, not a full lap of lost packets.
    missing[steps == 0] = 0
    return missing


def find_gaps(package_num: np.ndarray, modulus: int | None = None) -> np.ndarray:
    """Where packets are missing, as (K, 2) int64 rows of
    (index of the first sample after the gap, number of missing packets)."""
    missing = missing_after(package_num, modulus)
    after_gap = np.flatnonzero(missing) + 1
    return np.stack([after_gap, missing[after_gap - 1]], axis=1).astype(np.int64)


class PacketCounter:
    """Counts lost packets across successive reads of a packet counter.

    Feed it each chunk's package_num array in order; it remembers the last value so
    losses between chunks are counted too.
    """

    def __init__(self, modulus: int | None = None) -> None:
        self.modulus = modulus
        self.dropped_packets = 0
        self.resets = 0
        self._last: int | None = None

    def update(self, package_num: np.ndarray) -> int:
        """Add one chunk of counter values; returns the packets lost in it."""
        counter = np.asarray(package_num, dtype=np.int64)
        if counter.size == 0:
            return 0
        if self._last is not None:
            counter = np.concatenate([[self._last], counter])
        self._note_resets(counter)
        lost = int(missing_after(counter, self.modulus).sum())
        self.dropped_packets += lost
        self._last = int(counter[-1])
        return lost

    def restart(self) -> None:
        """Forget the last value, e.g. where a replay loops back to its start, so the
        jump there is not counted as a loss. Counts so far are kept."""
        self._last = None

    def _note_resets(self, counter: np.ndarray) -> None:
        if self.modulus is not None:
            return
        backward = int(np.count_nonzero(np.diff(counter) < 0))
        if backward:
            self.resets += backward
            log.warning(
                "packet counter went backwards %d time(s); losses there "
                "cannot be counted without the counter's modulus",
                backward,
            )
