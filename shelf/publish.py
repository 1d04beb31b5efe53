"""Publishing a saved folder to a shelf, and yanking a published version.

A publish is all or nothing. The folder is snapshotted into the blob store first (hashed while copied), so
what is uploaded is exactly what was hashed even if the folder changes meanwhile; a file that changed
during the snapshot is refused. Then the manifest is built and validated (and signed, given a key), the
blobs are uploaded (objects the server has are skipped), and ONE commit with the pointer files, the
manifest (its signature) and the updated index entry is pushed together with the release tag
``<name>/v<version>``. If someone else pushed first, the push is rejected, nothing changed on the shelf,
and the publish retries on top of the new head.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from registry_index import layout
from registry_index.index import IndexEntry, entry_from_manifest, format_index_file
from registry_index.manifest import Manifest, dump_manifest, manifest_digest
from registry_index.pointer import LfsPointer, format_pointer
from registry_index.requirements import parse_requirement
from shelf import constants
from shelf.basefind import with_base_requirement
from shelf.errors import OfflineError, PublishError, PushRejected, translated
from shelf.publish_folder import (
    SnapshotFile,
    check_unchanged,
    find_items,
    folder_state,
    snapshot,
)
from shelf.remote.commits import PendingPush, build_commit, push
from shelf.remote.url import is_local_url
from shelf.source import ShelfSource
from shelf.store import BlobStore

if TYPE_CHECKING:
    from shelf.api import Shelf
    from shelf.progress import Progress
    from shelf.signing import Signature

MAX_PUSH_ATTEMPTS = 5
FRAMEWORK = {"cclm-core": ">=0.1", "tensorflow": ">=2.16"}


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


@dataclass(frozen=True)
class PackageInfo:
    """What the publisher says about a package, beside what the folder itself tells."""

    name: str
    version: str
    summary: str = ""
    license: str = "unspecified"
    requires: tuple[str, ...] = ()
    training: dict | None = None


def describe_items(items: dict[str, Path]) -> dict[str, dict]:
    from cclm_core.fingerprint import describe

    return {kind: describe(folder) for kind, folder in items.items()}


def package_kind(described: dict[str, dict]) -> str:
    kinds = set(described)
    if kinds == {"preprocessor"}:
        return "preprocessor"
    if kinds <= {"preprocessor", "embedder"}:
        return "embedder"
    if kinds == {"component"}:
        return "component"
    return "bundle"


def base_and_provides(described: dict[str, dict]) -> tuple[dict | None, dict]:
    """The base a package stands on and what it offers, checked across its own items."""
    prep = described.get("preprocessor", {}).get("provides")
    emb = described.get("embedder", {}).get("provides")
    comp = described.get("component")
    provides: dict = {}
    base = None
    if emb:
        base = {
            "embedder": emb["embedder"],
            "vocab": prep["vocab"] if prep else None,
            "max_input_length": emb["max_input_length"],
            "n_chars": emb["n_chars"],
        }
        provides.update(emb)
    if prep:
        provides["vocab"] = prep["vocab"]
        _check_same("input length", prep["max_input_length"], base and base["max_input_length"])
        _check_same("n_chars", prep["n_chars"], base and base["n_chars"])
    if comp:
        comp_base = dict(comp["base"])
        if base:
            _check_same("embedder", comp_base["embedder"], base["embedder"])
            comp_base["vocab"] = comp_base.get("vocab") or base["vocab"]
        base = comp_base
        provides = {"output_dim": comp["provides"]["output_dim"]} | (
            {k: v for k, v in provides.items() if k != "output_dim"}
        )
    return base, provides


def _check_same(what: str, item_value, package_value) -> None:
    if package_value is not None and item_value != package_value:
        raise PublishError(
            f"the items of this folder disagree on the {what}: {item_value} vs {package_value}",
            hint="save the component together with the embedder and preprocessor it was trained on",
        )


def build_manifest(
    info: PackageInfo, described: dict[str, dict], files: Sequence[SnapshotFile], probes: dict | None = None
) -> Manifest:
    base, provides = base_and_provides(described)
    items: dict[str, dict] = {}
    for f in files:
        items.setdefault(f.item, {"files": []})["files"].append(
            {"path": f.path, "sha256": f.sha256, "size": f.size}
        )
    data = {
        "schema_version": 1,
        "name": info.name,
        "version": info.version,
        "kind": package_kind(described),
        "summary": info.summary,
        "license": info.license,
        "items": items,
        "base": base,
        "provides": provides,
        "requires": list(info.requires),
        "framework": dict(FRAMEWORK),
    }
    if info.training:
        data["training"] = info.training
    if probes:
        data["probes"] = probes
    if base is None:
        data.pop("base")
    return Manifest.from_dict(data)


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


@dataclass(frozen=True)
class Prepared:
    """A package ready to go up: its manifest (bytes and parsed), its index entry and its snapshot."""

    manifest: Manifest
    data: bytes
    entry: IndexEntry
    files: tuple[SnapshotFile, ...]
    signature: Signature | None = None


def prepare(
    folder: Path,
    info: PackageInfo,
    store: BlobStore,
    progress: Callable[[str], None] = lambda _m: None,
    sign_key: Path | None = None,
    probes: bool = False,
) -> Prepared:
    """Check the folder, snapshot it into the store and build the validated manifest; touches no shelf.

    ``sign_key`` is only checked here (a bad key is refused before anything is hashed): the manifest is
    signed by ``signed`` once it is final. With ``probes`` the items that compute are run on the probe
    set and their outputs recorded in the manifest (TensorFlow).
    """
    if sign_key is not None:
        from shelf.signing import signer_fingerprint

        signer_fingerprint(sign_key)
    items = find_items(Path(folder))
    before = folder_state(items)
    # Fingerprints (h5py: an import, then reads) and the snapshot (hashing, which frees the GIL) overlap;
    # a problem the fingerprints find is the one reported, as the snapshot only filled the cache.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="cclm-shelf-describe") as pool:
        describing = pool.submit(describe_items, items)
        progress(f"hashing {len(items)} item(s) of {folder}")
        try:
            files = snapshot(items, store)
        finally:
            described = describing.result()
    base_and_provides(described)  # refuse items that disagree on their base
    recorded = _probes(items, progress) if probes else None
    # The manifest's fingerprints come from the folder, the uploads from the snapshot: both must agree.
    check_unchanged(items, before)
    manifest = build_manifest(info, described, files, recorded)
    data = dump_manifest(manifest)
    entry = entry_from_manifest(manifest, manifest_digest(data))
    return Prepared(manifest, data, entry, tuple(files))


def _probes(items: dict[str, Path], progress) -> dict | None:
    from cclm_core.probes import record

    progress(f"running the behaviour probes on {', '.join(k for k in sorted(items) if k != 'preprocessor')}")
    return record(items)


def signed(prepared: Prepared, sign_key: Path | None, progress=lambda _m: None) -> Prepared:
    """``prepared`` with a signature over its final manifest and every file's digest (when given a key)."""
    if sign_key is None:
        return prepared
    from shelf.signing import sign, signed_digests

    manifest = prepared.manifest
    progress(f"signing {manifest.name} {manifest.version} with {sign_key}")
    digests = signed_digests(prepared.data, [(item, f.path, f.sha256) for item, f in manifest.files()])
    return replace(prepared, signature=sign(manifest.name, digests, Path(sign_key)))


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
    """``prepare`` on a side thread while this one opens and refreshes the shelf.

    The two share nothing: fingerprinting and hashing the folder is imports and reads, opening the shelf
    is waiting for git and the network. When both fail, the folder's problem is the one reported (it is
    the publisher's to fix first).
    """
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="cclm-shelf-prepare") as pool:
        preparing = pool.submit(prepare, folder, info, store, progress, sign_key, probes)
        try:
            opened = _opened(source)
        finally:
            prepared = preparing.result()
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
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="cclm-shelf-upload") as pool:
        uploading = pool.submit(_upload, prepared.files, source, store, report, progress, bars)
        try:
            built = _build(source, prepared)
        finally:
            uploading.result()
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
