"""``BlobWriter``: one object streamed into the store's ``.incomplete`` file, checked, then renamed.

Made by ``BlobStore.writer``, which holds the object's lock: the writer resumes a partial file by
re-hashing its prefix, refuses bytes past the declared size, and commits only a blob whose size and sha256
match (fsync, read-only, atomic rename, fsync of the folder).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
import time
from pathlib import Path
from typing import BinaryIO, cast

from shelf import constants
from shelf.errors import IntegrityError, StoreError
from shelf.fsutil import Writeback, fsync_dir

READ_ONLY = stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH
# 2000-01-01T00:00:00Z: the mtime of every verified blob; any write through a link changes it.
VERIFIED_MTIME_NS = 946_684_800 * 1_000_000_000


def seal(path: Path) -> None:
    """Make a verified file read-only and stamp its mtime, the mark ``revalidate`` trusts."""
    os.chmod(path, READ_ONLY)
    os.utime(path, ns=(time.time_ns(), VERIFIED_MTIME_NS))


class BlobWriter:
    """Streams one object into its ``.incomplete`` file; made by ``BlobStore.writer``.

    ``offset`` is how many bytes are already there (a resumed partial file counts); ``written`` is how many
    bytes this writer was given, restarts included. ``complete`` is true when the blob was already in the
    store: there is nothing to write.
    """

    def __init__(self, oid: str, size: int, partial: Path, complete: bool) -> None:
        self.oid = oid
        self.size = size
        self.complete = complete
        self._partial = partial
        self._digest = hashlib.sha256()
        self._handle: BinaryIO | None = None
        self.offset = 0
        self.written = 0
        self._writeback: Writeback | None = None

    def _open(self) -> None:
        """Open the partial file, re-hashing a prefix left by an earlier run."""
        mode = "r+b" if self._partial.exists() else "w+b"
        handle = cast(BinaryIO, open(self._partial, mode))  # noqa: SIM115 - closed in close()
        self._handle = handle
        self._writeback = Writeback(handle)
        if self._partial.stat().st_size > self.size:
            self.restart()
            return
        while chunk := handle.read(constants.CHUNK_SIZE):
            self._digest.update(chunk)
            self.offset += len(chunk)
        self._writeback = Writeback(handle, self.offset)  # the prefix is an earlier run's, on disk

    def write(self, data: bytes | memoryview) -> None:
        """Append bytes; more bytes than the declared size is an integrity failure."""
        if self.complete:
            raise StoreError(f"object {self.oid} is already in the store; nothing to write")
        if self.offset + len(data) > self.size:
            raise IntegrityError(
                f"object {self.oid} is longer than its declared size of {self.size} bytes",
                hint="the source sent different bytes than recorded; it was not stored",
            )
        assert self._handle is not None
        self._handle.write(data)
        self._digest.update(data)
        self.offset += len(data)
        self.written += len(data)
        assert self._writeback is not None
        self._writeback.wrote(len(data))  # the disk starts early; ``_commit`` still fsyncs

    def restart(self) -> None:
        """Throw away what was written and start from byte 0 (a server ignored a Range request)."""
        assert self._handle is not None
        self._handle.seek(0)
        self._handle.truncate()
        self._digest = hashlib.sha256()
        self.offset = 0
        if self._writeback is not None:
            self._writeback.restart()

    def _check(self) -> None:
        if self.offset != self.size:
            raise IntegrityError(
                f"object {self.oid} has {self.offset} bytes but {self.size} were expected",
                hint="the source sent a truncated object; it was not stored",
            )
        actual = self._digest.hexdigest()
        if actual != self.oid:
            raise IntegrityError(
                f"object {self.oid} has sha256 {actual}",
                hint="the bytes do not match their object id; they were not stored",
            )

    def _commit(self, final: Path) -> None:
        """Verify, flush to disk and move into place under the final name."""
        self._check()
        assert self._handle is not None
        self._handle.flush()
        os.fsync(self._handle.fileno())
        self._close()
        seal(self._partial)
        os.replace(self._partial, final)
        fsync_dir(final.parent)

    def _close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def _discard(self) -> None:
        self._close()
        with contextlib.suppress(FileNotFoundError):
            self._partial.unlink()
