"""The verified, content-addressed blob store shared by every install on the machine.

Layout under ``root`` (default: ``constants.cache_dir()``)::

    CACHEDIR.TAG                              marks the folder as a cache for backup tools
    blobs/sha256/<oid[:2]>/<oid>              a verified blob, read-only, named by its sha256
    blobs/sha256/<oid[:2]>/<oid>.incomplete   a blob being written (or left by an interrupted run)
    locks/<oid[:3]>.lock                      a file lock per object id prefix (4096 at most, so they never
                                              pile up), held while an object is written or removed
    tmp/                                      files being added whose sha256 is not known yet
    evicted/<oid>-<time>                      a blob changed through a symlink, kept as someone's edit

A blob only gets its final name after its size and sha256 were checked, its bytes were fsynced and it was
moved into place with an atomic ``os.replace``. So a blob that exists *is* verified, and ``has`` only checks
existence and size. An ``.incomplete`` file is never trusted: resuming re-hashes its prefix, and the full
object is checked again before it is renamed.

A verified blob's mtime is stamped ``VERIFIED_MTIME_NS``. Installed files are hardlinks (or symlinks) of
blobs, and the read-only mode stops nobody running as root: a write through any installed link moves the
blob's mtime. ``revalidate`` (called before a blob is linked again) trusts a blob with the stamp and its
size, re-hashes any other, re-stamps it when its bytes are right and evicts it when they are not, so the
next install fetches it again instead of spreading the damage. Checking and trimming the whole store
(``verify``, ``prune``) live in ``shelf.store_maintenance``.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from registry_index.pointer import is_sha256_hex
from shelf import constants, filelocks
from shelf.blob_writer import VERIFIED_MTIME_NS, BlobWriter, seal
from shelf.errors import IntegrityError, StoreError
from shelf.fsutil import atomic_write, beside, copy_hashing, file_in_the_way, fsync_dir, hash_file
from shelf.store_maintenance import INCOMPLETE as _INCOMPLETE
from shelf.store_maintenance import StoreMaintenance

LOCK_PREFIX = 3  # hex digits of an object id that name its lock file
_LOCK_TIMEOUT = 3600.0  # a writer may hold the lock for a whole large download
_CACHEDIR_TAG = (
    "Signature: 8a477f597d28d172789f06886806bc55\n"
    "# This file is a cache directory tag created by cclm-shelf.\n"
    "# For information about cache directory tags see https://bford.info/cachedir/\n"
)


@dataclass(frozen=True)
class BlobInfo:
    """A blob found in the store."""

    oid: str
    size: int
    path: Path


def check_oid(oid: str) -> str:
    """Return ``oid`` if it is a lowercase sha256 hex digest, else raise ``StoreError``."""
    if not is_sha256_hex(oid):
        raise StoreError(
            f"{oid!r} is not a sha256 object id",
            hint="object ids are 64 lowercase hexadecimal characters",
        )
    return oid


def _size_on_disk(path: Path, fallback: int) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return fallback


def _check_folder(root: Path) -> None:
    """Refuse a cache path that is (or lies under) a file, in one line, before anything uses it."""
    folder = file_in_the_way(root)
    if folder is not None:
        raise StoreError(
            f"the cache folder {root} cannot be used: {folder} is a file, not a folder",
            hint=f"point {constants.ENV_CACHE_DIR} (or --cache-dir) at a folder",
        )


class BlobStore(StoreMaintenance):
    """A folder of verified blobs named by sha256; safe to share between processes."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root) if root is not None else constants.cache_dir()
        _check_folder(self.root)
        self._blobs = self.root / "blobs" / "sha256"
        self._locks = self.root / "locks"
        self._tmp = self.root / "tmp"

    # Layout --------------------------------------------------------------------------------------------

    def _ensure(self) -> None:
        try:
            for folder in (self._blobs, self._locks, self._tmp):
                folder.mkdir(parents=True, exist_ok=True)
            tag = self.root / "CACHEDIR.TAG"
            if not tag.exists():
                atomic_write(tag, _CACHEDIR_TAG)
        except OSError as exc:
            raise StoreError(
                f"cannot create the blob store at {self.root}: {exc.strerror}",
                hint=f"set {constants.ENV_CACHE_DIR} to a writable folder",
            ) from exc

    def path(self, oid: str) -> Path:
        """Where the blob ``oid`` lives (whether or not it is there)."""
        check_oid(oid)
        return self._blobs / oid[:2] / oid

    def _partial_path(self, oid: str) -> Path:
        return self.path(oid).with_name(oid + _INCOMPLETE)

    def _lock_file(self, oid: str) -> filelocks.FileLock:
        # One lock per 3-hex-digit prefix, not per object: a lock file cannot be removed safely while
        # another process may be waiting on it, so per-object files would pile up forever. Two objects
        # share a lock one time in 4096; they are then written one after the other, never wrongly.
        self._ensure()
        return filelocks.FileLock(str(self._locks / f"{oid[:LOCK_PREFIX]}.lock"))

    @contextlib.contextmanager
    def _lock(self, oid: str) -> Iterator[None]:
        lock = self._lock_file(oid)
        try:
            lock.acquire(timeout=_LOCK_TIMEOUT)
        except filelocks.Timeout as exc:
            raise StoreError(
                f"object {oid} is locked by another process",
                hint=f"wait for it to finish, or remove {lock.lock_file} if no cclm-shelf process runs",
            ) from exc
        try:
            yield
        finally:
            lock.release()

    # Queries -------------------------------------------------------------------------------------------

    def has(self, oid: str, size: int | None = None) -> bool:
        """Whether the blob is present (and has ``size`` bytes); blobs were verified when they entered."""
        try:
            found = self.path(oid).stat()
        except FileNotFoundError:
            return False
        return stat.S_ISREG(found.st_mode) and (size is None or found.st_size == size)

    def partial_size(self, oid: str) -> int:
        """How many bytes an interrupted write of ``oid`` left behind (0 when none)."""
        try:
            return self._partial_path(oid).stat().st_size
        except FileNotFoundError:
            return 0

    def iter_blobs(self) -> Iterator[BlobInfo]:
        """Every finished blob, in no particular order; partial files are left out."""
        if not self._blobs.is_dir():
            return
        for folder in sorted(self._blobs.iterdir()):
            if not folder.is_dir():
                continue
            for entry in sorted(folder.iterdir()):
                if entry.name.endswith(_INCOMPLETE) or not entry.is_file():
                    continue
                yield BlobInfo(oid=entry.name, size=entry.stat().st_size, path=entry)

    def info(self) -> dict[str, object]:
        """Count and total size of the blobs, and where the store is."""
        count = total = 0
        for blob in self.iter_blobs():
            count += 1
            total += blob.size
        return {"root": str(self.root), "count": count, "bytes": total}

    # Writing -------------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def writer(self, oid: str, size: int) -> Iterator[BlobWriter]:
        """Write one object, holding its lock; commit on a clean exit.

        An exception other than ``IntegrityError`` keeps the partial file so a later run can resume it;
        an integrity failure deletes it. Nothing reaches the final name without being verified.
        """
        check_oid(oid)
        if size < 0:
            raise StoreError(f"object {oid} has a negative size ({size})")
        with self._lock(oid):
            final = self.path(oid)
            final.parent.mkdir(parents=True, exist_ok=True)
            done = self.has(oid, size)
            blob = BlobWriter(oid, size, self._partial_path(oid), complete=done)
            if done:
                yield blob
                return
            blob._open()
            try:
                yield blob
                blob._commit(final)
            except IntegrityError:
                blob._discard()
                raise
            finally:
                blob._close()

    def add_file(self, path: Path, oid: str | None = None, size: int | None = None) -> str:
        """Copy a file into the store and return its oid; with ``oid``/``size``, they must match."""
        path = Path(path)
        if not path.is_file():
            raise StoreError(f"cannot add {path} to the store: it is not a file")
        if oid is not None:
            check_oid(oid)
            if self.has(oid, size):
                return oid
        self._ensure()
        fd, tmp_name = tempfile.mkstemp(dir=self._tmp, suffix=_INCOMPLETE)
        tmp = Path(tmp_name)
        try:
            # A source longer than ``size`` is wrong whatever follows: read one byte past it, not to its end.
            limit = None if size is None else size + 1
            with open(path, "rb") as src:
                actual, actual_size = self._copy_hashing(src, fd, limit)
            self._expect(path, oid, size, actual, actual_size)
            self._place(tmp, actual)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        return actual

    def stage(self, stream: BinaryIO, oid: str, size: int, label: str) -> Path:
        """Copy ``stream`` into a temporary file of the store, checked against ``oid`` and ``size``.

        For content that must be verified as a whole before any of it is kept (a bundle): the caller
        moves each staged file into place with ``adopt`` once everything checked out, or deletes them.
        ``label`` names the content in errors.
        """
        check_oid(oid)
        self._ensure()
        fd, tmp_name = tempfile.mkstemp(dir=self._tmp, suffix=_INCOMPLETE)
        tmp = Path(tmp_name)
        try:
            actual, actual_size = self._copy_hashing(stream, fd, size + 1)
            self._expect(Path(label), oid, size, actual, actual_size)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return tmp

    def adopt(self, staged: Path, oid: str) -> None:
        """Move a file made by ``stage`` to its final name (dropping it when the blob is already there)."""
        try:
            self._place(staged, oid)
        finally:
            with contextlib.suppress(FileNotFoundError):
                staged.unlink()

    @staticmethod
    def _copy_hashing(src: BinaryIO, fd: int, limit: int | None = None) -> tuple[str, int]:
        """Copy ``src`` into ``fd`` while hashing it; stop after ``limit`` bytes when one is given."""
        with os.fdopen(fd, "wb") as dst:
            found = copy_hashing(src, dst, limit)
            dst.flush()
            os.fsync(dst.fileno())
        return found

    @staticmethod
    def _expect(path: Path, oid: str | None, size: int | None, actual: str, actual_size: int) -> None:
        if size is not None and actual_size > size:
            actual_size = _size_on_disk(path, actual_size)  # the copy stopped one byte past ``size``
        if size is not None and actual_size != size:
            raise IntegrityError(
                f"{path} has {actual_size} bytes but {size} were expected", hint="it was not stored"
            )
        if oid is not None and actual != oid:
            raise IntegrityError(f"{path} has sha256 {actual}, expected {oid}", hint="it was not stored")

    def _place(self, tmp: Path, oid: str) -> None:
        """Move a verified temporary file to its final name unless another process got there first."""
        with self._lock(oid):
            final = self.path(oid)
            if self.has(oid):
                return
            final.parent.mkdir(parents=True, exist_ok=True)
            seal(tmp)
            os.replace(tmp, final)
            fsync_dir(final.parent)

    # Using blobs ---------------------------------------------------------------------------------------

    def revalidate(self, oid: str, size: int) -> bool:
        """Whether the blob is in the store with its verified bytes; call it before linking a blob again.

        A blob with the verified stamp and its size costs a stat. Any other (written to through an installed
        link, or stored before blobs were stamped) is re-hashed under its lock: stamped again when right,
        evicted when wrong, so that the caller fetches it again.
        """
        path = self.path(oid)
        try:
            found = path.stat()
        except FileNotFoundError:
            return False
        if stat.S_ISREG(found.st_mode) and found.st_size == size and found.st_mtime_ns == VERIFIED_MTIME_NS:
            return True
        with self._lock(oid):
            try:
                good = path.stat().st_size == size and hash_file(path)[0] == oid
            except FileNotFoundError:
                return False
            if not good:
                self._evict(path)
                return False
            with contextlib.suppress(
                OSError
            ):  # not ours to stamp (a shared cache): it is re-hashed next time
                os.utime(path, ns=(time.time_ns(), VERIFIED_MTIME_NS))
            return True

    def _evict(self, path: Path) -> None:
        """Take a changed blob out of the store; when no installed hardlink holds its bytes (symlink
        mode), they are someone's edit: moved to ``evicted/`` instead of deleted."""
        if path.stat().st_nlink > 1:
            path.unlink(missing_ok=True)
            return
        aside = self.root / "evicted" / f"{path.name}-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}"
        aside.parent.mkdir(exist_ok=True)
        os.replace(path, aside)

    def link_into(self, oid: str, dest: Path, mode: str = "hardlink") -> str:
        """Put the blob at ``dest`` (replacing it atomically) the way ``mode`` says (``shelf.linking``).

        Returns how it was placed: ``"hardlink"``, ``"copy"`` (asked for, or where links fail) or
        ``"symlink"``.
        """
        from shelf.linking import place

        source = self.path(oid)
        if not source.is_file():
            raise StoreError(f"object {oid} is not in the store", hint="download it first")
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = beside(dest)
        try:
            method = place(source, tmp, mode)
            os.replace(tmp, dest)
        except OSError as exc:
            raise StoreError(f"cannot place object {oid} at {dest}: {exc.strerror}") from exc
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        return method
