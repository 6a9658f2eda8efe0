"""A real, small file system for disk-full tests: a tmpfs of a few KiB mounted in a
temporary folder. Mounting needs root (CAP_SYS_ADMIN); without it the test skips."""

from __future__ import annotations

import errno
import os
import subprocess
from contextlib import contextmanager
from pathlib import Path

from tests.needs import missing


@contextmanager
def small_disk(mount_point: Path, size_kib: int):
    """Mount a `size_kib` tmpfs at `mount_point` for the duration of the block."""
    mount_point.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_kib}k,mode=0777", "tmpfs",
         str(mount_point)],
        capture_output=True, text=True,
    )  # fmt: skip
    if mounted.returncode != 0:
        missing(f"cannot mount a small tmpfs: {mounted.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def fill(folder: Path, name: str = "filler") -> Path:
    """Write a file in `folder` until its file system is full; returns the file."""
    path = folder / name
    block = b"\xff" * 4096
    with open(path, "ab", buffering=0) as handle:
        try:
            while True:
                handle.write(block)
        except OSError as exc:
            if exc.errno != errno.ENOSPC:
                raise
    # a last partial block may still fit
    with open(path, "ab", buffering=0) as handle:
        for _ in range(4096):
            try:
                handle.write(b"\xff")
            except OSError:
                break
    os.sync()
    return path
