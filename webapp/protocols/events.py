"""Protocol events from the recording page's tab, stored on the EMG's clock.

The tab sends, over the session's live websocket (live_consumer.LiveConsumer):

    {"type": "protocol.event", "event_id": "<unique per event>", "kind": "step.start",
     "name": "fist", "detail": {...}, "age_ms": 0}

`age_ms` is how long the tab held the event before sending it (a reconnect). The
reply is {"type": "protocol.ack", "event_id", "time_s"} once the event is stored, or
{"type": "protocol.error", "event_id", "code", "message"}; on "clock_not_ready" the
tab sends the event again a little later. A resent event is stored once.
"""

from __future__ import annotations

import json
import time

from channels.db import database_sync_to_async
from django.db import transaction
from django.db.models import Max

from recorder.session_file import SessionEvent
from webapp.protocols.clock import AgentClock, newest_sample_time
from webapp.protocols.models import ProtocolEvent
from webapp.recordings.models import RecordingSession

EVENT_KINDS = (
    "protocol.start",
    "protocol.end",
    "protocol.pause",
    "protocol.resume",
    "step.start",
    "step.end",
    "step.redo",
)
MAX_DETAIL_CHARS = 4000
MAX_AGE_MS = 60_000  # an event held longer than this has lost its time
ACCEPTING = (RecordingSession.Status.RECORDING, RecordingSession.Status.STOPPING)


class EventRefused(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


class ProtocolEventReceiver:
    """One tab's protocol events for one session, timed by what the tab's EMG
    updates say about the agent's clock."""

    def __init__(self, session_id: int):
        self.session_id = session_id
        self.clock = AgentClock()

    def observe_emg(self, live_emg: dict) -> None:
        self.clock.observe(newest_sample_time(live_emg), time.monotonic())

    async def receive(self, text: str | None) -> dict:
        """The reply to one message from the tab."""
        received_s = time.monotonic()
        event_id = None
        try:
            message = _parse(text)
            event_id = message["event_id"]
            if not self.clock.ready:
                raise EventRefused(
                    "clock_not_ready",
                    "no EMG has reached this page yet, so the event cannot be "
                    "put on the armband's clock; send it again shortly",
                )
            happened_s = received_s - message.get("age_ms", 0) / 1000.0
            time_s = await store_event(
                self.session_id, self.clock.agent_time(happened_s), message
            )
        except EventRefused as refused:
            return {
                "type": "protocol.error",
                "event_id": event_id,
                "code": refused.code,
                "message": str(refused),
            }
        return {"type": "protocol.ack", "event_id": event_id, "time_s": time_s}


def _parse(text: str | None) -> dict:
    """A checked protocol.event message, or EventRefused naming the bad field."""
    try:
        message = json.loads(text or "")
    except json.JSONDecodeError as error:
        raise EventRefused("bad_json", f"not JSON: {error}") from None
    if not isinstance(message, dict) or message.get("type") != "protocol.event":
        raise EventRefused("bad_type", "this socket takes only protocol.event messages")
    _check_text(message, "event_id", 64, required=True)
    _check_text(message, "name", 100, required=False)
    if message.get("kind") not in EVENT_KINDS:
        raise EventRefused(
            "bad_kind",
            f"kind: {message.get('kind')!r} is not one of {', '.join(EVENT_KINDS)}",
        )
    detail = message.setdefault("detail", {})
    if not isinstance(detail, dict) or len(json.dumps(detail)) > MAX_DETAIL_CHARS:
        raise EventRefused(
            "bad_detail",
            f"detail: must be an object of at most {MAX_DETAIL_CHARS} "
            "characters as JSON",
        )
    age_ms = message.setdefault("age_ms", 0)
    if isinstance(age_ms, bool) or not isinstance(age_ms, (int, float)):
        raise EventRefused("bad_age", "age_ms: must be a number of milliseconds")
    if not 0 <= age_ms <= MAX_AGE_MS:
        raise EventRefused("bad_age", f"age_ms: must be from 0 to {MAX_AGE_MS}")
    return message


def _check_text(message: dict, field: str, max_chars: int, required: bool) -> None:
    value = message.setdefault(field, "")
    if not isinstance(value, str) or len(value) > max_chars:
        raise EventRefused(
            f"bad_{field}", f"{field}: must be text of at most {max_chars} characters"
        )
    if required and not value:
        raise EventRefused(f"bad_{field}", f"{field}: missing")


@database_sync_to_async
def store_event(session_id: int, time_s: float, message: dict) -> float:
    """Store the event once; returns its stored time (the first one's, for a resend).
    Locks the session, so an event cannot slip in after assembly read the events.
    Events arrive in the order they happened; a new clock estimate must not put one
    before its predecessor, so its time is at least the latest stored one."""
    with transaction.atomic():
        status = (
            RecordingSession.objects.select_for_update()
            .filter(pk=session_id)
            .values_list("status", flat=True)
            .first()
        )
        if status not in ACCEPTING:
            raise EventRefused(
                "session_closed",
                f"session {session_id} is {status or 'gone'}; "
                "it takes no more protocol events",
            )
        events = ProtocolEvent.objects.filter(session_id=session_id)
        latest_s = events.aggregate(latest=Max("time_s"))["latest"]
        if latest_s is not None:
            time_s = max(time_s, latest_s)
        event, _ = ProtocolEvent.objects.get_or_create(
            session_id=session_id,
            event_id=message["event_id"],
            defaults={
                "time_s": time_s,
                "kind": message["kind"],
                "name": message["name"],
                "detail": message["detail"],
            },
        )
    return event.time_s


def session_events(session_id: int) -> list[SessionEvent]:
    """A session's protocol events for its file, in time order."""
    return [
        SessionEvent(event.time_s, event.kind, event.name, event.detail)
        for event in ProtocolEvent.objects.filter(session_id=session_id)
    ]
