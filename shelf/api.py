"""The ``Shelf`` class: the Python face of the package manager, and the seed library's ``Shelf().fetch``."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from registry_index import layout
from registry_index.requirements import Requirement, parse_requirement
from shelf import constants
from shelf.errors import (
    IntegrityError,
    NotFoundError,
    OfflineError,
    ResolutionError,
    ShelfError,
    TransportError,
    translated,
)
from shelf.install import InstallReport, install_components
from shelf.lockfile import LockedComponent, Lockfile, public_source
from shelf.progress import Labelled, NullProgress, Progress
from shelf.remote.mirror import mirror_path
from shelf.remote.transport import LazyTransports, warm_up_in_background
from shelf.remote.url import normalise_url
from shelf.source import PriorityIndex, ShelfSource, open_source, pick_shelf_url, prefetch_pinned
from shelf.stack import installed_versions, stack_conflict
from shelf.store import BlobStore
from shelf.trust import TrustPolicy, check_component, policy_for
from shelf.yanking import yank_warnings

if TYPE_CHECKING:
    # Pinned components, their manifests, and the index entries they came from (for yank warnings).
    _Pinned = tuple[list[LockedComponent], dict[str, bytes], list[tuple["IndexEntry", ShelfSource]]]
    from registry_index.index import IndexEntry
    from shelf.resolution.provider import EntrySource
    from shelf.resolver import Resolution


class Shelf:
    """A handle on one shelf (or the embedded default), a blob store and the install machinery.

    ``Shelf()`` with no arguments uses ``$CCLM_SHELF_URL`` or the local shelf on disk, created on first use.
    ``Shelf(shelves=[a, b])`` reads several shelves in priority order (see ``shelf.source.PriorityIndex``).
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        shelves: Sequence[str] | None = None,
        cache_dir: str | Path | None = None,
        offline: bool | None = None,
        jobs: int | None = None,
        progress: Progress | None = None,
        trust: TrustPolicy | None = None,
    ) -> None:
        if url and shelves:
            raise ValueError("give either url or shelves, not both")
        self._url = url or (shelves[0] if shelves else None)
        self._extra = list(shelves[1:]) if shelves else []
        self.cache_dir = Path(cache_dir) if cache_dir else constants.cache_dir()
        self.offline = constants.offline() if offline is None else offline
        self.jobs = jobs or constants.jobs()
        constants.index_max_age()  # a bad CCLM_SHELF_INDEX_MAX_AGE is an error before anything runs
        self.store = BlobStore(self.cache_dir)
        self._sources: dict[str, ShelfSource] = {}
        self.progress: Progress = progress or NullProgress()
        self._labels: dict[str, str] = {}  # object id -> "name/item/path", for progress bars
        # Trusted signers; by default the keys CCLM_SHELF_TRUSTED_KEYS names (see shelf.trust).
        self.trust = trust if trust is not None else policy_for()

    @property
    def url(self) -> str:
        if self._url is None:
            self._url = pick_shelf_url(None)
        return self._url

    def source(self, url: str | None = None, *, refresh: bool = True) -> ShelfSource:
        """The shelf at ``url`` (default: this shelf's), mirrored, and refreshed once per ``Shelf``."""
        key = url or self.url
        if key not in self._sources:
            self._sources[key] = open_source(key, cache_dir=self.cache_dir, offline=self.offline)
        if refresh:
            self._sources[key].refresh()
        return self._sources[key]

    @property
    def urls(self) -> list[str]:
        return [self.url, *self._extra]

    @property
    def index(self) -> PriorityIndex:
        """The index of every shelf of this handle, in priority order."""
        if not hasattr(self, "_index"):
            self._index = PriorityIndex([self.source(url) for url in self.urls])
        return self._index

    def transports(self, components: Iterable[LockedComponent]) -> dict[str, object]:
        """One blob transport per shelf the components come from, keyed as the lockfile names shelves."""
        found: dict[str, object] = {}
        for component in components:
            if component.source not in found:
                # The mirrored .lfsconfig names the LFS server; install_pinned refreshes and retries if stale.
                source = self.source_for(component.source, refresh=False)
                progress = Labelled(self.progress, self._labels)
                found[component.source] = source.transport(jobs=self.jobs, progress=progress)
        return found

    def source_for(self, public_url: str, refresh: bool = True) -> ShelfSource:
        """The shelf a lockfile entry names as its ``source`` (matched against this handle's URLs)."""
        for key in (self._url, *self._sources):
            if key and public_source(normalise_url(key)) == public_url:
                return self.source(key, refresh=refresh)
        return self.source(public_url, refresh=refresh)

    # -- resolving and locking -------------------------------------------------------------------------
    @translated()
    def resolve(
        self,
        requirements: Sequence[str | Requirement],
        *,
        locked: dict[str, str] | None = None,
        upgrade: bool | set[str] = False,
        allow_prereleases: bool = False,
        index: EntrySource | None = None,
    ) -> Resolution:
        """Resolve requirements against this shelf's index, or ``index`` (``locked`` pins are preferred)."""
        from shelf.resolver import resolve

        reqs = [r if isinstance(r, Requirement) else parse_requirement(r) for r in requirements]
        self.index.preload([r.name for r in reqs])  # their index files: one git process per shelf
        return resolve(
            reqs,
            index or self.index,
            locked=locked or {},
            upgrade=upgrade,
            allow_prereleases=allow_prereleases,
        )

    @translated()
    def pin(
        self, resolution: Resolution | _Single, index: PriorityIndex | None = None
    ) -> tuple[list[LockedComponent], dict[str, bytes]]:
        """Lockfile entries and manifests for a resolution (manifests are checked against the index)."""
        index = index or self.index
        components, manifests = [], {}
        index.prefetch_manifests(resolution.components.values())  # one git process per shelf
        for entry in resolution.components.values():
            source = index.source_of(entry.name)
            manifest, data, signature = source.signed_manifest(entry)
            component = LockedComponent.from_manifest(entry, manifest, source.url)
            signer = check_component(component, data, signature, self.trust)
            components.append(dataclasses.replace(component, signer=signer))
            manifests[entry.name] = data
        return components, manifests

    # -- installing ------------------------------------------------------------------------------------
    @translated()
    def install(
        self,
        *requirements: str | Requirement,
        target: str | Path = constants.DEFAULT_TARGET,
        allow_prereleases: bool = False,
        link_mode: str | None = None,
        force: bool = False,
    ) -> InstallReport:
        """Resolve ``requirements`` together with what ``target`` holds, and install the set there.

        A target is one stack: the components already installed are kept at their versions when the new
        ones agree with them, else moved to versions that do (the whole stack, consistently), else the
        install is refused in model terms. ``force`` moves folders cclm-shelf did not install into the
        target's trash; ``link_mode`` is one of ``shelf.linking.LINK_MODES``.
        """
        if not requirements:
            raise NotFoundError("nothing to install", hint="name a component, e.g. en_wiki_clm_1@v0.2.1")
        reqs = [r if isinstance(r, Requirement) else parse_requirement(r) for r in requirements]
        if not self.offline and not all(mirror_path(url, self.cache_dir).exists() for url in self.urls):
            warm_up_in_background()
        components, manifests, found = self._pin_with_stack(reqs, Path(target), allow_prereleases)
        report = self.install_pinned(
            components, target=target, manifests=manifests, link_mode=link_mode, force=force
        )
        report.warnings += yank_warnings(found)
        return report

    def _pin_with_stack(self, reqs: list[Requirement], target: Path, allow_prereleases: bool) -> _Pinned:
        """Pin ``reqs`` plus the installed stack: at its versions first, else free to move together."""
        installed = installed_versions(target, {r.name for r in reqs})
        pinned = [*reqs, *(parse_requirement(f"{n}=={v}") for n, v in sorted(installed.items()))]
        try:
            return self._pin_requirements(pinned, allow_prereleases)
        except ResolutionError:
            if not installed:
                raise
        known = [n for n in sorted(installed) if self.index.entries(n)]
        together = [*reqs, *(parse_requirement(n) for n in known)]
        index = self.index.stored_only(self.store) if self.offline else None
        try:
            resolution = self.resolve(
                together, locked=installed, allow_prereleases=allow_prereleases, index=index
            )
        except ResolutionError as conflict:
            # Told in model terms from what the request alone needs (its own error, if it has one).
            alone = self._pin_requirements(reqs, allow_prereleases)
            raise stack_conflict(target, alone, conflict) from None
        return self._pinned(resolution, self.index)

    def _pin_requirements(self, reqs: list[Requirement], allow_prereleases: bool) -> _Pinned:
        """Resolve (from the mirror when exact pins allow; offline, from stored versions) and pin."""
        mirrored = self._resolve_from_mirror(reqs, allow_prereleases)
        if mirrored is None:
            stored = self.index.stored_only(self.store) if self.offline else None
            mirrored = self.resolve(reqs, allow_prereleases=allow_prereleases, index=stored), self.index
        return self._pinned(*mirrored)

    def _pinned(self, resolution: Resolution, index: PriorityIndex) -> _Pinned:
        components, manifests = self.pin(resolution, index)
        return components, manifests, [(e, index.source_of(e.name)) for e in resolution.components.values()]

    def _resolve_from_mirror(
        self, reqs: Sequence[Requirement], allow_prereleases: bool
    ) -> tuple[Resolution, PriorityIndex] | None:
        """Resolve exact pins from the metadata already mirrored, without fetching; None if that won't do.

        A published version never changes, so when every requirement (and every dependency of the chosen
        set) names one exact version that the mirror already has, a fetch could not change the answer.
        """
        from shelf.errors import ShelfError
        from shelf.resolver import resolve

        if len(self.urls) > 1 or not all(r.pins_exactly() for r in reqs):
            # With several shelves, which one owns a name can change: only a fresh look can tell.
            return None
        sources = [self.source(url, refresh=False) for url in self.urls]
        for source in sources:
            # A yank since the last fetch must be seen; a shelf that does not answer leaves the mirror,
            # whose yank status the warnings then date ("as of").
            with contextlib.suppress(TransportError):
                source.ensure_fresh()
        prefetch_pinned(sources[0], list(reqs))  # resolve and pin then read nothing more from the mirror
        index = PriorityIndex(sources)
        try:
            with translated():
                resolution = resolve(reqs, index, allow_prereleases=allow_prereleases)
        except ShelfError:
            return None  # something is not mirrored yet (or not published): fetch and resolve again
        deps = [r for entry in resolution.components.values() for r in entry.requires]
        if not all(parse_requirement(r).pins_exactly() for r in deps):
            return None
        return resolution, index

    @translated()
    def install_locked(
        self,
        lock: Lockfile,
        target: str | Path = constants.DEFAULT_TARGET,
        *,
        link_mode: str | None = None,
        force: bool = False,
    ) -> InstallReport:
        """Install exactly what a lockfile pins, never re-resolving; a yanked pin installs with a warning, a
        target whose other components disagree with the locked base is refused."""
        manifests = {}
        for url in {c.source for c in lock.components}:  # each shelf's pins read by one git process
            pins = [(c.name, c.version) for c in lock.components if c.source == url]
            with contextlib.suppress(NotFoundError, OfflineError, TransportError):  # (never mirrored here)
                self.source_for(url, refresh=False).prefetch(pins)
        for component in lock.components:
            data, signature = self._locked_manifest(component)
            # Checked before anything is fetched or written; the signature must cover the locked files.
            check_component(component, data, signature, self.trust, locked_signer=component.signer)
            if data is not None:
                manifests[component.name] = data
        warnings = self.locked_yank_warnings(lock.components)
        report = self.install_pinned(
            list(lock.components), target=target, manifests=manifests, link_mode=link_mode, force=force
        )
        report.warnings += warnings
        return report

    def locked_yank_warnings(self, components: Sequence[LockedComponent]) -> list[str]:
        """A warning per locked version that its shelf has yanked (read no older than the index max age)."""
        by_source: dict[str, list[LockedComponent]] = {}
        for component in components:
            by_source.setdefault(component.source, []).append(component)
        found = []
        for url, pinned in by_source.items():
            try:
                source = self.source_for(url, refresh=False)
            except (OfflineError, TransportError, NotFoundError):
                continue  # never mirrored here (a bundle's lockfile): there is no yank status to read
            # An unreachable shelf leaves the mirrored status, which the warning then dates ("as of").
            with contextlib.suppress(TransportError):
                source.ensure_fresh()
            source.index.preload([c.name for c in pinned])
            for c in pinned:
                found += [(e, source) for e in source.index.entries(c.name) if e.version == c.version]
        return yank_warnings(found)

    def _locked_manifest(self, component: LockedComponent):
        """``(manifest bytes or None, signature or None)`` of a locked version, from the mirror."""
        from registry_index.manifest import manifest_digest

        for refresh in (False, True):  # a published manifest never changes: fetch only if it is not mirrored
            try:
                source = self.source_for(component.source, refresh=refresh)
                data, signature = source.published(component.name, component.version)
            except (NotFoundError, OfflineError):
                continue
            if manifest_digest(data) != component.manifest_digest:
                return None, None
            return data, signature
        return self._stored_manifest(component.manifest_digest), None

    def _stored_manifest(self, digest: str) -> bytes | None:
        """A manifest imported into the store from a bundle (stored by its digest, so it is verified)."""
        oid = digest.removeprefix("sha256:")
        try:
            return self.store.path(oid).read_bytes() if self.store.has(oid) else None
        except (OSError, ShelfError):
            return None

    @translated()
    def fill_store(self, components: Sequence[LockedComponent]) -> InstallReport:
        """Fetch into the store every blob ``components`` pin that it lacks (verified), installing nothing."""
        from shelf.install import _fetch

        self._check_offline(components)
        report = InstallReport()
        _fetch(components, self.store, LazyTransports(self, components), report)
        return report

    @translated()
    def published_metadata(self, component: LockedComponent) -> dict[str, bytes]:
        """The manifest and signatures of a pinned version, by their path on its shelf.

        Every file directly in ``components/<name>/<version>/`` is metadata (item files are pointers in
        subfolders); the manifest must match the lockfile's digest.
        """
        from registry_index.manifest import manifest_digest

        manifest = layout.manifest_path(component.name, component.version)
        # Refreshed once per handle (not offline): a signature may have been added since the mirror's fetch.
        source = self.source_for(component.source)
        found = source.version_files(component.name, component.version)
        if manifest_digest(found.get(manifest, b"")) != component.manifest_digest:
            raise IntegrityError(
                f"the manifest of {component.name} {component.version} on {source.url} does not match the "
                "lockfile's digest",
                hint="run `cclm-shelf lock` again, or ask the shelf's owner what changed",
            )
        return found

    @translated()
    def install_pinned(
        self,
        components: Sequence[LockedComponent],
        *,
        target: str | Path,
        manifests: dict[str, bytes] | None = None,
        link_mode: str | None = None,
        force: bool = False,
    ) -> InstallReport:
        options = {"link_mode": link_mode, "force": force}
        self._check_offline(components)
        self._labels.update({f.sha256: f"{c.name}/{f.item}/{f.path}" for c in components for f in c.files})
        try:
            return self._install_once(components, Path(target), manifests, options)
        except TransportError:
            # Blob transports were opened from mirrored metadata; the shelf may have moved its LFS server
            # since (``cclm-shelf serve`` rewrites .lfsconfig). Refresh those mirrors and try once more.
            stale = [s for s in self._sources.values() if not s.refreshed]
            if self.offline or not stale:
                raise
            for source in stale:
                source.refresh()
            return self._install_once(components, Path(target), manifests, options)

    def _install_once(
        self,
        components: Sequence[LockedComponent],
        target: Path,
        manifests: dict[str, bytes] | None,
        options: dict,
    ) -> InstallReport:
        transports = LazyTransports(self, components)
        return install_components(
            components, target=target, store=self.store, transports=transports, manifests=manifests, **options
        )

    def _check_offline(self, components: Sequence[LockedComponent]) -> None:
        if not self.offline:
            return
        missing = [
            f"{c.name} {c.version}: {f.item}/{f.path}"
            for c in components
            for f in c.files
            if not self.store.has(f.sha256, f.size)
        ]
        if missing:
            listed = "\n    ".join(missing[:10]) + ("\n    ..." if len(missing) > 10 else "")
            raise OfflineError(
                f"offline, and the store lacks {len(missing)} file(s):\n    {listed}",
                hint="run the same command once with the network to fill the store",
            )

    # -- the seed's call ------------------------------------------------------------------------------
    @translated()
    def fetch(
        self,
        identifier: str,
        item_type: str,
        tag: str | None = None,
        cache_dir: str | Path = ".cclm",
    ) -> str:
        """Install one item of a component and return its folder ``cache_dir/identifier/item_type``.

        ``cache_dir`` keeps the seed's name for compatibility but is the *install folder* (what
        ``install`` calls ``target``), not the blob store: everywhere else in cclm-shelf "cache" names the
        store (``Shelf(cache_dir=...)``, ``--cache-dir``, ``CCLM_SHELF_CACHE_DIR``).

        ``tag`` is the component's version (``v0.2.1`` or ``0.2.1``) on a shelf of our layout, or any ref
        (a shelf-wide tag, a branch, a commit) on a shelf of the original cclm layout. A different tag is a
        different install; a branch that moved installs its new content.
        """
        from shelf.legacy import fetch_legacy, find_version  # (tarfile and the original layout's ways)

        source = self.index.source_of(identifier)
        entry = find_version(self, source, identifier, tag)
        if entry is not None:
            components, manifests = self.pin(_Single(entry))
            if not any(f.item == item_type for f in components[0].files):
                raise NotFoundError(
                    f"{identifier} {entry.version} has no {item_type!r} item",
                    hint=f"cclm-shelf show {identifier}@{entry.version}",
                )
            self.install_pinned(components, target=Path(cache_dir), manifests=manifests)
            return str(Path(cache_dir) / identifier / item_type)
        return str(fetch_legacy(self, source, identifier, item_type, tag, Path(cache_dir)))


class _Single:
    """A one-entry resolution, for installing an exact index entry."""

    def __init__(self, entry: IndexEntry) -> None:
        self.components = {entry.name: entry}
