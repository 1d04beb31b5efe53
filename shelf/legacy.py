"""The original cclm shelf layout, read-only: ``<item_type>/<identifier>.tar.gz`` at a shelf-wide tag.

The original client downloaded these tarballs without checking anything and extracted them with
``extractall``. Here the tarball's LFS pointer is read from the tag, the blob is verified into the store like
any other, and the archive is treated as untrusted input: only regular files and folders are extracted, by
our own loop, into a staging folder that is renamed into place; absolute paths, ``..``, links, devices and
FIFOs are refused before anything is written.
"""

from __future__ import annotations

import shutil
import tarfile
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from shelf.errors import NotFoundError, OfflineError, TrustError, UnsafeContentError
from shelf.fsutil import copy_hashing, new_staging, swap_dir

if TYPE_CHECKING:
    from registry_index.index import IndexEntry
    from shelf.api import Shelf
    from shelf.source import ShelfSource

MAX_MEMBERS = 10_000
# A legacy item is one preprocessor or model; far more than this unpacked is a decompression bomb.
MAX_UNPACKED_BYTES = 16 << 30


def check_member(member: tarfile.TarInfo, archive: str) -> PurePosixPath | None:
    """The safe relative path of a member, None for a folder entry; refuses anything else."""
    name = member.name
    path = PurePosixPath(name)
    if name.startswith(("/", "\\")) or path.is_absolute() or "\\" in name or ":" in path.parts[0]:
        raise UnsafeContentError(f"{archive}: member {name!r} has an absolute path; refusing to extract")
    if ".." in path.parts:
        raise UnsafeContentError(f"{archive}: member {name!r} climbs out with '..'; refusing to extract")
    if member.issym() or member.islnk():
        raise UnsafeContentError(f"{archive}: member {name!r} is a link; refusing to extract")
    if member.isdir():
        return None
    if not member.isreg():
        raise UnsafeContentError(f"{archive}: member {name!r} is a device or FIFO; refusing to extract")
    parts = [p for p in path.parts if p not in ("", ".")]
    if not parts:
        raise UnsafeContentError(f"{archive}: member {name!r} has an empty path; refusing to extract")
    return PurePosixPath(*parts)


def extract_archive(archive: Path, dest: Path, label: str) -> dict[str, str]:
    """Extract a legacy tarball into ``dest`` atomically; returns each written file's sha256 by path."""
    staging = new_staging(dest)
    try:
        written = _extract_into(archive, staging, label)
        swap_dir(staging, dest)
        return written
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _extract_into(archive: Path, staging: Path, label: str) -> dict[str, str]:
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = tar.getmembers()
            if len(members) > MAX_MEMBERS:
                raise UnsafeContentError(f"{label}: more than {MAX_MEMBERS} members; refusing to extract")
            checked = [(m, check_member(m, label)) for m in members]
            written = {}
            for member, rel in checked:
                if rel is not None:
                    written[str(rel)] = _write_member(tar, member, staging / rel)
            return dict(sorted(written.items()))
    except tarfile.TarError as e:
        raise UnsafeContentError(f"{label} is not a readable tar archive: {e}") from e
    except (FileExistsError, NotADirectoryError, IsADirectoryError) as e:
        # e.g. a member "a/b" after a file member "a": the archive's paths cannot form a folder tree.
        raise UnsafeContentError(f"{label}: cannot extract {e.filename}: {e.strerror}") from e


def _write_member(tar: tarfile.TarFile, member: tarfile.TarInfo, dest: Path) -> str:
    """Copy one member out, hashing it on the way (the install record keeps the sha256 for verify)."""
    if dest.exists():
        raise UnsafeContentError(f"archive member {member.name!r} appears twice; refusing to extract")
    dest.parent.mkdir(parents=True, exist_ok=True)
    source = tar.extractfile(member)
    if source is None:
        raise UnsafeContentError(f"archive member {member.name!r} has no content")
    with source, dest.open("xb") as out:
        digest, size = copy_hashing(source, out, limit=member.size)
    if size != member.size:
        raise UnsafeContentError(f"archive member {member.name!r} is truncated")
    return digest


def check_archive(archive: Path, label: str) -> list[str]:
    """Read every member header of a legacy tarball and refuse unsafe ones; writes nothing."""
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = tar.getmembers()
    except tarfile.TarError as e:
        raise UnsafeContentError(f"{label} is not a readable tar archive: {e}") from e
    if len(members) > MAX_MEMBERS:
        raise UnsafeContentError(f"{label}: more than {MAX_MEMBERS} members; refusing to extract")
    unpacked = sum(m.size for m in members if m.isreg())
    if unpacked > MAX_UNPACKED_BYTES:
        raise UnsafeContentError(
            f"{label} would unpack to {unpacked} bytes, more than the {MAX_UNPACKED_BYTES} allowed; "
            "refusing to extract"
        )
    paths = [str(rel) for rel in (check_member(m, label) for m in members) if rel is not None]
    if len(set(paths)) != len(paths):
        raise UnsafeContentError(f"{label}: a member appears twice; refusing to extract")
    return sorted(paths)


def install_legacy_item(
    target, store, transport, identifier: str, item_type: str, tag: str, pointer, source: str = ""
) -> Path:
    """Fetch, verify and extract one legacy tarball into ``target/identifier/item_type``.

    The tag is part of the install record, so fetching another tag replaces the folder (the original client
    kept whatever folder was there, whatever tag was asked for). The blob is downloaded, verified and its
    members checked before the target is touched, so a failed or refused fetch leaves nothing behind.
    """
    from shelf.remote.lfs_protocol import LfsObject
    from shelf.target import safe_relative

    dest = target.component_dir(identifier) / safe_relative(item_type)
    key = f"{identifier}/{item_type}"
    if _is_current(target.read_record(), key, tag, pointer.oid, dest):
        return dest
    if not store.has(pointer.oid, pointer.size):
        transport.download([LfsObject(pointer.oid, pointer.size)], store)
    label = f"{item_type}/{identifier}.tar.gz at {tag}"
    check_archive(store.path(pointer.oid), label)
    with target.lock():
        record = target.read_record()
        if _is_current(record, key, tag, pointer.oid, dest):
            return dest
        if (dest.exists() or dest.is_symlink()) and key not in record.get("legacy", {}):
            from shelf.errors import TargetError

            raise TargetError(
                f"{dest} is not installed by cclm-shelf; refusing to replace it",
                hint="move it away yourself, then fetch again",
            )
        _clear_staging(dest)
        written = extract_archive(store.path(pointer.oid), dest, label)
        record.setdefault("legacy", {})[key] = {
            "tag": tag,
            "oid": pointer.oid,
            "files": _stats(dest, list(written)),
            "sha256": written,
            "source": source,
        }
        target.write_record(record)
    return dest


def _is_current(record: dict, key: str, tag: str, oid: str, dest: Path) -> bool:
    current = record.get("legacy", {}).get(key)
    return (
        bool(current)
        and current.get("tag") == tag
        and current.get("oid") == oid
        and _unchanged(dest, current)
    )


def _clear_staging(dest: Path) -> None:
    """Remove staging and trash folders an interrupted extraction of ``dest`` left (never trusted)."""
    if dest.parent.is_dir():
        for pattern in (f".staging-{dest.name}-*", f".trash-{dest.name}-*"):
            for debris in dest.parent.glob(pattern):
                shutil.rmtree(debris, ignore_errors=True)


def _stats(folder: Path, files: list[str]) -> dict[str, list[int]]:
    stats = {}
    for rel in files:
        st = (folder / rel).stat()
        stats[rel] = [st.st_size, st.st_mtime_ns, st.st_ino]
    return stats


def _unchanged(folder: Path, entry: dict) -> bool:
    try:
        return all(_stats(folder, [rel])[rel] == stat for rel, stat in entry.get("files", {}).items())
    except OSError:
        return False


def fetch_legacy(
    shelf: Shelf, source: ShelfSource, identifier: str, item_type: str, tag: str | None, target: Path
) -> Path:
    """``Shelf.fetch`` on a shelf of the original layout: the tarball at ``tag``, verified, extracted."""
    from registry_index import layout
    from registry_index.pointer import parse_pointer
    from shelf.install import InstallTarget
    from shelf.lockfile import public_source
    from shelf.progress import Labelled

    if shelf.trust.active:
        raise TrustError(
            f"{identifier} {tag or ''} is an item of the original cclm layout, which carries no "
            "signature, and only components signed by a trusted key may be installed",
            hint="install it without a trust policy, or ask for it to be published signed",
        )
    commit = _legacy_commit(source, identifier, tag)
    path = layout.legacy_archive_path(item_type, identifier)
    if not source.mirror.exists(commit, path):
        raise NotFoundError(f"{path} is not in {source.url} at {tag}")
    pointer = parse_pointer(source.mirror.read_file(commit, path))
    if shelf.offline and not shelf.store.has(pointer.oid, pointer.size):
        raise OfflineError(
            f"offline, and the store lacks {path} of {source.url} at {tag}",
            hint="run the same call once with the network to fill the store",
        )
    labels = {pointer.oid: f"{identifier}/{item_type}.tar.gz"}
    transport = source.transport(ref=commit, jobs=shelf.jobs, progress=Labelled(shelf.progress, labels))
    return install_legacy_item(
        InstallTarget(target),
        shelf.store,
        transport,
        identifier,
        item_type,
        tag or commit,
        pointer,
        source=public_source(source.url),
    )


def _legacy_commit(source: ShelfSource, identifier: str, ref: str | None) -> str:
    """The commit a ref names on a shelf of the original layout: a tag, a branch or a commit.

    The original shelf keeps some items on branches (``en_wiki_clm_1``), so any ref is accepted; the
    mirror is refreshed first for a name that is not a tag, since a branch may have moved.
    """
    if not ref:
        raise NotFoundError(
            f"{identifier} is on {source.url} in the original cclm layout, which needs tag=",
            hint="pass tag= a tag, branch or commit of that shelf",
        )
    if ref.removeprefix("refs/tags/") not in source.mirror.tags():
        source.refresh()
    try:
        return source.mirror.head(ref)
    except NotFoundError:
        raise NotFoundError(
            f"{identifier} {ref} is not on {source.url}: no tag, branch or commit {ref!r}",
            hint=f"cclm-shelf show {identifier}",
        ) from None


def find_version(shelf: Shelf, source: ShelfSource, identifier: str, tag: str | None) -> IndexEntry | None:
    """``Shelf.fetch``'s entry on a shelf of our layout (the newest, or the version ``tag`` names); None
    sends the fetch to the original layout."""
    from registry_index.errors import RegistryIndexError
    from registry_index.versions import format_version, parse_version

    entries = source.index.entries(identifier)
    if not entries:
        return None
    if tag is None:
        return shelf.resolve([identifier]).components[identifier]
    try:
        version = format_version(parse_version(tag))
    except RegistryIndexError:
        return None
    return next((e for e in entries if e.version == version), None)
