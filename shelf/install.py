"""Laying verified components out in an install target.

An install target (default ``.cclm``) holds one folder per component, in the seed library's layout::

    <target>/<name>/cclm-manifest.json          the manifest the files were checked against
    <target>/<name>/<item_type>/<files>         blobs of the store, linked as the link mode says
    <target>/.cclm-shelf-install.json           what is installed (see ``shelf.target``)

Every blob is verified when it enters the store, so installing is fetching what the store lacks (one batch
per shelf) and linking. A component is replaced atomically: it is built in a staging folder beside the
target and renamed into place, so a reader never sees half a component and a crash leaves only staging
debris that the next run removes. A warm install compares file stats with the record and re-hashes nothing.
Blobs are downloaded before the target is locked or even created, so a refused or failed download leaves the
target exactly as it was; paths from manifests and lockfiles are checked before anything moves.

What is replaced or removed follows ``shelf.target``: only folders cclm-shelf installed, and anything edited
goes to the target's trash. Before a blob is linked again the store revalidates it (``BlobStore.revalidate``),
so a blob written to through an installed link is fetched again rather than spread; a component whose
installed files changed is not current, so installing into any target that shares a damaged file repairs
it. The target stays one stack: a component whose base disagrees with what stays installed is refused.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from shelf import constants, frameworks
from shelf.errors import IntegrityError, NotFoundError, TargetError
from shelf.fsutil import hash_file, new_staging, remove_tree
from shelf.linking import DEFAULT_LINK_MODE, choose_link_mode
from shelf.stack import check_stack, dependents, disagreements, installed_members, member, unmet_requirements
from shelf.store import BlobStore
from shelf.target import InstallTarget, file_stat, safe_relative

if TYPE_CHECKING:
    from shelf.lockfile import LockedComponent as ComponentSpec  # what an install needs of one pin
    from shelf.remote.transport import Transport


@dataclass
class InstallReport:
    installed: list[tuple[str, str]] = field(default_factory=list)
    unchanged: list[tuple[str, str]] = field(default_factory=list)
    objects_fetched: int = 0
    bytes_fetched: int = 0
    warnings: list[str] = field(default_factory=list)  # a yanked pin, a framework this machine lacks
    moved_aside: list[tuple[str, Path]] = field(default_factory=list)  # (name, where in the trash)
    link_mode: str = ""


def mode_for(spec: ComponentSpec, record: dict, chosen: str | None) -> str:
    """The link mode for ``spec``: the one chosen, else the one it was installed with, else the default."""
    entry = record["components"].get(spec.name) or {}
    return chosen or entry.get("link_mode") or DEFAULT_LINK_MODE


def is_current(target: InstallTarget, spec: ComponentSpec, record: dict, mode: str | None) -> bool:
    """True when the component is installed at this digest and link mode and no file changed (stats only)."""
    entry = record["components"].get(spec.name)
    if not entry or entry.get("manifest_digest") != spec.manifest_digest:
        return False
    if entry.get("link_mode", DEFAULT_LINK_MODE) != mode_for(spec, record, mode):
        return False
    folder = target.component_dir(spec.name)
    for rel, stat in entry.get("files", {}).items():
        try:
            if file_stat(folder / rel) != stat:
                return False
        except OSError:
            return False
    return len(entry.get("files", {})) == len(spec.files)


def materialize(
    target: InstallTarget, spec: ComponentSpec, store: BlobStore, manifest: bytes | None, mode: str
):
    """Build the component's folder from the store in staging, then swap it into place.

    Returns the file stats to record and where the old folder was moved aside to (None when it was
    removed, or there was none).
    """
    staging = new_staging(target.component_dir(spec.name))
    try:
        files = []
        for f in spec.files:
            rel = safe_relative(f.item, f.path)
            store.link_into(f.sha256, staging / rel, mode)
            files.append(str(rel))
        if manifest is not None:
            (staging / constants.MANIFEST_FILE).write_bytes(manifest)
        record = target.read_record()
        kept = target.swap_in(staging, spec.name, record["components"].get(spec.name))
    except BaseException:
        remove_tree(staging)
        raise
    folder = target.component_dir(spec.name)
    return {rel: file_stat(folder / rel) for rel in files}, kept


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
    transports: Mapping[str, Transport],
    manifests: Mapping[str, bytes] | None = None,
    link_mode: str | None = None,
    force: bool = False,
) -> InstallReport:
    """Install pinned components into ``target``: fetch what the store lacks, verify, link, record.

    ``force`` moves a folder cclm-shelf did not install into the target's trash instead of refusing it.
    """
    _check_paths(components)
    # None (nothing chosen): each installed component keeps the mode it has, new ones get the default.
    mode = link_mode or choose_link_mode()
    manifests = manifests or {}
    report = InstallReport(link_mode=mode or DEFAULT_LINK_MODE)
    install_target = InstallTarget(target)
    # Refuse and download before touching the target: a refusal or a failed download leaves it as it was.
    _check_target(install_target, components, manifests, force)
    _fetch(_outdated(components, install_target, store, mode), store, transports, report)
    with install_target.lock():
        install_target.clean_debris()
        _check_target(install_target, components, manifests, force)
        todo = _outdated(components, install_target, store, mode)
        report.unchanged = [(c.name, c.version) for c in components if c not in todo]
        # Normally nothing is left to fetch; another process may have pruned the store meanwhile.
        _fetch(todo, store, transports, report)
        for spec in todo:
            manifest = manifests.get(spec.name)
            met = store.root / constants.FRAMEWORK_CHECKS_DIR
            report.warnings += frameworks.manifest_problems(manifest, f"{spec.name} {spec.version}", met)
            spec_mode = mode_for(spec, install_target.read_record(), mode)
            stats, kept = materialize(install_target, spec, store, manifest, spec_mode)
            record = install_target.read_record()
            record["components"][spec.name] = _record_entry(spec, stats, spec_mode, manifest)
            install_target.write_record(record)
            report.installed.append((spec.name, spec.version))
            if kept is not None:
                report.moved_aside.append((spec.name, kept))
    return report


def _check_target(
    install_target: InstallTarget,
    components: Sequence[ComponentSpec],
    manifests: Mapping[str, bytes],
    force: bool,
) -> None:
    """Refuse a folder cclm-shelf did not install, and a component whose base disagrees with the stack."""
    record = install_target.read_record()
    install_target.check_replaceable([c.name for c in components], record, force)
    installed = installed_members(install_target.root, record["components"])
    incoming = {c.name: member(c, manifests.get(c.name)) for c in components}
    check_stack(install_target.root, installed, incoming)


def _check_paths(components: Sequence[ComponentSpec]) -> None:
    """Refuse a hostile manifest or lockfile path before anything is downloaded or written."""
    for spec in components:
        for f in spec.files:
            safe_relative(spec.name, f.item, f.path)


def _outdated(
    components: Sequence[ComponentSpec], install_target: InstallTarget, store: BlobStore, mode: str | None
) -> list[ComponentSpec]:
    """The components that must be (re)linked; the store evicts their blobs that changed since verified."""
    record = install_target.read_record()
    todo = [c for c in components if not is_current(install_target, c, record, mode)]
    for spec in todo:
        for f in spec.files:
            store.revalidate(f.sha256, f.size)
    return todo


def _record_entry(spec: ComponentSpec, stats: dict, mode: str, manifest: bytes | None) -> dict:
    return {
        "version": spec.version,
        "manifest_digest": spec.manifest_digest,
        "source": spec.source,
        "files": stats,
        "sha256": {str(safe_relative(f.item, f.path)): f.sha256 for f in spec.files},
        "link_mode": mode,
        "base": member(spec, manifest)[1],
    }


def _fetch(
    todo: Sequence[ComponentSpec], store: BlobStore, transports: Mapping[str, Transport], report
) -> None:
    """One download call (one batch) per shelf for every blob the store lacks."""
    missing = missing_objects(todo, store)
    if not missing:
        return  # a warm install: the HTTP client is not even imported
    from shelf.remote.lfs_protocol import LfsObject

    for source, objects in missing.items():
        transport = transports.get(source)
        if transport is None:
            raise NotFoundError(f"no transport for shelf {source}")
        # The transport resumes partial files and re-fetches from byte 0 when a resumed one fails to verify.
        transport.download([LfsObject(oid, size) for oid, size in sorted(objects.items())], store)
        report.objects_fetched += len(objects)
        report.bytes_fetched += sum(objects.values())


def uninstall(
    target: Path, names: Sequence[str], *, force: bool = False
) -> list[tuple[str, str, Path | None]]:
    """Remove installed components (and legacy items fetched under their names): [(name, version, kept)].

    ``kept`` is where in the target's trash a folder went instead of being removed, when it held files
    cclm-shelf did not place or that were edited. Refused before anything moves: a name not installed, a
    folder cclm-shelf did not install, and (unless ``force``) a component that another one staying
    installed needs (``shelf.stack.dependents``).
    """
    if not names:
        return []
    install_target = InstallTarget(target)
    if not install_target.root.is_dir():
        raise NotFoundError(
            f"{names[0]} is not installed in {target}: there is no such folder", hint="cclm-shelf list"
        )
    with install_target.lock():
        record = install_target.read_record()
        install_target.check_replaceable(list(names), record, force=False)
        for name in names:
            if name not in record["components"] and not _legacy_keys(record, name):
                raise NotFoundError(f"{name} is not installed in {target}", hint="cclm-shelf list")
        if not force:
            _check_no_dependents(target, record["components"], set(names))
        removed = []
        for name in dict.fromkeys(names):
            entry = record["components"].pop(name, None)
            tags = [record["legacy"].pop(key)["tag"] for key in _legacy_keys(record, name)]
            kept = install_target.discard(name, entry)
            install_target.write_record(record)  # after each: the record never names a folder gone
            removed.append((name, entry["version"] if entry else ", ".join(tags) or "?", kept))
    return removed


def _legacy_keys(record: dict, name: str) -> list[str]:
    return sorted(key for key in record.get("legacy", {}) if key.split("/")[0] == name)


def _check_no_dependents(target: Path, components: dict, leaving: set[str]) -> None:
    """Refuse to remove what a component staying in ``target`` needs (its requirements or its base)."""
    needing = dependents(target, components, leaving)
    if not needing:
        return
    needed = sorted({name for names in needing.values() for name in names})
    who = "; ".join(f"{name} needs {', '.join(names)}" for name, names in needing.items())
    everything = " ".join([*sorted(leaving), *needing])
    raise TargetError(
        f"cannot uninstall {', '.join(needed)} from {target}: {who}",
        hint=f"uninstall them together (cclm-shelf uninstall {everything}), or pass --force to remove "
        f"{', '.join(needed)} anyway and leave the rest broken",
    )


def verify_installed(target: Path) -> list[str]:
    """Re-hash every installed file (components and legacy items) against its recorded sha256.

    Returns the problems, one line each, naming the file and what is wrong with it, then any base on which
    the installed components disagree, then any component whose requirement is not installed.
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
    members = installed_members(install_target.root, record["components"])
    problems += [f"{target} is not one stack: {line}" for line in disagreements(members)]
    problems += [
        f"{target}: {line}" for line in unmet_requirements(install_target.root, record["components"])
    ]
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
