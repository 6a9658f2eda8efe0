"""The agent's on-disk spool: every chunk stays here until the recording is closed.

Layout: <root>/session-<id>/ holds the session's chunk log (see chunk_log.py) and a
state.json: {"session": id, "status": "recording" | "stopped", "reason": str,
"dropped_packets": int}. The log holds two streams, EMG and camera labels, each
with its own sequence numbers (the server acknowledges them separately). Which chunks
the server has acknowledged is kept in memory only: after an agent crash every chunk
is sent again, which is harmless because the server stores each (session, stream,
seq) once. Surviving a lost connection, a server
restart or an agent crash is a matter of sending again whatever is here.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from recorder.chunk_log import ChunkLog
from recorder.devices.packets import PacketCounter
from recorder.durable import write_file_durably
from recorder.protocol import STREAM_EMG, STREAM_LABELS, decode_chunk, peek_header

_SESSION_DIR = re.compile(r"^session-(\d+)$")


class SpoolSession:
    """The spooled chunks and progress of one recording session."""

    def __init__(self, path: Path, session_id: int):
        self.session_id = session_id
        self.log = ChunkLog(path)
        self.log.open_for_append()
        self._state_path = path / "state.json"
        # stream -> {seq -> (offset, length)} not yet acknowledged
        self.unacknowledged_of: dict[int, dict[int, tuple[int, int]]] = {
            STREAM_EMG: {},
            STREAM_LABELS: {},
        }
        self.next_seqs = {STREAM_EMG: 0, STREAM_LABELS: 0}
        self.samples = 0  # EMG samples
        self.label_frames = 0
        for record in self.log.records():
            self._index(record.offset, record.frame)
        self.state = self._load_state()

    def _index(self, offset: int, frame: bytes) -> None:
        _, stream, seq, count = peek_header(frame)
        if seq >= self.next_seqs[stream]:
            self.unacknowledged_of[stream][seq] = (offset, len(frame))
            self.next_seqs[stream] = seq + 1
            self._count(stream, count)

    def _count(self, stream: int, count: int) -> None:
        if stream == STREAM_EMG:
            self.samples += count
        else:
            self.label_frames += count

    def _load_state(self) -> dict:
        if self._state_path.exists():
            state = json.loads(self._state_path.read_text())
            if state["status"] != "stopped":
                # add_chunk counts drops in memory only: after a crash, count again
                state["dropped_packets"] = self._dropped_packets_in_log()
            return state
        state = {
            "session": self.session_id,
            "status": "recording",
            "reason": "",
            "dropped_packets": self._dropped_packets_in_log(),
        }
        write_file_durably(self._state_path, json.dumps(state).encode())
        return state

    def _dropped_packets_in_log(self) -> int:
        counter = PacketCounter()
        for record in self.log.records():
            if peek_header(record.frame)[1] == STREAM_EMG:
                counter.update(decode_chunk(record.frame).samples.package_num)
        return counter.dropped_packets

    @property
    def stopped(self) -> bool:
        return self.state["status"] == "stopped"

    @property
    def next_seq(self) -> int:
        """The sequence number of the next EMG chunk."""
        return self.next_seqs[STREAM_EMG]

    @property
    def next_label_seq(self) -> int:
        return self.next_seqs[STREAM_LABELS]

    @property
    def pending(self) -> set[int]:
        """EMG sequence numbers not yet acknowledged by the server."""
        return self.pending_of(STREAM_EMG)

    def pending_of(self, stream: int) -> set[int]:
        return set(self.unacknowledged_of[stream])

    @property
    def all_acknowledged(self) -> bool:
        return not any(self.unacknowledged_of.values())

    def frame(self, seq: int, stream: int = STREAM_EMG) -> bytes:
        return self.log.read_frame(*self.unacknowledged_of[stream][seq])

    def add_chunk(self, frame: bytes, num_samples: int, dropped_packets: int) -> None:
        """Keep one encoded EMG chunk (its seq is `next_seq`) until acknowledged."""
        self._add(STREAM_EMG, frame, num_samples)
        self.state["dropped_packets"] = dropped_packets

    def add_label_chunk(self, frame: bytes, num_frames: int) -> None:
        """Keep one encoded label chunk (its seq is `next_label_seq`) likewise.
        Called from the camera thread while the device thread adds EMG chunks: each
        stream has one writer, and the log's appends are locked."""
        self._add(STREAM_LABELS, frame, num_frames)

    def _add(self, stream: int, frame: bytes, count: int) -> None:
        offset = self.log.append(frame)
        self.unacknowledged_of[stream][self.next_seqs[stream]] = (offset, len(frame))
        self.next_seqs[stream] += 1
        self._count(stream, count)

    def acknowledge(self, seqs: list[int], stream: int = STREAM_EMG) -> None:
        for seq in seqs:
            self.unacknowledged_of[stream].pop(seq, None)

    def mark_stopped(self, reason: str) -> None:
        self.state.update(status="stopped", reason=reason)
        write_file_durably(self._state_path, json.dumps(self.state).encode())

    def delete(self) -> None:
        self.log.delete()


class Spool:
    """All sessions the agent still has unfinished business with."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def open_session(self, session_id: int) -> SpoolSession:
        return SpoolSession(self.root / f"session-{session_id}", session_id)

    def session_ids(self) -> list[int]:
        found = []
        for name in os.listdir(self.root):
            match = _SESSION_DIR.match(name)
            if match and (self.root / name / "state.json").exists():
                found.append(int(match.group(1)))
        return sorted(found)
