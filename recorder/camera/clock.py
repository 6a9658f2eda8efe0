"""Putting camera frames on the EMG clock.

Session files keep `frame_time` on the same clock as `emg_time`: the board's
timestamps. The camera and the armband are stamped by different clocks:

- A camera frame is stamped with the host's clock (`time.time()`) when the agent
  receives it, minus the camera pipeline's known delay (exposure, USB transfer,
  decoding; `FrameSource.delay_s`). That is the host time of capture.
- An EMG sample carries the board's timestamp. For the simulated armband that is the
  host clock (plus an optional offset, to test this very code); for MindRove it is
  the timestamp row of the SDK, a unix time that need not agree with the laptop's.

So we estimate offset = EMG clock − host clock from the device reads themselves:
when a read returns at host time `h`, its last sample was stamped `e` no later than
it arrived, so `offset >= e - h`. The read that arrived fastest gives the tightest
bound; we keep the largest `e - h` over a sliding window (10 s), which follows slow
drift and forgets old reads. Transport jitter only ever makes `e - h` smaller, so
the estimate errs by the smallest delivery delay in the window: a few ms for
MindRove over WiFi, well under one camera frame (33 ms at 30 fps).

A frame's EMG time is then `capture host time + offset`.
"""

from __future__ import annotations

import threading
from collections import deque

WINDOW_S = 10.0


class ClockSync:
    """The offset between the EMG clock and the host clock (thread-safe: the device
    thread observes reads, the camera thread converts frame times)."""

    def __init__(self, window_s: float = WINDOW_S):
        self.window_s = window_s
        # (host time s, e - h s), candidates decreasing: the front is the window's max
        self._candidates: deque[tuple[float, float]] = deque()
        self._lock = threading.Lock()

    def observe(self, last_sample_time_s: float, arrival_host_s: float) -> None:
        """A device read returned at host time `arrival_host_s`; its newest sample
        carries the board timestamp `last_sample_time_s`."""
        candidate_s = last_sample_time_s - arrival_host_s
        with self._lock:
            while self._candidates and self._candidates[-1][1] <= candidate_s:
                self._candidates.pop()
            self._candidates.append((arrival_host_s, candidate_s))
            while self._candidates[0][0] < arrival_host_s - self.window_s:
                self._candidates.popleft()

    @property
    def offset_s(self) -> float | None:
        """EMG clock − host clock in seconds, or None before the first device read."""
        with self._lock:
            return self._candidates[0][1] if self._candidates else None

    def to_emg_time(self, host_time_s: float) -> float:
        """A host-clock time on the EMG clock; needs at least one observed read."""
        offset_s = self.offset_s
        if offset_s is None:
            raise RuntimeError("no device read observed yet: the offset is unknown")
        return host_time_s + offset_s
