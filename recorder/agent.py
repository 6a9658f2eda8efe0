"""The local agent: connects to the server, waits for start/stop, streams the spool.

One asyncio loop owns the websocket; each recording's device runs on its own thread
(`DeviceStreamer`) and only writes to the spool, and so does its camera thread
(`CameraStreamer`: frames -> MediaPipe -> streaming IK -> label chunks). The sender
sends whatever the spool holds that the server has not acknowledged, EMG and labels
alike, so after any disconnect it simply starts again from the spool. Reconnects
back off exponentially. About once a second the agent reports each recording's
camera health (`camera.status`: fps, labeling latency, "no frames") for the page.
On `video.request` it uploads a --save-video file or says why it cannot
(recorder/video_requests.py); on `device.contact` it measures the electrodes'
contact in the background (recorder/contact_checks.py).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import websockets

from recorder import __version__
from recorder.camera.clock import ClockSync
from recorder.camera.labeler import FrameLabeler
from recorder.camera.sources import FrameSource, open_camera
from recorder.camera.streamer import CameraStreamer
from recorder.camera.video import VideoSaver
from recorder.contact_checks import ContactChecks
from recorder.devices import EmgSource, open_device
from recorder.protocol import (
    STREAM_EMG,
    STREAM_LABELS,
    ProtocolError,
    make_message,
    parse_message,
)
from recorder.spool import Spool, SpoolSession
from recorder.streamer import DeviceStreamer
from recorder.video_requests import VideoRequests

log = logging.getLogger("recorder.agent")

# Error codes after which reconnecting cannot help.
FATAL_CODES = {"bad_token", "token_revoked"}
CAMERA_STATUS_INTERVAL_S = 1.0
STREAMS = (STREAM_EMG, STREAM_LABELS)


class LinkStats:
    """Round trips of chunks: from sending to the server's acknowledgement."""

    def __init__(self, keep: int = 100_000):
        self._sent_at_s: dict[tuple[int, int], float] = {}
        self.ack_ms: deque[float] = deque(maxlen=keep)
        self.chunks_sent = 0

    def sent(self, session_id: int, seq: int) -> None:
        self._sent_at_s[(session_id, seq)] = time.monotonic()
        self.chunks_sent += 1

    def acknowledged(self, session_id: int, seq: int) -> None:
        sent_at_s = self._sent_at_s.pop((session_id, seq), None)
        if sent_at_s is not None:
            self.ack_ms.append(1000.0 * (time.monotonic() - sent_at_s))


class AgentFatalError(RuntimeError):
    """The server refused this agent for good (for example, a revoked token)."""


@dataclass
class AgentConfig:
    # e.g. ws://127.0.0.1:8000 (the agent path is appended); several servers of one
    # site separated by commas: after a failed or dropped connection the agent tries
    # the next one, so a dead server process loses nothing
    server_url: str
    token: str
    spool_dir: Path
    device: str = "simulated"
    device_options: dict = field(default_factory=dict)
    camera: str = "none"  # "none" | "simulated" | "webcam" | "video"
    camera_options: dict = field(default_factory=dict)
    save_video_dir: Path | None = None  # keep the frames here; sent only on request
    handedness: str = "right"  # which hand the camera films, for the IK's hand model
    # 100 samples at 500 Hz per chunk: one server keeps up with 100 agents at this size
    # (docs/benchmarks.md); halving it doubles the messages per second.
    chunk_s: float = 0.2
    # While a live 3D hand watches a session (the server says recording.live), chunks
    # are this long: one pose update per chunk, so 25 poses/s instead of 5.
    live_chunk_s: float = 0.04
    max_in_flight: int = 64  # chunks sent but not yet acknowledged
    ping_interval_s: float = 5.0
    reconnect_initial_s: float = 0.5
    reconnect_max_s: float = 10.0

    @property
    def server_urls(self) -> list[str]:
        return parse_server_urls(self.server_url)


def parse_server_urls(addresses: str) -> list[str]:
    """The comma-separated server addresses, in the order they are tried; a
    ValueError names a bad one."""
    urls = [url.strip() for url in addresses.split(",") if url.strip()]
    if not urls:
        raise ValueError("no server address given")
    for url in urls:
        if not url.startswith(("ws://", "wss://")):
            raise ValueError(f"server address {url!r} must start with ws:// or wss://")
    return urls


def agent_url(server_url: str) -> str:
    return server_url.rstrip("/") + "/ws/agent/"


class Agent:
    def __init__(
        self,
        config: AgentConfig,
        device_factory: Callable[[], EmgSource] | None = None,
        camera_factory: Callable[[EmgSource], FrameSource | None] | None = None,
    ):
        self.config = config
        self.server_urls = config.server_urls
        self._server_index = 0  # the server this agent connects to next
        self.spool = Spool(config.spool_dir)
        self.device_factory = device_factory or (
            lambda: open_device(config.device, **config.device_options)
        )
        # the simulated camera films the simulated device's person: it gets the device
        self.camera_factory = camera_factory or (
            lambda device: open_camera(config.camera, device, **config.camera_options)
        )
        self.device_info = self.device_factory().info.as_dict()
        self.streamers: dict[int, DeviceStreamer] = {}
        self.sessions = {
            sid: self.spool.open_session(sid) for sid in self.spool.session_ids()
        }
        self.connected = asyncio.Event()
        self.link = LinkStats()
        self._samples_of_closed_sessions = 0
        self._wakeup = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        # JSON messages for the server that handlers queue (video.unavailable, contact
        # reports), kept across reconnects until sent; appended from upload threads too
        self.replies: deque[str] = deque()
        self._replies_queued = asyncio.Event()
        self.videos = VideoRequests(
            config.save_video_dir, config.token, lambda: self.server_url,
            self.recording_streamer, self._reply,
        )  # fmt: skip
        self.contact_checks = ContactChecks(
            self.device_info.get("kind", ""), self.recording_streamer, self._reply
        )

    # ------------------------------------------------------------ connection loop

    @property
    def server_url(self) -> str:
        """The server this agent is connected to, or tries next."""
        return self.server_urls[self._server_index]

    def next_server(self) -> None:
        """After a failed or dropped connection: move on to the next server."""
        self._server_index = (self._server_index + 1) % len(self.server_urls)

    async def run_forever(self, stop: asyncio.Event | None = None) -> None:
        """Stay connected (reconnecting with backoff) until `stop` is set."""
        self._loop = asyncio.get_running_loop()
        self._mark_interrupted_recordings()
        stop = stop or asyncio.Event()
        delay_s = self.config.reconnect_initial_s
        while not stop.is_set():
            try:
                await self._run_connection(stop)
                delay_s = self.config.reconnect_initial_s
                if not stop.is_set():  # closed by the server: it may be shutting down
                    closed_url = self.server_url
                    self.next_server()
                    log.info(
                        "the server at %s closed the connection; trying %s",
                        closed_url,
                        self.server_url,
                    )
            except AgentFatalError:
                raise
            except (TimeoutError, OSError, websockets.WebSocketException) as exc:
                failed_url = self.server_url
                self.next_server()
                log.warning(
                    "cannot reach the server at %s (%s); trying %s in %.1f s",
                    agent_url(failed_url),
                    _describe(exc),
                    self.server_url,
                    delay_s,
                )
            self.connected.clear()
            try:
                # jittered, so that agents cut off together don't all return together
                await asyncio.wait_for(stop.wait(), delay_s * random.uniform(0.5, 1.0))
            except TimeoutError:
                pass
            delay_s = min(delay_s * 2, self.config.reconnect_max_s)
        self.stop_all_recordings()

    def _mark_interrupted_recordings(self) -> None:
        # A recording whose agent process died cannot continue: deliver what it has.
        for session in self.sessions.values():
            if not session.stopped:
                session.mark_stopped("agent restarted during the recording")

    async def _run_connection(self, stop: asyncio.Event) -> None:
        headers = {"Authorization": f"Token {self.config.token}"}
        async with websockets.connect(
            agent_url(self.server_url),
            additional_headers=headers,
            max_size=2**22,
            open_timeout=10,
            ping_interval=20,
        ) as websocket:
            await self._greet(websocket)
            tasks = [
                asyncio.create_task(self._send_spooled(websocket)),
                asyncio.create_task(self._receive(websocket)),
                asyncio.create_task(self._ping(websocket)),
                asyncio.create_task(self._report_cameras(websocket)),
                asyncio.create_task(self._send_replies(websocket)),
                asyncio.create_task(stop.wait()),
            ]
            try:
                done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    task.result()  # re-raise a failure of any one of them
            finally:
                for task in tasks:
                    task.cancel()
                self.connected.clear()

    async def _greet(self, websocket) -> None:
        sessions = [
            {"session": s.session_id, "status": s.state["status"]}
            for s in self.sessions.values()
        ]
        await websocket.send(
            make_message(
                "agent.hello",
                agent_version=__version__,
                device=self.device_info,
                sessions=sessions,
            )
        )
        reply = parse_message(await asyncio.wait_for(websocket.recv(), 10))
        if reply["type"] == "error":
            if reply["code"] in FATAL_CODES:
                raise AgentFatalError(reply["message"])
            raise ProtocolError(reply["code"], reply["message"])
        log.info("connected to %s as agent %r", self.server_url, reply.get("agent"))
        for session_id in self.streamers:  # a new connection: the server asks again
            self.set_live(session_id, False)
        self.connected.set()
        self._wakeup.set()

    # ------------------------------------------------------------ sending

    async def _send_spooled(self, websocket) -> None:
        """Send every unacknowledged chunk, oldest first, max_in_flight at a time."""
        # (session, stream) -> seqs sent on this connection
        in_flight: dict[tuple[int, int], set[int]] = {}
        stop_reported: set[int] = set()
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            for session in list(self.sessions.values()):
                for stream in STREAMS:
                    sent = in_flight.setdefault((session.session_id, stream), set())
                    sent &= session.pending_of(stream)  # acknowledged: not in flight
                    budget = self.config.max_in_flight - sum(
                        map(len, in_flight.values())
                    )
                    await self._send_chunks(websocket, session, stream, sent, budget)
                finished = session.stopped and session.all_acknowledged
                if finished and session.session_id not in stop_reported:
                    await websocket.send(_stopped_message(session))
                    stop_reported.add(session.session_id)

    async def _send_chunks(
        self, websocket, session: SpoolSession, stream: int, sent: set[int], budget: int
    ) -> None:
        for seq in sorted(session.pending_of(stream) - sent)[: max(budget, 0)]:
            await websocket.send(session.frame(seq, stream))
            if stream == STREAM_EMG:
                self.link.sent(session.session_id, seq)
            sent.add(seq)

    async def _ping(self, websocket) -> None:
        while True:
            # jittered, so that agents started together don't ping together
            await asyncio.sleep(self.config.ping_interval_s * random.uniform(0.8, 1.2))
            await websocket.send(make_message("agent.ping"))

    async def _report_cameras(self, websocket) -> None:
        """Each recording's camera health, about once a second, for the page."""
        while True:
            await asyncio.sleep(CAMERA_STATUS_INTERVAL_S)
            for session_id, streamer in list(self.streamers.items()):
                if streamer.is_alive():
                    await websocket.send(
                        make_message(
                            "camera.status",
                            session=session_id,
                            **camera_status(streamer.camera),
                        )
                    )

    # ------------------------------------------------------------ receiving

    async def _receive(self, websocket) -> None:
        async for raw in websocket:
            try:
                message = parse_message(raw)
            except ProtocolError as exc:
                log.error(
                    "server sent a message this agent does not understand: %s", exc
                )
                continue
            if message["type"] == "device.contact":
                self.contact_checks.start(message["session"])
            else:
                self._handle(message)

    def _handle(self, message: dict) -> None:
        kind = message["type"]
        if kind == "chunk.ack":
            session = self.sessions.get(message["session"])
            if session and message["stream"] in STREAMS:
                session.acknowledge(message["seqs"], message["stream"])
                if message["stream"] == STREAM_EMG:
                    for seq in message["seqs"]:
                        self.link.acknowledged(session.session_id, seq)
                self._wakeup.set()
        elif kind == "recording.start":
            self.start_recording(message["session"])
        elif kind == "recording.stop":
            self.stop_recording(message["session"])
        elif kind == "recording.live":
            self.set_live(message["session"], message["live"], message.get("chunk_s"))
        elif kind == "recording.closed":
            self._forget_session(message["session"], message["status"])
        elif kind == "video.request":
            self.videos.answer(message["session"])
        elif kind == "error":
            log.error("server: %s (%s)", message["message"], message["code"])

    # ------------------------------------------------------------ recordings

    def start_recording(self, session_id: int) -> None:
        if session_id in self.sessions:
            return  # already recording (the server repeats start after a reconnect)
        session = self.spool.open_session(session_id)
        self.sessions[session_id] = session
        device = self.device_factory()
        clock = ClockSync()
        streamer = DeviceStreamer(
            device,
            session,
            self._wake_from_thread,
            chunk_s=self.config.chunk_s,
            clock=clock,
            camera=self._camera_streamer(device, session, clock),
        )
        self.streamers[session_id] = streamer
        streamer.start()
        log.info(
            "recording session %d from %s, camera %s",
            session_id,
            self.config.device,
            self.config.camera,
        )

    def _camera_streamer(self, device, session: SpoolSession, clock: ClockSync):
        """The recording's camera thread, or None without a camera."""
        source = self.camera_factory(device)
        if source is None:
            return None
        video = None
        if self.config.save_video_dir is not None:
            video = VideoSaver(self.config.save_video_dir, session.session_id)
        handedness, detect_images = self.config.handedness, source.gives_images
        return CameraStreamer(
            source,
            session,
            clock,
            self._wake_from_thread,
            lambda: FrameLabeler(handedness=handedness, detect_images=detect_images),
            chunk_s=self.config.chunk_s,
            video=video,
        )

    def set_live(
        self, session_id: int, live: bool, asked_chunk_s: float | None = None
    ) -> None:
        """Short chunks while someone watches the session's live hand: as long as
        the server asks (a busy server asks for longer ones), but never shorter than
        live_chunk_s nor longer than recording's chunk_s."""
        streamer = self.streamers.get(session_id)
        if streamer:
            chunk_s = self.config.chunk_s
            if live:
                chunk_s = min(
                    max(self.config.live_chunk_s, asked_chunk_s or 0.0),
                    self.config.chunk_s,
                )
            streamer.chunk_s = chunk_s
            if streamer.camera is not None:
                streamer.camera.chunk_s = chunk_s

    def recording_streamer(self, session_id: int) -> DeviceStreamer | None:
        """The session's device thread while it records, else None."""
        streamer = self.streamers.get(session_id)
        return streamer if streamer is not None and streamer.is_alive() else None

    def stop_recording(self, session_id: int) -> None:
        streamer = self.streamers.get(session_id)
        if streamer:
            streamer.stop_requested.set()
        elif session_id in self.sessions:
            self._wakeup.set()  # already stopped: the sender reports it again

    def stop_all_recordings(self) -> None:
        for streamer in self.streamers.values():
            streamer.stop_requested.set()
        for streamer in self.streamers.values():
            streamer.join(timeout=10)

    @property
    def samples_recorded(self) -> int:
        """Samples the device produced in this agent's recordings (since it started)."""
        open_samples = sum(s.samples for s in self.sessions.values())
        return self._samples_of_closed_sessions + open_samples

    def _forget_session(self, session_id: int, status: str) -> None:
        session = self.sessions.pop(session_id, None)
        self.streamers.pop(session_id, None)
        if session and session.all_acknowledged:
            self._samples_of_closed_sessions += session.samples
            session.delete()
            log.info("session %d closed by the server (%s)", session_id, status)

    def _reply(self, message: str) -> None:
        """Queue a message for the server; safe from any thread."""
        self.replies.append(message)
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._replies_queued.set)

    async def _send_replies(self, websocket) -> None:
        """Send queued replies in order; one is dropped only once it is sent."""
        while True:
            while self.replies:
                await websocket.send(self.replies[0])
                self.replies.popleft()
            await self._replies_queued.wait()
            self._replies_queued.clear()

    def _wake_from_thread(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._wakeup.set)


def _stopped_message(session: SpoolSession) -> str:
    return make_message(
        "recording.stopped",
        session=session.session_id,
        chunks=session.next_seq,
        samples=session.samples,
        dropped_packets=session.state["dropped_packets"],
        reason=session.state["reason"],
        label_chunks=session.next_label_seq,
    )


def camera_status(camera) -> dict:
    """The camera.status fields of a recording's camera thread (None: no camera)."""
    if camera is None:
        return {"state": "off", "fps": 0.0, "latency_ms": 0.0, "message": "no camera"}
    return camera.status()


def _describe(exc: Exception) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused: is the server running?"
    if isinstance(exc, websockets.ConnectionClosed):
        return "the connection dropped"
    if isinstance(exc, websockets.InvalidStatus):
        return f"the server answered HTTP {exc.response.status_code}"
    return str(exc) or type(exc).__name__
