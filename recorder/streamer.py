"""Reads a device on its own thread and writes every sample into the spool.

The device thread never touches the network: it only turns device reads into spooled
chunks, so a slow or absent connection can never make the device buffer overflow.
It also owns the recording's camera thread (if any): it starts it once the device
runs, feeds the clock sync with every read, and stops it, so that the last label
chunks are spooled, before it marks the recording stopped.
Electrode contact checks (`request_contact`) also run here, between reads, because
only this thread may touch the device while it streams.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future

from recorder.devices.base import DeviceError, EmgSource
from recorder.protocol import STREAM_EMG, encode_chunk
from recorder.spool import SpoolSession

log = logging.getLogger(__name__)

# keeps frames small even when a device hands over a long backlog at once
MAX_CHUNK_SAMPLES = 1000


class DeviceStreamer(threading.Thread):
    """Streams one device into one spooled session until stopped or the device ends."""

    def __init__(
        self,
        device: EmgSource,
        spool_session: SpoolSession,
        on_chunk: Callable[[], None],
        chunk_s: float = 0.1,
        clock=None,
        camera: threading.Thread | None = None,
    ):
        super().__init__(name=f"device-session-{spool_session.session_id}", daemon=True)
        self.device = device
        self.spool_session = spool_session
        self.on_chunk = on_chunk  # called (on this thread) after each spooled chunk
        self.chunk_s = chunk_s
        self.clock = clock  # recorder.camera.clock.ClockSync, or None
        self.camera = camera  # recorder.camera.streamer.CameraStreamer, or None
        self.stop_requested = threading.Event()
        self.error: str | None = None
        self._contact_requests: queue.SimpleQueue = queue.SimpleQueue()

    def run(self) -> None:
        reason = "stopped by user"
        try:
            self.device.prepare()
            self.device.start()
            if self.camera is not None:
                self.camera.start()
            reason = self._stream_until_stopped()
            self.device.stop()
            while self._spool_next_read(timeout_s=0.0):  # drain what the device holds
                pass
        except Exception as exc:  # the device failed: keep what was spooled, report it
            log.exception("device failed")
            self.error = reason = f"device failed: {exc}"
        finally:
            self._refuse_contact_requests()
            self._stop_camera()
            self.device.release()
            self.spool_session.mark_stopped(reason)
            self.on_chunk()

    def _stream_until_stopped(self) -> str:
        while not self.stop_requested.wait(self.chunk_s):
            if self._spool_next_read(timeout_s=self.chunk_s) == 0 and self._exhausted():
                return "device finished"
            self._serve_contact_requests()
        return "stopped by user"

    # ------------------------------------------------------------ contact checks

    def request_contact(self, seconds: float) -> Future:
        """Ask for an electrode contact check; the future gets the device's
        ContactReading, or the DeviceError that says why there is none."""
        future: Future = Future()
        if getattr(self.device, "read_contact", None) is None:
            future.set_exception(
                DeviceError(f"a {self.device.info.kind} device cannot measure contact")
            )
        else:
            self._contact_requests.put((seconds, future))
        return future

    def _serve_contact_requests(self) -> None:
        while True:
            try:
                seconds, future = self._contact_requests.get_nowait()
            except queue.Empty:
                return
            if not future.set_running_or_notify_cancel():
                continue  # the agent stopped waiting
            try:
                self._spool_next_read(timeout_s=0.0)  # keep the EMG read before it
                future.set_result(self.device.read_contact(seconds))
            except Exception as exc:
                future.set_exception(exc)
                if getattr(self.device, "in_impedance_mode", False):
                    raise  # no longer EMG: end the recording, keeping what it has

    def _refuse_contact_requests(self) -> None:
        while True:
            try:
                _, future = self._contact_requests.get_nowait()
            except queue.Empty:
                return
            if future.set_running_or_notify_cancel():
                future.set_exception(
                    DeviceError("the recording ended before the check")
                )

    def _stop_camera(self) -> None:
        if self.camera is not None and self.camera.is_alive():
            self.camera.stop_requested.set()
            self.camera.join()

    def _exhausted(self) -> bool:
        return bool(getattr(self.device, "exhausted", False))

    def _spool_next_read(self, timeout_s: float) -> int:
        samples = self.device.read(timeout_s)
        if self.clock is not None and len(samples):
            self.clock.observe(float(samples.time[-1]), time.time())
        for start in range(0, len(samples), MAX_CHUNK_SAMPLES):
            piece = samples.slice(start, start + MAX_CHUNK_SAMPLES)
            frame = encode_chunk(
                self.spool_session.session_id,
                STREAM_EMG,
                self.spool_session.next_seq,
                piece,
            )
            self.spool_session.add_chunk(frame, len(piece), self.device.dropped_packets)
            self.on_chunk()
        return len(samples)
