"""``fsck``: re-hash a local shelf's own LFS objects and name the published versions they break.

Every version in the shelf's index (yanked ones too: an exact pin still installs them) lists its files in
its manifest; each object is read from ``<repo>/lfs/objects`` and hashed once, however many versions share
it. A missing or damaged object is reported with every component, version and file that needs it, and its
verification record is dropped (``shelf.shelf_objects``), so that publishing the same folder again uploads
it anew. Nothing else is changed: a damaged object stays where it is until a good copy replaces it.

The objects of a shelf served with ``--s3-bucket`` are in the bucket instead: ``shelf.s3_objects`` checks
them there (sizes; sha256 only when asked, since that downloads them all), with the same report.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from shelf import shelf_objects
from shelf.source import ShelfSource


@dataclass(frozen=True)
class Problem:
    """One file of one published version whose object is missing or damaged."""

    name: str
    version: str
    path: str  # <item_type>/<file>
    oid: str
    state: str  # "missing" or "damaged"


class Objects(Protocol):
    """Where a shelf's objects are (``where``), whether a check hashes them (``hashes``), and the check."""

    @property
    def where(self) -> str: ...

    @property
    def hashes(self) -> bool: ...

    def check(self, oid: str, size: int) -> str | None:
        """None when the object is intact, else ``"missing"`` or ``"damaged"``."""


@dataclass(frozen=True)
class LocalObjects:
    """The objects in ``<repo>/lfs/objects``, each re-hashed (``shelf.shelf_objects.check``)."""

    repo: Path
    hashes: bool = True

    @property
    def where(self) -> str:
        return str(self.repo)

    def check(self, oid: str, size: int) -> str | None:
        return shelf_objects.check(self.repo, oid, size)


@dataclass
class FsckReport:
    shelf: str
    where: str = ""  # where the objects are: the shelf itself, or an s3:// bucket folder
    hashed: bool = True  # whether the intact objects were re-hashed (else: there, with their size)
    versions: int = 0
    objects: int = 0
    bytes: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def broken_versions(self) -> list[tuple[str, str]]:
        return sorted({(p.name, p.version) for p in self.problems})


def fsck(
    repo: Path,
    source: ShelfSource,
    progress: Callable[[str], None] = lambda _m: None,
    objects: Objects | None = None,
) -> FsckReport:
    """Check every object the shelf's published versions need (in ``objects``, by default its own
    ``lfs/objects``); see the module docstring."""
    checker: Objects = objects or LocalObjects(repo)
    report = FsckReport(str(repo), checker.where, checker.hashes)
    needed: dict[str, list[tuple[str, str, str]]] = {}
    sizes: dict[str, int] = {}
    for name in source.index.names():
        for entry in source.index.entries(name):
            manifest, _data = source.manifest(entry)
            report.versions += 1
            for item, f in manifest.files():
                needed.setdefault(f.sha256, []).append((name, entry.version, f"{item}/{f.path}"))
                sizes[f.sha256] = f.size
    verb = "hashing" if checker.hashes else "looking up"
    progress(f"{verb} {len(needed)} object(s) of {report.versions} version(s) in {checker.where}")
    for oid in sorted(needed):
        state = checker.check(oid, sizes[oid])
        report.objects += 1
        if state is None:
            report.bytes += sizes[oid] if checker.hashes else 0
            continue
        report.problems += [Problem(n, v, p, oid, state) for n, v, p in needed[oid]]
    report.problems.sort(key=lambda p: (p.name, p.version, p.path))
    return report
