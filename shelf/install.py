"""Laying verified components out in an install target.

An install target (default ``.cclm``) holds one folder per component, in the seed library's layout::

    <target>/<name>/cclm-manifest.json          the manifest the files were checked against
    <target>/<name>/<item_type>/<files>         hardlinks into the blob store (copies where links fail)
    <target>/.cclm-shelf-install.json           what is installed: version, digest, source, file stats
    <target>/.install.lock                      serialises writers of this target

Every blob is verified when it enters the store, so installing is fetching what the store lacks (one batch
per shelf) and linking. A component is replaced atomically: it is built in a staging folder beside the
target and renamed into place, so a reader never sees half a component and a crash leaves only staging
debris that the next run removes. A warm install compares file stats with the record and re-hashes nothing.
Blobs are downloaded before the target is locked or even created, so a refused or failed download leaves the
target exactly as it was; paths from manifests and lockfiles are checked before anything moves.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Protocol

from filelock import FileLock

from shelf import constants
from shelf.errors import ConfigError, IntegrityError, NotFoundError, UnsafeContentError
from shelf.fsutil import (
    STAGING_PREFIX,
    TRASH_PREFIX,
    atomic_write,
    discard,
    hash_file,
    new_staging,
    remove_tree,
    swap_dir,
)
from shelf.store import BlobStore

RECORD_VERSION = 1


class FileSpec(Protocol):
    item: str
    path: str
    sha256: str
    size: int


class ComponentSpec(Protocol):
    """What an install needs to know of one pinned component (a lockfile entry fits)."""

    name: str
    version: str
    source: str
    manifest_digest: str
    files: Sequence[FileSpec]


@dataclass
class InstallReport:
    installed: list[tuple[str, str]] = field(default_factory=list)
    unchanged: list[tuple[str, str]] = field(default_factory=list)
    objects_fetched: int = 0
    bytes_fetched: int = 0
    warnings: list[str] = field(default_factory=list)  # e.g. a pinned version that is yanked


def safe_relative(*parts: str) -> PurePosixPath:
    """Join manifest path parts, refusing anything that could leave the component folder."""
    joined = PurePosixPath(*parts)
    bad = joined.is_absolute() or any(p in ("..", "", ".") for p in joined.parts) or "\\" in str(joined)
    # A colon names a drive or an alternate data stream on Windows: refused everywhere, for portability.
    if bad or ":" in str(joined):
        raise UnsafeContentError(f"refusing unsafe path {str(joined)!r} in a manifest or lockfile")
    return joined


class InstallTarget:
    """An install folder and its record of what is installed."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.record_path = self.root / constants.INSTALL_RECORD

    def lock(self) -> FileLock:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise ConfigError(
                f"cannot use {self.root} as an install folder: {e.strerror}",
                hint="pass --target with a folder you can write to",
            ) from e
        return FileLock(str(self.root / ".install.lock"))

    def read_record(self) -> dict:
        try:
            data = json.loads(self.record_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {"record_version": RECORD_VERSION, "components": {}}
        except (OSError, ValueError):
            # A damaged record only costs a re-link: every component is then treated as not installed.
            return {"record_version": RECORD_VERSION, "components": {}}
        data.setdefault("components", {})
        return data

    def write_record(self, record: dict) -> None:
        # Not fsynced: neither are the links it lists, and a record lost in a power cut (or one that names
        # files that are gone) only costs a re-link, since is_current checks every file's stat.
        atomic_write(self.record_path, json.dumps(record, indent=2, sort_keys=True) + "\n", durable=False)

    def component_dir(self, name: str) -> Path:
        return self.root / safe_relative(name)

    def clean_debris(self) -> None:
        """Remove staging and trash folders left by an interrupted run."""
        if not self.root.is_dir():
            return
        for child in self.root.iterdir():
            if child.name.startswith((STAGING_PREFIX, TRASH_PREFIX)):
                remove_tree(child)

    def is_current(self, spec: ComponentSpec, record: dict) -> bool:
        """True when the component is installed at this digest and no file changed since (stats only)."""
        entry = record["components"].get(spec.name)
        if not entry or entry.get("manifest_digest") != spec.manifest_digest:
            return False
        folder = self.component_dir(spec.name)
        for rel, stat in entry.get("files", {}).items():
            try:
                st = (folder / rel).stat()
            except OSError:
                return False
            if [st.st_size, st.st_mtime_ns, st.st_ino] != stat:
                return False
        return len(entry.get("files", {})) == len(spec.files)

    def materialize(self, spec: ComponentSpec, store: BlobStore, manifest: bytes | None) -> dict:
        """Build the component's folder from the store in staging, then swap it into place."""
        final = self.component_dir(spec.name)
        staging = new_staging(final)
        try:
            files = {}
            for f in spec.files:
                rel = safe_relative(f.item, f.path)
                store.link_into(f.sha256, staging / rel)
                files[str(rel)] = rel
            if manifest is not None:
                (staging / constants.MANIFEST_FILE).write_bytes(manifest)
            swap_dir(staging, final)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        folder = self.component_dir(spec.name)
        stats = {}
        for key, rel in files.items():
            st = (folder / rel).stat()
            stats[key] = [st.st_size, st.st_mtime_ns, st.st_ino]
        return stats


def missing_objects(components: Iterable[ComponentSpec], store: BlobStore) -> dict[str, dict[str, int]]:
    """The blobs each source must send, by source URL: {source: {oid: size}}."""
    wanted: dict[str, dict[str, int]] = {}
    for spec in components:
        for f in spec.files:
            if not store.has(f.sha256, f.size):
                wanted.setdefault(spec.source, {})[f.sha256] = f.size
    return wanted


def install_components(
    components: Sequence[ComponentSpec],
    *,
    target: Path,
    store: BlobStore,
    transports: Mapping[str, object],
    manifests: Mapping[str, bytes] | None = None,
) -> InstallReport:
    """Install pinned components into ``target``: fetch what the store lacks, verify, link, record."""
    _check_paths(components)
    report = InstallReport()
    install_target = InstallTarget(target)
    # Download before touching the target at all: a refused or failed download leaves it as it was.
    _fetch(_outdated(components, install_target, store), store, transports, report)
    with install_target.lock():
        install_target.clean_debris()
        todo = _outdated(components, install_target, store)
        report.unchanged = [(c.name, c.version) for c in components if c not in todo]
        # Normally nothing is left to fetch; another process may have pruned the store meanwhile.
        _fetch(todo, store, transports, report)
        record = install_target.read_record()
        for spec in todo:
            stats = install_target.materialize(spec, store, (manifests or {}).get(spec.name))
            record["components"][spec.name] = _record_entry(spec, stats)
            install_target.write_record(record)
            report.installed.append((spec.name, spec.version))
    return report


def _check_paths(components: Sequence[ComponentSpec]) -> None:
    """Refuse a hostile manifest or lockfile path before anything is downloaded or written."""
    for spec in components:
        for f in spec.files:
            safe_relative(spec.name, f.item, f.path)


def _outdated(
    components: Sequence[ComponentSpec], install_target: InstallTarget, store: BlobStore
) -> list[ComponentSpec]:
    """The components that must be (re)linked, after dropping store blobs edited through a link."""
    record = install_target.read_record()
    todo = [c for c in components if not install_target.is_current(c, record)]
    for spec in todo:
        _drop_edited_blobs(spec, record["components"].get(spec.name), store)
    return todo


def _drop_edited_blobs(spec: ComponentSpec, entry: dict | None, store: BlobStore) -> None:
    """Remove store blobs whose installed hardlink was written to in place.

    An installed file and its blob share one inode, so editing the file (after making it writable) edits
    the blob too, and the store's size-only ``has`` would hand the damaged bytes to the next install. The
    record says which inode and mtime the link had; a blob with that inode but another mtime or size is
    re-hashed, and removed (to be fetched again) when its bytes are wrong. Untouched blobs cost a stat.
    """
    if not entry:
        return
    for f in spec.files:
        recorded = entry.get("files", {}).get(str(safe_relative(f.item, f.path)))
        blob = store.path(f.sha256)
        try:
            st = blob.stat()
        except OSError:
            continue
        if not recorded or st.st_ino != recorded[2] or [st.st_size, st.st_mtime_ns] == recorded[:2]:
            continue
        if st.st_size != f.size or hash_file(blob)[0] != f.sha256:
            blob.unlink(missing_ok=True)


def _record_entry(spec: ComponentSpec, stats: dict) -> dict:
    return {
        "version": spec.version,
        "manifest_digest": spec.manifest_digest,
        "source": spec.source,
        "files": stats,
        "sha256": {str(safe_relative(f.item, f.path)): f.sha256 for f in spec.files},
    }


def _fetch(todo: Sequence[ComponentSpec], store: BlobStore, transports: Mapping[str, object], report) -> None:
    """One download call (one batch) per shelf for every blob the store lacks."""
    missing = missing_objects(todo, store)
    if not missing:
        return  # a warm install: the HTTP client is not even imported
    from shelf.lfs import LfsObject

    for source, objects in missing.items():
        transport = transports.get(source)
        if transport is None:
            raise NotFoundError(f"no transport for shelf {source}")
        # The transport resumes partial files and re-fetches from byte 0 when a resumed one fails to verify.
        transport.download([LfsObject(oid, size) for oid, size in sorted(objects.items())], store)
        report.objects_fetched += len(objects)
        report.bytes_fetched += sum(objects.values())


def uninstall(target: Path, name: str) -> str:
    """Remove an installed component (and legacy items fetched under its name); returns its version."""
    install_target = InstallTarget(target)
    folder = install_target.component_dir(name)
    if not install_target.root.is_dir():
        raise NotFoundError(
            f"{name} is not installed in {target}: there is no such folder", hint="cclm-shelf list"
        )
    with install_target.lock():
        record = install_target.read_record()
        entry = record["components"].pop(name, None)
        legacy = record.get("legacy", {})
        tags = [legacy.pop(key)["tag"] for key in sorted(legacy) if key.split("/")[0] == name]
        if entry is None and not tags and not folder.exists():
            raise NotFoundError(f"{name} is not installed in {target}", hint="cclm-shelf list")
        discard(folder)
        install_target.write_record(record)
    return entry["version"] if entry else ", ".join(tags) or "?"


def verify_installed(target: Path) -> list[str]:
    """Re-hash every installed file (components and legacy items) against its recorded sha256.

    Returns the problems, one line each, naming the file and what is wrong with it.
    """
    install_target = InstallTarget(target)
    record = install_target.read_record()
    folders = [(name, install_target.component_dir(name), e) for name, e in record["components"].items()]
    folders += [
        (key, install_target.root / safe_relative(key), e) for key, e in record.get("legacy", {}).items()
    ]
    problems = []
    for label, folder, entry in sorted(folders, key=lambda row: row[0]):
        for rel, expected in sorted(entry.get("sha256", {}).items()):
            problem = _check_file(folder / rel, expected)
            if problem:
                problems.append(f"{label}/{rel}: {problem}")
    return problems


def installed_file_count(target: Path) -> int:
    """How many files the record of ``target`` can verify."""
    record = InstallTarget(target).read_record()
    entries = [*record["components"].values(), *record.get("legacy", {}).values()]
    return sum(len(entry.get("sha256", {})) for entry in entries)


def _check_file(path: Path, expected: str) -> str | None:
    try:
        actual, _ = hash_file(path)
    except FileNotFoundError:
        return "missing"
    if actual != expected:
        return f"sha256 {actual[:12]}… does not match {expected[:12]}…"
    return None


__all__ = [
    "InstallReport",
    "InstallTarget",
    "IntegrityError",
    "install_components",
    "installed_file_count",
    "uninstall",
    "verify_installed",
]
