"""The database side of the agent ingest: small async helpers, one query each."""

from __future__ import annotations

from datetime import datetime

from channels.db import database_sync_to_async
from django.db import transaction
from django.utils import timezone

from recorder.protocol import make_message
from webapp.accounts.models import AgentToken
from webapp.recordings.models import RecordingSession
from webapp.recordings.video import pending_video_requests

Status = RecordingSession.Status


@database_sync_to_async
def find_token(secret: str) -> AgentToken | None:
    return AgentToken.find_active(secret) if secret else None


@database_sync_to_async
def mark_connected(token_id: int, device: dict) -> None:
    AgentToken.objects.filter(pk=token_id).update(
        connected=True, last_seen_at=timezone.now(), device_info=device
    )


@database_sync_to_async
def mark_disconnected(token_id: int) -> None:
    AgentToken.objects.filter(pk=token_id).update(connected=False)


@database_sync_to_async
def touch(token_id: int) -> None:
    AgentToken.objects.filter(pk=token_id).update(
        connected=True, last_seen_at=timezone.now()
    )


@database_sync_to_async
def owns_session(user_id: int, session_id: int) -> bool:
    return RecordingSession.objects.filter(pk=session_id, owner_id=user_id).exists()


@database_sync_to_async
def join_recording(
    token_id: int, session_id: int, device: dict
) -> tuple[str, datetime] | None:
    """Record the device streaming into a session this agent is recording.

    Returns the session's status and creation time (which tells its chunk folder
    from that of an older session with the same id), or None when the session
    isn't this agent's. One UPDATE and one small SELECT: a hundred agents may start
    at once.
    """
    sessions = RecordingSession.objects.filter(pk=session_id, agent_id=token_id)
    active = [Status.RECORDING, Status.STOPPING]
    joined = sessions.filter(status__in=active).update(device_info=device)
    found = sessions.values_list("status", "created_at").first()
    if found is None:
        return None
    status, created_at = found
    return (Status.RECORDING if joined else status), created_at


@database_sync_to_async
def commands_after_reconnect(token_id: int, reported: set[int]) -> list[str]:
    """What a (re)connecting agent must be told about the sessions assigned to it.

    A start sent while the agent was offline is sent again; a stop likewise.
    Sessions the agent still holds but the server has closed are closed again.
    Saved videos the owner asked for and has not received are asked for again.
    """
    commands = []
    assigned = RecordingSession.objects.filter(agent_id=token_id)
    for session in assigned.filter(status__in=[Status.RECORDING, Status.STOPPING]):
        if session.pk not in reported and session.status == Status.RECORDING:
            commands.append(start_command(session))
        elif session.status == Status.STOPPING:
            commands.append(make_message("recording.stop", session=session.pk))
    for session in assigned.filter(pk__in=reported).exclude(
        status__in=[Status.RECORDING, Status.STOPPING]
    ):
        commands.append(
            make_message("recording.closed", session=session.pk, status=session.status)
        )
    commands += pending_video_requests(token_id)
    return commands


def start_command(session: RecordingSession) -> str:
    return make_message(
        "recording.start",
        session=session.pk,
        band_rotation_deg=session.band_rotation_deg,
    )


@database_sync_to_async
def close_recording(token_id: int, report: dict) -> str:
    """Record the agent's totals and queue the session file's assembly.

    Idempotent: a repeated report (after a reconnect) changes nothing.
    """
    from webapp.recordings.tasks import assemble_session_file

    with transaction.atomic():
        session = (
            RecordingSession.objects.select_for_update()
            .filter(pk=report["session"], agent_id=token_id)
            .first()
        )
        if session is None:
            return "unknown"
        if session.status not in (Status.RECORDING, Status.STOPPING):
            return session.status
        session.status = Status.ASSEMBLING if report["samples"] else Status.FAILED
        if not report["samples"]:
            session.error = f"no samples were recorded: {report['reason']}"[:2000]
        session.stopped_at = session.stopped_at or timezone.now()
        session.expected_chunks = report["chunks"]
        session.expected_samples = report["samples"]
        session.dropped_packets = report["dropped_packets"]
        session.stop_reason = report["reason"][:200]
        session.save()
        if session.status == Status.ASSEMBLING:
            transaction.on_commit(lambda: assemble_session_file.delay(session.pk))
    return session.status
