"""A shelf's own LFS objects, and whether each one is still the bytes it was verified as.

A bare shelf keeps its blobs at ``<repo>/lfs/objects/<aa>/<bb>/<oid>`` (``registry_index.layout``); an
object is intact when its sha256 is its name. Hashing every object for every publish would be slow, so
each successful check is remembered in ``<repo>/lfs/verified/<aa>/<oid>``: the object's size, mtime,
ctime and inode when its bytes were last hashed. An object whose stat still matches is trusted; one whose
stat changed (edited, truncated, replaced) is hashed again, and forgotten when damaged, so that publishing
the same content again uploads it anew. ``cclm-shelf fsck`` hashes everything regardless.

Used by the giftless storage of ``serve`` (``shelf.lfs_storage``) and by publishing to a local path
(``shelf.remote.lfs_local.LocalLfsObjects``), which share the folder.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

from registry_index.layout import lfs_object_path
from shelf.fsutil import atomic_write, hash_file

RECORD_DIR = "lfs/verified"


def object_path(repo: Path, oid: str) -> Path:
    return Path(repo) / lfs_object_path(oid)


def _record_path(repo: Path, oid: str) -> Path:
    return Path(repo) / RECORD_DIR / oid[:2] / oid


def _signature(status: os.stat_result) -> str:
    return f"{status.st_size} {status.st_mtime_ns} {status.st_ctime_ns} {status.st_ino}\n"


def mark_verified(repo: Path, oid: str) -> None:
    """Remember that the object's bytes were just hashed and found right (best effort: a read-only
    shelf is simply hashed again next time)."""
    record = _record_path(repo, oid)
    with contextlib.suppress(OSError):
        status = object_path(repo, oid).stat()
        record.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(record, _signature(status))


def forget(repo: Path, oid: str) -> None:
    with contextlib.suppress(OSError):
        _record_path(repo, oid).unlink()


def check(repo: Path, oid: str, size: int | None = None) -> str | None:
    """Hash the object now: None when intact, else ``"missing"`` or ``"damaged"``."""
    path = object_path(repo, oid)
    try:
        digest, found = hash_file(path)
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        forget(repo, oid)
        return "missing"
    if digest != oid or (size is not None and found != size):
        forget(repo, oid)
        return "damaged"
    mark_verified(repo, oid)
    return None


def is_intact(repo: Path, oid: str, size: int | None = None) -> bool:
    """True when the object is there with the right bytes: trusted by its stat if that is unchanged since
    it was last hashed, else hashed now."""
    try:
        status = object_path(repo, oid).stat()
    except (FileNotFoundError, NotADirectoryError):
        return False
    if not stat.S_ISREG(status.st_mode) or (size is not None and status.st_size != size):
        return False
    try:
        if _record_path(repo, oid).read_text(encoding="ascii") == _signature(status):
            return True
    except (OSError, UnicodeDecodeError):
        pass
    return check(repo, oid, size) is None
