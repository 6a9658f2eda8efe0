"""--save-video: keep the camera's frames on this laptop, never sent anywhere.

Per recording, DIR/session-<id>.mp4 holds the frames as captured, and
DIR/session-<id>.frames.csv the EMG-clock time of each frame (row k = frame k), so
the video lines up with the session file's frame_time. Uploading a saved video on
request is a follow-up; today it stays here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


class VideoSaver:
    def __init__(self, directory: str | Path, session_id: int, fps: float = 30.0):
        self.directory = Path(directory)
        self.video_path = self.directory / f"session-{session_id}.mp4"
        self.times_path = self.directory / f"session-{session_id}.frames.csv"
        self.fps = fps
        self.frames_written = 0
        self._writer = None
        self._times = None

    def write(self, rgb: np.ndarray) -> None:
        """Append one (H, W, 3) uint8 RGB frame (its size fixes the video's)."""
        if self._writer is None:
            self._open(rgb.shape[1], rgb.shape[0])
        self._writer.write(np.ascontiguousarray(rgb[:, :, ::-1]))
        self.frames_written += 1

    def _open(self, width: int, height: int) -> None:
        import cv2

        self.directory.mkdir(parents=True, exist_ok=True)
        fourcc = cv2.VideoWriter_fourcc(*"mp4v")
        self._writer = cv2.VideoWriter(
            str(self.video_path), fourcc, self.fps, (width, height)
        )
        if not self._writer.isOpened():
            raise OSError(f"cannot write the video {self.video_path}")
        self._times = open(self.times_path, "w")
        self._times.write("frame,frame_time_s\n")
        self._next_time_row = 0

    def write_times(self, frame_times_s: list[float]) -> None:
        """EMG-clock times of the next frames, in order."""
        if self._times is None:
            return
        for time_s in frame_times_s:
            self._times.write(f"{self._next_time_row},{time_s:.6f}\n")
            self._next_time_row += 1
        self._times.flush()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.release()
            self._writer = None
        if self._times is not None:
            self._times.close()
            self._times = None
