"""The agent's answer to video.request: it uploads a --save-video file over HTTP, or
says why it cannot. A tiny HTTP server here stands in for the portal."""

from __future__ import annotations

import hashlib
import json
import threading
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from recorder.agent import Agent, AgentConfig
from recorder.camera import video as video_module
from recorder.camera.video import VideoSaver, VideoUploadError, http_base_url
from recorder.protocol import make_message, parse_message

SESSION = 7


class FakePortal(ThreadingHTTPServer):
    """Records each POST (path, headers, body) and answers with `status`."""

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _PortalHandler)
        self.posts: list[tuple[str, Message, bytes]] = []
        self.status = 200
        self.error = ""

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.server_address[1]}"


class _PortalHandler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.posts.append((self.path, self.headers, body))  # any case
        status = self.server.status
        answer = {"error": self.server.error} if status >= 400 else {"bytes": len(body)}
        payload = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):  # keep the test output quiet
        pass


@pytest.fixture
def portal():
    server = FakePortal()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def make_agent(tmp_path, server_url="ws://127.0.0.1:9", save_video=True) -> Agent:
    config = AgentConfig(
        server_url=server_url,
        token="emgagent_secret",
        spool_dir=tmp_path / "spool",
        save_video_dir=tmp_path / "videos" if save_video else None,
    )
    return Agent(config)


def save_tiny_video(directory, session_id: int = SESSION) -> VideoSaver:
    """Three 32×32 frames through the real --save-video writer (OpenCV)."""
    saver = VideoSaver(directory, session_id)
    for k in range(3):
        saver.write(np.full((32, 32, 3), 40 * k, np.uint8))
    saver.write_times([100.0, 100.033, 100.067])
    saver.close()
    return saver


def ask_for_video(agent: Agent, session_id: int = SESSION) -> None:
    agent._handle(parse_message(make_message("video.request", session=session_id)))
    upload = agent.videos.uploads.get(session_id)
    if upload is not None:
        upload.join(timeout=30)
        assert not upload.is_alive(), "the upload thread did not finish"


def replies(agent: Agent) -> list[dict]:
    return [parse_message(text) for text in agent.replies]


def test_it_uploads_the_saved_video_and_its_frame_times(tmp_path, portal):
    agent = make_agent(tmp_path, portal.ws_url)
    saver = save_tiny_video(agent.config.save_video_dir)
    ask_for_video(agent)
    assert replies(agent) == []
    (times_path, times_headers, times), (video_path, headers, video) = portal.posts
    # frame times first: a video the server shows as complete has them
    assert times_path == f"/agent/sessions/{SESSION}/video/frames"
    assert times == saver.times_path.read_bytes()
    assert video_path == f"/agent/sessions/{SESSION}/video"
    assert video == saver.video_path.read_bytes() and len(video) > 0
    assert headers["Authorization"] == "Token emgagent_secret"
    assert headers["Content-Type"] == "video/mp4"
    assert headers["X-Content-SHA256"] == hashlib.sha256(video).hexdigest()
    assert times_headers["X-Content-SHA256"] == hashlib.sha256(times).hexdigest()


def test_without_a_saved_file_it_says_so(tmp_path, portal):
    agent = make_agent(tmp_path, portal.ws_url)
    save_tiny_video(agent.config.save_video_dir, session_id=3)  # another session's
    ask_for_video(agent)
    [answer] = replies(agent)
    assert answer["type"] == "video.unavailable" and answer["session"] == SESSION
    assert f"no saved video of session {SESSION}" in answer["reason"]
    assert portal.posts == []


def test_without_save_video_it_says_it_keeps_none(tmp_path):
    agent = make_agent(tmp_path, save_video=False)
    ask_for_video(agent)
    [answer] = replies(agent)
    assert "without --save-video" in answer["reason"]


def test_while_still_recording_it_asks_to_wait(tmp_path):
    agent = make_agent(tmp_path)
    agent._handle(
        parse_message(
            make_message("recording.start", session=SESSION, band_rotation_deg=0)
        )
    )
    try:
        ask_for_video(agent)
    finally:
        agent.stop_all_recordings()
    [answer] = replies(agent)
    assert "still recording" in answer["reason"]


def test_a_refused_upload_is_reported_with_the_servers_reason(tmp_path, portal):
    portal.status, portal.error = 413, "the video is 3000.0 MB; at most 2048 MB"
    agent = make_agent(tmp_path, portal.ws_url)
    save_tiny_video(agent.config.save_video_dir)
    ask_for_video(agent)
    [answer] = replies(agent)
    assert answer["type"] == "video.unavailable"
    assert "HTTP 413" in answer["reason"] and "at most 2048 MB" in answer["reason"]
    assert len(portal.posts) == 1  # a 4xx is not retried (the frame times, here)


def test_an_unreachable_server_is_retried_then_reported(tmp_path, monkeypatch):
    monkeypatch.setattr(video_module, "UPLOAD_RETRY_DELAY_S", 0.0)
    agent = make_agent(tmp_path, "ws://127.0.0.1:9")  # nothing listens there
    save_tiny_video(agent.config.save_video_dir)
    ask_for_video(agent)
    [answer] = replies(agent)
    assert "could not send" in answer["reason"]
    assert f"tried {video_module.UPLOAD_ATTEMPTS} times" in answer["reason"]


@pytest.mark.parametrize(
    "server_url,http_url",
    [
        ("ws://127.0.0.1:8000", "http://127.0.0.1:8000"),
        ("wss://portal.example.org/", "https://portal.example.org"),
        ("https://portal.example.org", "https://portal.example.org"),
    ],
)
def test_the_upload_goes_to_the_servers_http_address(server_url, http_url):
    assert http_base_url(server_url) == http_url


def test_a_server_address_without_a_scheme_is_named(tmp_path):
    with pytest.raises(VideoUploadError, match="must start with ws://"):
        http_base_url("portal.example.org")
