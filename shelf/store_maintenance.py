"""Checking and trimming the blob store: ``cache verify`` and ``cache prune``.

``StoreMaintenance`` is mixed into ``shelf.store.BlobStore``; it relies on the store's layout
(``_blobs``), its blob listing (``iter_blobs``) and its per-object locks (``_lock_file``). A blob another
process holds the lock of is being written or removed: it is left alone (a misnamed file has no lock and
is always removed).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from registry_index.pointer import is_sha256_hex
from shelf import filelocks
from shelf.fsutil import hash_file

if TYPE_CHECKING:
    from shelf.store import BlobInfo

INCOMPLETE = ".incomplete"


@dataclass(frozen=True)
class Problem:
    """A file in the store that failed verification and was removed."""

    oid: str
    path: Path
    reason: str


class StoreMaintenance:
    """``verify`` and ``prune`` for a ``BlobStore``."""

    _blobs: Path
    if TYPE_CHECKING:  # provided by BlobStore

        def iter_blobs(self) -> Iterator[BlobInfo]: ...

        def _lock_file(self, oid: str) -> filelocks.FileLock: ...

    def verify(self) -> list[Problem]:
        """Re-hash every blob; remove and report the ones whose name, size or bytes are wrong."""
        problems = []
        for blob in list(self.iter_blobs()):
            reason = self._blob_problem(blob)
            if reason is None:
                continue
            with self._lock_or_skip(blob.oid) as locked:
                if locked or not is_sha256_hex(blob.oid):
                    with contextlib.suppress(FileNotFoundError):
                        blob.path.unlink()
            problems.append(Problem(oid=blob.oid, path=blob.path, reason=reason))
        return problems

    @staticmethod
    def _blob_problem(blob: BlobInfo) -> str | None:
        if not is_sha256_hex(blob.oid):
            return "the file name is not a sha256 object id"
        if blob.path.parent.name != blob.oid[:2]:
            return "the blob is in the wrong folder"
        actual, _ = hash_file(blob.path)
        if actual != blob.oid:
            return f"its bytes hash to {actual}"
        return None

    @contextlib.contextmanager
    def _lock_or_skip(self, oid: str) -> Iterator[bool]:
        """Hold the object's lock if nobody else does; yield whether it is held."""
        if not is_sha256_hex(oid):
            yield False
            return
        lock = self._lock_file(oid)
        try:
            lock.acquire(timeout=0)
        except filelocks.Timeout:
            yield False
            return
        try:
            yield True
        finally:
            lock.release()

    def prune(self, keep: set[str]) -> tuple[int, int]:
        """Remove every blob (and stale partial file) not in ``keep``; return (count, bytes) removed."""
        count = freed = 0
        for blob in list(self.iter_blobs()):
            if blob.oid in keep:
                continue
            with self._lock_or_skip(blob.oid) as locked:
                if locked or not is_sha256_hex(blob.oid):
                    blob.path.unlink(missing_ok=True)
                    count += 1
                    freed += blob.size
        freed += self._prune_partials(keep)
        return count, freed

    def _prune_partials(self, keep: set[str]) -> int:
        freed = 0
        for partial in self._blobs.glob(f"*/*{INCOMPLETE}") if self._blobs.is_dir() else ():
            oid = partial.name[: -len(INCOMPLETE)]
            if oid in keep:
                continue
            with self._lock_or_skip(oid) as locked:
                if locked:
                    freed += partial.stat().st_size
                    partial.unlink(missing_ok=True)
        return freed
