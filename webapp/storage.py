"""Stored files (session files, videos, checkpoints) through Django's default storage,
and the local paths that h5py and torch need.

A file is named by its storage key ("sessions/user-3/session-9.h5"). With the
default FileSystemStorage (STORAGE=local) a key's local path *is* the stored file:
nothing is copied. With object storage (STORAGE=s3) readers get a cached, read-only
local copy, fetched again when the stored object changes, and writers write a local
file that is uploaded once it is complete, so a reader never sees half a file.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings
from django.core.files import File
from django.core.files.storage import FileSystemStorage, default_storage

BLOCK_BYTES = 1 << 20


def is_local() -> bool:
    """True when stored files are plain files under MEDIA_ROOT."""
    return isinstance(default_storage, FileSystemStorage)


def exists(key: str) -> bool:
    with _storage_errors(key):
        return default_storage.exists(key)


def open_stored(key: str):
    """The stored file opened for reading (downloads); FileNotFoundError if none."""
    if not exists(key):
        raise FileNotFoundError(f"{key} is not in storage")
    return default_storage.open(key, "rb")


def local_copy(key: str) -> Path:
    """A local path holding the stored file's current contents, for reading only.
    Raises FileNotFoundError when the key is not stored."""
    if is_local():
        path = Path(default_storage.path(key))
        if not path.is_file():
            raise FileNotFoundError(f"{key} is not in storage")
        return path
    if not exists(key):
        raise FileNotFoundError(f"{key} is not in storage")
    with _storage_errors(key):
        return _cached_copy(key)


def _cached_copy(key: str) -> Path:
    """The cache's copy of `key`, downloaded again if the stored object changed."""
    copy = _cache_dir() / "copies" / key
    stamp = {
        "size": default_storage.size(key),
        "modified": default_storage.get_modified_time(key).isoformat(),
    }
    stamp_path = copy.with_name(copy.name + ".stamp")
    if copy.is_file() and stamp_path.is_file():
        if json.loads(stamp_path.read_text()) == stamp:
            return copy
    copy.parent.mkdir(parents=True, exist_ok=True)
    # a unique name in the same folder, then a rename: readers of the old copy
    # keep reading it, nobody sees a partial one
    partial = copy.with_name(f".{copy.name}.{uuid.uuid4().hex}.partial")
    with default_storage.open(key, "rb") as stored, open(partial, "wb") as out:
        shutil.copyfileobj(stored, out, BLOCK_BYTES)
    partial.chmod(0o444)  # a copy: writing it would change nothing stored
    os.replace(partial, copy)
    stamp_path.write_text(json.dumps(stamp))
    return copy


@contextmanager
def writing(key: str) -> Iterator[Path]:
    """A local path to write `key` to; stored when the block ends without an
    exception. Local storage: the stored file's own path (write it atomically)."""
    if is_local():
        path = Path(default_storage.path(key))
        path.parent.mkdir(parents=True, exist_ok=True)
        yield path
        return
    folder = _cache_dir() / "uploads" / uuid.uuid4().hex
    folder.mkdir(parents=True)
    try:
        path = folder / Path(key).name
        yield path
        store_file(path, key)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def store_file(source: str | os.PathLike, key: str) -> str:
    """Store a copy of the local file `source` under `key`, replacing what was
    there. Returns the key."""
    source = Path(source)
    if is_local():
        destination = Path(default_storage.path(key))
        if destination != source:
            destination.parent.mkdir(parents=True, exist_ok=True)
            partial = destination.with_name(f".{destination.name}.{uuid.uuid4().hex}")
            shutil.copyfile(source, partial)
            os.replace(partial, destination)
        return key
    with open(source, "rb") as handle, _storage_errors(key):
        # S3 overwrites in place (AWS_S3_FILE_OVERWRITE), so the key stays the same
        saved = default_storage.save(key, File(handle))
    if saved != key:
        raise OSError(f"storage saved {key} as {saved}; set it to overwrite files")
    return key


class FolderSync:
    """A local working folder for one storage prefix ("models/7"): training writes
    checkpoints into `folder`, `push()` stores what changed, `pull()` fetches
    stored files before a resume. With local storage the folder is the stored
    folder itself and both are no-ops."""

    def __init__(self, prefix: str):
        self.prefix = prefix.rstrip("/")
        self.folder = local_folder(self.prefix)
        self.pushed: dict[str, tuple[int, int]] = {}  # name -> (size, mtime_ns)

    def pull(self, *names: str) -> None:
        if is_local():
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        for name in names:
            key = f"{self.prefix}/{name}"
            if exists(key):
                shutil.copyfile(local_copy(key), self.folder / name)
                self._mark_pushed(name)

    def push(self) -> None:
        if is_local() or not self.folder.is_dir():
            return
        for path in sorted(self.folder.iterdir()):
            stat = path.stat()
            if path.is_file() and self.pushed.get(path.name) != _version(stat):
                store_file(path, f"{self.prefix}/{path.name}")
                self._mark_pushed(path.name)

    def _mark_pushed(self, name: str) -> None:
        self.pushed[name] = _version((self.folder / name).stat())


def local_folder(prefix: str) -> Path:
    """Where files under `prefix` are written locally (see FolderSync)."""
    if is_local():
        return Path(default_storage.path(prefix))
    return _cache_dir() / "work" / prefix


def _version(stat: os.stat_result) -> tuple[int, int]:
    return stat.st_size, stat.st_mtime_ns


@contextmanager
def _storage_errors(key: str) -> Iterator[None]:
    """The object store's failures (botocore's: unreachable, refused) as OSError,
    which callers already turn into a message for a person."""
    try:
        yield
    except OSError:
        raise
    except Exception as exc:  # botocore is imported only by django-storages
        raise OSError(f"object storage failed for {key}: {exc}") from exc


def _cache_dir() -> Path:
    return Path(settings.STORAGE_CACHE_DIR)
