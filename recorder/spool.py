"""The agent's on-disk spool: every chunk stays here until the recording is closed.

Layout: <root>/session-<id>/ holds the session's chunk log (see chunk_log.py) and a
state.json: {"session": id, "status": "recording" | "stopped", "reason": str,
"dropped_packets": int}. Which chunks the server has acknowledged is kept in memory
only: after an agent crash every chunk is sent again, which is harmless because the
server stores each (session, stream, seq) once. Surviving a lost connection, a server
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
from recorder.protocol import decode_chunk, peek_header

_SESSION_DIR = re.compile(r"^session-(\d+)$")


class SpoolSession:
    """The spooled chunks and progress of one recording session."""

    def __init__(self, path: Path, session_id: int):
        self.session_id = session_id
        self.log = ChunkLog(path)
        self.log.open_for_append()
        self._state_path = path / "state.json"
        self.unacknowledged: dict[int, tuple[int, int]] = {}  # seq -> (offset, length)
        self.next_seq = 0
        self.samples = 0
        for record in self.log.records():
            self._index(record.offset, record.frame)
        self.state = self._load_state()

    def _index(self, offset: int, frame: bytes) -> None:
        _, _, seq, num_samples = peek_header(frame)
        if seq >= self.next_seq:
            self.unacknowledged[seq] = (offset, len(frame))
            self.next_seq = seq + 1
            self.samples += num_samples

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
            counter.update(decode_chunk(record.frame).samples.package_num)
        return counter.dropped_packets

    @property
    def stopped(self) -> bool:
        return self.state["status"] == "stopped"

    @property
    def pending(self) -> set[int]:
        """Sequence numbers not yet acknowledged by the server."""
        return set(self.unacknowledged)

    def frame(self, seq: int) -> bytes:
        return self.log.read_frame(*self.unacknowledged[seq])

    def add_chunk(self, frame: bytes, num_samples: int, dropped_packets: int) -> None:
        """Keep one encoded chunk (its seq is `next_seq`) until it is acknowledged."""
        offset = self.log.append(frame)
        self.unacknowledged[self.next_seq] = (offset, len(frame))
        self.next_seq += 1
        self.samples += num_samples
        self.state["dropped_packets"] = dropped_packets

    def acknowledge(self, seqs: list[int]) -> None:
        for seq in seqs:
            self.unacknowledged.pop(seq, None)

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
