"""The agent's answers to `video.request`: upload the recording's --save-video file
on a thread of its own (HTTP, not the websocket), or reply `video.unavailable`
saying why it cannot.

The upload runs on its own thread because a video of an hour is gigabytes, and the
agent's loop must keep streaming and acknowledging other recordings meanwhile.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

from recorder.camera.video import (
    VideoUploadError,
    saved_video_paths,
    upload_saved_video,
)
from recorder.protocol import make_message

log = logging.getLogger("recorder.agent")


class VideoRequests:
    """`reply` queues a message for the server from any thread;
    `recording_streamer` gives a session's device thread while it records (else
    None); `server_url` is where the agent is connected now."""

    def __init__(
        self,
        save_video_dir: Path | None,
        token: str,
        server_url: Callable[[], str],
        recording_streamer: Callable[[int], object | None],
        reply: Callable[[str], None],
    ):
        self.save_video_dir = save_video_dir
        self.token = token
        self.server_url = server_url
        self.recording_streamer = recording_streamer
        self.reply = reply
        self.uploads: dict[int, threading.Thread] = {}

    def answer(self, session_id: int) -> None:
        """Start the session's upload, or reply why there is none."""
        reason = self.why_no_video(session_id)
        if reason is not None:
            self._unavailable(session_id, reason)
            return
        running = self.uploads.get(session_id)
        if running is not None and running.is_alive():
            return  # already on its way (the server repeats requests on reconnect)
        thread = threading.Thread(
            target=self._upload,
            args=(session_id,),
            name=f"video-upload-{session_id}",
            daemon=True,
        )
        self.uploads[session_id] = thread
        thread.start()

    def why_no_video(self, session_id: int) -> str | None:
        directory = self.save_video_dir
        if directory is None:
            return "this agent runs without --save-video, so it keeps no video"
        if self.recording_streamer(session_id) is not None:
            return "the session is still recording; ask again once it has stopped"
        video_path, _ = saved_video_paths(directory, session_id)
        if not video_path.is_file():
            return (
                f"this agent has no saved video of session {session_id} "
                f"(no {video_path.name} in {directory})"
            )
        return None

    def _upload(self, session_id: int) -> None:
        """On the upload thread: send the files; a failure goes to the page."""
        try:
            answer = upload_saved_video(
                self.server_url(), self.token, self.save_video_dir, session_id
            )
        except (VideoUploadError, OSError) as exc:  # OSError: the file went away
            log.error("video of session %d not sent: %s", session_id, exc)
            self._unavailable(session_id, f"the upload failed: {exc}"[:2000])
            return
        log.info("video of session %d sent (%s bytes)", session_id, answer.get("bytes"))

    def _unavailable(self, session_id: int, reason: str) -> None:
        self.reply(make_message("video.unavailable", session=session_id, reason=reason))
