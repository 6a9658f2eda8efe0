"""An append-only log of binary chunk frames, one file per recording session.

The server appends each incoming chunk here and fsyncs before acknowledging it; the
agent appends each chunk it reads from the device before sending it (the spool).
One append is one write plus one fsync: far cheaper than a file per chunk.

Record layout: length u32, CRC-32 of the frame u32, then the frame. A crash can only
tear the last record; reading stops at the first incomplete or corrupt record, and
`open_for_append` cuts such a tail off. Appends take an exclusive lock, so two server
processes that briefly share a session (an agent reconnecting to another one) never
interleave records. Duplicates are allowed in the log: readers keep the first copy
of each (stream, seq).
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import queue
import shutil
import struct
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from recorder.durable import fsync_directory

RECORD_HEADER = struct.Struct("<II")
LOG_NAME = "chunks.log"


@dataclass(frozen=True)
class LogRecord:
    offset: int  # where the frame starts in the file
    frame: bytes


def read_records(path: Path) -> Iterator[LogRecord]:
    """Every complete record of the log at `path`, in order (none if it is absent)."""
    if not path.exists():
        return
    with open(path, "rb") as handle:
        content = handle.read()
    position = 0
    while position + RECORD_HEADER.size <= len(content):
        length, crc = RECORD_HEADER.unpack_from(content, position)
        start = position + RECORD_HEADER.size
        frame = content[start : start + length]
        # length 0 has CRC 0: a zero-filled tail (left by a power cut) is not records
        if length == 0 or len(frame) < length or zlib.crc32(frame) != crc:
            return  # torn or corrupt tail: nothing after it was ever acknowledged
        yield LogRecord(start, frame)
        position = start + length


def valid_length(path: Path) -> int:
    """Bytes of the log up to the end of its last complete record."""
    end = 0
    for record in read_records(path):
        end = record.offset + len(record.frame)
    return end


class ChunkLog:
    """The log of one session, in its own directory (which may hold other files)."""

    def __init__(self, directory: str | os.PathLike):
        self.directory = Path(directory)
        self.path = self.directory / LOG_NAME

    def records(self) -> Iterator[LogRecord]:
        return read_records(self.path)

    def open_for_append(self) -> None:
        """Create the directory and cut off a torn tail left by a crash."""
        self.directory.mkdir(parents=True, exist_ok=True)
        if self.path.exists():
            end = valid_length(self.path)
            if end < self.path.stat().st_size:
                os.truncate(self.path, end)

    def append(self, frame: bytes) -> int:
        """Append one frame durably (written and fsynced); returns its offset."""
        return self.append_many([frame])[0]

    def append_many(self, frames: list[bytes]) -> list[int]:
        """Append frames durably with a single fsync; returns their offsets."""
        created = not self.path.exists()
        if not all(frames):
            raise ValueError("an empty frame cannot be logged, it reads as a torn tail")
        records = [RECORD_HEADER.pack(len(f), zlib.crc32(f)) + f for f in frames]
        with open(self.path, "ab", buffering=0) as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            start = handle.seek(0, os.SEEK_END)
            try:
                _write_all(handle, b"".join(records))
                os.fsync(handle.fileno())
            except OSError:
                # e.g. disk full: a half-written record would hide every later one
                # from readers, so cut it off (this frees space: it cannot fail so)
                handle.truncate(start)
                raise
        offsets = []
        for record in records:
            offsets.append(start + RECORD_HEADER.size)
            start += len(record)
        if created:
            fsync_directory(self.directory)
        return offsets

    def read_frame(self, offset: int, length: int) -> bytes:
        with open(self.path, "rb") as handle:
            handle.seek(offset)
            return handle.read(length)

    def delete(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


def _write_all(handle, content: bytes) -> None:
    """Write all of `content` to an unbuffered file (a write may be partial)."""
    view = memoryview(content)
    while view:
        view = view[handle.write(view) :]


class GroupCommitWriter:
    """Appends frames to chunk logs on one background thread, for asyncio callers.

    Frames that arrive while a write is under way are written together, with one
    fsync per log: under load a hundred agents cost a few fsyncs, not a hundred.
    `await writer.append(log, frame)` returns once the frame is durable.
    """

    def __init__(self):
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread = threading.Thread(
            target=self._run, name="chunk-writer", daemon=True
        )
        self._thread.start()

    async def append(self, log: ChunkLog, frame: bytes) -> None:
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        self._queue.put((log, frame, loop, done))
        await done

    def _run(self) -> None:
        while True:
            batch = [self._queue.get()]
            while not self._queue.empty():
                batch.append(self._queue.get_nowait())
            self._write(batch)

    def _write(self, batch: list) -> None:
        by_log: dict[Path, list] = {}
        for item in batch:
            by_log.setdefault(item[0].path, []).append(item)
        for items in by_log.values():
            try:
                items[0][0].append_many([frame for _, frame, _, _ in items])
                outcome = None
            # e.g. disk full: the caller must not acknowledge
            except (OSError, ValueError) as exc:
                outcome = exc
            for _, _, loop, done in items:
                try:
                    loop.call_soon_threadsafe(_settle, done, outcome)
                except RuntimeError:  # the caller's loop has closed: nobody waits
                    pass


def _settle(done: asyncio.Future, error: Exception | None) -> None:
    if done.cancelled():
        return
    if error is None:
        done.set_result(None)
    else:
        done.set_exception(error)
