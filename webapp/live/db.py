"""The database side of the live hand: small async helpers, one query each."""

from __future__ import annotations

from channels.db import database_sync_to_async

from webapp import storage
from webapp.recordings.models import RecordingSession
from webapp.registry.models import TrainingRun


def usable_runs(user) -> list[TrainingRun]:
    """The user's models that can drive a live hand: complete, checkpoint on disk."""
    runs = TrainingRun.objects.filter(owner=user, status=TrainingRun.Status.COMPLETE)
    return [run for run in runs if storage.exists(run.checkpoint_key)]


@database_sync_to_async
def session_facts(user_id: int, session_id: int) -> dict | None:
    """Status and armband of one of the user's sessions; None if not theirs."""
    session = (
        RecordingSession.objects.filter(pk=session_id, owner_id=user_id)
        .values("status", "device_info")
        .first()
    )
    if session is None:
        return None
    device = session["device_info"] or {}
    names = device.get("channel_names")
    return {
        "status": session["status"],
        "recording": session["status"] in ("recording", "stopping"),
        "num_channels": len(names) if isinstance(names, list) else None,
        "sampling_rate_hz": device.get("sampling_rate_hz"),
    }


@database_sync_to_async
def usable_run(user_id: int, run_id: int) -> dict | None:
    """One of the user's complete models with its checkpoint; None otherwise."""
    run = TrainingRun.objects.filter(
        pk=run_id, owner_id=user_id, status=TrainingRun.Status.COMPLETE
    ).first()
    if run is None or not storage.exists(run.checkpoint_key):
        return None
    # a storage key: the inference worker may run on another machine
    return {"id": run.pk, "name": str(run), "checkpoint": run.checkpoint_key}
