"""The project's one inter-process file lock (shelf.filelocks), against another lock object and process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from shelf.filelocks import FileLock, Timeout


def test_two_lock_objects_on_one_file_exclude_each_other(tmp_path: Path) -> None:
    path = tmp_path / "x.lock"
    first, second = FileLock(path), FileLock(path, timeout=0)
    with first:
        assert first.is_locked
        with pytest.raises(Timeout, match=r"x\.lock"):
            second.acquire()
    with second:  # released by the first: free again
        assert second.is_locked and not first.is_locked
    assert path.is_file()  # the lock file stays: another process may be waiting on it


def test_a_held_lock_may_be_acquired_again_by_its_holder(tmp_path: Path) -> None:
    lock = FileLock(tmp_path / "x.lock")
    with lock, lock:
        assert lock.is_locked
    assert not lock.is_locked
    FileLock(tmp_path / "x.lock").acquire(timeout=0).release()


def test_another_process_holding_the_lock_times_us_out(tmp_path: Path) -> None:
    path = tmp_path / "x.lock"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom shelf.filelocks import FileLock\n"
         "lock = FileLock(sys.argv[1]).acquire()\nprint('held', flush=True)\ntime.sleep(60)", str(path)],
        stdout=subprocess.PIPE, text=True, env={"PYTHONPATH": ":".join(sys.path)},
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        with pytest.raises(Timeout):
            FileLock(path).acquire(timeout=0.2)
    finally:
        holder.kill()
        holder.wait()
    FileLock(path).acquire(timeout=5).release()  # the holder's death freed it


def test_a_lock_in_a_missing_folder_is_an_os_error_not_a_wait(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        FileLock(tmp_path / "missing" / "x.lock").acquire(timeout=0)
