"""Reading a static shelf, ``sparse+http(s)://HOST/PATH``: the export ``cclm-shelf export DEST`` writes.

No git and, when the export carries its blobs, no LFS server: every file is one plain GET. Index files,
``config.json`` and ``index/names.txt`` are revalidated with ``If-None-Match`` on each command and kept
under ``<cache>/sparse/<hash>/`` (``registry_index.http_index.HttpIndex``), so ``--offline`` works from what
the last online command read. Manifests and signatures never change once published: a cached one is used
without asking the server, and is checked against its index entry's digest like any other.

``SparseSource`` answers what ``ShelfSource`` answers for install, lock, show, search and tree; publishing
and yanking need the git shelf (``mirror`` says so in one line).
"""

from __future__ import annotations

import json
from functools import cached_property
from pathlib import Path

from registry_index import layout
from registry_index.errors import IndexFetchError
from registry_index.http_index import HttpIndex
from registry_index.index import IndexEntry
from shelf import constants
from shelf.errors import ConfigError, NotFoundError, TransportError
from shelf.remote.url import ShelfURL, normalise_url
from shelf.source import ShelfSource, signature_of

SPARSE_CACHE = "sparse"  # <cache>/sparse/<sha256(base)[:16]>/...
FETCHED_MARK = "fetched"  # touched after each online read: how old the cached index is


class SparseIndex:
    """The index of a static shelf (implements ``IndexSource``): one GET per component asked for."""

    def __init__(self, http: HttpIndex, url: str, check_shelf=None) -> None:
        self._http = http
        self._url = url
        self._check_shelf = check_shelf  # called when a name is missing: is this a static shelf at all?
        self._cache: dict[str, list[IndexEntry]] = {}

    def entries(self, name: str) -> list[IndexEntry]:
        if name not in self._cache:
            self._cache[name] = self._read(name)
        return self._cache[name]

    def _read(self, name: str) -> list[IndexEntry]:
        try:
            found = self._http.entries(name)
        except IndexFetchError as e:
            if self._http.offline:
                return []  # never read online: offline, the shelf has nothing of it
            raise TransportError(e.message, hint=e.hint) from None
        if not found and self._check_shelf is not None and not self._http.offline:
            self._check_shelf()  # a wrong URL is named as such, not as a component that is missing
        return found

    def preload(self, names: list[str]) -> None:
        for name in names:
            self.entries(name)

    def names(self) -> list[str]:
        data = _fetch(self._http, layout.NAMES_PATH, self._url)
        if data is None:
            raise NotFoundError(
                f"{self._url} lists no component names ({layout.NAMES_PATH} is missing)",
                hint="export the shelf again with `cclm-shelf export DEST`",
            )
        return sorted({line.strip() for line in data.decode("utf-8", "replace").splitlines() if line.strip()})

    @property
    def files_read(self) -> int:
        return self._http.files_read


class SparseSource(ShelfSource):
    """A static shelf read over HTTP; metadata as ``ShelfSource`` gives it, blobs as ``config.json`` says."""

    def __init__(self, url: str, *, cache_dir: Path | None = None, offline: bool = False) -> None:
        self.url = normalise_url(url)
        self.offline = offline
        self.cache_dir = cache_dir or constants.cache_dir()
        self.base = ShelfURL.parse(self.url).http_base
        self.http = HttpIndex(self.base, self.cache_dir / SPARSE_CACHE, offline=offline)
        self._refreshed = not offline  # every index file read online is revalidated with the server

    @property
    def mirror(self):  # type: ignore[override]  # a static shelf has no mirror: asking for one is an error
        raise self._read_only()

    def _read_only(self) -> ConfigError:
        return ConfigError(
            f"{self.url} is a static (sparse) shelf, read-only",
            hint="publish and yank on the git shelf it was exported from, then export it again",
        )

    def refresh(self) -> None:
        """Nothing to fetch ahead: each index file is revalidated when it is read."""

    def reread(self) -> None:
        self.__dict__.pop("index", None)

    def _fetched_mark(self) -> Path:
        return self.http.cache_root / FETCHED_MARK

    @property
    def head(self) -> str:
        return "sparse"

    @property
    def branch(self) -> str:
        raise self._read_only()

    @cached_property
    def index(self) -> SparseIndex:  # type: ignore[override]
        if not self.offline:
            self._mark_fetched()
        return SparseIndex(self.http, self.url, check_shelf=lambda: self.config)

    def prefetch(self, pins: list[tuple[str, str]], *, index: bool = True) -> None:
        """Manifests are read from the cache (or one GET each) when asked: only the index files are due."""
        if index:
            self.index.preload([name for name, _ in pins])

    def published(self, name: str, version: str):
        """The manifest bytes of a version and its signature (None when unsigned)."""
        path = layout.manifest_path(name, version)
        data = self._immutable(path)
        if data is None:
            raise NotFoundError(
                f"{name} {version} is not published on {self.url}", hint=f"cclm-shelf show {name}"
            )
        sig, pub = layout.signature_paths(name, version)
        return data, signature_of(self._immutable(sig), self._immutable(pub))

    def version_files(self, name: str, version: str) -> dict[str, bytes]:
        """The manifest and, where signed, the signature and key of a version (a static shelf lists no
        folders, so these are the files a version's folder holds)."""
        path = layout.manifest_path(name, version)
        paths = [path, *layout.signature_paths(name, version)]
        found = {p: data for p in paths if (data := self._immutable(p)) is not None}
        if path not in found:
            raise NotFoundError(
                f"{name} {version} is not published on {self.url}", hint=f"cclm-shelf show {name}"
            )
        return found

    def _immutable(self, relative: str) -> bytes | None:
        """A file that never changes once published: from the cache if there, else one GET (None: 404)."""
        cached = self.http.cache_root / relative
        if cached.is_file():
            return cached.read_bytes()
        if self.offline:
            return None
        return _fetch(self.http, relative, self.url)

    @cached_property
    def config(self) -> dict:
        """``config.json``: the export's format and where its blobs come from."""
        data = _fetch(self.http, layout.SPARSE_CONFIG_PATH, self.url, check=_parse_config)
        if data is None:
            raise NotFoundError(
                f"{self.url} is not a static shelf: it has no {layout.SPARSE_CONFIG_PATH}",
                hint="point --shelf at the folder `cclm-shelf export` wrote (the one holding config.json)",
            )
        return _parse_config(data)

    def transport(self, ref: str | None = None, **options):
        """Static blobs under the export (plain GETs), or the LFS server its ``config.json`` names."""
        blobs = self.config["blobs"]
        if blobs["kind"] == "static":
            from shelf.static_blobs import StaticBlobs

            return StaticBlobs(self.base, **options)
        from shelf.remote.transport import transport_for

        return transport_for(blobs["url"], blobs["url"], **options)


def _fetch(http: HttpIndex, relative: str, url: str, check=None) -> bytes | None:
    try:
        return http.fetch(relative, check)
    except IndexFetchError as e:
        raise TransportError(e.message, hint=e.hint) from None


def _parse_config(data: bytes) -> dict:
    """The export's ``config.json``, checked: ``format`` 1 and a ``blobs`` of a known kind."""
    try:
        config = json.loads(data)
        blobs = config["blobs"]
        ok = config.get("format") == 1 and (
            blobs["kind"] == "static"
            or (blobs["kind"] == "lfs" and str(blobs["url"]).startswith(("http://", "https://")))
        )
    except (ValueError, TypeError, KeyError):
        ok = False
    if not ok:
        raise ConfigError(
            f"the static shelf's {layout.SPARSE_CONFIG_PATH} is not one this version reads",
            hint="export the shelf again with this version of cclm-shelf",
        )
    return config
