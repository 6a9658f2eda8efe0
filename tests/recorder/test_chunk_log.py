"""The append-only chunk log: round trips, torn tails, corruption, group commit."""

from __future__ import annotations

import asyncio
import errno
import os

import pytest

from recorder.chunk_log import RECORD_HEADER, ChunkLog, GroupCommitWriter, valid_length
from tests.small_disk import small_disk


def frames(count: int, size: int = 37) -> list[bytes]:
    return [bytes([i % 256]) * (size + i) for i in range(count)]


def test_appended_frames_read_back_in_order_at_their_offsets(tmp_path):
    log = ChunkLog(tmp_path / "session")
    log.open_for_append()
    written = frames(5)
    offsets = [log.append(frame) for frame in written]
    records = list(log.records())
    assert [r.frame for r in records] == written
    assert [r.offset for r in records] == offsets
    for offset, frame in zip(offsets, written, strict=True):
        assert log.read_frame(offset, len(frame)) == frame


def test_a_missing_log_has_no_records(tmp_path):
    assert list(ChunkLog(tmp_path / "nowhere").records()) == []


def test_open_for_append_creates_the_directory(tmp_path):
    log = ChunkLog(tmp_path / "a" / "b")
    log.open_for_append()
    assert log.directory.is_dir()
    log.append(b"x")
    assert [r.frame for r in log.records()] == [b"x"]


def test_append_many_writes_every_frame_with_its_offset(tmp_path):
    log = ChunkLog(tmp_path)
    first = log.append(b"first")
    written = frames(10)
    offsets = log.append_many(written)
    assert len(offsets) == 10 and offsets[0] > first
    assert [r.frame for r in log.records()] == [b"first", *written]
    assert [
        log.read_frame(o, len(f)) for o, f in zip(offsets, written, strict=True)
    ] == written


def test_an_empty_frame_is_refused_because_it_would_read_as_a_torn_tail(tmp_path):
    log = ChunkLog(tmp_path)
    log.append(b"before")
    with pytest.raises(ValueError):
        log.append_many([b"", b"after"])
    assert [r.frame for r in log.records()] == [b"before"]


def test_a_zero_filled_tail_left_by_a_power_cut_is_not_read_as_records(tmp_path):
    log = ChunkLog(tmp_path)
    log.append(b"kept")
    with open(log.path, "ab") as handle:
        handle.write(bytes(4096))  # length 0 and CRC-32 0 would look like b"" records
    assert [r.frame for r in log.records()] == [b"kept"]
    log.open_for_append()
    log.append(b"new")
    assert [r.frame for r in log.records()] == [b"kept", b"new"]


def write_then_tear(log: ChunkLog, cut_bytes: int) -> list[bytes]:
    written = frames(3)
    log.append_many(written)
    size = log.path.stat().st_size
    os.truncate(log.path, size - cut_bytes)
    return written


@pytest.mark.parametrize("cut_bytes", [1, 20, 37 + 2 + RECORD_HEADER.size - 3])
def test_a_torn_tail_is_ignored_by_readers(tmp_path, cut_bytes):
    log = ChunkLog(tmp_path)
    written = write_then_tear(log, cut_bytes)
    assert [r.frame for r in log.records()] == written[:2]


@pytest.mark.parametrize(
    "garbage", [b"\x01\x02\x03", b"\xff" * 8, b"\x05\0\0\0\0\0\0\0abc", b"\0" * 64]
)
def test_garbage_after_the_last_record_is_ignored(tmp_path, garbage):
    log = ChunkLog(tmp_path)
    written = frames(2)
    log.append_many(written)
    with open(log.path, "ab") as handle:
        handle.write(garbage)
    assert [r.frame for r in log.records()] == written


def test_a_torn_tail_is_cut_off_so_later_appends_are_readable(tmp_path):
    log = ChunkLog(tmp_path)
    written = write_then_tear(log, 10)
    ChunkLog(tmp_path).open_for_append()
    assert log.path.stat().st_size == valid_length(log.path)
    offset = log.append(b"after the crash")
    assert [r.frame for r in log.records()] == [*written[:2], b"after the crash"]
    assert log.read_frame(offset, 15) == b"after the crash"


def test_appended_garbage_is_cut_off_so_later_appends_are_readable(tmp_path):
    log = ChunkLog(tmp_path)
    log.append(b"kept")
    with open(log.path, "ab") as handle:
        handle.write(b"\x99" * 13)
    log.open_for_append()
    log.append(b"new")
    assert [r.frame for r in log.records()] == [b"kept", b"new"]


def test_open_for_append_leaves_an_intact_log_alone(tmp_path):
    log = ChunkLog(tmp_path)
    log.append_many(frames(4))
    size = log.path.stat().st_size
    log.open_for_append()
    assert log.path.stat().st_size == size
    assert len(list(log.records())) == 4


def test_a_corrupted_record_stops_reading_there(tmp_path):
    log = ChunkLog(tmp_path)
    written = frames(4)
    offsets = log.append_many(written)
    with open(log.path, "r+b") as handle:
        handle.seek(offsets[2] + 5)
        handle.write(b"\xaa")  # the frame no longer matches its CRC
    assert [r.frame for r in log.records()] == written[:2]
    assert valid_length(log.path) == offsets[1] + len(written[1])


def test_a_corrupted_length_stops_reading_there(tmp_path):
    log = ChunkLog(tmp_path)
    written = frames(3)
    offsets = log.append_many(written)
    with open(log.path, "r+b") as handle:
        handle.seek(offsets[1] - RECORD_HEADER.size)
        handle.write((len(written[1]) - 1).to_bytes(4, "little"))
    assert [r.frame for r in log.records()] == written[:1]


def test_delete_removes_the_session_directory(tmp_path):
    log = ChunkLog(tmp_path / "s")
    log.open_for_append()
    log.append(b"x")
    log.delete()
    assert not log.directory.exists()


async def test_group_commit_writes_every_frame_from_concurrent_callers(tmp_path):
    writer = GroupCommitWriter()
    logs = [ChunkLog(tmp_path / f"s{i}") for i in range(3)]
    for log in logs:
        log.open_for_append()
    expected = {log.path: [] for log in logs}
    calls = []
    for i in range(60):
        log = logs[i % 3]
        frame = f"frame {i}".encode()
        expected[log.path].append(frame)
        calls.append(writer.append(log, frame))
    await asyncio.wait_for(asyncio.gather(*calls), 10)
    for log in logs:
        # each caller's frame is durable once its await returns; order within a log
        # follows submission order because the queue is FIFO
        assert [r.frame for r in log.records()] == expected[log.path]


async def test_group_commit_reports_a_write_failure_to_the_waiting_caller(tmp_path):
    writer = GroupCommitWriter()
    broken = ChunkLog(tmp_path / "broken")
    broken.path.mkdir(parents=True)  # the log file's path is a directory: open() fails
    healthy = ChunkLog(tmp_path / "healthy")
    healthy.open_for_append()
    results = await asyncio.wait_for(
        asyncio.gather(writer.append(broken, b"lost"), writer.append(healthy, b"kept"),
                       return_exceptions=True),
        10,
    )  # fmt: skip
    assert isinstance(results[0], OSError)
    assert results[1] is None
    assert [r.frame for r in healthy.records()] == [b"kept"]
    # the writer thread survived the failure and keeps writing
    await asyncio.wait_for(writer.append(healthy, b"later"), 10)
    assert [r.frame for r in healthy.records()] == [b"kept", b"later"]
    with pytest.raises(OSError):
        await asyncio.wait_for(writer.append(broken, b"again"), 10)


async def test_group_commit_survives_a_refused_frame(tmp_path):
    writer = GroupCommitWriter()
    log = ChunkLog(tmp_path)
    log.open_for_append()
    with pytest.raises(ValueError):
        await asyncio.wait_for(writer.append(log, b""), 10)
    await asyncio.wait_for(writer.append(log, b"next"), 10)  # the thread is still alive
    assert [r.frame for r in log.records()] == [b"next"]


def test_a_full_disk_leaves_no_torn_record_and_appends_resume_once_space_returns(
    tmp_path,
):
    with small_disk(tmp_path / "disk", size_kib=64) as disk:
        log = ChunkLog(disk / "session")
        log.open_for_append()
        filler = disk / "filler"
        filler.write_bytes(b"\xff" * 40_000)
        written = []
        with pytest.raises(OSError) as raised:
            for frame in frames(100, size=3000):
                log.append(frame)
                written.append(frame)
        assert raised.value.errno == errno.ENOSPC
        assert 0 < len(written) < 100
        assert log.path.stat().st_size == valid_length(log.path)  # no torn tail
        filler.unlink()  # space returns
        later = frames(3, size=1000)
        log.append_many(later)
        assert [r.frame for r in log.records()] == written + later
