"""Opening a shelf: its metadata mirror, its sparse index, its manifests and its blob transport.

A ``ShelfSource`` is everything an install or a publish needs to know about one shelf repository. Metadata
(index files, manifests, pointer files) is read from a local bare mirror that is refreshed with a fetch, at
most once per source object, so a command never clones twice and never downloads LFS content to read
metadata. Blobs move through ``transport()``: the LFS batch API for remote shelves, the git-lfs object
folder for local ones.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from registry_index import layout
from registry_index.index import IndexEntry, parse_index_file
from registry_index.manifest import Manifest, load_manifest, manifest_digest
from registry_index.requirements import Requirement, parse_requirement
from shelf import constants
from shelf.errors import IntegrityError, NotFoundError
from shelf.remote.mirror import ShelfMirror
from shelf.remote.url import is_local_url, normalise_url

if TYPE_CHECKING:
    from shelf.offline_index import StoredVersions
    from shelf.store import BlobStore

# Touched in a mirror's folder each time it fetches: how old its index (and yank status) is.
FETCHED_MARK = "cclm-shelf-fetched"


class MirrorIndex:
    """The sparse index read from a shelf mirror at one commit (implements ``IndexSource``)."""

    def __init__(self, mirror: ShelfMirror, commit: str) -> None:
        self._mirror = mirror
        self._commit = commit
        self._cache: dict[str, list[IndexEntry]] = {}
        self.files_read = 0

    def entries(self, name: str) -> list[IndexEntry]:
        if name not in self._cache:
            self._cache[name] = self._load(name)
        return self._cache[name]

    def preload(self, names: list[str]) -> None:
        """Read the index files of ``names`` with one git process (before asking for each in turn)."""
        wanted = {layout.index_path(n): n for n in names if n not in self._cache}
        if not wanted:
            return
        found = self._mirror.read_many(self._commit, list(wanted), missing_ok=True)
        for path, name in wanted.items():
            self._cache[name] = parse_index_file(found[path], path) if path in found else []
            self.files_read += path in found

    def fill(self, name: str, path: str, data: bytes | None) -> None:
        """Take the index file of ``name`` (at ``path``; None: there is none) read by someone else."""
        if name not in self._cache:
            self._cache[name] = parse_index_file(data, path) if data is not None else []
            self.files_read += data is not None

    def _load(self, name: str) -> list[IndexEntry]:
        path = layout.index_path(name)
        found = self._mirror.read_many(self._commit, [path], missing_ok=True)  # one git process, not two
        if path not in found:
            return []
        self.files_read += 1
        return parse_index_file(found[path], path)

    def names(self) -> list[str]:
        tree = self._mirror.list_tree(self._commit, "index", recursive=True)
        return sorted(
            Path(entry.path).name
            for entry in tree
            if entry.kind == "blob" and entry.path != layout.INDEX_CONFIG_PATH
        )


class PriorityIndex:
    """The indexes of several shelves in priority order (implements ``IndexSource``).

    Each name comes wholly from the first shelf that publishes it: versions of one name are never mixed
    across shelves, so a lower-priority shelf cannot shadow or extend a component of a higher one (the
    "dependency confusion" attack on package indexes).
    """

    def __init__(self, sources: list[ShelfSource]) -> None:
        self._sources = sources
        self._owner: dict[str, ShelfSource] = {}

    def entries(self, name: str) -> list[IndexEntry]:
        for source in self._sources:
            found = source.index.entries(name)
            if found:
                self._owner[name] = source
                return found
        return []

    def source_of(self, name: str) -> ShelfSource:
        """The shelf a name's entries came from (the first shelf when none has it)."""
        if name not in self._owner:
            self.entries(name)
        return self._owner.get(name, self._sources[0])

    def names(self) -> list[str]:
        return sorted({name for source in self._sources for name in source.index.names()})

    def stored_only(self, store: BlobStore) -> StoredVersions:
        """Offline: this index as far as the store holds every file of a version."""
        from shelf.offline_index import StoredVersions

        return StoredVersions(self, store)

    def preload(self, names: list[str]) -> None:
        """Read the index files of ``names`` from every shelf, one git process per shelf."""
        for source in self._sources:
            source.index.preload(names)

    def prefetch_manifests(self, entries: Iterable[IndexEntry]) -> None:
        """Read the manifests and signatures of ``entries`` from their shelves, one git process per shelf."""
        by_source: dict[ShelfSource, list[tuple[str, str]]] = {}
        for entry in entries:
            by_source.setdefault(self.source_of(entry.name), []).append((entry.name, entry.version))
        for source, pins in by_source.items():
            source.prefetch(pins, index=False)

    @property
    def files_read(self) -> int:
        return sum(source.index.files_read for source in self._sources)


class ShelfSource:
    """One shelf repository, opened for reading (and, through ``mirror``, for publishing)."""

    def __init__(self, url: str, *, cache_dir: Path | None = None, offline: bool = False) -> None:
        self.url = normalise_url(url)
        self.offline = offline
        self.cache_dir = cache_dir or constants.cache_dir()
        self.mirror = ShelfMirror.open(self.url, cache_dir=self.cache_dir, offline=offline)
        self._prefetched: dict[str, bytes | None] = {}  # path at ``head`` -> bytes (None: not there)
        self._refreshed = self.mirror.refreshed  # a new mirror was fetched just now: no second fetch
        if self._refreshed:
            self._mark_fetched()

    def refresh(self) -> None:
        """Bring the mirror up to date with the remote (once per source until marked stale; never offline)."""
        if self.offline or self._refreshed:
            return
        self.mirror.refresh()
        self._refreshed = True
        self._mark_fetched()
        self.reread()

    def _fetched_mark(self) -> Path:
        """The file touched after each fetch: its mtime says how old the mirrored index is."""
        return self.mirror.path / FETCHED_MARK

    def _mark_fetched(self) -> None:
        # A read-only cache only means the next command fetches again.
        mark = self._fetched_mark()
        with contextlib.suppress(OSError):
            mark.parent.mkdir(parents=True, exist_ok=True)
            mark.touch()

    def fetched_at(self) -> float | None:
        """When the index was last read from the remote (seconds since the epoch), if known."""
        try:
            return self._fetched_mark().stat().st_mtime
        except OSError:
            return None

    def is_fresh(self) -> bool:
        """Whether the mirrored index (yank status included) is recent enough to answer without a fetch.

        Offline, what is mirrored is all there is. Online, a mirror older than ``$CCLM_SHELF_INDEX_MAX_AGE``
        seconds is fetched again before a yank status is trusted.
        """
        import time

        if self.offline or self._refreshed:
            return True
        fetched = self.fetched_at()
        return fetched is not None and time.time() - fetched <= constants.index_max_age()

    def ensure_fresh(self) -> None:
        """Fetch when the mirror is older than the index's maximum age (never offline)."""
        if not self.is_fresh():
            self.refresh()

    def as_of(self) -> str:
        """When the mirrored index was read from the shelf, for "as of" notes offline."""
        import time

        fetched = self.fetched_at()
        if fetched is None:
            return "an unknown time"
        return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(fetched))

    @property
    def refreshed(self) -> bool:
        """Whether this source fetched from its remote (so its metadata is current)."""
        return self._refreshed

    def mark_stale(self) -> None:
        """The remote moved on (a rejected push): the next ``refresh`` fetches again."""
        self._refreshed = False
        self.reread()

    def reread(self) -> None:
        """Read head and index from the mirror again (after this process pushed to the shelf)."""
        for name in ("head", "index"):
            self.__dict__.pop(name, None)
        self._prefetched = {}

    @cached_property
    def head(self) -> str:
        return self.mirror.opened_head()

    @property
    def branch(self) -> str:
        return self.mirror.default_branch()

    @cached_property
    def index(self) -> MirrorIndex:
        return MirrorIndex(self.mirror, self.head)

    def entry(self, name: str, version: str) -> IndexEntry:
        for entry in self.index.entries(name):
            if entry.version == version:
                return entry
        raise NotFoundError(
            f"{name} {version} is not published on {self.url}", hint=f"cclm-shelf show {name}"
        )

    def prefetch(self, pins: list[tuple[str, str]], *, index: bool = True) -> None:
        """Read the manifests and signatures of versions ``(name, version)`` (and, with ``index``, the names'
        index files) with ONE git process; ``published`` (and ``entries``) then answer without another.

        The versions may be guesses (an exact pin as the user spelled it); a path not there is read as usual.
        """
        paths = {layout.index_path(name): name for name, _ in pins} if index else {}
        metadata = [
            path
            for name, version in pins
            if layout.manifest_path(name, version) not in self._prefetched
            for path in (layout.manifest_path(name, version), *layout.signature_paths(name, version))
        ]
        if not metadata and not paths:
            return
        found = self.mirror.read_many(self.head, [*paths, *metadata], missing_ok=True)
        for path, name in paths.items():
            self.index.fill(name, path, found.get(path))
        self._prefetched.update({path: found.get(path) for path in metadata})

    def published(self, name: str, version: str):
        """The manifest bytes of a version and its signature (None when unsigned), read in one go.

        Raises NotFoundError when the manifest is not in the mirror.
        """
        path = layout.manifest_path(name, version)
        sig, pub = layout.signature_paths(name, version)
        if self._prefetched.get(path) is not None:
            found = {p: data for p in (path, sig, pub) if (data := self._prefetched[p]) is not None}
        else:
            found = self.mirror.read_many(self.head, [path, sig, pub], missing_ok=True)
        if path not in found:
            found[path] = self.mirror.read_file(self.head, path)  # raises NotFoundError, naming the shelf
        return found[path], signature_of(found.get(sig), found.get(pub))

    def version_files(self, name: str, version: str) -> dict[str, bytes]:
        """Every file directly in a version's folder (manifest, signature, key), by its path on the shelf."""
        folder = layout.component_dir(name, version)
        entries = self.mirror.list_tree(self.head, folder)
        return self.mirror.read_many(self.head, [e.path for e in entries if e.kind == "blob"])

    def manifest(self, entry: IndexEntry) -> tuple[Manifest, bytes]:
        """The manifest of an index entry, checked against the digest the index recorded."""
        manifest, data, _signature = self.signed_manifest(entry)
        return manifest, data

    def signed_manifest(self, entry: IndexEntry):
        """``(manifest, bytes, signature or None)`` of an index entry, checked against the index's digest."""
        data, signature = self.published(entry.name, entry.version)
        return self.check_manifest(entry, data), data, signature

    def check_manifest(self, entry: IndexEntry, data: bytes) -> Manifest:
        """Manifest bytes read for an index entry: checked against its digest, validated once per machine."""
        path = layout.manifest_path(entry.name, entry.version)
        if manifest_digest(data) != entry.manifest_digest:
            raise IntegrityError(
                f"the manifest of {entry.name} {entry.version} on {self.url} does not match its index entry",
                hint="the shelf was changed after publishing; ask its owner to rebuild the index",
            )
        return _checked_manifest(data, entry.manifest_digest, f"{self.url}:{path}", self.cache_dir)

    def transport(self, ref: str | None = None, **options):
        """The shelf's blob transport (local git-lfs objects or an LFS server), as ``ref`` configures it."""
        from shelf.remote.transport import local_path, transport_for

        lfs_url = self.mirror.lfs_url(ref or self.head)
        if is_local_url(self.url) and (local_path(self.url) / "lfs" / "objects").is_dir():
            lfs_url = None  # the objects are right here; a served shelf's LFS URL would only add a detour
        return transport_for(self.url, lfs_url, **options)


def prefetch_pinned(source: ShelfSource, requirements: list[Requirement]) -> None:
    """Prefetch exact pins and the exact pins their index entries require, one git process per level
    (a component and its base: two processes, where reading each file in turn took four)."""
    pins, seen = _exact_pins(requirements), set()
    while pins:
        source.prefetch(pins)
        seen.update(pins)
        wanted = [
            parse_requirement(text)
            for name, version in pins
            for entry in source.index.entries(name)
            if entry.version == version
            for text in entry.requires
        ]
        pins = [pin for pin in _exact_pins(wanted) if pin not in seen]


def _exact_pins(requirements: list[Requirement]) -> list[tuple[str, str]]:
    """``(name, version)`` of the requirements that pin one version (``name@1.2.3``, ``name==1.2.3``)."""
    found = []
    for r in requirements:
        if r.exact is not None:
            found.append((r.name, str(r.exact)))
        elif r.pins_exactly():
            found.append((r.name, r.specifier.specifiers[0].text))
    return found


def signature_of(bundle: bytes | None, public_key: bytes | None):
    """The ``Signature`` stored beside a manifest; None when neither file is there (half of one is bad)."""
    if bundle is None and public_key is None:
        return None
    from shelf.signing import Signature

    return Signature(bundle or b"", public_key or b"")


def open_source(url: str, *, cache_dir: Path | None = None, offline: bool = False) -> ShelfSource:
    """The source for any shelf address: a git shelf's mirror, or a sparse+http(s):// export read by GETs."""
    from shelf.remote.url import ShelfURL

    if ShelfURL.parse(url).is_sparse:
        from shelf.sparse import SparseSource

        return SparseSource(url, cache_dir=cache_dir, offline=offline)
    return ShelfSource(url, cache_dir=cache_dir, offline=offline)


def _checked_manifest(data: bytes, digest: str, source: str, cache_dir: Path) -> Manifest:
    """Validate manifest bytes once per machine: their digest is remembered, and validation is skipped
    for exactly those bytes afterwards (a warm install then never loads the JSON Schema machinery)."""
    marker = cache_dir / "validated-manifests" / digest.removeprefix("sha256:")
    if marker.is_file():
        return Manifest.from_validated_bytes(data)
    manifest = load_manifest(data, source=source)
    try:
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.touch()
    except OSError:
        pass  # a read-only cache only costs the validation next time
    return manifest


def embedded_shelf_path() -> Path:
    return constants.home_dir() / "shelf.git"


def ensure_embedded_shelf() -> str:
    """The local shelf on disk used when no shelf is configured, created on first use."""
    path = embedded_shelf_path()
    if not (path / "HEAD").exists():
        create_shelf(path)
    return str(path)


def create_shelf(path: Path, lfs_url: str | None = None) -> str:
    """Create an empty shelf repository at a local path."""
    from registry_index.index import index_config
    from shelf.remote.commits import init_shelf

    files = {".gitattributes": layout.GITATTRIBUTES.encode(), layout.INDEX_CONFIG_PATH: index_config()}
    return init_shelf(path, lfs_url=lfs_url, initial_files=files)


def pick_shelf_url(explicit: str | None, project_shelves: list[str] | None = None) -> str:
    """The shelf a command uses: an explicit one, else the project's first, else the embedded default."""
    if explicit:
        return explicit
    if project_shelves:
        return project_shelves[0]
    env = constants.default_shelf_url()
    return env or ensure_embedded_shelf()


__all__ = [
    "MirrorIndex",
    "ShelfSource",
    "create_shelf",
    "ensure_embedded_shelf",
    "is_local_url",
    "open_source",
    "pick_shelf_url",
    "signature_of",
]
