"""The local agent: connects to the server, waits for start/stop, streams the spool.

One asyncio loop owns the websocket; each recording's device runs on its own thread
(`DeviceStreamer`) and only writes to the spool. The sender sends whatever the spool
holds that the server has not acknowledged, so after any disconnect it simply starts
again from the spool. Reconnects back off exponentially.
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
from recorder.devices import EmgSource, open_device
from recorder.protocol import ProtocolError, make_message, parse_message
from recorder.spool import Spool, SpoolSession
from recorder.streamer import DeviceStreamer

log = logging.getLogger("recorder.agent")

# Error codes after which reconnecting cannot help.
FATAL_CODES = {"bad_token", "token_revoked"}


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
    server_url: str  # e.g. ws://127.0.0.1:8000 ; the agent path is appended
    token: str
    spool_dir: Path
    device: str = "simulated"
    device_options: dict = field(default_factory=dict)
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
    def agent_url(self) -> str:
        return self.server_url.rstrip("/") + "/ws/agent/"


class Agent:
    def __init__(
        self, config: AgentConfig, device_factory: Callable[[], EmgSource] | None = None
    ):
        self.config = config
        self.spool = Spool(config.spool_dir)
        self.device_factory = device_factory or (
            lambda: open_device(config.device, **config.device_options)
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

    # ------------------------------------------------------------ connection loop

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
            except AgentFatalError:
                raise
            except (TimeoutError, OSError, websockets.WebSocketException) as exc:
                log.warning(
                    "cannot reach the server at %s (%s); retrying in %.1f s",
                    self.config.agent_url,
                    _describe(exc),
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
            self.config.agent_url,
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
        log.info(
            "connected to %s as agent %r", self.config.server_url, reply.get("agent")
        )
        for session_id in self.streamers:  # a new connection: the server asks again
            self.set_live(session_id, False)
        self.connected.set()
        self._wakeup.set()

    # ------------------------------------------------------------ sending

    async def _send_spooled(self, websocket) -> None:
        """Send every unacknowledged chunk, oldest first, max_in_flight at a time."""
        in_flight: dict[int, set[int]] = {}  # session -> seqs sent on this connection
        stop_reported: set[int] = set()
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            for session in list(self.sessions.values()):
                sent = in_flight.setdefault(session.session_id, set())
                sent &= session.pending  # acknowledged chunks are no longer in flight
                budget = self.config.max_in_flight - sum(map(len, in_flight.values()))
                await self._send_chunks(websocket, session, sent, budget)
                finished = session.stopped and not session.pending
                if finished and session.session_id not in stop_reported:
                    await websocket.send(_stopped_message(session))
                    stop_reported.add(session.session_id)

    async def _send_chunks(
        self, websocket, session: SpoolSession, sent: set[int], budget: int
    ) -> None:
        for seq in sorted(session.pending - sent)[: max(budget, 0)]:
            await websocket.send(session.frame(seq))
            self.link.sent(session.session_id, seq)
            sent.add(seq)

    async def _ping(self, websocket) -> None:
        while True:
            # jittered, so that agents started together don't ping together
            await asyncio.sleep(self.config.ping_interval_s * random.uniform(0.8, 1.2))
            await websocket.send(make_message("agent.ping"))

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
            self._handle(message)

    def _handle(self, message: dict) -> None:
        kind = message["type"]
        if kind == "chunk.ack":
            session = self.sessions.get(message["session"])
            if session:
                session.acknowledge(message["seqs"])
                for seq in message["seqs"]:
                    self.link.acknowledged(session.session_id, seq)
                self._wakeup.set()
        elif kind == "recording.start":
            self.start_recording(message["session"])
        elif kind == "recording.stop":
            self.stop_recording(message["session"])
        elif kind == "recording.live":
            self.set_live(message["session"], message["live"])
        elif kind == "recording.closed":
            self._forget_session(message["session"], message["status"])
        elif kind == "error":
            log.error("server: %s (%s)", message["message"], message["code"])

    # ------------------------------------------------------------ recordings

    def start_recording(self, session_id: int) -> None:
        if session_id in self.sessions:
            return  # already recording (the server repeats start after a reconnect)
        session = self.spool.open_session(session_id)
        self.sessions[session_id] = session
        streamer = DeviceStreamer(
            self.device_factory(),
            session,
            self._wake_from_thread,
            chunk_s=self.config.chunk_s,
        )
        self.streamers[session_id] = streamer
        streamer.start()
        log.info("recording session %d from %s", session_id, self.config.device)

    def set_live(self, session_id: int, live: bool) -> None:
        """Small chunks while someone watches the session's live hand."""
        streamer = self.streamers.get(session_id)
        if streamer:
            streamer.chunk_s = self.config.live_chunk_s if live else self.config.chunk_s

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
        if session and not session.pending:
            self._samples_of_closed_sessions += session.samples
            session.delete()
            log.info("session %d closed by the server (%s)", session_id, status)

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
    )


def _describe(exc: Exception) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused: is the server running?"
    if isinstance(exc, websockets.ConnectionClosed):
        return "the connection dropped"
    if isinstance(exc, websockets.InvalidStatus):
        return f"the server answered HTTP {exc.response.status_code}"
    return str(exc) or type(exc).__name__
