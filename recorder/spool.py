"""The agent's on-disk spool: every chunk stays here until the server acknowledges it.

Layout: <root>/session-<id>/ holds the chunk files and a state.json:
    {"session": id, "status": "recording" | "stopped", "next_seq": int,
     "samples": int, "dropped_packets": int, "reason": str}
Surviving a crash of the agent, a lost connection or a server restart is a matter of
sending again whatever is still here.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from recorder.chunk_files import ChunkDirectory, write_file_durably
from recorder.protocol import STREAM_EMG

_SESSION_DIR = re.compile(r"^session-(\d+)$")


class SpoolSession:
    """The spooled chunks and progress of one recording session."""

    def __init__(self, path: Path, session_id: int):
        self.session_id = session_id
        self.chunks = ChunkDirectory(path)
        self._state_path = path / "state.json"
        self.state = self._load_state()
        self.pending = set(self.chunks.seqs(STREAM_EMG))
        # after a crash, chunks may exist past the last saved counter
        self.state["next_seq"] = max([self.state["next_seq"], *(s + 1 for s in self.pending)])

    def _load_state(self) -> dict:
        if self._state_path.exists():
            return json.loads(self._state_path.read_text())
        return {"session": self.session_id, "status": "recording", "next_seq": 0,
                "samples": 0, "dropped_packets": 0, "reason": ""}  # fmt: skip

    def _save_state(self) -> None:
        self.chunks.path.mkdir(parents=True, exist_ok=True)
        write_file_durably(self._state_path, json.dumps(self.state).encode())

    @property
    def stopped(self) -> bool:
        return self.state["status"] == "stopped"

    def add_chunk(self, frame: bytes, num_samples: int, dropped_packets: int) -> None:
        """Keep one encoded chunk (its seq must be `next_seq`) until it is acknowledged."""
        seq = self.state["next_seq"]
        self.chunks.put(STREAM_EMG, seq, frame)
        self.pending.add(seq)
        self.state.update(next_seq=seq + 1, dropped_packets=dropped_packets,
                          samples=self.state["samples"] + num_samples)  # fmt: skip
        self._save_state()

    def acknowledge(self, seqs: list[int]) -> None:
        for seq in seqs:
            self.chunks.remove(STREAM_EMG, seq)
            self.pending.discard(seq)

    def mark_stopped(self, reason: str) -> None:
        self.state.update(status="stopped", reason=reason)
        self._save_state()

    def delete(self) -> None:
        self.chunks.delete()


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
