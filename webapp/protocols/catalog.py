"""The protocols a user can record with: the built-in files, then their own."""

from __future__ import annotations

from functools import cache

from recorder.guided.protocols import GuidedProtocol, builtin_protocols
from webapp.protocols.models import UserProtocol

FREE_RECORDING = "free"  # no guided protocol: record whatever the person does


@cache
def builtins() -> dict[str, GuidedProtocol]:
    return builtin_protocols()


def protocol_choices(user) -> list[tuple[str, str]]:
    """(name, label) pairs for the session form's protocol choice."""
    choices = [(FREE_RECORDING, "Free recording (no guided protocol)")]
    for protocol in builtins().values():
        choices.append((protocol.name, protocol.title))
    for row in UserProtocol.objects.filter(owner=user):
        choices.append((row.name, f"{row.definition.get('title', row.name)} (yours)"))
    return choices


def find_protocol(user, name: str) -> GuidedProtocol | None:
    """The user's protocol called `name` (built-ins first), or None (free recording
    or one that was deleted since)."""
    if name in builtins():
        return builtins()[name]
    row = UserProtocol.objects.filter(owner=user, name=name).first()
    return row.protocol if row else None
