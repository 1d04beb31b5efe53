"""One way to write to disk: beside the destination, flushed, renamed into place.

- ``atomic_write(path, data)`` writes a whole small file (lockfile, project file, install record);
- ``atomic_file(path)`` yields a handle for a streamed file and renames it into place on a clean exit;
- ``atomic_create(path, data)`` writes a new file that must not replace one (keys);
- ``copy_hashing(src, dst)`` copies a stream while hashing it (sha256, bytes), ``hash_file`` only hashes;
- ``Writeback(handle)`` lets the disk start on a file being streamed (``start_writeback`` every few MiB),
  so its fsync finds little left to write;
- ``new_staging(final)`` + ``swap_dir(staging, final)`` build a folder aside and replace the old one with
  it; ``discard`` removes a folder by first renaming it aside.

Temporary names are unique (``.<name>.<random>.tmp`` beside the destination), so two writers never share
one, and a crash leaves debris under a name nobody trusts, never a half-written file under the real name.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import shutil
import stat
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, BinaryIO

from shelf import constants

TMP_SUFFIX = ".tmp"
STAGING_PREFIX = ".staging-"
TRASH_PREFIX = ".trash-"


def fsync_dir(path: Path) -> None:
    """Make a rename in ``path`` durable; not every platform lets a folder be opened."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


_SYNC_FILE_RANGE_WRITE = 2  # from <fcntl.h>: start writing the dirty pages of the range, do not wait
# Bytes written between two hints to the kernel to start writing them to disk (``start_writeback``): the
# disk works while a stream goes on, so the fsync at its end finds little left to do.
WRITEBACK_BYTES = 8 << 20


@functools.cache
def _sync_file_range() -> Callable[[int, int, int, int], int] | None:
    """Linux's ``sync_file_range`` (Python's os module lacks it), or None where there is none."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes  # only a download of a large blob gets here

    try:
        call = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (OSError, AttributeError):
        return None
    call.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    call.restype = ctypes.c_int
    return call


def start_writeback(fd: int, offset: int, length: int) -> bool:
    """Ask the kernel to start writing ``length`` bytes of the file at ``offset`` to disk, without waiting.

    Only a head start, never durability: the file still needs its fsync, which then finds the bytes on
    disk already (a 64 MiB blob: ~30 ms less at commit here). True when the kernel took the hint; where
    the call does not exist it is a no-op (False), and a refused hint changes nothing either.
    """
    call = _sync_file_range()
    return call is not None and call(fd, offset, length, _SYNC_FILE_RANGE_WRITE) == 0


class Writeback:
    """Hands a file's bytes to the disk while it is written: ``start_writeback`` every ``WRITEBACK_BYTES``.

    ``wrote(count)`` after each write of ``count`` bytes at the end of the file; ``restart()`` after
    truncating it to nothing.
    """

    def __init__(self, handle: IO[bytes], start: int = 0) -> None:
        self._handle = handle
        self._end = self._hinted = start  # the file's length; where the last hint ended

    @classmethod
    def of(cls, dst: IO[bytes]) -> Writeback | None:
        """One for ``dst`` from where it stands, or None when it is no file on disk (a pipe, a buffer)."""
        try:
            dst.fileno()
            return cls(dst, dst.tell())
        except (
            OSError,
            ValueError,
            AttributeError,
        ):  # io.UnsupportedOperation is an OSError and a ValueError
            return None

    def wrote(self, count: int) -> None:
        self._end += count
        if self._end - self._hinted >= WRITEBACK_BYTES:
            self._handle.flush()
            start_writeback(self._handle.fileno(), self._hinted, self._end - self._hinted)
            self._hinted = self._end

    def restart(self) -> None:
        self._end = self._hinted = 0


def file_in_the_way(path: Path) -> Path | None:
    """The nearest of ``path`` and its parents that exists, when it is not a folder (then ``path`` cannot
    be made a folder); None when that one is a folder."""
    for folder in (path, *path.parents):
        try:
            found = folder.stat()  # one stat: a folder created meanwhile by another process is fine
        except OSError:
            continue  # not there (yet), or under a file: the parent tells
        return None if stat.S_ISDIR(found.st_mode) else folder
    return None


def beside(path: Path, suffix: str = TMP_SUFFIX) -> Path:
    """A unique, not yet existing name in the folder of ``path`` (for a link or rename made elsewhere)."""
    path = Path(path)
    return path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:12]}{suffix}")


@contextlib.contextmanager
def atomic_file(
    path: Path, *, tmp_dir: Path | None = None, mode: int | None = None, durable: bool = True
) -> Iterator[BinaryIO]:
    """Yield a binary handle; on a clean exit flush, fsync and rename it to ``path``.

    The temporary file lives beside ``path`` (or in ``tmp_dir``, which must be on the same file system).
    An exception removes it and leaves ``path`` as it was. ``mode`` sets the permissions before the rename.
    ``durable=False`` skips both fsyncs (still all or nothing for other processes): only for files whose
    loss in a power cut costs a redo, never data (two fsyncs cost tens of milliseconds on a busy disk).
    """
    path = Path(path)
    folder = Path(tmp_dir) if tmp_dir is not None else path.parent
    fd, name = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=TMP_SUFFIX)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
        if mode is not None:
            os.chmod(name, mode)
        os.replace(name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name)
        raise
    if durable:
        fsync_dir(path.parent)


def atomic_write(path: Path, data: bytes | str, *, encoding: str = "utf-8", durable: bool = True) -> None:
    """Write ``data`` (text is encoded, newlines kept as given) to ``path`` all at once or not at all
    (``durable``: see ``atomic_file``)."""
    payload = data.encode(encoding) if isinstance(data, str) else data
    with atomic_file(path, durable=durable) as handle:
        handle.write(payload)


def atomic_create(path: Path, data: bytes, *, mode: int = 0o600) -> None:
    """Write a new file all at once, never over an existing one (FileExistsError), with ``mode`` from
    the start: written beside, flushed, then hard-linked into place (for keys, which are never replaced)."""
    path = Path(path)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TMP_SUFFIX)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.link(name, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name)
    fsync_dir(path.parent)


def copy_hashing(src: IO[bytes], dst: IO[bytes] | None = None, limit: int | None = None) -> tuple[str, int]:
    """Copy ``src`` to ``dst`` (None: only read) while hashing; return (sha256 hex, bytes read).

    With ``limit`` it stops after that many bytes, so a caller expecting N bytes passes N + 1 to learn that a
    source is too long without reading all of it. A ``dst`` that is a file is handed to the disk every
    ``WRITEBACK_BYTES`` (``start_writeback``), so that its caller's fsync finds little left to write.
    """
    digest = hashlib.sha256()
    size = 0
    writeback = Writeback.of(dst) if dst is not None else None
    while True:
        want = constants.CHUNK_SIZE if limit is None else min(constants.CHUNK_SIZE, limit - size)
        if want <= 0:
            break
        chunk = src.read(want)
        if not chunk:
            break
        digest.update(chunk)
        if dst is not None:
            dst.write(chunk)
        size += len(chunk)
        if writeback is not None:
            writeback.wrote(len(chunk))
    return digest.hexdigest(), size


def hash_file(path: Path) -> tuple[str, int]:
    """The sha256 hex digest and size of a file, read in chunks."""
    with open(path, "rb") as handle:
        return copy_hashing(handle)


def remove_tree(path: Path) -> None:
    """Remove a folder, or a link or file in its place (a link is removed, never followed)."""
    path = Path(path)
    if path.is_symlink() or path.is_file():
        path.unlink(missing_ok=True)
    else:
        shutil.rmtree(path, ignore_errors=True)


def discard(path: Path, trash_prefix: str = TRASH_PREFIX) -> None:
    """Rename ``path`` aside (atomic: it is gone at once), then remove it; nothing there is fine."""
    path = Path(path)
    if not (path.exists() or path.is_symlink()):
        return
    trash = path.with_name(f"{trash_prefix}{path.name}-{uuid.uuid4().hex[:8]}")
    os.replace(path, trash)
    remove_tree(trash)


def new_staging(final: Path) -> Path:
    """Create and return an empty staging folder beside ``final``, to be filled and then ``swap_dir``-ed."""
    final = Path(final)
    staging = final.with_name(f"{STAGING_PREFIX}{final.name}-{uuid.uuid4().hex[:8]}")
    staging.mkdir(parents=True)
    return staging


def swap_dir(staging: Path, final: Path, trash_prefix: str = TRASH_PREFIX) -> None:
    """Put the finished folder ``staging`` at ``final``, moving what was there aside first, then removing it.

    Readers see the old folder or the new one, never a mix; a crash between the two renames leaves the old
    one under a trash name that the next run's debris cleaning removes.
    """
    final = Path(final)
    if final.exists() or final.is_symlink():
        trash = final.with_name(f"{trash_prefix}{final.name}-{uuid.uuid4().hex[:8]}")
        os.replace(final, trash)
        os.replace(staging, final)
        remove_tree(trash)
    else:
        os.replace(staging, final)
