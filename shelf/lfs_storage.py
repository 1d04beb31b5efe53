"""A giftless storage backend that keeps objects where git-lfs keeps them in a bare repository.

``cclm-shelf serve`` runs giftless (a Git LFS server) with this backend, so a served shelf and the same shelf
used as a local path share one object folder, ``<repo>/lfs/objects/<oid[0:2]>/<oid[2:4]>/<oid>``. Unlike
giftless's own local storage, an upload is hashed while it is written and only enters that folder when its
sha256 matches the object id it claims. This module is imported only inside the giftless server process.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any, BinaryIO

from giftless.storage import StreamingStorage, exc

_OID = re.compile(r"[0-9a-f]{64}")
_CHUNK = 1 << 20


class GitLfsLayoutStorage(StreamingStorage):
    """Objects of one shelf repository, in the git-lfs folder layout; ``prefix`` (org/repo) is ignored."""

    def __init__(self, path: str, **_: Any) -> None:
        self.root = Path(path) / "lfs" / "objects"
        self.tmp = Path(path) / "lfs" / "tmp"
        self.root.mkdir(parents=True, exist_ok=True)
        self.tmp.mkdir(parents=True, exist_ok=True)

    def _path(self, oid: str) -> Path:
        if not _OID.fullmatch(oid):
            raise exc.InvalidObjectError(f"{oid!r} is not a sha256 object id")
        return self.root / oid[0:2] / oid[2:4] / oid

    def get(self, prefix: str, oid: str) -> Iterable[bytes]:
        path = self._path(oid)
        if not path.is_file():
            raise exc.ObjectNotFoundError(f"object {oid} was not found")
        return _chunks(path)

    def put(self, prefix: str, oid: str, data_stream: BinaryIO) -> int:
        dest = self._path(oid)
        digest, size = hashlib.sha256(), 0
        fd, tmp_name = tempfile.mkstemp(dir=self.tmp, prefix=f"{oid}.")
        try:
            with os.fdopen(fd, "wb") as out:
                while chunk := data_stream.read(_CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
                    size += len(chunk)
            if digest.hexdigest() != oid:
                raise exc.InvalidObjectError(f"the uploaded bytes do not hash to {oid}")
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp_name, dest)
        finally:
            if os.path.exists(tmp_name):
                os.unlink(tmp_name)
        return size

    def exists(self, prefix: str, oid: str) -> bool:
        return self._path(oid).is_file()

    def get_size(self, prefix: str, oid: str) -> int:
        path = self._path(oid)
        if not path.is_file():
            raise exc.ObjectNotFoundError(f"object {oid} was not found")
        return path.stat().st_size


def _chunks(path: Path) -> Iterable[bytes]:
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            yield chunk
