"""Publishing a saved folder to a shelf, and yanking a published version.

A publish is all or nothing. The folder is snapshotted into the blob store first (hashed while copied), so
what is uploaded is exactly what was hashed even if the folder changes meanwhile; a file that changed
during the snapshot is refused. Then the manifest is built and validated (and signed, given a key), the
blobs are uploaded (objects the server has are skipped), and ONE commit with the pointer files, the
manifest (its signature) and the updated index entry is pushed together with the release tag
``<name>/v<version>``. If someone else pushed first, the push is rejected, nothing changed on the shelf,
and the publish retries on top of the new head.

What does not depend on each other overlaps (``shelf.background.together``): the shelf is opened while the
folder is prepared (``shelf.publish_package``), and the commit is built while the blobs upload.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from registry_index import layout
from registry_index.index import IndexEntry, format_index_file
from registry_index.pointer import LfsPointer, format_pointer
from registry_index.requirements import parse_requirement
from shelf import constants
from shelf.background import together
from shelf.basefind import with_base_requirement
from shelf.errors import OfflineError, PublishError, PushRejected, translated
from shelf.publish_folder import SnapshotFile
from shelf.publish_package import PackageInfo, Prepared, prepare, signed
from shelf.remote.commits import PendingPush, build_commit, push
from shelf.remote.url import is_local_url
from shelf.source import ShelfSource
from shelf.store import BlobStore

if TYPE_CHECKING:
    from shelf.api import Shelf
    from shelf.progress import Progress

MAX_PUSH_ATTEMPTS = 5


@dataclass
class PublishReport:
    name: str
    version: str
    manifest_digest: str
    commit: str | None
    uploaded: int = 0
    skipped: int = 0
    unchanged: bool = False
    notes: list[str] = field(default_factory=list)
    requires_added: str | None = None  # the base requirement publish found and added
    signer: str | None = None  # the signing key's fingerprint, for a signed publish


class _OverlayIndex:
    """A shelf's index with one more entry, as if it were published already (to test-resolve it)."""

    def __init__(self, index, extra: IndexEntry) -> None:
        self._index = index
        self._extra = extra

    def entries(self, name: str) -> list[IndexEntry]:
        found = [
            e
            for e in self._index.entries(name)
            if e.version != self._extra.version or name != self._extra.name
        ]
        return [*found, self._extra] if name == self._extra.name else found


def check_resolves(entry: IndexEntry, source: ShelfSource) -> None:
    """Refuse a package whose requirements do not resolve on the shelf together with its base."""
    from shelf.errors import ResolutionError
    from shelf.resolver import resolve

    try:
        resolve([parse_requirement(f"{entry.name}=={entry.version}")], _OverlayIndex(source.index, entry))
    except ResolutionError as e:
        raise PublishError(
            f"{entry.name} {entry.version} cannot be installed from {source.url}: {e.message}",
            hint=e.hint or "publish what it requires first, or fix its requires",
        ) from e


@translated()
def publish(
    folder: Path,
    info: PackageInfo,
    source: ShelfSource | Callable[[], ShelfSource],
    store: BlobStore,
    progress: Callable[[str], None] = lambda _m: None,
    sign_key: Path | None = None,
    bars: Progress | None = None,
    probes: bool = False,
    find_base: bool = True,
) -> PublishReport:
    """Publish a saved folder as ``info.name`` ``info.version``; see the module docstring.

    ``source`` is the shelf, or a function that opens it (e.g. ``Shelf.source``): the shelf is opened and
    refreshed while the folder is fingerprinted and hashed, which needs nothing from it.
    ``progress`` takes one-line notes; ``bars`` (e.g. ``shelf.progress.make_progress()``) shows each upload.
    """
    if isinstance(source, ShelfSource):
        check_online(source, "publishing to")
    source, prepared = _prepared_while_opening(source, folder, info, store, progress, sign_key, probes)
    report_base = None
    if find_base:  # a component requires the published embedder it was trained on (shelf.basefind)
        prepared, report_base = with_base_requirement(prepared, source)
    prepared = signed(prepared, sign_key, progress)  # last: the signature covers the final manifest
    report = PublishReport(info.name, info.version, prepared.entry.manifest_digest, commit=None)
    report.requires_added = report_base
    report.signer = prepared.signature.signer if prepared.signature else None
    for attempt in range(MAX_PUSH_ATTEMPTS):
        if _publish_once(prepared, source, store, report, progress, bars, retry=attempt > 0):
            return report
    raise PublishError(
        f"gave up publishing {info.name} {info.version} after {MAX_PUSH_ATTEMPTS} rejected pushes",
        hint="the shelf is busy; try again",
    )


def _prepared_while_opening(
    source: ShelfSource | Callable[[], ShelfSource],
    folder: Path,
    info: PackageInfo,
    store: BlobStore,
    progress: Callable[[str], None],
    sign_key: Path | None,
    probes: bool,
) -> tuple[ShelfSource, Prepared]:
    """``prepare`` on this thread while a side thread opens and refreshes the shelf.

    The two share nothing: fingerprinting and hashing the folder is imports and reads, opening the shelf
    is waiting for git and the network. When both fail, the folder's problem is the one reported (it is
    the publisher's to fix first).
    """
    prepared, opened = together(
        lambda: prepare(folder, info, store, progress, sign_key, probes), lambda: _opened(source), "open"
    )
    return opened, prepared


def _opened(source: ShelfSource | Callable[[], ShelfSource]) -> ShelfSource:
    """The shelf, refreshed; for a served one, the upload's HTTP client imported too."""
    opened = source if isinstance(source, ShelfSource) else source()
    check_online(opened, "publishing to")
    opened.refresh()
    if not is_local_url(opened.url):  # the upload's HTTP client, imported while this thread would wait
        import shelf.remote.lfs_http  # noqa: F401
    return opened


def _publish_once(
    prepared: Prepared,
    source: ShelfSource,
    store: BlobStore,
    report: PublishReport,
    progress: Callable[[str], None],
    bars: Progress | None = None,
    retry: bool = False,
) -> bool:
    """One attempt on top of the shelf's current head; False when the push lost a race and may be retried."""
    source.refresh()
    if _already_published(source, prepared.entry, report, ask_tags=retry):
        # The same content again: upload whatever blobs the shelf lost or damaged since (its server, or a
        # local shelf, counts a damaged object as absent); this needs the same write access as publishing.
        _upload(prepared.files, source, store, report, progress, bars)
        if report.uploaded:
            report.notes.append(f"restored {report.uploaded} object(s) the shelf had lost or damaged")
        return True
    check_resolves(prepared.entry, source)
    try:
        report.commit = push(
            source.mirror, _uploaded_and_built(prepared, source, store, report, progress, bars)
        )
    except PushRejected as e:
        _retry_or_raise(e, f"publishing {report.name} {report.version}")
        progress("the shelf moved on while publishing; retrying on top of it")
        source.mark_stale()
        return False
    source.reread()
    return True


def _uploaded_and_built(
    prepared: Prepared,
    source: ShelfSource,
    store: BlobStore,
    report: PublishReport,
    progress: Callable[[str], None],
    bars: Progress | None,
) -> PendingPush:
    """The commit, built while the blobs upload (it is pushed only once they are all up, so the shelf
    never names an object its server lacks); blobs go up once, whatever the number of attempts."""
    if report.uploaded or report.skipped:
        return _build(source, prepared)
    built, _ = together(
        lambda: _build(source, prepared),
        lambda: _upload(prepared.files, source, store, report, progress, bars),
        "upload",
    )
    return built


def check_online(source: ShelfSource | Shelf, doing: str) -> None:
    """Refuse before hashing or uploading anything: the push at the end would need the network anyway."""
    if source.offline:
        raise OfflineError(
            f"{doing} {source.url} needs the network and offline mode is on",
            hint=f"unset {constants.ENV_OFFLINE} (or drop --offline)",
        )


# How git names a refusal because the shelf moved on since it was read (or another push held its refs at
# that moment); anything else, such as a hook declining, will not pass on retry.
_MOVED_ON = (
    "stale info",
    "fetch first",
    "non-fast-forward",
    "already exists",
    "atomic push failed",
    "atomic transaction failed",
    "failed to update ref",
    "cannot lock ref",
)


def _retry_or_raise(rejected: PushRejected, doing: str) -> None:
    """Return when the push lost a race (worth retrying on the new head); raise when the shelf refused it."""
    reasons = rejected.reasons or {}
    if reasons and all(any(m in why for m in _MOVED_ON) for why in reasons.values()):
        return
    raise PublishError(
        f"{doing}: the shelf refused the push, nothing was changed ({rejected.message})",
        hint="the shelf's hooks or permissions refuse this update; ask its owner",
    ) from rejected


def _already_published(source: ShelfSource, entry: IndexEntry, report: PublishReport, ask_tags: bool) -> bool:
    """Whether the index has this version (the same content: True; other content: refused).

    With ``ask_tags`` the remote's tags are listed too (an ``ls-remote``), to name a release tag the index
    does not know; a first attempt leaves that to its atomic push, which such a tag refuses, changing
    nothing, and the retry then asks.
    """
    for existing in source.index.entries(entry.name):
        if existing.version != entry.version:
            continue
        if existing.manifest_digest == entry.manifest_digest:
            report.unchanged = True
            report.notes.append(f"{entry.name} {entry.version} is already published with identical content")
            return True
        raise PublishError(
            f"{entry.name} {entry.version} is already published with different content "
            "(published versions never change)",
            hint=f"publish a new version, or yank this one: cclm-shelf yank {entry.name}@{entry.version}",
        )
    if ask_tags and layout.release_tag(entry.name, entry.version) in source.mirror.tags():
        raise PublishError(
            f"the tag {layout.release_tag(entry.name, entry.version)} already exists on {source.url}",
            hint="this version was published before the index knew it; publish a new version",
        )
    return False


def _upload(
    files: Sequence[SnapshotFile],
    source: ShelfSource,
    store: BlobStore,
    report: PublishReport,
    progress: Callable[[str], None],
    bars: Progress | None = None,
) -> None:
    from shelf.progress import Labelled, NullProgress
    from shelf.remote.lfs_protocol import LfsObject

    unique = {f.sha256: f.size for f in files}
    progress(f"uploading {len(unique)} object(s) to {source.url}")
    labels = {f.sha256: f"{f.item}/{f.path}" for f in files}
    for oid, size in unique.items():
        # The snapshot hashed every blob as it entered the store; a blob still stamped verified (a stat)
        # need not be hashed again before it goes up, and one written to since is re-hashed or evicted.
        if not store.revalidate(oid, size):
            raise PublishError(
                f"the snapshot of {labels[oid]} in the store {store.root} changed while publishing",
                hint="publish again",
            )
    outcome = source.transport(progress=Labelled(bars or NullProgress(), labels)).upload(
        [(LfsObject(oid, size), store.path(oid)) for oid, size in unique.items()], verified=True
    )
    report.uploaded = len(getattr(outcome, "uploaded", unique))
    report.skipped = len(getattr(outcome, "skipped", ()))


def _build(source: ShelfSource, prepared: Prepared) -> PendingPush:
    """One commit with the manifest, the pointer files and the index file, to push with the release tag."""
    name, version, entry = prepared.manifest.name, prepared.manifest.version, prepared.entry
    changes: dict[str, bytes | None] = {layout.manifest_path(name, version): prepared.data}
    for f in prepared.files:
        changes[layout.file_path(name, version, f.item, f.path)] = format_pointer(
            LfsPointer(f.sha256, f.size)
        )
    if prepared.signature is not None:
        sig_path, key_path = layout.signature_paths(name, version)
        changes[sig_path] = prepared.signature.bundle
        changes[key_path] = prepared.signature.public_key
    others = [e for e in source.index.entries(name) if e.version != version]
    changes[layout.index_path(name)] = format_index_file([*others, entry])
    return build_commit(
        source.mirror,
        changes,
        f"Publish {name} {version}",
        parent=source.head,
        branch=source.branch,
        tags=[layout.release_tag(name, version)],
    )
