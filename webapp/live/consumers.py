"""A browser tab showing the live 3D hand of one of its user's sessions.

The tab picks a model (`select`), may change the smoothing (`smoothing`) and says
how fast it draws (`display`). The consumer keeps the inference worker and the
agent connection told that it watches, and passes poses on at the display rate,
newest first (see throttle.py). Messages to the tab:
  session  {status, recording, num_channels, sampling_rate_hz}    on connect
  model    {run, model_name, num_channels, sampling_rate_hz, smoothing}
  pose     {run, t, joints (63 mm), status ok|rest|held, update_ms}
  labels   {t, joints}: camera labels of the same hand, when the agent sends them
  agent    {state: streaming|disconnected|stopped}
  smoothing {run, smoothing}: another tab (or this one) changed it
  error    {code, message}
"""

from __future__ import annotations

import asyncio
import json
import logging
import math

from channels.exceptions import ChannelFull
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from webapp.heartbeat import beat_forever
from webapp.live import db
from webapp.live.groups import hand_group, hand_session_group, inference_channel
from webapp.live.throttle import LatestOnly
from webapp.recordings import presence
from webapp.recordings.ingest import WATCH_INTERVAL_S, ingest_group

log = logging.getLogger(__name__)

DEFAULT_DISPLAY_HZ = 60.0
# a model is loaded within a second or two; silence means no worker is running
WORKER_REPLY_TIMEOUT_S = 8.0
MAX_TEXT_BYTES = 4096


class BadMessage(ValueError):
    pass


class HandConsumer(AsyncWebsocketConsumer):
    async def connect(self):
        user = self.scope.get("user")
        self.session_id = int(self.scope["url_route"]["kwargs"]["session_id"])
        if not (user and user.is_authenticated) or not await presence.owns_session(
            user.pk, self.session_id
        ):
            await self.close(code=4003)
            return
        self.user_id = user.pk
        self.facts = await db.session_facts(user.pk, self.session_id)
        self.run: dict | None = None
        self.awaiting_worker: asyncio.Task | None = None
        interval_s = 1.0 / DEFAULT_DISPLAY_HZ
        self.poses = LatestOnly(self.send_json, interval_s)
        self.labels = LatestOnly(self.send_json, interval_s)
        await self.join_groups()
        await self.accept()
        if settings.INFERENCE_IN_PROCESS:
            from webapp.live.worker import start_in_process

            start_in_process()
        await self.send_json({"type": "session", **self.facts})
        self.heartbeat = asyncio.create_task(
            beat_forever(self.keep_watching, WATCH_INTERVAL_S, first_wait=True)
        )

    async def join_groups(self) -> None:
        await self.channel_layer.group_add(
            hand_session_group(self.session_id), self.channel_name
        )
        if self.run is not None:
            await self.channel_layer.group_add(
                hand_group(self.session_id, self.run["id"]), self.channel_name
            )

    async def disconnect(self, code):
        if not hasattr(self, "heartbeat"):
            return
        self.heartbeat.cancel()
        self.poses.close()
        self.labels.close()
        if self.awaiting_worker is not None:
            self.awaiting_worker.cancel()
        await self.channel_layer.group_discard(
            hand_session_group(self.session_id), self.channel_name
        )
        if self.run is not None:
            await self.channel_layer.group_discard(
                hand_group(self.session_id, self.run["id"]), self.channel_name
            )

    async def send_json(self, message: dict) -> None:
        await self.send(text_data=json.dumps(message, separators=(",", ":")))

    async def send_error(self, code: str, message: str) -> None:
        await self.send_json({"type": "error", "code": code, "message": message})

    # ------------------------------------------------------------ from the tab

    async def receive(self, text_data=None, bytes_data=None):
        try:
            message = parse_tab_message(text_data)
            kind = message["type"]
            if kind == "select":
                await self.select(message)
            elif kind == "smoothing":
                await self.change_smoothing(message)
            else:
                self.set_display_rate(message)
        except BadMessage as exc:
            await self.send_error("bad_message", str(exc))

    async def select(self, message: dict) -> None:
        run = await db.usable_run(self.user_id, message["run"])
        if run is None:
            await self.send_error(
                "unknown_model",
                f"model {message['run']} is not one of your complete models",
            )
            return
        if self.run is not None:
            await self.channel_layer.group_discard(
                hand_group(self.session_id, self.run["id"]), self.channel_name
            )
        self.run = run
        await self.channel_layer.group_add(
            hand_group(self.session_id, run["id"]), self.channel_name
        )
        await self.watch(reply=True)
        if self.awaiting_worker is not None:
            self.awaiting_worker.cancel()
        self.awaiting_worker = asyncio.create_task(self.complain_without_worker())

    async def change_smoothing(self, message: dict) -> None:
        if self.run is None:
            raise BadMessage("pick a model before changing its smoothing")
        smoothing = {k: message[k] for k in ("enabled", "min_cutoff_hz", "beta")}
        sent = await self.send_to_worker(
            {
                "type": "inference.smoothing",
                "session": self.session_id,
                "run": self.run["id"],
                "smoothing": smoothing,
            }
        )
        if not sent:
            await self.send_error(
                "worker_busy",
                "the inference worker is too far behind to take the smoothing "
                "change now; try again in a moment",
            )

    def set_display_rate(self, message: dict) -> None:
        interval_s = 1.0 / message["rate_hz"]
        self.poses.interval_s = self.labels.interval_s = interval_s

    # ------------------------------------------------------------ watching

    async def keep_watching(self):
        """Keep the predictor alive and the agent forwarding, while we watch; ask
        for the model's description again until the worker has answered."""
        await self.join_groups()
        if self.run is not None:
            await self.watch(reply=self.awaiting_worker is not None)

    async def watch(self, reply: bool) -> None:
        await self.send_to_worker(
            {
                "type": "inference.watch",
                "session": self.session_id,
                "run": self.run["id"],
                "checkpoint": self.run["checkpoint"],
                "num_channels": self.facts["num_channels"],
                "sampling_rate_hz": self.facts["sampling_rate_hz"],
                "reply_to": self.channel_name if reply else None,
            }
        )
        await self.channel_layer.group_send(
            ingest_group(self.session_id),
            {"type": "hand.watch", "session": self.session_id},
        )

    async def send_to_worker(self, message: dict) -> bool:
        """Send to the session's inference worker; False when its channel is full
        (the worker is far behind on samples, or none runs): a watch is sent again
        at the next beat."""
        try:
            await self.channel_layer.send(inference_channel(self.session_id), message)
        except ChannelFull:
            log.warning("inference channel of session %s is full: %s not sent",
                        self.session_id, message["type"])  # fmt: skip
            return False
        return True

    async def complain_without_worker(self) -> None:
        await asyncio.sleep(WORKER_REPLY_TIMEOUT_S)
        channel = inference_channel(self.session_id)
        await self.send_error(
            "no_worker",
            f"no inference worker answered within {WORKER_REPLY_TIMEOUT_S:g} s; "
            f"is `python manage.py runworker {channel}` running?",
        )

    def worker_answered(self, event: dict) -> bool:
        """Whether a worker's reply is about our current model (stop waiting)."""
        if self.run is None or event.get("run") != self.run["id"]:
            return False
        if self.awaiting_worker is not None:
            self.awaiting_worker.cancel()
            self.awaiting_worker = None
        return True

    # ------------------------------------------------------------ group events

    async def hand_model(self, event):
        if self.worker_answered(event):
            await self.send_json({**event, "type": "model"})

    async def hand_error(self, event):
        if self.worker_answered(event):
            await self.send_json({**event, "type": "error"})

    async def hand_pose(self, event):
        await self.poses.offer({**event, "type": "pose"})

    async def hand_smoothing(self, event):
        await self.send_json({**event, "type": "smoothing"})

    async def hand_labels(self, event):
        await self.labels.offer({**event, "type": "labels"})

    async def hand_agent(self, event):
        if event["state"] == "streaming":
            self.facts = await db.session_facts(self.user_id, self.session_id)
            if self.run is not None:  # start the forwarding without waiting
                await self.watch(reply=False)
        await self.send_json({"type": "agent", "state": event["state"]})


def parse_tab_message(text: str | None) -> dict:
    """One message from the tab, checked; BadMessage names the problem."""
    if text is None or len(text) > MAX_TEXT_BYTES:
        raise BadMessage(f"send JSON text messages of at most {MAX_TEXT_BYTES} bytes")
    try:
        message = json.loads(text)
    except ValueError as exc:
        raise BadMessage(f"message is not valid JSON: {exc}") from None
    if not isinstance(message, dict):
        raise BadMessage("message must be a JSON object")
    kind = message.get("type")
    if kind == "select":
        _number(message, "run", 1, 2**62, integer=True)
    elif kind == "smoothing":
        if not isinstance(message.get("enabled"), bool):
            raise BadMessage("smoothing: enabled must be true or false")
        _number(message, "min_cutoff_hz", 0.001, 100.0)
        _number(message, "beta", 0.0, 100.0)
    elif kind == "display":
        _number(message, "rate_hz", 1.0, 240.0)
    else:
        raise BadMessage(f"{kind!r} is not a message type (select, smoothing, display)")
    return message


def _number(message: dict, field: str, low: float, high: float, integer=False):
    value = message.get(field)
    kinds = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds):
        kind = "an integer" if integer else "a number"
        raise BadMessage(f"{message['type']}: {field} must be {kind}")
    if not (math.isfinite(value) and low <= value <= high):
        raise BadMessage(
            f"{message['type']}: {field}={value} is out of range {low:g}..{high:g}"
        )
