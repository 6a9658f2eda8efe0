"""Turns the stored chunks of a finished recording into one session recording.

EMG chunks must all be there (the agent said how many). Label chunks (the camera
path's stream) must run 0..k-1 without a gap; the server refused to close the
recording before it held every label chunk the agent reported.
"""

from __future__ import annotations

from recorder.camera.frames import LabelFrames
from recorder.chunk_log import ChunkLog
from recorder.devices.base import EmgChunk
from recorder.protocol import STREAM_EMG, STREAM_LABELS, decode_chunk, peek_header
from recorder.session_file import SessionAttributes, SessionEvent, SessionRecording


class AssemblyError(RuntimeError):
    """The stored chunks do not add up to what the agent says it recorded."""


def first_copies(log: ChunkLog, stream: int) -> dict[int, bytes]:
    """seq -> frame of one stream; a chunk stored twice is the same bytes, keep one."""
    frames: dict[int, bytes] = {}
    for record in log.records():
        _, stream_id, seq, _ = peek_header(record.frame)
        if stream_id == stream:
            frames.setdefault(seq, record.frame)
    return frames


def assemble_recording(
    log: ChunkLog,
    expected_chunks: int,
    expected_samples: int,
    attrs: SessionAttributes,
    events: list[SessionEvent] = (),
) -> SessionRecording:
    """Concatenate chunks 0..expected_chunks-1, checking that nothing is missing.
    `events` (e.g. protocol steps, on the EMG clock) join the recording's start and
    end events, in time order."""
    frames = first_copies(log, STREAM_EMG)
    missing = sorted(set(range(expected_chunks)) - set(frames))
    if missing:
        raise AssemblyError(
            f"{len(missing)} of {expected_chunks} chunks are missing "
            f"(first missing: seq {missing[0]})"
        )
    if expected_chunks == 0:
        raise AssemblyError("the recording holds no samples")
    decoded = [decode_chunk(frames[seq]).samples for seq in range(expected_chunks)]
    samples = EmgChunk.concatenate(decoded)
    if len(samples) != expected_samples:
        raise AssemblyError(
            f"stored chunks hold {len(samples)} samples but the agent "
            f"recorded {expected_samples}"
        )
    events = [
        SessionEvent(float(samples.time[0]), "recording", "start"),
        *events,
        SessionEvent(float(samples.time[-1]), "recording", "end"),
    ]
    events.sort(key=lambda event: event.time_s)  # stable: start first, end last
    labels = assemble_labels(log)
    return SessionRecording(
        emg=samples.emg,
        emg_time=samples.time,
        package_num=samples.package_num,
        imu=samples.imu,
        attrs=attrs,
        events=events,
        **({} if labels is None else label_fields(labels)),
    )


def assemble_labels(log: ChunkLog) -> LabelFrames | None:
    """The camera label frames of every stored label chunk, or None if none."""
    frames = first_copies(log, STREAM_LABELS)
    if not frames:
        return None
    missing = sorted(set(range(max(frames) + 1)) - set(frames))
    if missing:
        raise AssemblyError(
            f"{len(missing)} label chunks are missing (first missing: seq "
            f"{missing[0]} of {max(frames) + 1})"
        )
    return LabelFrames.concatenate(
        [decode_chunk(frames[seq]).samples for seq in range(len(frames))]
    )


def label_fields(labels: LabelFrames) -> dict:
    """The SessionRecording fields of the label track."""
    return {
        "frame_time": labels.frame_time,
        "landmarks": labels.landmarks,
        "landmark_score": labels.landmark_score,
        "pose": labels.pose,
        "joints": labels.joints,
        "ik_error": labels.ik_error,
        "label_valid": labels.label_valid,
    }
