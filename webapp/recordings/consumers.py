"""The agent's websocket consumer: ingest of EMG and label chunks, and the agent's
messages. (The browser's live view of a session is in `live_consumer.py`.)

Consumers validate (the checks beyond the protocol's schema are in
`agent_messages.py`), dispatch, and keep database work in the small async helpers of
`presence.py`. Chunks are appended to each session's log by one writer thread
(`ingest.CHUNK_WRITER`), so no agent's fsync ever stalls the event loop.
"""

from __future__ import annotations

import asyncio
import logging
import time

from channels.consumer import get_handler_name
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from recorder.protocol import (
    STREAM_EMG,
    STREAM_LABELS,
    ProtocolError,
    decode_chunk,
    make_message,
    parse_message,
)
from webapp.live.groups import (
    announce_agent,
    forward_samples,
    hand_session_group,
    labels_event,
)
from webapp.recordings import presence, video
from webapp.recordings.agent_messages import (
    check_contact_report,
    check_device,
    check_session_id,
    check_stop_counts,
    reported_sessions,
)
from webapp.recordings.ingest import (
    SessionIngest,
    ingest_group,
    live_agents_here,
    live_chunk_s,
    live_group,
)

log = logging.getLogger(__name__)

# how often a connected agent's last_seen_at is written (AGENT_STALE_AFTER_S is 30)
PRESENCE_REFRESH_S = 10.0
# closes an agent's connection after a chunk could not be stored (4000 + HTTP's 507)
STORAGE_FAILED_CLOSE_CODE = 4507


class AgentConsumer(AsyncWebsocketConsumer):
    """One connected agent: authenticates, stores chunks durably, acknowledges them."""

    async def connect(self):
        self.token = await presence.find_token(_bearer_token(self.scope))
        self.device: dict | None = None
        self.ingests: dict[int, SessionIngest] = {}
        self.presence_written_s = time.monotonic()
        await self.accept()
        if self.token is None:
            await self.send_error(
                "bad_token",
                "agent token is missing, unknown or "
                "revoked; create one on the Agent tokens page",
            )
            await self.close(code=4001)
            return
        await self.channel_layer.group_add(self.token.group_name, self.channel_name)

    async def dispatch(self, message):
        # Channels closes stale DB connections before every message, a thread hop per
        # chunk. Our DB helpers (database_sync_to_async) already do that themselves.
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"no handler for message type {message['type']}")
        await handler(message)

    async def disconnect(self, code):
        if getattr(self, "token", None) is not None:
            await self.channel_layer.group_discard(
                self.token.group_name, self.channel_name
            )
            for session_id in self.ingests:
                await self.channel_layer.group_discard(
                    ingest_group(session_id), self.channel_name
                )
                await announce_agent(self.channel_layer, session_id, "disconnected")
            await presence.mark_disconnected(self.token.pk)

    async def receive(self, text_data=None, bytes_data=None):
        if self.token is None:
            return
        try:
            if bytes_data is not None:
                await self.receive_chunk(bytes_data)
            else:
                await self.receive_message(parse_message(text_data))
        except ProtocolError as exc:
            log.info("agent %s: %s", self.token.pk, exc)
            await self.send_error(exc.code, str(exc))
            if exc.code == "storage_failed":
                # The agent resends unacknowledged chunks after a reconnect, which
                # it does with backoff: the disk gets time, and nothing is dropped.
                await self.close(code=STORAGE_FAILED_CLOSE_CODE)

    async def send_error(self, code: str, message: str) -> None:
        await self.send(text_data=make_message("error", code=code, message=message))

    # ------------------------------------------------------------ JSON messages

    async def receive_message(self, message: dict) -> None:
        kind = message["type"]
        if kind != "agent.hello" and self.device is None:
            raise ProtocolError("hello_first", "send agent.hello before anything else")
        if kind == "agent.hello":
            await self.on_hello(message)
        elif kind == "agent.ping":
            self.keep_presence_fresh()
            await self.rejoin_groups()
            await self.send(text_data=make_message("agent.pong"))
        elif kind == "recording.stopped":
            await self.on_recording_stopped(message)
        elif kind == "camera.status":
            await self.on_camera_status(message)
        elif kind == "video.unavailable":  # the answer to a video.request
            check_session_id(message["session"])
            await video.record_unavailable(
                self.token.pk, message["session"], message["reason"]
            )
        elif kind == "device.contact_report":
            await self.on_contact_report(message)
        else:
            raise ProtocolError(
                "bad_type", f"{kind} is not a message an agent may send"
            )

    def keep_presence_fresh(self) -> None:
        """Refresh last_seen_at now and then, without making chunks wait for the DB."""
        now_s = time.monotonic()
        if now_s - self.presence_written_s < PRESENCE_REFRESH_S:
            return
        self.presence_written_s = now_s
        self.background_task = asyncio.create_task(presence.touch(self.token.pk))

    async def rejoin_groups(self) -> None:
        """Group memberships live in the channel layer (Redis): a Redis restart that
        this connection survives forgets them, and the portal's Start and Stop would
        no longer reach the agent. Adding again is idempotent; once per ping (5 s)."""
        await self.channel_layer.group_add(self.token.group_name, self.channel_name)
        for session_id in self.ingests:
            await self.channel_layer.group_add(
                ingest_group(session_id), self.channel_name
            )

    async def on_hello(self, message: dict) -> None:
        device = message["device"]
        check_device(device)
        reported = reported_sessions(message["sessions"])
        self.device = device
        await presence.mark_connected(self.token.pk, device)
        await self.send(
            text_data=make_message(
                "agent.welcome", agent=self.token.name, server_version="1"
            )
        )
        for command in await presence.commands_after_reconnect(self.token.pk, reported):
            await self.send(text_data=command)

    async def on_recording_stopped(self, message: dict) -> None:
        check_stop_counts(message)
        session_id = message["session"]
        ingest = await self.ingest_for(session_id, allow_closed=True)
        if ingest is not None and ingest.contiguous < message["chunks"]:
            raise ProtocolError(
                "incomplete",
                f"session {session_id}: the agent sent "
                f"{message['chunks']} chunks but only {ingest.contiguous} "
                "are stored; send the rest first",
            )
        label_chunks = message.get("label_chunks", 0)
        if ingest is not None and ingest.label_chunks_contiguous < label_chunks:
            raise ProtocolError(
                "incomplete",
                f"session {session_id}: the agent sent {label_chunks} label chunks "
                f"but only {ingest.label_chunks_contiguous} are stored; send the "
                "rest first",
            )
        status = await presence.close_recording(self.token.pk, message)
        await announce_agent(self.channel_layer, session_id, "stopped")
        await self.send(
            text_data=make_message(
                "recording.closed", session=session_id, status=status
            )
        )

    async def on_camera_status(self, message: dict) -> None:
        """The agent's camera health: passed on to the session's watching tabs."""
        ingest = await self.ingest_for(message["session"])
        if ingest.watched:
            fields = ("state", "fps", "latency_ms", "message")
            await self.channel_layer.group_send(
                live_group(ingest.session_id),
                {
                    "type": "live.camera",
                    "session": ingest.session_id,
                    **{name: message[name] for name in fields},
                },
            )

    async def on_contact_report(self, message: dict) -> None:
        """Electrode contact the page asked for: passed on to the session's tabs."""
        check_contact_report(message)
        ingest = await self.ingest_for(message["session"])
        fields = ("pairs", "resistance_kohm", "message")
        await self.channel_layer.group_send(
            live_group(ingest.session_id),
            {
                "type": "live.contact",
                "session": ingest.session_id,
                **{name: message[name] for name in fields},
            },
        )

    # ------------------------------------------------------------ binary chunks

    async def receive_chunk(self, frame: bytes) -> None:
        if self.device is None:
            raise ProtocolError("hello_first", "send agent.hello before any chunk")
        chunk = decode_chunk(frame, expected_channels=len(self.device["channel_names"]))
        ingest = await self.ingest_for(chunk.session_id)
        if chunk.stream_id == STREAM_LABELS:
            await self.receive_labels(ingest, chunk, frame)
            return
        if not ingest.is_stored(chunk.seq):
            ingest.check_window(chunk.seq)
            if ingest.hand_watched:  # before the fsync: live poses don't wait for it
                await forward_samples(
                    self.channel_layer,
                    chunk.session_id,
                    chunk,
                    ingest.sampling_rate_hz,
                )
            elif ingest.live_chunk_s is not None:  # the last hand tab has gone
                await self.ask_for_live_chunks(ingest, False)
            await self.store_chunk(ingest, chunk, frame)
            ingest.observe(chunk)
            if ingest.watched:
                await self.channel_layer.group_send(
                    live_group(chunk.session_id), ingest.live_update(chunk)
                )
        await self.send(
            text_data=make_message(
                "chunk.ack",
                session=chunk.session_id,
                stream=STREAM_EMG,
                seqs=[chunk.seq],
            )
        )

    async def store_chunk(self, ingest: SessionIngest, chunk, frame: bytes) -> None:
        """Append a chunk durably, or raise the error that tells the agent to keep
        it (no ack) and send it again."""
        try:
            await ingest.store(chunk.seq, frame)
        except OSError as exc:  # e.g. disk full
            log.error(
                "cannot store chunk %s of stream %s of session %s: %s",
                chunk.seq,
                chunk.stream_id,
                chunk.session_id,
                exc,
            )
            raise ProtocolError(
                "storage_failed",
                f"the server could not store "
                f"chunk {chunk.seq} ({exc.strerror}); the agent "
                "keeps it and sends it again after reconnecting",
            ) from None

    async def receive_labels(self, ingest: SessionIngest, chunk, frame: bytes):
        """A chunk of camera label frames: stored once, acknowledged on its own
        stream, shown to watching tabs (decimated) and to live hand tabs."""
        if not ingest.is_stored(chunk.seq, STREAM_LABELS):
            ingest.check_window(chunk.seq, STREAM_LABELS)
            await self.store_chunk(ingest, chunk, frame)
            await self.show_labels(ingest, chunk)
        await self.send(
            text_data=make_message(
                "chunk.ack",
                session=chunk.session_id,
                stream=STREAM_LABELS,
                seqs=[chunk.seq],
            )
        )

    async def show_labels(self, ingest: SessionIngest, chunk) -> None:
        if not (ingest.watched or ingest.hand_watched):
            return
        update = ingest.live_labels(chunk)
        if update is None:
            return
        if ingest.watched:
            await self.channel_layer.group_send(live_group(ingest.session_id), update)
        if ingest.hand_watched:
            group = hand_session_group(ingest.session_id)
            for label in update["frames"]:
                await self.channel_layer.group_send(
                    group, labels_event(label["t"], label["joints"])
                )

    async def ingest_for(self, session_id: int, allow_closed: bool = False):
        """The ingest state of a session this agent may stream into, or an error."""
        if session_id in self.ingests:
            return self.ingests[session_id]
        check_session_id(session_id)
        joined = await presence.join_recording(self.token.pk, session_id, self.device)
        if joined is None:
            raise ProtocolError(
                "unknown_session",
                f"session {session_id} does not exist "
                "or is not being recorded by this agent",
            )
        status, created_at = joined
        if status not in ("recording", "stopping"):
            if allow_closed:
                return None
            raise ProtocolError(
                "session_closed",
                f"session {session_id} is {status}; it accepts no more samples",
            )
        ingest = await asyncio.to_thread(
            SessionIngest,
            session_id,
            settings.CHUNK_STORE_DIR / f"session-{session_id}",
            float(self.device["sampling_rate_hz"]),
            len(self.device["channel_names"]),
            float(self.device.get("extra", {}).get("line_frequency_hz", 50.0)),
            created_at,
        )
        self.ingests[session_id] = ingest
        await self.channel_layer.group_add(ingest_group(session_id), self.channel_name)
        # tabs already open on the session answer with live.watch (hand.watch)
        await self.channel_layer.group_send(
            live_group(session_id), {"type": "live.streaming"}
        )
        await announce_agent(self.channel_layer, session_id, "streaming")
        return ingest

    # ------------------------------------------------------------ group events

    async def agent_command(self, event):
        """A start/stop command from the portal (see views.start_recording)."""
        await self.send(text_data=event["message"])

    async def agent_contact(self, event):
        """A tab asks for an electrode contact check (see LiveConsumer)."""
        if event["session"] in self.ingests:
            await self.send(
                text_data=make_message("device.contact", session=event["session"])
            )

    async def live_watch(self, event):
        """A browser tab watches one of our sessions (see LiveConsumer)."""
        ingest = self.ingests.get(event["session"])
        if ingest is not None:
            ingest.watch()

    async def hand_watch(self, event):
        """A live 3D hand tab watches one of our sessions (see webapp/live)."""
        ingest = self.ingests.get(event["session"])
        if ingest is not None:
            ingest.watch_hand()
            await self.ask_for_live_chunks(ingest, True)

    async def ask_for_live_chunks(self, ingest: SessionIngest, live: bool) -> None:
        """Short chunks (one pose update each) only while a hand tab watches: they
        cost the server several times the messages of recording alone, so how short
        depends on how many watched agents this process serves (live_chunk_s).
        Asked again at every hand.watch, so the length follows the crowd."""
        chunk_s = None
        if live:
            watched = live_agents_here() + (1 if ingest.live_chunk_s is None else 0)
            chunk_s = live_chunk_s(watched, settings.LIVE_CHUNKS_PER_S)
        if ingest.live_chunk_s == chunk_s:
            return
        ingest.set_live_chunk_s(chunk_s)
        details = {"chunk_s": chunk_s} if live else {}
        await self.send(
            text_data=make_message(
                "recording.live", session=ingest.session_id, live=live, **details
            )
        )

    async def agent_revoked(self, event):
        await self.send_error("token_revoked", "this agent's token was revoked")
        await self.close(code=4003)


def _bearer_token(scope) -> str:
    """The secret from an "Authorization: Token <secret>" header."""
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            scheme, _, secret = value.decode("latin-1").partition(" ")
            if scheme.lower() in ("token", "bearer"):
                return secret.strip()
    return ""
