"""--save-video: keep the camera's frames on this laptop, never sent anywhere.

Per recording, DIR/session-<id>.mp4 holds the frames as captured, and
DIR/session-<id>.frames.csv the EMG-clock time of each frame (row k = frame k), so
the video lines up with the session file's frame_time. Nothing is sent unless the
session's owner asks for it on the portal: the server then sends `video.request` and
`upload_saved_video` posts both files over HTTP(S) with the agent's token.
"""

from __future__ import annotations

import hashlib
import json
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np

UPLOAD_BLOCK_BYTES = 1 << 20
UPLOAD_ATTEMPTS = 3  # network errors and 5xx are retried; a 4xx never is
UPLOAD_RETRY_DELAY_S = 2.0
UPLOAD_TIMEOUT_S = 60.0  # per socket operation, not for the whole file


class VideoSaver:
    def __init__(self, directory: str | Path, session_id: int, fps: float = 30.0):
        self.directory = Path(directory)
        self.video_path, self.times_path = saved_video_paths(directory, session_id)
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


# ---------------------------------------------------------------- upload on request


class VideoUploadError(RuntimeError):
    """The saved video could not be sent; str() says why, for the portal page."""


def saved_video_paths(directory: str | Path, session_id: int) -> tuple[Path, Path]:
    """(video, frame times CSV) of a session under a --save-video directory."""
    directory = Path(directory)
    return (
        directory / f"session-{session_id}.mp4",
        directory / f"session-{session_id}.frames.csv",
    )


def http_base_url(server_url: str) -> str:
    """The server's HTTP(S) address from the agent's websocket one."""
    schemes = {"ws": "http", "wss": "https", "http": "http", "https": "https"}
    scheme, separator, rest = server_url.partition("://")
    if not separator or scheme.lower() not in schemes:
        raise VideoUploadError(
            f"server address {server_url!r} must start with ws://, wss://, http:// "
            "or https://"
        )
    return f"{schemes[scheme.lower()]}://{rest.rstrip('/')}"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(UPLOAD_BLOCK_BYTES), b""):
            digest.update(block)
    return digest.hexdigest()


def upload_saved_video(
    server_url: str,
    token: str,
    directory: str | Path,
    session_id: int,
    timeout_s: float = UPLOAD_TIMEOUT_S,
    retry_delay_s: float | None = None,  # None: UPLOAD_RETRY_DELAY_S
) -> dict:
    """Send a session's saved video and its frame times to the server.

    The frame times go first, so that a video the server shows as complete always
    has them. Each file is streamed from disk with its size and SHA-256; the server
    stores it only once both match, replacing any earlier copy, so sending again
    after any failure is safe. Returns the server's answer for the video.
    """
    video_path, times_path = saved_video_paths(directory, session_id)
    if not video_path.is_file():
        raise VideoUploadError(
            f"this agent has no saved video of session {session_id} "
            f"({video_path} does not exist)"
        )
    url = f"{http_base_url(server_url)}/agent/sessions/{session_id}/video"
    if retry_delay_s is None:
        retry_delay_s = UPLOAD_RETRY_DELAY_S
    if times_path.is_file():
        _post_file(
            url + "/frames", times_path, "text/csv", token, timeout_s, retry_delay_s
        )
    return _post_file(url, video_path, "video/mp4", token, timeout_s, retry_delay_s)


def _post_file(
    url: str,
    path: Path,
    content_type: str,
    token: str,
    timeout_s: float,
    retry_delay_s: float,
) -> dict:
    headers = {
        "Authorization": f"Token {token}",
        "Content-Type": content_type,
        # an explicit length: urllib then streams the open file instead of chunking
        "Content-Length": str(path.stat().st_size),
        "X-Content-SHA256": file_sha256(path),
    }
    for attempt in range(1, UPLOAD_ATTEMPTS + 1):
        try:
            with open(path, "rb") as body:
                request = urllib.request.Request(
                    url, data=body, headers=headers, method="POST"
                )
                with urllib.request.urlopen(request, timeout=timeout_s) as response:
                    return json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:  # before URLError: it is one
            problem = f"the server refused {path.name}: HTTP {exc.code}: {_why(exc)}"
            if exc.code < 500:
                raise VideoUploadError(problem) from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", None) or exc
            problem = f"could not send {path.name} to {url}: {reason}"
        if attempt == UPLOAD_ATTEMPTS:
            raise VideoUploadError(f"{problem} (tried {UPLOAD_ATTEMPTS} times)")
        time.sleep(retry_delay_s * 2 ** (attempt - 1))
    raise AssertionError("unreachable")


def _why(error: urllib.error.HTTPError) -> str:
    """The server's {"error": ...} message, or the HTTP reason."""
    try:
        return str(json.loads(error.read())["error"])
    except (ValueError, KeyError, TypeError, OSError):
        return str(error.reason)
