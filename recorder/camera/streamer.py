"""The camera thread of one recording: label every frame, spool label chunks.

Like the device thread, it never touches the network: label frames go into the
session's spool as STREAM_LABELS chunks (their own sequence numbers), and the agent
sends them with the EMG, acknowledged, resent after a disconnect, stored once.
Labeling (MediaPipe and IK) runs here, never on the agent's asyncio loop.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable

from recorder.camera.clock import ClockSync
from recorder.camera.frames import LabelFrames
from recorder.camera.sources import CameraFrame, FrameSource
from recorder.camera.video import VideoSaver
from recorder.protocol import MAX_FRAMES_PER_CHUNK, encode_label_chunk
from recorder.spool import SpoolSession

log = logging.getLogger(__name__)

READ_TIMEOUT_S = 0.1
# without a frame for this long the page says "no frames"
NO_FRAMES_AFTER_S = 3.0
RATE_WINDOW_S = 2.0  # fps and latency are averaged over the frames of this window


class CameraStreamer(threading.Thread):
    """Labels one camera's frames into one spooled session until stopped."""

    def __init__(
        self,
        source: FrameSource,
        spool_session: SpoolSession,
        clock: ClockSync,
        on_chunk: Callable[[], None],
        labeler_factory: Callable[[], object],
        chunk_s: float = 0.2,
        video: VideoSaver | None = None,
        no_frames_after_s: float = NO_FRAMES_AFTER_S,
    ):
        super().__init__(name=f"camera-session-{spool_session.session_id}", daemon=True)
        self.source = source
        self.spool_session = spool_session
        self.clock = clock
        self.on_chunk = on_chunk
        self.labeler_factory = labeler_factory
        self.chunk_s = chunk_s
        self.video = video
        self.no_frames_after_s = no_frames_after_s
        self.stop_requested = threading.Event()
        self.frames_labeled = 0
        self.frames_dropped = 0  # labeled, but never put on the EMG clock
        self._pending: list[dict] = []  # labeled frames, host-clock times
        self._last_frame_time_s = float("-inf")  # EMG clock, keeps times ordered
        self._recent: deque[tuple[float, float]] = deque()  # (arrival s, latency s)
        self._last_frame_at_s = time.monotonic()
        self._failure = ""
        self._lock = threading.Lock()

    # ------------------------------------------------------------ the thread

    def run(self) -> None:
        labeler = None
        try:
            # the labeler first: the IK's first import takes seconds, and frames
            # a webcam buffered meanwhile would be stale
            labeler = self.labeler_factory()
            self.source.open()
            self._label_until_stopped(labeler)
        except Exception as exc:  # the camera failed: EMG goes on, the page says so
            log.exception("camera failed")
            self._failure = f"{self.source.description} failed: {exc}"
            self.stop_requested.wait()
        finally:
            self._flush(final=True)
            self.source.close()
            if labeler is not None:
                labeler.close()
            if self.video is not None:
                self.video.close()

    def _label_until_stopped(self, labeler) -> None:
        next_flush_s = time.monotonic() + self.chunk_s
        while not self.stop_requested.is_set():
            frame = self.source.read(READ_TIMEOUT_S)
            if frame is not None:
                self._label(frame, labeler)
            elif self.source.exhausted:
                return
            if time.monotonic() >= next_flush_s:
                self._flush()
                next_flush_s = time.monotonic() + self.chunk_s

    def _label(self, frame: CameraFrame, labeler) -> None:
        labels = labeler.label(frame)
        labels["host_time_s"] = frame.host_time_s
        labeled_at_s = time.time()
        self._pending.append(labels)
        if self.video is not None and frame.rgb is not None:
            self.video.write(frame.rgb)
        with self._lock:
            self.frames_labeled += 1
            self._last_frame_at_s = time.monotonic()
            # capture to label: arrival is measured, the pipeline delay is known
            latency_s = labeled_at_s - frame.arrival_host_s + self.source.delay_s
            self._recent.append((labeled_at_s, latency_s))

    def _flush(self, final: bool = False) -> None:
        """Spool the pending frames as label chunks, once their EMG time is known."""
        if not self._pending:
            return
        if self.clock.offset_s is None:
            if final:  # the armband never delivered: there is no EMG clock
                log.warning("no EMG: %d camera frames dropped", len(self._pending))
                self.frames_dropped += len(self._pending)
                self._pending = []
            return
        frames, self._pending = self._pending, []
        for frame in frames:
            frame_time_s = self.clock.to_emg_time(frame.pop("host_time_s"))
            # the offset estimate may step back a little; times never go backwards
            frame_time_s = max(frame_time_s, self._last_frame_time_s)
            frame["frame_time"] = self._last_frame_time_s = frame_time_s
        if self.video is not None:
            self.video.write_times([f["frame_time"] for f in frames])
        for start in range(0, len(frames), MAX_FRAMES_PER_CHUNK):
            self._spool(LabelFrames.stack(frames[start : start + MAX_FRAMES_PER_CHUNK]))

    def _spool(self, frames: LabelFrames) -> None:
        session = self.spool_session
        chunk = encode_label_chunk(session.session_id, session.next_label_seq, frames)
        session.add_label_chunk(chunk, len(frames))
        self.on_chunk()

    # ------------------------------------------------------------ health

    def status(self) -> dict:
        """state ("ok" | "no_frames" | "off"), fps, latency_ms (capture to label,
        mean over the last RATE_WINDOW_S) and a message for the page."""
        with self._lock:
            now_s = time.time()
            while self._recent and self._recent[0][0] < now_s - RATE_WINDOW_S:
                self._recent.popleft()
            fps = len(self._recent) / RATE_WINDOW_S
            latencies = [latency for _, latency in self._recent]
            silent_s = time.monotonic() - self._last_frame_at_s
        latency_ms = 1000.0 * sum(latencies) / len(latencies) if latencies else 0.0
        state, message = self._state(silent_s, fps)
        return {
            "state": state,
            "fps": round(fps, 1),
            "latency_ms": round(latency_ms, 1),
            "message": message,
        }

    def _state(self, silent_s: float, fps: float) -> tuple[str, str]:
        description = self.source.description
        if self._failure:
            return "no_frames", self._failure
        if self.source.exhausted:
            return "off", f"{description} ended after {self.frames_labeled} frames"
        if silent_s >= self.no_frames_after_s:
            return "no_frames", (
                f"no frames from the {description} for {silent_s:.0f} s: is it "
                "connected, uncovered and not in use by another program? EMG "
                "recording goes on"
            )
        return "ok", f"{description}: {fps:.1f} frames/s labeled"
