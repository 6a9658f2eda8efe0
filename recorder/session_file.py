"""The per-session HDF5 file: raw EMG, optional camera labels, events and metadata.

Layout (format version 1):
    /                 attributes: format, format_version and the SessionAttributes
    /emg              (N, C) float32 µV, as received: dropped packets are NOT filled
    /emg_time         (N,) float64 s, the board's timestamps
    /package_num      (N,) int64 device packet counter
    /emg_gaps         (K, 2) int64 rows of (first sample after a gap, missing packets)
    /imu              (N, 6) float32 accel xyz (g), gyro xyz (deg/s); only if recorded
    /labels/...       the camera/label track at frame rate; only if recorded
    /events           compound (time_s, kind, name, detail as JSON)

Missing data is never zeros: landmarks are NaN where detection failed, and
`label_valid` says which label frames can be trusted.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path

import h5py
import numpy as np

from recorder import __version__
from recorder.devices.packets import find_gaps
from recorder.durable import fsync_directory, fsync_file

FORMAT_NAME = "emg-hand-session"
FORMAT_VERSION = 1

# name -> (dtype, shape after the leading time axis, whether NaN may mark "missing")
EMG_FIELDS = {
    "emg": (np.float32, None, False),  # (N, C): C is checked against channel_names
    "emg_time": (np.float64, (), False),
    "package_num": (np.int64, (), False),
    "imu": (np.float32, (6,), False),
}
LABEL_FIELDS = {
    "frame_time": (np.float64, (), False),
    "landmarks": (np.float32, (21, 3), True),
    "landmark_score": (np.float32, (), True),
    "pose": (np.float32, (48,), True),
    "joints": (np.float32, (21, 3), True),
    "joint_angles": (np.float32, (20,), True),
    "ik_error": (np.float32, (), True),
    "label_valid": (np.bool_, (), False),
}
# IK outputs are only meaningful together with the mask saying which frames to trust.
NEEDS_LABEL_VALID = ("pose", "joints", "joint_angles", "ik_error")


class SessionFormatError(ValueError):
    """A session file or recording breaks the format; the message names the field."""


@dataclass
class SessionEvent:
    """A protocol prompt or marker, e.g. kind="gesture", name="fist", at time_s (s)
    on the same clock as emg_time."""

    time_s: float
    kind: str
    name: str = ""
    detail: dict = field(default_factory=dict)


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass
class SessionAttributes:
    """Who, what and how a session was recorded; stored as file attributes."""

    device: str = "unknown"  # DeviceInfo.kind: "mindrove" | "simulated" | "replay"
    sampling_rate_hz: float = 500.0
    channel_names: tuple[str, ...] = ()
    subject: str = ""
    session: str = ""
    band_placement: str = ""
    band_rotation_deg: float = 0.0
    handedness: str = "right"  # "right" | "left"
    protocol: str = ""
    software_version: str = __version__
    dropped_packets: int = 0
    # Distinct values of the device's packet counter before it wraps; None: unknown.
    package_modulus: int | None = None
    device_info: dict = field(default_factory=dict)
    created_at: str = field(default_factory=_now_iso)


@dataclass
class SessionRecording:
    """Everything in one session file. Shapes: N EMG samples, C channels, M frames.

    Label-track fields are None when the session has no camera/label track.
    """

    emg: np.ndarray  # (N, C) float32 µV
    emg_time: np.ndarray  # (N,) float64 s
    package_num: np.ndarray  # (N,) int64
    attrs: SessionAttributes
    imu: np.ndarray | None = None  # (N, 6) float32
    frame_time: np.ndarray | None = None  # (M,) float64 s, same clock as emg_time
    landmarks: np.ndarray | None = None  # (M, 21, 3) float32 m, NaN = not detected
    landmark_score: np.ndarray | None = None  # (M,) float32
    pose: np.ndarray | None = None  # (M, 48) float32 MANO axis-angles, rad
    joints: np.ndarray | None = None  # (M, 21, 3) float32 mm, MediaPipe order
    joint_angles: np.ndarray | None = None  # (M, 20) float32 rad
    ik_error: np.ndarray | None = None  # (M,) float32 mm
    label_valid: np.ndarray | None = None  # (M,) bool
    events: list[SessionEvent] = field(default_factory=list)

    @property
    def has_labels(self) -> bool:
        return self.frame_time is not None

    @property
    def emg_gaps(self) -> np.ndarray:
        """(K, 2) int64: (index of first sample after a gap, missing packets)."""
        return find_gaps(self.package_num, self.attrs.package_modulus)


# ---------------------------------------------------------------- validation


def _check_field(name: str, value, spec: tuple, length: int | None) -> int:
    """Checks one array against its spec; returns its length along axis 0."""
    dtype, tail, nan_allowed = spec
    if not isinstance(value, np.ndarray):
        raise SessionFormatError(f"{name}: must be a numpy array, got {type(value)}")
    if value.dtype != dtype:
        raise SessionFormatError(
            f"{name}: dtype must be {np.dtype(dtype)}, got {value.dtype}"
        )
    if value.ndim == 0 or (tail is not None and value.shape[1:] != tail):
        expected = ("n",) + (tail or ())
        raise SessionFormatError(f"{name}: shape must be {expected}, got {value.shape}")
    if length is not None and len(value) != length:
        raise SessionFormatError(
            f"{name}: has {len(value)} rows but must match the others' {length}"
        )
    _check_values(name, value, nan_allowed)
    return len(value)


def _check_values(name: str, value: np.ndarray, nan_allowed: bool) -> None:
    if value.dtype.kind != "f":
        return
    bad = np.isinf(value) if nan_allowed else ~np.isfinite(value)
    if bad.any():
        what = "infinite" if nan_allowed else "NaN or infinite"
        first = np.argwhere(bad)[0].tolist()
        raise SessionFormatError(f"{name}: {what} value at index {first}")


def _check_increasing(name: str, times_s: np.ndarray) -> None:
    backwards = np.flatnonzero(np.diff(times_s) < 0)
    if backwards.size:
        i = int(backwards[0])
        raise SessionFormatError(
            f"{name}: times go backwards at index {i + 1} "
            f"({times_s[i]!r} s then {times_s[i + 1]!r} s)"
        )


def _check_emg(recording: SessionRecording) -> None:
    n = None
    for name, spec in EMG_FIELDS.items():
        value = getattr(recording, name)
        if value is None and name == "imu":
            continue
        n = _check_field(name, value, spec, n)
    if recording.emg.ndim != 2:
        shape = recording.emg.shape
        raise SessionFormatError(f"emg: shape must be (n, C), got {shape}")
    channels = len(recording.attrs.channel_names)
    if recording.emg.shape[1] != channels:
        raise SessionFormatError(
            f"emg: has {recording.emg.shape[1]} channels but attrs.channel_names "
            f"names {channels}"
        )
    _check_increasing("emg_time", recording.emg_time)


def _check_labels(recording: SessionRecording) -> None:
    present = [n for n in LABEL_FIELDS if getattr(recording, n) is not None]
    if not present:
        return
    if recording.frame_time is None:
        raise SessionFormatError(f"frame_time: required when {present[0]} is given")
    if any(n in present for n in NEEDS_LABEL_VALID) and "label_valid" not in present:
        raise SessionFormatError("label_valid: required when IK labels are given")
    m = None
    for name in present:
        m = _check_field(name, getattr(recording, name), LABEL_FIELDS[name], m)
    _check_increasing("frame_time", recording.frame_time)


def _check_events(events: list[SessionEvent]) -> None:
    for i, event in enumerate(events):
        if not np.isfinite(event.time_s):
            raise SessionFormatError(f"events[{i}]: time_s must be finite")
        if not event.kind:
            raise SessionFormatError(f"events[{i}]: kind must not be empty")
        try:
            json.dumps(event.detail)
        except TypeError as error:
            raise SessionFormatError(
                f"events[{i}]: detail is not JSON: {error}"
            ) from error


def validate_recording(recording: SessionRecording) -> None:
    """Raises SessionFormatError naming the first field that breaks the format."""
    _check_emg(recording)
    _check_labels(recording)
    _check_events(recording.events)


# ---------------------------------------------------------------- writing


def write_session(path: str | os.PathLike, recording: SessionRecording) -> None:
    """Validates `recording` and writes it to `path` atomically.

    The file appears under its final name only once complete, so a crash or a
    validation error never leaves a half-written file or clobbers an existing one.
    """
    validate_recording(recording)
    with atomic_hdf5_file(path) as h5:
        _write_contents(h5, recording)


@contextmanager
def atomic_hdf5_file(path: str | os.PathLike) -> Iterator[h5py.File]:
    """An HDF5 file open for writing that replaces `path` only if the block succeeds.

    Writes a temporary file in the same directory, flushes and fsyncs it, then renames
    it over `path`; on any error the temporary file is removed and `path` is untouched.
    """
    path = Path(path)
    fd, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    os.close(fd)
    try:
        with h5py.File(temp_name, "w") as h5:
            yield h5
        fsync_file(temp_name)
        _chmod_like_new_file(temp_name)
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
    fsync_directory(path.parent)


def _write_contents(h5: h5py.File, recording: SessionRecording) -> None:
    _write_attrs(h5, recording.attrs)
    for name in EMG_FIELDS:
        value = getattr(recording, name)
        if value is not None:
            h5.create_dataset(name, data=value)
    h5.create_dataset("emg_gaps", data=recording.emg_gaps.reshape(-1, 2))
    if recording.has_labels:
        labels = h5.create_group("labels")
        for name in LABEL_FIELDS:
            value = getattr(recording, name)
            if value is not None:
                labels.create_dataset(name, data=value)
    _write_events(h5, recording.events)


def _write_attrs(h5: h5py.File, attrs: SessionAttributes) -> None:
    h5.attrs["format"] = FORMAT_NAME
    h5.attrs["format_version"] = FORMAT_VERSION
    for name, value in asdict(attrs).items():
        if name == "device_info":
            h5.attrs[name] = json.dumps(value)
        elif name == "channel_names":
            h5.attrs[name] = np.array(value, dtype=h5py.string_dtype())
        elif value is not None:  # HDF5 has no None: an absent attribute means None
            h5.attrs[name] = value


EVENT_DTYPE = np.dtype(
    [
        ("time_s", np.float64),
        ("kind", h5py.string_dtype()),
        ("name", h5py.string_dtype()),
        ("detail", h5py.string_dtype()),  # JSON
    ]
)


def _write_events(h5: h5py.File, events: list[SessionEvent]) -> None:
    rows = np.array(
        [(e.time_s, e.kind, e.name, json.dumps(e.detail)) for e in events],
        dtype=EVENT_DTYPE,
    )
    h5.create_dataset("events", data=rows, dtype=EVENT_DTYPE)


def _chmod_like_new_file(path: str) -> None:
    # mkstemp makes owner-only files; give the final file the usual umask permissions.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


# ---------------------------------------------------------------- reading


def _open_session(path: str | os.PathLike) -> h5py.File:
    """Opens a session file for reading after checking its format and version."""
    try:
        h5 = h5py.File(path, "r")
    except FileNotFoundError:
        raise
    except OSError as error:
        raise SessionFormatError(
            f"{path}: not a readable HDF5 file ({error})"
        ) from error
    if h5.attrs.get("format") != FORMAT_NAME:
        h5.close()
        raise SessionFormatError(f"{path}: not a session file (no '{FORMAT_NAME}' tag)")
    version = h5.attrs.get("format_version")
    if not isinstance(version, (int, np.integer)) or not 1 <= version <= FORMAT_VERSION:
        h5.close()
        raise SessionFormatError(
            f"{path}: session format version {version!r} is not one this software "
            f"reads (1 to {FORMAT_VERSION}); a newer version may need an upgrade"
        )
    return h5


def open_session(path: str | os.PathLike) -> h5py.File:
    """The session file open read-only, for partial reads of ranges (h5py slicing),
    after checking its format and version. The caller closes it (`with`)."""
    return _open_session(path)


def read_events(path: str | os.PathLike) -> list[SessionEvent]:
    """Just the session's events (protocol steps and markers), in file order."""
    with _open_session(path) as h5:
        return _read_events(h5)


def read_session(path: str | os.PathLike) -> SessionRecording:
    """Reads a whole session file. Label-track fields are None when absent."""
    with _open_session(path) as h5:
        labels = h5.get("labels", {})
        return SessionRecording(
            emg=h5["emg"][()],
            emg_time=h5["emg_time"][()],
            package_num=h5["package_num"][()],
            imu=h5["imu"][()] if "imu" in h5 else None,
            attrs=_read_attrs(h5),
            events=_read_events(h5),
            **{
                name: labels[name][()] if name in labels else None
                for name in LABEL_FIELDS
            },
        )


def _read_attrs(h5: h5py.File) -> SessionAttributes:
    values = {}
    for attr in fields(SessionAttributes):
        if attr.name not in h5.attrs:
            continue
        value = h5.attrs[attr.name]
        if attr.name == "device_info":
            value = json.loads(value)
        elif attr.name == "channel_names":
            value = tuple(str(name) for name in value)
        elif isinstance(value, np.generic):
            value = value.item()
        values[attr.name] = value
    return SessionAttributes(**values)


def _read_events(h5: h5py.File) -> list[SessionEvent]:
    def text(value) -> str:
        return value.decode() if isinstance(value, bytes) else str(value)

    return [
        SessionEvent(
            time_s=float(row["time_s"]),
            kind=text(row["kind"]),
            name=text(row["name"]),
            detail=json.loads(text(row["detail"])),
        )
        for row in h5["events"][()]
    ]


def session_summary(path: str | os.PathLike) -> dict:
    """Cheap metadata read (no EMG arrays loaded) for listings and the portal."""
    with _open_session(path) as h5:
        emg_time = h5["emg_time"]
        sample_count = len(emg_time)
        duration_s = float(emg_time[-1] - emg_time[0]) if sample_count else 0.0
        return {
            "format_version": int(h5.attrs["format_version"]),
            "sample_count": sample_count,
            "duration_s": duration_s,
            "channels": [str(name) for name in h5.attrs["channel_names"]],
            "sampling_rate_hz": float(h5.attrs["sampling_rate_hz"]),
            "dropped_packets": int(h5.attrs["dropped_packets"]),
            "gap_count": len(h5["emg_gaps"]),
            "has_labels": "labels" in h5,
            "frame_count": len(h5["labels/frame_time"]) if "labels" in h5 else 0,
            "subject": str(h5.attrs.get("subject", "")),
            "session": str(h5.attrs.get("session", "")),
        }
