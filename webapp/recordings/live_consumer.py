"""The browser's live view of a session it records: EMG traces, camera labels and
state, electrode contact, and the guided protocol's step events back to the server.
"""

from __future__ import annotations

import asyncio
import json

from channels.generic.websocket import AsyncWebsocketConsumer

from webapp.heartbeat import beat_forever
from webapp.protocols.events import ProtocolEventReceiver
from webapp.recordings import presence
from webapp.recordings.ingest import WATCH_INTERVAL_S, ingest_group, live_group


class LiveConsumer(AsyncWebsocketConsumer):
    """A browser tab watching one of its user's sessions."""

    async def connect(self):
        user = self.scope.get("user")
        self.session_id = int(self.scope["url_route"]["kwargs"]["session_id"])
        if not (user and user.is_authenticated) or not await presence.owns_session(
            user.pk, self.session_id
        ):
            await self.close(code=4003)
            return
        # the guided protocol's step events, timed on the EMG's clock
        self.protocol_events = ProtocolEventReceiver(self.session_id)
        await self.join_group()
        await self.accept()
        self.heartbeat = asyncio.create_task(
            beat_forever(self.keep_watching, WATCH_INTERVAL_S, first_wait=False)
        )

    async def join_group(self):
        await self.channel_layer.group_add(
            live_group(self.session_id), self.channel_name
        )

    async def keep_watching(self):
        """Tell the agent connection that someone watches, for as long as we do."""
        await self.join_group()
        await self.live_streaming({})

    async def disconnect(self, code):
        if hasattr(self, "heartbeat"):
            self.heartbeat.cancel()
            await self.channel_layer.group_discard(
                live_group(self.session_id), self.channel_name
            )

    async def live_streaming(self, event):
        await self.channel_layer.group_send(
            ingest_group(self.session_id),
            {"type": "live.watch", "session": self.session_id},
        )

    async def receive(self, text_data=None, bytes_data=None):
        """The tab's protocol events (webapp/protocols/events.py), or its request
        for an electrode contact check, which goes to the streaming agent."""
        if _tab_message_type(text_data) == "contact.check":
            await self.channel_layer.group_send(
                ingest_group(self.session_id),
                {"type": "agent.contact", "session": self.session_id},
            )
            return
        reply = await self.protocol_events.receive(text_data)
        await self.send(text_data=json.dumps(reply))

    async def live_emg(self, event):
        self.protocol_events.observe_emg(event)
        await self.send(text_data=json.dumps(event))

    async def live_labels(self, event):
        """Camera label frames (see SessionIngest.live_labels), ≤ 15 per second."""
        await self.send(text_data=json.dumps(event))

    async def live_camera(self, event):
        """The agent's camera state, fps and labeling latency, about once a second."""
        await self.send(text_data=json.dumps(event))

    async def live_contact(self, event):
        """The agent's electrode contact report, after the tab asked for one."""
        await self.send(text_data=json.dumps(event))


def _tab_message_type(text: str | None):
    """The "type" of a tab's JSON message, or None (protocol events explain why)."""
    try:
        message = json.loads(text or "")
    except json.JSONDecodeError:
        return None
    return message.get("type") if isinstance(message, dict) else None
