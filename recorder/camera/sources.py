"""Frame sources: a webcam (OpenCV), a video file, or the simulated person's camera.

Lifecycle as for EMG devices: open, read (repeatedly), close. `read` returns one
frame, or None when none came within the timeout. Every frame carries its capture
time on the host clock (`time.time()`): arrival minus the source's known pipeline
delay (`delay_s`); clock.py puts it on the EMG clock.
"""

from __future__ import annotations

import abc
import importlib
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# a webcam that answers "no frame" is polled this often, not in a busy loop
RETRY_SLEEP_S = 0.05


class CameraError(RuntimeError):
    """A camera or video could not be opened or read; the message says which."""


@dataclass
class CameraFrame:
    """One frame: an RGB image, or (simulated camera) landmarks already detected.

    host_time_s: capture time on the host clock, s.
    arrival_host_s: when the agent received it, s (for the labeling latency).
    rgb: (H, W, 3) uint8, or None.
    landmarks_m: (21, 3) world landmarks in metres, NaN when no hand; or None.
    score: the detection score that goes with landmarks_m.
    """

    host_time_s: float
    arrival_host_s: float
    rgb: np.ndarray | None = None
    landmarks_m: np.ndarray | None = None
    score: float = math.nan


class FrameSource(abc.ABC):
    description: str = "camera"
    fps: float = 30.0  # nominal frame rate
    # capture -> arrival at the agent, s; subtracted from the arrival time
    delay_s: float = 0.0
    gives_images = True  # False: frames carry landmarks already (simulated)

    def open(self) -> None:  # noqa: B027 (optional hook)
        """Connect to the camera or file; raise CameraError naming the problem."""

    @abc.abstractmethod
    def read(self, timeout_s: float) -> CameraFrame | None:
        """The next frame, or None when none came within about `timeout_s`."""

    def close(self) -> None:  # noqa: B027 (optional hook)
        """Release the camera. Safe to call more than once."""

    @property
    def exhausted(self) -> bool:
        """True once a finite source (a video file) has no more frames."""
        return False


def _bgr_to_rgb(bgr: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(bgr[:, :, ::-1])


class WebcamSource(FrameSource):
    """An OpenCV camera by index. `delay_s` is the camera's capture-to-arrival
    delay: USB webcams differ (tens of ms), so it is a setting, 0 by default."""

    def __init__(self, index: int = 0, delay_s: float = 0.0):
        self.index = index
        self.delay_s = delay_s
        self.description = f"webcam {index}"
        self._capture = None

    def open(self) -> None:
        import cv2

        self._capture = cv2.VideoCapture(self.index)
        if not self._capture.isOpened():
            raise CameraError(
                f"cannot open webcam {self.index}: is it connected, and not in use "
                "by another program?"
            )
        self.fps = self._capture.get(cv2.CAP_PROP_FPS) or 30.0

    def read(self, timeout_s: float) -> CameraFrame | None:
        if self._capture is None:
            time.sleep(min(timeout_s, RETRY_SLEEP_S))
            return None
        ok, bgr = self._capture.read()  # blocks for up to one frame period
        arrival_s = time.time()
        if not ok:
            time.sleep(min(timeout_s, RETRY_SLEEP_S))
            return None
        return CameraFrame(arrival_s - self.delay_s, arrival_s, rgb=_bgr_to_rgb(bgr))

    def close(self) -> None:
        if self._capture is not None:
            self._capture.release()
            self._capture = None


class VideoFileSource(FrameSource):
    """A video file played as a camera. Frame k is captured at open time + its
    position in the file; realtime=True also waits until then (a live camera),
    realtime=False delivers frames as fast as they are read (tests)."""

    def __init__(self, path: str | Path, realtime: bool = True):
        self.path = Path(path)
        self.realtime = realtime
        self.description = f"video file {self.path.name}"
        self._capture = None
        self._start_host_s = 0.0
        self._ended = False
        self.frames_read = 0

    def open(self) -> None:
        import cv2

        if not self.path.is_file():
            raise CameraError(f"video file not found: {self.path}")
        self._capture = cv2.VideoCapture(str(self.path))
        if not self._capture.isOpened():
            raise CameraError(f"cannot decode video file {self.path}")
        self.fps = self._capture.get(cv2.CAP_PROP_FPS) or 30.0
        self._start_host_s = time.time()

    def read(self, timeout_s: float) -> CameraFrame | None:
        import cv2

        if self._capture is None or self._ended:
            time.sleep(min(timeout_s, RETRY_SLEEP_S))
            return None
        ok, bgr = self._capture.read()
        if not ok:
            self._ended = True
            return None
        position_s = self._capture.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
        capture_s = self._start_host_s + position_s
        if self.realtime:
            time.sleep(max(0.0, capture_s - time.time()))
        self.frames_read += 1
        return CameraFrame(capture_s, time.time(), rgb=_bgr_to_rgb(bgr))

    @property
    def exhausted(self) -> bool:
        return self._ended

    def close(self) -> None:
        if self._capture is not None:
            self._capture.release()
            self._capture = None


class SimulatedCamera(FrameSource):
    """The simulated person's camera: landmarks of the same hand that drives the
    simulated armband's EMG (no images, no MediaPipe).

    The simulator knows the truth: frame k shows the hand at simulator time
    τ_k = k / fps, the moment EMG sample τ_k·rate is acquired, which the board
    stamps `device.start_time_s + device.clock_offset_s + τ_k`. The frame reaches
    the agent `delay_s` (± `jitter_s`) after capture, as a real camera pipeline
    does; `true_emg_times_s` lists every delivered frame's true EMG time.
    """

    def __init__(self, device, delay_s: float = 0.05, jitter_s: float = 0.005):
        from recorder.simulation import ArmbandSimulator

        self.device = device
        # its own simulator (same seed, same hand): the device thread owns the other
        self.simulator = ArmbandSimulator(device.simulator.config)
        self.fps = self.simulator.config.camera_fps
        self.delay_s = delay_s
        self.jitter_s = jitter_s
        self.description = "simulated camera"
        self.gives_images = False
        self.true_emg_times_s: list[float] = []
        self._next_index: int | None = None
        self._rng = np.random.default_rng([self.simulator.config.seed, 505])

    def read(self, timeout_s: float) -> CameraFrame | None:
        start_s = self.device.start_time_s
        if start_s is None:  # the armband has not started: nothing to film yet
            time.sleep(min(timeout_s, RETRY_SLEEP_S))
            return None
        if self._next_index is None:
            self._next_index = math.ceil((time.time() - start_s) * self.fps)
        frame_s = self._next_index / self.fps  # τ_k, simulator time
        arrival_s = start_s + frame_s + self.delay_s
        arrival_s += self._rng.uniform(-self.jitter_s, self.jitter_s)
        wait_s = arrival_s - time.time()
        if wait_s > timeout_s:
            time.sleep(timeout_s)
            return None
        time.sleep(max(wait_s, 0.0))
        landmarks_m, score = self.simulator.camera_landmarks(np.array([frame_s]))
        self._next_index += 1
        self.true_emg_times_s.append(start_s + self.device.clock_offset_s + frame_s)
        return CameraFrame(
            host_time_s=arrival_s - self.delay_s,
            arrival_host_s=arrival_s,
            landmarks_m=landmarks_m[0],
            score=float(score[0]),
        )


class NoFramesSource(FrameSource):
    """A camera that opens but never delivers a frame (a covered or hung webcam)."""

    description = "camera"

    def read(self, timeout_s: float) -> CameraFrame | None:
        time.sleep(timeout_s)
        return None


# name -> "module:Class"
CAMERAS = {
    "webcam": "recorder.camera.sources:WebcamSource",
    "video": "recorder.camera.sources:VideoFileSource",
    "simulated": "recorder.camera.sources:SimulatedCamera",
}
CAMERA_CHOICES = ("none", *CAMERAS)


def open_camera(name: str, device=None, **options) -> FrameSource | None:
    """The camera called `name` (not yet opened), or None for "none". The simulated
    camera films the simulated armband's person, so it needs that `device`."""
    if name == "none":
        return None
    if name not in CAMERAS:
        raise ValueError(f"unknown camera {name!r}; choose one of: {CAMERA_CHOICES}")
    if name == "simulated":
        if getattr(device, "info", None) is None or device.info.kind != "simulated":
            raise ValueError(
                "the simulated camera films the simulated armband's person: use it "
                "with --device simulated"
            )
        options["device"] = device
    module_name, class_name = CAMERAS[name].split(":")
    return getattr(importlib.import_module(module_name), class_name)(**options)
