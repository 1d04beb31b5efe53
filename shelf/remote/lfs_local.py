"""A shelf's LFS objects on this machine, read and written in place.

Objects live in ``<repo>/lfs/objects/<oid[0:2]>/<oid[2:4]>/<oid>`` (``registry_index.layout.
lfs_object_path``): where the real git-lfs client puts them when it pushes to a local path, so both tools
share one folder. ``LocalLfsObjects`` offers the same ``download``/``upload`` as the HTTP client.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from registry_index.layout import lfs_object_path
from shelf.errors import IntegrityError, NotFoundError
from shelf.fsutil import atomic_file, copy_hashing
from shelf.progress import NullProgress, Progress
from shelf.remote.lfs_protocol import DownloadReport, LfsObject, UploadReport, unique
from shelf.shelf_objects import is_intact, mark_verified
from shelf.store import BlobStore, check_oid


class LocalLfsObjects:
    """The LFS objects of a shelf on this machine: ``<repo>/lfs/objects/<aa>/<bb>/<oid>``."""

    def __init__(self, repo_path: Path, *, progress: Progress | None = None) -> None:
        self.repo_path = Path(repo_path)
        self.objects_dir = self.repo_path / "lfs" / "objects"
        self.progress: Progress = progress or NullProgress()

    def __repr__(self) -> str:
        return f"LocalLfsObjects({str(self.repo_path)!r})"

    def object_path(self, oid: str) -> Path:
        return self.repo_path / lfs_object_path(check_oid(oid))

    def has(self, obj: LfsObject) -> bool:
        """There with the right bytes (damaged counts as absent: uploading it again restores it)."""
        return is_intact(self.repo_path, check_oid(obj.oid), obj.size)

    def download(self, objects: Iterable[LfsObject], store: BlobStore) -> DownloadReport:
        """Copy the objects the store lacks into it; each copy is hashed and verified on the way."""
        wanted = unique(objects)
        missing = [o for o in wanted if not store.has(o.oid, o.size)]
        absent = [o.oid for o in missing if not self.object_path(o.oid).is_file()]
        if absent:
            raise NotFoundError(
                f"the shelf at {self.repo_path} does not have {len(absent)} object(s): {', '.join(absent)}",
                hint="the shelf may be incomplete: its publisher must push these objects again",
            )
        for obj in missing:
            self.progress.start(obj.oid, obj.size)
            store.add_file(self.object_path(obj.oid), obj.oid, obj.size)
            self.progress.advance(obj.oid, obj.size)
            self.progress.finish(obj.oid)
        skipped = tuple(o.oid for o in wanted if o not in missing)
        return DownloadReport(tuple(o.oid for o in missing), skipped, sum(o.size for o in missing))

    def upload(self, objects: Iterable[tuple[LfsObject, Path]], *, verified: bool = False) -> UploadReport:
        """Copy objects into the shelf, verified, each appearing atomically under its final name.

        The copy is hashed as it is written, ``verified`` or not: it costs no extra read.
        """
        uploaded, skipped, moved = [], [], 0
        for obj, path in {o: Path(p) for o, p in objects}.items():
            if self.has(obj):
                skipped.append(obj.oid)
                continue
            self.progress.start(obj.oid, obj.size)
            self._copy_in(obj, path)
            self.progress.advance(obj.oid, obj.size)
            self.progress.finish(obj.oid)
            uploaded.append(obj.oid)
            moved += obj.size
        return UploadReport(tuple(uploaded), tuple(skipped), moved)

    def _copy_in(self, obj: LfsObject, source: Path) -> None:
        if not source.is_file():
            raise NotFoundError(f"cannot upload object {obj.oid}: {source} is not a file")
        dest = self.object_path(obj.oid)
        dest.parent.mkdir(parents=True, exist_ok=True)
        with open(source, "rb") as src, atomic_file(dest) as dst:
            digest, size = copy_hashing(src, dst, limit=obj.size + 1)
            if size != obj.size or digest != obj.oid:
                raise IntegrityError(
                    f"{source} does not match object {obj.oid} ({obj.size} bytes)",
                    hint="the file changed after it was hashed; hash it again before publishing",
                )
        mark_verified(self.repo_path, obj.oid)
