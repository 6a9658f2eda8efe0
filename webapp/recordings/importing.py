"""Registering an existing session file (simulated, or recorded elsewhere)."""

from __future__ import annotations

from pathlib import Path

from recorder.session_file import read_session, session_summary
from webapp import storage
from webapp.recordings.models import RecordingSession, Subject
from webapp.recordings.tasks import file_sha256


def import_session_file(owner, source: Path, subject_name: str) -> RecordingSession:
    """Copy `source` into storage as a complete session of `owner`'s subject."""
    summary = session_summary(source)  # raises SessionFormatError if it isn't one
    attrs = read_session(source).attrs
    subject, _ = Subject.objects.get_or_create(owner=owner, name=subject_name)
    session = RecordingSession.objects.create(
        owner=owner, subject=subject, status=RecordingSession.Status.COMPLETE,
        protocol_name=attrs.protocol or "imported", device_info=attrs.device_info,
        band_rotation_deg=attrs.band_rotation_deg, notes=f"imported from {source.name}",
        sample_count=summary["sample_count"], duration_s=summary["duration_s"],
        dropped_packets=summary["dropped_packets"],
    )  # fmt: skip
    relative_path = f"sessions/user-{owner.pk}/session-{session.pk}.h5"
    session.file.name = storage.store_file(source, relative_path)
    session.file_sha256 = file_sha256(source)
    session.save(update_fields=["file", "file_sha256"])
    return session
