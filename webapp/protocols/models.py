"""User-created guided protocols, and the protocol events of recording sessions.

Built-in protocols are files (recorder/guided/files); a user's own live here as the
same JSON definition, checked by `recorder.guided.protocols.parse_protocol`.
"""

from django.conf import settings
from django.db import models

from recorder.guided.protocols import GuidedProtocol, parse_protocol


class UserProtocol(models.Model):
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="protocols"
    )
    name = models.CharField(max_length=60)
    definition = models.JSONField(help_text="the protocol as parse_protocol reads it")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["owner", "name"], name="unique_protocol_name"
            )
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def protocol(self) -> GuidedProtocol:
        return parse_protocol(self.definition)


class ProtocolEvent(models.Model):
    """A step start/end, pause, resume or redo, at `time_s` on the EMG's clock (the
    agent's unix seconds); it becomes a SessionEvent in the session file."""

    session = models.ForeignKey(
        "recordings.RecordingSession",
        on_delete=models.CASCADE,
        related_name="protocol_events",
    )
    # the tab's id for the event: a resend after a reconnect is stored once
    event_id = models.CharField(max_length=64)
    time_s = models.FloatField()
    kind = models.CharField(max_length=40)
    name = models.CharField(max_length=100, blank=True)
    detail = models.JSONField(default=dict, blank=True)
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["time_s", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["session", "event_id"], name="unique_protocol_event"
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.name} at {self.time_s:.3f} s"
