"""What an agent connection tracks for each session it streams into (no I/O to the DB).

Sequence numbers must arrive within a window past the first missing one: a chunk
already stored is a harmless duplicate, a chunk far ahead is a protocol error. The
EMG and the camera label stream each have their own sequence numbers (`SeqWindow`).
"""

from __future__ import annotations

import time
import weakref
from datetime import datetime
from pathlib import Path

import numpy as np

from recorder.chunk_log import LOG_NAME, ChunkLog, GroupCommitWriter
from recorder.devices.packets import PacketCounter
from recorder.protocol import (
    STREAM_EMG,
    STREAM_LABELS,
    Chunk,
    ProtocolError,
    peek_header,
)
from recorder.quality import RecentSamples, channel_quality

# one writer thread per server process, shared by every agent connection
CHUNK_WRITER = GroupCommitWriter()

MAX_SEQ_AHEAD = 1024  # chunks past the first missing one; the agent keeps 64 in flight
QUALITY_INTERVAL_S = 0.5
DISPLAY_DECIMATION = 2  # 500 Hz -> 250 Hz points for the browser's traces
# Live updates go out only while a browser tab watches: tabs say so every
# WATCH_INTERVAL_S, and a watch lapses after WATCH_TTL_S without news.
WATCH_INTERVAL_S = 3.0
WATCH_TTL_S = 10.0
LIVE_LABELS_MAX_FPS = 15.0  # label frames per second sent to watching tabs
# camera frame times jitter: a frame this early still counts as due
LABEL_DUE_TOLERANCE_S = 0.002
# names, in a session's chunk folder, the session it belongs to (claim_chunk_dir)
OWNER_FILE = "session-created-at"
# While a live hand watches, agents send short chunks (one pose update each) ...
LIVE_CHUNK_S = 0.04
# ... unless this server process has more watched agents than its live chunk budget
# (settings.LIVE_CHUNKS_PER_S) allows: then longer ones, up to recording's own.
RECORDING_CHUNK_S = 0.2
# the sessions of this process whose agent was asked for live chunks
_LIVE_INGESTS: weakref.WeakSet = weakref.WeakSet()


def live_chunk_s(watched_agents: int, chunks_per_s: float) -> float:
    """The chunk length (s) to ask of each agent whose live hand is watched, when
    `watched_agents` such agents share this server process: LIVE_CHUNK_S while
    their chunks fit `chunks_per_s`, longer past it, never above RECORDING_CHUNK_S.
    A crowd of live hands then costs pose latency, not recording capacity."""
    wanted_s = watched_agents / chunks_per_s
    return round(min(max(LIVE_CHUNK_S, wanted_s), RECORDING_CHUNK_S), 3)


def live_agents_here() -> int:
    """Agents of this server process that were asked for live chunks."""
    return sum(1 for ingest in _LIVE_INGESTS if ingest.live_chunk_s is not None)


def live_group(session_id: int) -> str:
    """Browser tabs watching a session."""
    return f"session.{session_id}.live"


def ingest_group(session_id: int) -> str:
    """Agent connections streaming into a session (normally one)."""
    return f"session.{session_id}.ingest"


def claim_chunk_dir(chunk_dir: Path, created_at: datetime) -> None:
    """Make sure `chunk_dir` holds only chunks of the session created at `created_at`.

    Session ids repeat: a database that was reset, or two databases sharing
    CHUNK_STORE_DIR, give a new session the id of one whose folder is still here.
    Its chunks would count as this session's: every new chunk with a seq it already
    has is acknowledged as a duplicate and neither stored nor sent to the live hand.
    Such a folder is moved aside (kept, never deleted); ours is marked as ours.
    """
    owner = chunk_dir / OWNER_FILE
    log = chunk_dir / LOG_NAME
    if owner.exists():
        stale = owner.read_text() != created_at.isoformat()
    else:  # a log from before owner files: stale if last written before the session
        stale = log.exists() and log.stat().st_mtime < created_at.timestamp()
    if stale:
        chunk_dir.rename(
            chunk_dir.with_name(f"{chunk_dir.name}.stale-{time.time():.0f}")
        )
    if not owner.exists():
        chunk_dir.mkdir(parents=True, exist_ok=True)
        owner.write_text(created_at.isoformat())


class SeqWindow:
    """Which sequence numbers of one stream are stored."""

    def __init__(self, name: str):
        self.name = name
        self.contiguous = 0  # chunks 0..contiguous-1 are all stored
        self.stored_ahead: set[int] = set()

    def is_stored(self, seq: int) -> bool:
        return seq < self.contiguous or seq in self.stored_ahead

    def check_window(self, seq: int) -> None:
        if seq >= self.contiguous + MAX_SEQ_AHEAD:
            raise ProtocolError(
                "seq_too_far_ahead",
                f"{self.name} chunk seq {seq} is more than "
                f"{MAX_SEQ_AHEAD} ahead of the first missing chunk "
                f"({self.contiguous})",
            )

    def mark_stored(self, seq: int) -> bool:
        """Remember `seq` as stored; False if it already was."""
        if self.is_stored(seq):
            return False
        self.stored_ahead.add(seq)
        while self.contiguous in self.stored_ahead:
            self.stored_ahead.remove(self.contiguous)
            self.contiguous += 1
        return True


class SessionIngest:
    def __init__(
        self,
        session_id: int,
        chunk_dir: Path,
        sampling_rate_hz: float,
        num_channels: int,
        line_frequency_hz: float = 50.0,
        created_at: datetime | None = None,  # the session's: see claim_chunk_dir
    ):
        self.session_id = session_id
        if created_at is not None:
            claim_chunk_dir(chunk_dir, created_at)
        self.log = ChunkLog(chunk_dir)
        self.log.open_for_append()
        self.sampling_rate_hz = sampling_rate_hz
        self.line_frequency_hz = line_frequency_hz
        self.windows = {
            STREAM_EMG: SeqWindow("chunk"),
            STREAM_LABELS: SeqWindow("label"),
        }
        self.samples_stored = 0
        self.label_frames_stored = 0
        self._label_shown_until_s = float("-inf")  # live.labels decimation
        for record in self.log.records():
            _, stream, seq, count = peek_header(record.frame)
            self.mark_stored(seq, count, stream)
        self.recent = RecentSamples(num_channels, int(sampling_rate_hz))
        self._quality_due_s = 0.0
        self._watched_until_s = 0.0
        self._hand_watched_until_s = 0.0  # a live 3D hand tab (webapp/live)
        self.live_chunk_s: float | None = None  # what the agent was asked to send
        # losses seen live on this connection; the session file has the full count
        self.packets = PacketCounter()

    @property
    def contiguous(self) -> int:
        """EMG chunks 0..contiguous-1 are all stored."""
        return self.windows[STREAM_EMG].contiguous

    @property
    def label_chunks_contiguous(self) -> int:
        return self.windows[STREAM_LABELS].contiguous

    def is_stored(self, seq: int, stream: int = STREAM_EMG) -> bool:
        return self.windows[stream].is_stored(seq)

    def check_window(self, seq: int, stream: int = STREAM_EMG) -> None:
        self.windows[stream].check_window(seq)

    async def store(self, seq: int, frame: bytes) -> None:
        """Append a new chunk; returns once it is durable (fsynced)."""
        await CHUNK_WRITER.append(self.log, frame)
        _, stream, _, count = peek_header(frame)
        self.mark_stored(seq, count, stream)

    def mark_stored(self, seq: int, count: int, stream: int = STREAM_EMG) -> None:
        if not self.windows[stream].mark_stored(seq):
            return
        if stream == STREAM_EMG:
            self.samples_stored += count
        else:
            self.label_frames_stored += count

    def observe(self, chunk: Chunk) -> None:
        """Keep the recent samples and the live drop count up to date (cheap)."""
        self.recent.extend(chunk.samples.emg)
        self.packets.update(chunk.samples.package_num)

    def watch(self) -> None:
        """A browser tab is watching: send it live updates for a while."""
        self._watched_until_s = time.monotonic() + WATCH_TTL_S

    @property
    def watched(self) -> bool:
        return time.monotonic() < self._watched_until_s

    def set_live_chunk_s(self, chunk_s: float | None) -> None:
        """Remember what the agent was asked to send (None: recording's chunks)."""
        self.live_chunk_s = chunk_s
        _LIVE_INGESTS.add(self)

    def watch_hand(self) -> None:
        """A live hand tab is watching: forward samples to inference for a while."""
        self._hand_watched_until_s = time.monotonic() + WATCH_TTL_S

    @property
    def hand_watched(self) -> bool:
        return time.monotonic() < self._hand_watched_until_s

    def live_update(self, chunk: Chunk) -> dict:
        """The message for watching browsers: decimated traces, and quality when due."""
        samples = chunk.samples
        update = {
            "type": "live.emg",
            "session": self.session_id,
            "seq": chunk.seq,
            "t0": float(samples.time[0]),
            "dt": DISPLAY_DECIMATION / self.sampling_rate_hz,
            "emg": np.round(samples.emg[::DISPLAY_DECIMATION].T, 1).tolist(),
            "chunks_stored": self.contiguous,
            "samples_stored": self.samples_stored,
            "dropped_packets": self.packets.dropped_packets,
        }
        now_s = time.monotonic()
        if (
            now_s >= self._quality_due_s
            and self.recent.filled >= self.sampling_rate_hz / 2
        ):
            self._quality_due_s = now_s + QUALITY_INTERVAL_S
            quality = channel_quality(
                self.recent.latest(), self.sampling_rate_hz, self.line_frequency_hz
            )
            update["quality"] = [q.as_dict() for q in quality]
        return update

    def live_labels(self, chunk: Chunk) -> dict | None:
        """The label frames for watching tabs, at most LIVE_LABELS_MAX_FPS; frames
        without a hand are left out (their joints are NaN, which JSON cannot carry).
        None when no frame of the chunk is due."""
        frames = []
        labels = chunk.samples
        for k in range(len(labels)):
            time_s = float(labels.frame_time[k])
            if time_s < self._label_shown_until_s:
                continue
            joints = labels.joints[k]
            if not np.isfinite(joints).all():
                continue
            spacing_s = 1.0 / LIVE_LABELS_MAX_FPS - LABEL_DUE_TOLERANCE_S
            self._label_shown_until_s = time_s + spacing_s
            frames.append(
                {
                    "t": time_s,
                    "joints": np.round(joints.astype(np.float64), 2).ravel().tolist(),
                    "valid": bool(labels.label_valid[k]),
                    "ik_error_mm": round(float(labels.ik_error[k]), 2),
                }
            )
        if not frames:
            return None
        return {"type": "live.labels", "session": self.session_id, "frames": frames}
