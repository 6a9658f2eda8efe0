"""Celery tasks of the recordings app: thin wrappers around recorder functions."""

from __future__ import annotations

import hashlib
import logging

from celery import shared_task
from django.conf import settings

from recorder.assembly import AssemblyError, assemble_recording
from recorder.chunk_log import ChunkLog
from recorder.session_file import SessionAttributes, SessionFormatError, write_session
from webapp import storage
from webapp.protocols.events import session_events
from webapp.recordings.ingest import claim_chunk_dir
from webapp.recordings.models import RecordingSession

log = logging.getLogger(__name__)
Status = RecordingSession.Status


def session_attributes(session: RecordingSession) -> SessionAttributes:
    device = session.device_info or {}
    return SessionAttributes(
        device=device.get("kind", "unknown"),
        sampling_rate_hz=float(device.get("sampling_rate_hz", 500.0)),
        channel_names=tuple(device.get("channel_names", ())),
        subject=session.subject.name,
        session=str(session.pk),
        band_placement=session.band_placement,
        band_rotation_deg=session.band_rotation_deg,
        handedness=session.subject.handedness,
        protocol=session.protocol_name,
        dropped_packets=session.dropped_packets,
        device_info=device,
    )


def file_sha256(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@shared_task(
    acks_late=True,
    soft_time_limit=settings.ASSEMBLY_TIME_LIMIT_S,
    time_limit=settings.ASSEMBLY_TIME_LIMIT_S + settings.TIME_LIMIT_GRACE_S,
)
def assemble_session_file(session_id: int) -> str:
    """Write the session's HDF5 file from its stored chunks, then drop the chunks."""
    session = RecordingSession.objects.select_related("subject").get(pk=session_id)
    if session.status != Status.ASSEMBLING:
        return session.status  # already done (a redelivered task)
    chunk_dir = settings.CHUNK_STORE_DIR / f"session-{session_id}"
    claim_chunk_dir(chunk_dir, session.created_at)  # never another session's chunks
    chunks = ChunkLog(chunk_dir)
    relative_path = f"sessions/user-{session.owner_id}/session-{session_id}.h5"
    try:
        recording = assemble_recording(
            chunks,
            session.expected_chunks,
            session.expected_samples,
            session_attributes(session),
            events=session_events(session_id),
        )
        with storage.writing(relative_path) as path:
            write_session(path, recording)
            sha256 = file_sha256(path)
    except (AssemblyError, SessionFormatError) as exc:
        # the chunks stay on disk, so nothing is lost and the file can be rebuilt
        log.error("session %s could not be assembled: %s", session_id, exc)
        RecordingSession.objects.filter(pk=session_id).update(
            status=Status.FAILED, error=str(exc)
        )
        return Status.FAILED
    RecordingSession.objects.filter(pk=session_id).update(
        status=Status.COMPLETE,
        file=relative_path,
        file_sha256=sha256,
        sample_count=len(recording.emg_time),
        duration_s=float(recording.emg_time[-1] - recording.emg_time[0]),
    )
    chunks.delete()
    return Status.COMPLETE
