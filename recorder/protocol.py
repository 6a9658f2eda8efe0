"""The agent <-> server wire protocol, version 1.

Two kinds of websocket message:
- JSON text messages: {"v": 1, "type": "<namespace>.<name>", ...fields}. Every field is
  checked against `MESSAGE_FIELDS`; anything else is a `ProtocolError` naming the
  problem.
- Binary chunks of samples. A fixed little-endian header, then the payload:
      magic "EMGC", version u8, stream id u8, channels u8, flags u8,
      session id u64, sequence number u64, sample count u32,
      first sample time f64 (s, device clock), CRC-32 of the payload u32
  EMG payload (stream 0): time f64[n], package_num i64[n], emg f32[n, channels] (µV),
           and imu f32[n, 6] when flags has HAS_IMU.
  Label payload (stream 1, n camera frames, channels = 21 joints, flags 0):
      frame_time f64[n] (s, EMG clock), landmark_score f32[n], landmarks f32[n,21,3]
      (m), pose f32[n,48] (rad), joints f32[n,21,3] (mm), ik_error f32[n] (mm),
      label_valid u8[n]. NaN marks a frame without a hand (never zeros).
  Each stream has its own sequence numbers, acknowledged separately.
  The same (session, stream, seq) always carries the same bytes, so storing it twice
  is harmless: the server keeps the first copy and acknowledges every copy.
"""

from __future__ import annotations

import json
import math
import struct
import zlib
from collections import namedtuple
from dataclasses import dataclass

import numpy as np

from recorder.camera.frames import NUM_JOINTS, POSE_SIZE, LabelFrames
from recorder.devices.base import EmgChunk

PROTOCOL_VERSION = 1
CHUNK_MAGIC = b"EMGC"
HEADER = struct.Struct("<4sBBBBQQIdI")
ChunkHeader = namedtuple(
    "ChunkHeader",
    "magic version stream_id channels flags session_id seq n first_time_s crc",
)
HAS_IMU = 0x01
IMU_COLUMNS = 6

STREAM_EMG = 0
STREAM_LABELS = 1  # camera frames with live IK labels (recorder/camera)
STREAM_NAMES = {STREAM_EMG: "emg", STREAM_LABELS: "labels"}

MAX_CHANNELS = 64
# 6 s at 500 Hz, far above the agent's chunks (1 s at most); the largest chunk this
# allows (64 channels and IMU: 0.85 MiB) stays below daphne's 1 MiB websocket
# message limit, so an oversized chunk is answered by the server, not dropped
MAX_SAMPLES_PER_CHUNK = 3000
MAX_TEXT_BYTES = 64 * 1024
MAX_CHUNK_BYTES = HEADER.size + MAX_SAMPLES_PER_CHUNK * (8 + 8 + 4 * (MAX_CHANNELS + 6))
MAX_FRAMES_PER_CHUNK = 600  # 10 s at 60 fps: far above the agent's 0.2 s chunks
# frame_time, score, landmarks, pose, joints, ik_error, label_valid
LABEL_FRAME_BYTES = 8 + 4 + 12 * NUM_JOINTS + 4 * POSE_SIZE + 12 * NUM_JOINTS + 4 + 1
CAMERA_STATES = ("ok", "no_frames", "off")


class ProtocolError(ValueError):
    """A message broke the protocol. `code` is machine-readable, str() is for people."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Chunk:
    """One decoded binary chunk."""

    session_id: int
    stream_id: int
    seq: int
    samples: EmgChunk | LabelFrames  # LabelFrames on STREAM_LABELS

    @property
    def num_samples(self) -> int:
        return len(self.samples)


# ---------------------------------------------------------------- binary chunks


def encode_chunk(session_id: int, stream_id: int, seq: int, samples: EmgChunk) -> bytes:
    """Pack samples into one binary frame (see module docstring)."""
    n, channels = samples.emg.shape
    parts = [
        np.ascontiguousarray(samples.time, "<f8").tobytes(),
        np.ascontiguousarray(samples.package_num, "<i8").tobytes(),
        np.ascontiguousarray(samples.emg, "<f4").tobytes(),
    ]
    flags = 0
    if samples.imu is not None:
        flags |= HAS_IMU
        parts.append(np.ascontiguousarray(samples.imu, "<f4").tobytes())
    payload = b"".join(parts)
    first_time_s = float(samples.time[0]) if n else 0.0
    header = HEADER.pack(
        CHUNK_MAGIC,
        PROTOCOL_VERSION,
        stream_id,
        channels,
        flags,
        session_id,
        seq,
        n,
        first_time_s,
        zlib.crc32(payload),
    )
    return header + payload


def encode_label_chunk(session_id: int, seq: int, frames: LabelFrames) -> bytes:
    """Pack camera label frames into one binary frame of STREAM_LABELS."""
    payload = b"".join(
        [
            np.ascontiguousarray(frames.frame_time, "<f8").tobytes(),
            np.ascontiguousarray(frames.landmark_score, "<f4").tobytes(),
            np.ascontiguousarray(frames.landmarks, "<f4").tobytes(),
            np.ascontiguousarray(frames.pose, "<f4").tobytes(),
            np.ascontiguousarray(frames.joints, "<f4").tobytes(),
            np.ascontiguousarray(frames.ik_error, "<f4").tobytes(),
            np.ascontiguousarray(frames.label_valid, "u1").tobytes(),
        ]
    )
    first_time_s = float(frames.frame_time[0]) if len(frames) else 0.0
    header = HEADER.pack(
        CHUNK_MAGIC,
        PROTOCOL_VERSION,
        STREAM_LABELS,
        NUM_JOINTS,
        0,
        session_id,
        seq,
        len(frames),
        first_time_s,
        zlib.crc32(payload),
    )
    return header + payload


def peek_header(frame: bytes) -> tuple[int, int, int, int]:
    """(session id, stream id, seq, sample count) of a frame already validated once."""
    header = ChunkHeader._make(HEADER.unpack_from(frame))
    return header.session_id, header.stream_id, header.seq, header.n


def decode_chunk(frame: bytes, expected_channels: int | None = None) -> Chunk:
    """Unpack and fully validate one binary frame; raise ProtocolError if it's bad."""
    if len(frame) > MAX_CHUNK_BYTES:
        raise ProtocolError(
            "too_large",
            f"chunk of {len(frame)} bytes exceeds the {MAX_CHUNK_BYTES}-byte limit",
        )
    if len(frame) < HEADER.size:
        raise ProtocolError(
            "bad_chunk",
            f"chunk of {len(frame)} bytes is shorter "
            f"than the {HEADER.size}-byte header",
        )
    header = ChunkHeader._make(HEADER.unpack_from(frame))
    _check_header(header, expected_channels)
    payload = frame[HEADER.size :]
    if header.stream_id == STREAM_LABELS:
        frames = _unpack_labels(header, payload)
        _check_label_frames(frames, header.seq, header.first_time_s)
        return Chunk(header.session_id, header.stream_id, header.seq, frames)
    has_imu = bool(header.flags & HAS_IMU)
    columns = 8 + 8 + 4 * header.channels + (4 * IMU_COLUMNS if has_imu else 0)
    if len(payload) != header.n * columns:
        raise ProtocolError(
            "bad_chunk",
            f"payload is {len(payload)} bytes but {header.n} samples × "
            f"{header.channels} channels need {header.n * columns}",
        )
    _check_checksum(header, payload)
    samples = _unpack_payload(payload, header.n, header.channels, has_imu)
    _check_samples(samples, header.seq, header.first_time_s)
    return Chunk(header.session_id, header.stream_id, header.seq, samples)


def _check_checksum(header: ChunkHeader, payload: bytes) -> None:
    if zlib.crc32(payload) != header.crc:
        raise ProtocolError(
            "bad_checksum",
            f"chunk seq {header.seq}: CRC-32 mismatch, the payload was corrupted "
            "in transit",
        )


def _check_header(header: ChunkHeader, expected_channels: int | None) -> None:
    version, channels, n = header.version, header.channels, header.n
    if header.magic != CHUNK_MAGIC:
        raise ProtocolError(
            "bad_chunk",
            f"binary message does not start with {CHUNK_MAGIC!r}: not an EMG chunk",
        )
    if version != PROTOCOL_VERSION:
        raise ProtocolError(
            "bad_version",
            f"chunk protocol version {version} is not "
            f"supported; this server speaks {PROTOCOL_VERSION}",
        )
    if header.stream_id not in STREAM_NAMES:
        raise ProtocolError("bad_stream", f"unknown stream id {header.stream_id}")
    if header.stream_id == STREAM_LABELS:
        _check_label_header(header)
        return
    if not 1 <= channels <= MAX_CHANNELS:
        raise ProtocolError(
            "bad_channels", f"{channels} channels is out of range 1..{MAX_CHANNELS}"
        )
    if expected_channels is not None and channels != expected_channels:
        raise ProtocolError(
            "bad_channels",
            f"chunk has {channels} channels but the "
            f"device announced {expected_channels}",
        )
    if not 1 <= n <= MAX_SAMPLES_PER_CHUNK:
        raise ProtocolError(
            "bad_chunk",
            f"{n} samples in one chunk is out of range 1..{MAX_SAMPLES_PER_CHUNK}",
        )


def _check_label_header(header: ChunkHeader) -> None:
    if header.channels != NUM_JOINTS:
        raise ProtocolError(
            "bad_chunk",
            f"label chunk seq {header.seq} says {header.channels} joints; "
            f"labels have {NUM_JOINTS}",
        )
    if not 1 <= header.n <= MAX_FRAMES_PER_CHUNK:
        raise ProtocolError(
            "bad_chunk",
            f"{header.n} frames in one label chunk is out of range "
            f"1..{MAX_FRAMES_PER_CHUNK}",
        )


def _unpack_labels(header: ChunkHeader, payload: bytes) -> LabelFrames:
    n = header.n
    if len(payload) != n * LABEL_FRAME_BYTES:
        raise ProtocolError(
            "bad_chunk",
            f"label payload is {len(payload)} bytes but {n} frames need "
            f"{n * LABEL_FRAME_BYTES}",
        )
    _check_checksum(header, payload)
    offset = 0

    def take(dtype: str, count: int) -> np.ndarray:
        nonlocal offset
        array = np.frombuffer(payload, dtype, count, offset)
        offset += array.nbytes
        return array

    return LabelFrames(
        frame_time=take("<f8", n).astype(np.float64),
        landmark_score=take("<f4", n).astype(np.float32),
        landmarks=take("<f4", n * NUM_JOINTS * 3).reshape(n, NUM_JOINTS, 3).copy(),
        pose=take("<f4", n * POSE_SIZE).reshape(n, POSE_SIZE).astype(np.float32),
        joints=take("<f4", n * NUM_JOINTS * 3).reshape(n, NUM_JOINTS, 3).copy(),
        ik_error=take("<f4", n).astype(np.float32),
        label_valid=take("u1", n).astype(np.bool_),
    )


def _check_label_frames(frames: LabelFrames, seq: int, first_time_s: float) -> None:
    """Frame times as EMG samples; NaN means "no hand", so only infinities are bad,
    and a frame marked valid must carry finite joints and residual."""
    times = frames.frame_time
    if not np.isfinite(times).all() or np.any(np.diff(times) < 0):
        raise ProtocolError(
            "bad_time",
            f"label chunk seq {seq}: frame times must be finite and non-decreasing",
        )
    if times[0] != first_time_s:
        raise ProtocolError(
            "bad_time",
            f"label chunk seq {seq}: header first-frame time disagrees with payload",
        )
    for name in ("landmark_score", "landmarks", "pose", "joints", "ik_error"):
        if np.isinf(getattr(frames, name)).any():
            raise ProtocolError(
                "not_finite", f"label chunk seq {seq}: {name} holds infinite values"
            )
    valid = frames.label_valid
    usable = np.isfinite(frames.joints).all(axis=(1, 2)) & np.isfinite(frames.ik_error)
    if np.any(valid & ~usable):
        raise ProtocolError(
            "bad_labels",
            f"label chunk seq {seq}: a frame marked label_valid has no joints",
        )


def _unpack_payload(payload: bytes, n: int, channels: int, has_imu: bool) -> EmgChunk:
    offset = 0

    def take(dtype: str, count: int) -> np.ndarray:
        nonlocal offset
        array = np.frombuffer(payload, dtype, count, offset)
        offset += array.nbytes
        return array

    time_s = take("<f8", n).astype(np.float64)
    package_num = take("<i8", n).astype(np.int64)
    emg = take("<f4", n * channels).reshape(n, channels).astype(np.float32)
    imu = (
        take("<f4", n * IMU_COLUMNS).reshape(n, IMU_COLUMNS).astype(np.float32)
        if has_imu
        else None
    )
    return EmgChunk(emg=emg, time=time_s, package_num=package_num, imu=imu)


def _check_samples(samples: EmgChunk, seq: int, first_time_s: float) -> None:
    if not np.isfinite(samples.emg).all():
        raise ProtocolError(
            "not_finite", f"chunk seq {seq}: EMG contains NaN or infinite values"
        )
    if samples.imu is not None and not np.isfinite(samples.imu).all():
        raise ProtocolError(
            "not_finite", f"chunk seq {seq}: IMU contains NaN or infinite values"
        )
    if not np.isfinite(samples.time).all() or np.any(np.diff(samples.time) < 0):
        raise ProtocolError(
            "bad_time",
            f"chunk seq {seq}: sample times must be finite and non-decreasing",
        )
    if samples.time[0] != first_time_s:
        raise ProtocolError(
            "bad_time",
            f"chunk seq {seq}: header first-sample time disagrees with the payload",
        )


# ---------------------------------------------------------------- JSON messages

# type -> {field: allowed python types}; every listed field is required.
MESSAGE_FIELDS: dict[str, dict[str, tuple[type, ...]]] = {
    # agent -> server
    "agent.hello": {"agent_version": (str,), "device": (dict,), "sessions": (list,)},
    "agent.ping": {},
    # about once a second per recording: the camera path's health, for the page
    "camera.status": {
        "session": (int,),
        "state": (str,),  # one of CAMERA_STATES
        "fps": (int, float),
        "latency_ms": (int, float),
        "message": (str,),
    },
    # the answer to device.contact: one impedance value per electrode pair (None: no
    # reading), or no pairs and a message saying why there is no measurement
    "device.contact_report": {
        "session": (int,),
        "pairs": (list,),
        "resistance_kohm": (list,),
        "message": (str,),
    },
    "recording.stopped": {
        "session": (int,),
        "chunks": (int,),
        "samples": (int,),
        "dropped_packets": (int,),
        "reason": (str,),
    },
    # the answer to video.request when the agent cannot send the video (no saved
    # file, still recording, the upload failed); the reason is shown on the page
    "video.unavailable": {"session": (int,), "reason": (str,)},
    # server -> agent
    "agent.welcome": {"agent": (str,), "server_version": (str,)},
    "agent.pong": {},
    "recording.start": {"session": (int,), "band_rotation_deg": (int, float)},
    "recording.stop": {"session": (int,)},
    # a live 3D hand watches (live=True): send short chunks until live=False
    "recording.live": {"session": (int,), "live": (bool,)},
    "recording.closed": {"session": (int,), "status": (str,)},
    # measure electrode contact now (MindRove impedance mode; the EMG pauses)
    "device.contact": {"session": (int,)},
    "chunk.ack": {"session": (int,), "stream": (int,), "seqs": (list,)},
    # the owner asks for the session's --save-video file: the agent uploads it over
    # HTTP (POST /agent/sessions/<id>/video) or answers video.unavailable
    "video.request": {"session": (int,)},
    "error": {"code": (str,), "message": (str,)},
}
# type -> {field: allowed python types}; checked when present. Older agents omit them.
OPTIONAL_FIELDS: dict[str, dict[str, tuple[type, ...]]] = {
    # label chunks the agent spooled (stream 1); absent means none
    "recording.stopped": {"label_chunks": (int,)},
    # how long the live chunks should be (s); a busy server asks for longer ones
    "recording.live": {"chunk_s": (int, float)},
}
# (type, field) -> the values allowed
FIELD_CHOICES = {("camera.status", "state"): CAMERA_STATES}


def make_message(type_: str, **fields) -> str:
    """Serialize one message, checking it against its schema first."""
    message = {"v": PROTOCOL_VERSION, "type": type_, **fields}
    validate_message(message)
    return json.dumps(message, separators=(",", ":"))


def parse_message(text: str | bytes) -> dict:
    """Decode and validate one JSON message; raise ProtocolError naming the problem."""
    if len(text) > MAX_TEXT_BYTES:
        raise ProtocolError(
            "too_large",
            f"message of {len(text)} bytes exceeds the {MAX_TEXT_BYTES}-byte limit",
        )
    try:
        message = json.loads(text, parse_constant=_reject_constant)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProtocolError("bad_json", f"message is not valid JSON: {exc}") from None
    validate_message(message)
    return message


def _reject_constant(name: str):
    raise ValueError(f"{name} is not allowed")


def validate_message(message) -> None:
    if not isinstance(message, dict):
        raise ProtocolError("bad_schema", "message must be a JSON object")
    # `true == 1` in Python: a bool is never a version
    if isinstance(message.get("v"), bool) or message.get("v") != PROTOCOL_VERSION:
        raise ProtocolError(
            "bad_version",
            f"protocol version {message.get('v')!r} is "
            f"not supported; this side speaks {PROTOCOL_VERSION}",
        )
    type_ = message.get("type")
    if type_ not in MESSAGE_FIELDS:
        raise ProtocolError("bad_type", f"unknown message type {type_!r}")
    for name, types in MESSAGE_FIELDS[type_].items():
        if name not in message:
            raise ProtocolError("bad_schema", f"{type_}: missing field {name!r}")
        _check_field(type_, name, message[name], types)
    for name, types in OPTIONAL_FIELDS.get(type_, {}).items():
        if name in message:
            _check_field(type_, name, message[name], types)


def _check_field(type_: str, name: str, value, types: tuple[type, ...]) -> None:
    # bool is an int in Python, but never a valid id or count here
    is_bool_mismatch = isinstance(value, bool) != (bool in types)
    if is_bool_mismatch or not isinstance(value, types):
        expected = " or ".join(t.__name__ for t in types)
        raise ProtocolError("bad_schema", f"{type_}: field {name!r} must be {expected}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ProtocolError("bad_schema", f"{type_}: field {name!r} must be finite")
    choices = FIELD_CHOICES.get((type_, name))
    if choices is not None and value not in choices:
        raise ProtocolError(
            "bad_schema", f"{type_}: field {name!r} must be one of {list(choices)}"
        )
