"""Inter-process file locks: the one lock of the project (the store's objects, mirrors, install folders).

An exclusive ``flock`` (``msvcrt.locking`` on Windows) on a lock file that is created when missing and never
removed: removing a lock file another process waits on would let two processes hold "the" lock at once.
The lock belongs to the open file, so two ``FileLock`` objects on one path exclude each other even in one
process (each download thread takes its own); one object may be acquired again while it holds the lock.

Written here rather than taken from ``filelock``, whose import (about 12 ms: logging, its settings and
fork handling) was the largest single item of a warm install's start-up.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from types import TracebackType

_POLL = 0.05  # seconds between tries while another process holds the lock


class Timeout(TimeoutError):
    """The lock was not acquired within the time given."""

    def __init__(self, lock_file: str) -> None:
        super().__init__(f"the file lock {lock_file!r} could not be acquired")
        self.lock_file = lock_file


class FileLock:
    """``with FileLock(path, timeout=...)`` or ``acquire(timeout)`` / ``release()``; a negative timeout
    (the default) waits as long as it takes, 0 tries once."""

    def __init__(self, lock_file: str | os.PathLike[str], timeout: float = -1) -> None:
        self.lock_file = os.fspath(lock_file)
        self.timeout = timeout
        self._fd: int | None = None
        self._depth = 0

    @property
    def is_locked(self) -> bool:
        return self._fd is not None

    def acquire(self, timeout: float | None = None) -> FileLock:
        if self._fd is not None:
            self._depth += 1
            return self
        wait = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + wait
        while (fd := _try_lock(self.lock_file)) is None:
            if wait >= 0 and deadline <= time.monotonic():
                raise Timeout(self.lock_file)
            time.sleep(_POLL)
        self._fd, self._depth = fd, 1
        return self

    def release(self) -> None:
        if self._fd is None:
            return
        self._depth -= 1
        if self._depth == 0:
            fd, self._fd = self._fd, None
            _unlock(fd)

    def __enter__(self) -> FileLock:
        return self.acquire()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()

    def __del__(self) -> None:  # a lock object dropped while held must not keep the lock for the process
        if self._fd is not None:
            self._depth = 1
            with contextlib.suppress(Exception):  # at interpreter exit the process's end frees it anyway
                self.release()


def _try_lock(path: str) -> int | None:
    """An open descriptor of ``path`` holding its exclusive lock, or None when someone else holds it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        if sys.platform == "win32":
            import msvcrt

            try:
                msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
            except OSError:  # held elsewhere (EACCES / EDEADLOCK)
                os.close(fd)
                return None
        else:
            import fcntl

            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:  # held elsewhere; other errors (no locks on this file system) are raised
        os.close(fd)
        return None
    except BaseException:
        os.close(fd)
        raise
    return fd


def _unlock(fd: int) -> None:
    try:
        if sys.platform == "win32":
            import msvcrt

            os.lseek(fd, 0, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
        else:
            import fcntl

            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
