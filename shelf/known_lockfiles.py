"""The lockfiles this machine has written or installed from, so ``cache prune`` keeps what they pin.

Kept as one JSON list in the cache folder; paths that no longer exist are dropped when it is read.
"""

from __future__ import annotations

import json
from pathlib import Path

from shelf.filelocks import FileLock
from shelf.fsutil import atomic_write

FILE_NAME = "known-lockfiles.json"


def _path(cache_dir: Path) -> Path:
    return Path(cache_dir) / FILE_NAME


def known_lockfiles(cache_dir: Path) -> list[Path]:
    try:
        raw = json.loads(_path(cache_dir).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    return [Path(p) for p in raw if isinstance(p, str) and Path(p).is_file()]


def remember_lockfile(cache_dir: Path, lockfile: Path) -> None:
    path = _path(cache_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path) + ".lock"):
        paths = {str(p) for p in known_lockfiles(cache_dir)} | {str(Path(lockfile).resolve())}
        atomic_write(path, json.dumps(sorted(paths), indent=1) + "\n")
