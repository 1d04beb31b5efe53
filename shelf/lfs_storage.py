"""A giftless storage backend that keeps objects where git-lfs keeps them in a bare repository.

``cclm-shelf serve`` runs giftless (a Git LFS server) with this backend, so a served shelf and the same shelf
used as a local path share one object folder, ``<repo>/lfs/objects/<oid[0:2]>/<oid[2:4]>/<oid>``. Unlike
giftless's own local storage, an upload is hashed while it is written and only enters that folder when its
sha256 matches the object id it claims, and an object whose bytes were damaged since counts as absent
(``shelf.shelf_objects``), so publishing the same content again restores it. This module is imported only
inside the giftless server process.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any, BinaryIO

from giftless.storage import StreamingStorage, exc

from registry_index.layout import lfs_object_path
from registry_index.pointer import is_sha256_hex
from shelf import constants
from shelf.fsutil import atomic_file, copy_hashing
from shelf.shelf_objects import is_intact, mark_verified


class GitLfsLayoutStorage(StreamingStorage):
    """Objects of one shelf repository, in the git-lfs folder layout; ``prefix`` (org/repo) is ignored."""

    def __init__(self, path: str, **_: Any) -> None:
        self.repo = Path(path)
        self.root = self.repo / "lfs" / "objects"
        self.tmp = Path(path) / "lfs" / "tmp"
        self.root.mkdir(parents=True, exist_ok=True)
        self.tmp.mkdir(parents=True, exist_ok=True)

    def _path(self, oid: str) -> Path:
        if not is_sha256_hex(oid):
            raise exc.InvalidObjectError(f"{oid!r} is not a sha256 object id")
        return self.repo / lfs_object_path(oid)

    def get(self, prefix: str, oid: str) -> Iterable[bytes]:
        path = self._path(oid)
        if not path.is_file():
            raise exc.ObjectNotFoundError(f"object {oid} was not found")
        return _chunks(path)

    def put(self, prefix: str, oid: str, data_stream: BinaryIO) -> int:
        dest = self._path(oid)
        dest.parent.mkdir(parents=True, exist_ok=True)
        with atomic_file(dest, tmp_dir=self.tmp) as out:
            digest, size = copy_hashing(data_stream, out)
            if digest != oid:
                raise exc.InvalidObjectError(f"the uploaded bytes do not hash to {oid}")
        mark_verified(self.repo, oid)
        return size

    def exists(self, prefix: str, oid: str) -> bool:
        """Present with the right bytes: a damaged object counts as absent, so a client uploads it again
        and a download is answered 404 instead of with bytes known to be wrong."""
        self._path(oid)  # refuses what is not an object id
        return is_intact(self.repo, oid)

    def get_size(self, prefix: str, oid: str) -> int:
        path = self._path(oid)
        if not path.is_file():
            raise exc.ObjectNotFoundError(f"object {oid} was not found")
        return path.stat().st_size


def _chunks(path: Path) -> Iterable[bytes]:
    with path.open("rb") as fh:
        while chunk := fh.read(constants.CHUNK_SIZE):
            yield chunk
