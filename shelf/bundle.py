"""Bundles: one file holding exactly what a lockfile pins, for machines with no network.

A bundle is an uncompressed tar archive, written as a stream with fixed times, owners and modes, its
members in a fixed order, so the same lockfile and store always give the same bytes::

    cclm-bundle.json                              table of contents: every later member, its sha256 and size
    cclm-shelf.lock                               the lockfile (local shelf paths replaced, see below)
    components/<name>/<version>/<file>            each manifest, and signatures where the shelf has them
    blobs/sha256/<oid[:2]>/<oid>                  every blob the lockfile pins, once, by object id

Reading checks everything before anything is kept: each member must be the next one the table of contents
lists, with its size and sha256; the table must name every manifest and blob the lockfile pins (manifests
by their digest) and nothing else. Members are streamed into the store's temporary folder while they are
hashed, and moved into the store only once the whole archive checked out; a refused bundle leaves the
store, the install folder and the project as they were.

A lockfile records a shelf given as a local path by that path. A bundle travels to other people, so such
sources are written as ``LOCAL_SOURCE`` instead: the bundle is checked against a project's lockfile by
what is pinned (names, versions, digests, files), never by where it came from.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import tarfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from registry_index import layout
from registry_index.manifest import canonical_json
from shelf import constants
from shelf.errors import BundleError, IntegrityError, LockfileError, StoreError
from shelf.fsutil import atomic_file
from shelf.lockfile import LockedComponent, Lockfile, dump_lockfile, loads_lockfile
from shelf.store import BlobStore

BUNDLE_VERSION = 1
TOC_NAME = "cclm-bundle.json"
LOCK_NAME = constants.LOCK_FILE
LOCAL_SOURCE = "local shelf"
_TOC_LIMIT = 64 << 20  # a table of contents larger than this is not one we wrote
_METADATA_LIMIT = 16 << 20  # manifests and signatures are read into memory: refuse absurd ones
_HINT = "make the bundle again with `cclm-shelf bundle FILE` and copy it whole"


@dataclass(frozen=True)
class Member:
    """One member the table of contents announces."""

    path: str
    sha256: str
    size: int

    @property
    def is_blob(self) -> bool:
        return self.path.startswith("blobs/")


# --- writing -------------------------------------------------------------------------------------------


def shareable(lock: Lockfile) -> Lockfile:
    """``lock`` with local shelf paths (the publisher's folders) replaced by ``LOCAL_SOURCE``."""
    from shelf.remote.url import is_local_url

    components = tuple(
        dataclasses.replace(c, source=LOCAL_SOURCE) if is_local_url(c.source) else c for c in lock.components
    )
    return dataclasses.replace(lock, components=components, path=None)


def blob_path(oid: str) -> str:
    return f"blobs/sha256/{oid[:2]}/{oid}"


def is_bundle_file(path: Path) -> bool:
    """Whether ``path`` starts as every bundle does: a tar header naming the table of contents."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(len(TOC_NAME) + 1)
    except OSError:
        return False
    return head == TOC_NAME.encode() + b"\0"


def write_bundle(lock: Lockfile, metadata: Mapping[str, bytes], store: BlobStore, dest: Path) -> int:
    """Write the bundle of ``lock`` to ``dest`` (through a temporary file beside it); returns its size.

    ``metadata`` maps shelf paths (``components/<name>/<version>/<file>``) to the manifests and
    signatures to carry. Every pinned blob must be in ``store``.
    """
    lock_bytes = dump_lockfile(shareable(lock)).encode("utf-8")
    blobs = _pinned_blobs(lock.components)
    missing = [oid for oid, size in blobs.items() if not store.has(oid, size)]
    if missing:
        raise StoreError(
            f"the store lacks {len(missing)} pinned blob(s)", hint="run `cclm-shelf install` first"
        )
    members = [Member(LOCK_NAME, _sha256(lock_bytes), len(lock_bytes))]
    members += [Member(path, _sha256(data), len(data)) for path, data in sorted(metadata.items())]
    members += [Member(blob_path(oid), oid, size) for oid, size in sorted(blobs.items())]
    toc = canonical_json(
        {"bundle_version": BUNDLE_VERSION, "members": [dataclasses.asdict(m) for m in members]}
    )
    dest = Path(dest)
    with atomic_file(dest) as out, tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        _add(tar, TOC_NAME, len(toc), io.BytesIO(toc))
        _add(tar, LOCK_NAME, len(lock_bytes), io.BytesIO(lock_bytes))
        for path, data in sorted(metadata.items()):
            _add(tar, path, len(data), io.BytesIO(data))
        for oid, size in sorted(blobs.items()):
            with open(store.path(oid), "rb") as blob:
                _add(tar, blob_path(oid), size, blob)
    return dest.stat().st_size


def _pinned_blobs(components: Sequence[LockedComponent]) -> dict[str, int]:
    return {f.sha256: f.size for c in components for f in c.files}


def _sha256(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


def _add(tar: tarfile.TarFile, name: str, size: int, stream: BinaryIO) -> None:
    """One regular file with nothing of this machine in its header: no owner, no time, a fixed mode."""
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = 0
    info.mode = 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    tar.addfile(info, stream)


# --- reading -------------------------------------------------------------------------------------------


@dataclass
class VerifiedBundle:
    """A bundle that checked out: its lockfile, its metadata, and its content staged in the store."""

    lock: Lockfile
    metadata: dict[str, bytes]
    staged: dict[str, Path] = field(default_factory=dict)  # oid -> temporary file in the store

    def manifests(self) -> dict[str, bytes]:
        """``{name: manifest bytes}`` for every pinned component."""
        return {c.name: self.metadata[layout.manifest_path(c.name, c.version)] for c in self.lock.components}

    def keep(self, store: BlobStore) -> int:
        """Move every staged blob (manifests and signatures too) into the store; returns how many."""
        for oid, tmp in sorted(self.staged.items()):
            store.adopt(tmp, oid)
        count, self.staged = len(self.staged), {}
        return count

    def discard(self) -> None:
        for tmp in self.staged.values():
            tmp.unlink(missing_ok=True)
        self.staged = {}


@contextlib.contextmanager
def open_bundle(
    path: Path, store: BlobStore, check_lock: Callable[[Lockfile], None] | None = None
) -> Iterator[VerifiedBundle]:
    """Verify the bundle at ``path`` while staging it; yields it, and discards what was not kept.

    ``check_lock`` sees the bundle's lockfile before any blob is read (to refuse another project's).
    """
    path = Path(path)
    if not path.is_file():
        raise BundleError(f"no bundle at {path}", hint="give the path of a file made by `cclm-shelf bundle`")
    bundle = VerifiedBundle(Lockfile("sha256:"), {})
    try:
        with open(path, "rb") as raw:
            _read(raw, path, store, bundle, check_lock)
        yield bundle
    finally:
        bundle.discard()


def _read(raw: BinaryIO, path: Path, store: BlobStore, bundle: VerifiedBundle, check_lock) -> None:
    try:
        with tarfile.open(fileobj=raw, mode="r|") as tar:
            members = iter(tar)
            toc = _read_toc(tar, next(members, None), path)
            end = 0
            for expected in toc:
                info = _check_header(next(members, None), expected, path)
                _read_member(tar, info, expected, path, store, bundle)
                end = info.offset_data + info.size
                if expected.path == LOCK_NAME:
                    bundle.staged.pop(expected.sha256).unlink()  # the lockfile is not for the store
                    bundle.lock = _read_lock(bundle, toc, path)
                    if check_lock is not None:
                        check_lock(bundle.lock)
            extra = next(members, None)
            if extra is not None:
                raise _damaged(path, f"it holds {extra.name!r}, which its table of contents does not list")
        _check_end(raw, end, path)
    except (tarfile.TarError, EOFError) as e:
        raise _damaged(path, f"it is truncated or not a bundle ({e})") from e


def _check_end(raw: BinaryIO, end: int, path: Path) -> None:
    """After the last member only the end-of-archive blocks follow, whole: a cut there is refused too."""
    end += -end % tarfile.BLOCKSIZE
    raw.seek(end)
    tail = raw.read(tarfile.RECORDSIZE + 2 * tarfile.BLOCKSIZE + 1)
    total = end + len(tail)
    if len(tail) < 2 * tarfile.BLOCKSIZE or total % tarfile.RECORDSIZE or tail.count(0) != len(tail):
        raise _damaged(path, "its end is missing or altered (truncated?)")


def _damaged(path: Path, what: str) -> BundleError:
    return BundleError(f"refusing the bundle {path}: {what}; nothing was installed or stored", hint=_HINT)


def _read_toc(tar: tarfile.TarFile, info: tarfile.TarInfo | None, path: Path) -> list[Member]:
    if info is None or info.name != TOC_NAME or not info.isfile() or info.size > _TOC_LIMIT:
        raise _damaged(path, f"it does not start with {TOC_NAME}")
    try:
        data = json.loads(_read_all(tar, info, path))
        if data.get("bundle_version") != BUNDLE_VERSION:
            raise _damaged(path, f"bundle_version {data.get('bundle_version')!r} is not {BUNDLE_VERSION}")
        members = [Member(str(m["path"]), str(m["sha256"]), int(m["size"])) for m in data["members"]]
    except (ValueError, TypeError, KeyError, AttributeError) as e:
        raise _damaged(path, f"its table of contents is not readable ({type(e).__name__})") from e
    if not members or members[0].path != LOCK_NAME:
        raise _damaged(path, f"its table of contents does not start with {LOCK_NAME}")
    if len({m.path for m in members}) != len(members):
        raise _damaged(path, "its table of contents lists a member twice")
    return members


def _read_all(tar: tarfile.TarFile, info: tarfile.TarInfo, path: Path) -> bytes:
    stream = tar.extractfile(info)
    data = stream.read() if stream is not None else b""
    if len(data) != info.size:
        raise _damaged(path, f"{info.name} is truncated")
    return data


def _check_header(info: tarfile.TarInfo | None, expected: Member, path: Path) -> tarfile.TarInfo:
    if info is None:
        raise _damaged(path, f"it ends before {expected.path} (truncated?)")
    if info.name != expected.path or not info.isfile():
        raise _damaged(path, f"found {info.name!r} where {expected.path!r} should be")
    if info.size != expected.size:
        raise _damaged(
            path, f"{expected.path} has {info.size} bytes, its table of contents says {expected.size}"
        )
    return info


def _read_member(tar, info, expected: Member, path: Path, store: BlobStore, bundle: VerifiedBundle) -> None:
    """Stage one member in the store while hashing it; metadata is also kept in memory."""
    if not expected.is_blob and expected.size > _METADATA_LIMIT:
        raise _damaged(path, f"{expected.path} is too large for a manifest or signature")
    stream = tar.extractfile(info)
    if stream is None:
        raise _damaged(path, f"{expected.path} is not a regular file")
    try:
        staged = store.stage(stream, expected.sha256, expected.size, f"{path}:{expected.path}")
    except IntegrityError as e:
        raise _damaged(path, f"{expected.path} does not match its sha256 or size") from e
    except StoreError as e:  # an object id that is not a sha256
        raise _damaged(path, f"{expected.path} has no valid sha256 in the table of contents") from e
    if expected.sha256 in bundle.staged:
        staged.unlink()  # the same bytes twice (two signatures alike): one staged copy is enough
    else:
        bundle.staged[expected.sha256] = staged
    if not expected.is_blob:
        bundle.metadata[expected.path] = bundle.staged[expected.sha256].read_bytes()


def _read_lock(bundle: VerifiedBundle, toc: Sequence[Member], path: Path) -> Lockfile:
    """Parse the bundle's lockfile and check the table of contents holds exactly what it pins."""
    try:
        lock = loads_lockfile(bundle.metadata.pop(LOCK_NAME).decode("utf-8"), Path(f"{path}:{LOCK_NAME}"))
    except (LockfileError, UnicodeDecodeError) as e:
        raise _damaged(path, f"its lockfile is not readable: {e}") from e
    listed = {m.path: m for m in toc}
    wanted = {blob_path(oid): size for oid, size in _pinned_blobs(lock.components).items()}
    for c in lock.components:
        _check_listed(listed.get(layout.manifest_path(c.name, c.version)), c, path)
    for blob, size in wanted.items():
        member = listed.get(blob)
        if member is None or member.size != size or blob_path(member.sha256) != blob:
            raise _damaged(path, f"it lacks {blob} that its lockfile pins")
    folders = {layout.component_dir(c.name, c.version) + "/" for c in lock.components}
    for member in toc[1:]:
        if member.path not in wanted and not _is_metadata(member.path, folders):
            raise _damaged(path, f"it holds {member.path}, which its lockfile does not pin")
    return lock


def _check_listed(member: Member | None, component: LockedComponent, path: Path) -> None:
    if member is None or f"sha256:{member.sha256}" != component.manifest_digest:
        what = f"the manifest of {component.name} {component.version}"
        raise _damaged(path, f"{what} is missing or does not match its lockfile's digest")


def _is_metadata(member: str, folders: set[str]) -> bool:
    """A file directly in a pinned component's folder (a manifest or a signature), not in an item."""
    return str(PurePosixPath(member).parent) + "/" in folders


# --- comparing with a project ----------------------------------------------------------------------------


def pins(component: LockedComponent) -> tuple:
    """What a component pins, wherever it came from."""
    return (component.name, component.version, component.manifest_digest, frozenset(component.files))


def check_matches(bundled: Lockfile, project: Lockfile, project_path: Path) -> None:
    """Refuse a bundle that does not pin exactly what the project's lockfile pins."""
    ours = {c.name: pins(c) for c in project.components}
    theirs = {c.name: pins(c) for c in bundled.components}
    if ours == theirs:
        return
    differ = sorted(set(ours) ^ set(theirs)) or sorted(n for n in ours if ours[n] != theirs[n])
    name = differ[0]
    mine = f"{ours[name][1]}" if name in ours else "nothing"
    other = f"{theirs[name][1]}" if name in theirs else "nothing"
    if name in ours and name in theirs and ours[name][1] == theirs[name][1]:
        mine, other = f"{mine} ({ours[name][2][:19]}…)", f"{other} ({theirs[name][2][:19]}…)"
    raise BundleError(
        f"the bundle does not match {project_path}: for {name} the bundle has {other}, the lockfile pins "
        f"{mine}; nothing was installed",
        hint="make the bundle from this lockfile, or install without --bundle",
    )
