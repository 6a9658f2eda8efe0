"""A directory of sequence-numbered binary chunks, written durably.

The server stores each incoming chunk here before acknowledging it, and the agent
keeps each chunk here until the server has acknowledged it (the spool). A chunk file
is written to a temporary name, fsynced, then hard-linked into place: a crash never
leaves a partial chunk under its final name, and a second copy of the same
(stream, seq) is recognised and not written again.
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from pathlib import Path

_CHUNK_NAME = re.compile(r"^s(\d+)-(\d{12})\.chunk$")


def fsync_directory(path: Path) -> None:
    """Make a rename/link inside `path` survive a power cut."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_file_durably(path: Path, content: bytes, *, replace: bool = True) -> bool:
    """Write `content` to `path` atomically and durably.

    With replace=False an existing file is left alone and False is returned.
    """
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    with open(temporary, "wb") as handle:
        handle.write(content)
        handle.flush()
        os.fsync(handle.fileno())
    try:
        if replace:
            os.replace(temporary, path)
        else:
            os.link(temporary, path)
    except FileExistsError:
        return False
    finally:
        temporary.unlink(missing_ok=True)
    fsync_directory(path.parent)
    return True


class ChunkDirectory:
    """Chunks of one recording session, one file per (stream, seq)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    def _chunk_path(self, stream: int, seq: int) -> Path:
        return self.path / f"s{stream}-{seq:012d}.chunk"

    def put(self, stream: int, seq: int, frame: bytes) -> bool:
        """Store one chunk durably. Returns False when it was already stored."""
        self.path.mkdir(parents=True, exist_ok=True)
        if self._chunk_path(stream, seq).exists():
            return False
        return write_file_durably(self._chunk_path(stream, seq), frame, replace=False)

    def get(self, stream: int, seq: int) -> bytes:
        return self._chunk_path(stream, seq).read_bytes()

    def remove(self, stream: int, seq: int) -> None:
        self._chunk_path(stream, seq).unlink(missing_ok=True)

    def seqs(self, stream: int) -> list[int]:
        """Stored sequence numbers of `stream`, ascending."""
        if not self.path.is_dir():
            return []
        found = []
        for name in os.listdir(self.path):
            match = _CHUNK_NAME.match(name)
            if match and int(match.group(1)) == stream:
                found.append(int(match.group(2)))
        return sorted(found)

    def contiguous_count(self, stream: int) -> int:
        """How many chunks 0, 1, 2, ... are stored without a gap."""
        count = 0
        for seq in self.seqs(stream):
            if seq != count:
                break
            count += 1
        return count

    def delete(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)
