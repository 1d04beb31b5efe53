"""Writing a shelf's sparse index as static files, for any static host or CDN (``cclm-shelf export DEST``).

What DEST gets (``registry_index.layout`` names each path)::

    config.json                                 {"blobs": {"kind": "lfs", "url": ...} or {"kind": "static"},
                                                 "format": 1}
    index/config.json, index/<prefix>/<name>    the shelf's index files, byte for byte
    index/names.txt                             every component name, one a line (for search)
    components/<name>/<version>/cclm-manifest.json (+ .sig, .pub)   byte for byte
    blobs/sha256/<aa>/<oid>                     with ``with_blobs``: every blob a manifest names

Everything comes from the shelf's git objects unchanged (so its digests still hold) and is written only when
its bytes differ from what DEST holds, through an atomic rename: exporting an unchanged shelf again writes
nothing, and a sync to object storage moves only what changed. Nothing else in DEST is touched; a blob
already in DEST with its size is kept (blobs are named by their hash and never change).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from registry_index import layout
from registry_index.manifest import Manifest
from shelf.errors import ConfigError


@dataclass
class ExportReport:
    changed: list[str] = field(default_factory=list)  # paths under DEST written this time
    blobs_added: int = 0
    components: int = 0


def sparse_config(lfs_url: str | None) -> bytes:
    """``config.json``: static blobs (under the export) when ``lfs_url`` is None, else that LFS server."""
    blobs = {"kind": "lfs", "url": lfs_url} if lfs_url else {"kind": "static"}
    return (json.dumps({"blobs": blobs, "format": 1}, indent=2, sort_keys=True) + "\n").encode()


def blob_source(source, lfs_url: str | None, with_blobs: bool) -> str | None:
    """Where clients of the export fetch blobs: None for static blobs, else an http(s) LFS endpoint."""
    from shelf.remote.transport import endpoint_for

    if with_blobs:
        return None
    found = lfs_url or endpoint_for(source.url, source.mirror.lfs_url(source.head))
    if not found or not found.startswith(("http://", "https://")):
        raise ConfigError(
            f"the shelf {source.url} names no http(s) LFS server its static index could point at",
            hint="add --with-blobs to put the blobs in DEST, or give --lfs-url URL",
        )
    return found


def export_sparse(source, dest: Path, *, lfs_url: str | None = None, store=None) -> ExportReport:
    """Write the sparse index of a git ``ShelfSource`` under ``dest``; ``store`` set: with its blobs."""
    from shelf.site.render import write_site

    files = _index_files(source)
    manifests = _component_files(source, files)
    report = ExportReport(components=len(files) - 1)
    files[layout.NAMES_PATH] = "".join(f"{n}\n" for n in source.index.names()).encode()
    files[layout.SPARSE_CONFIG_PATH] = sparse_config(lfs_url)
    _refuse_foreign_config(Path(dest) / layout.SPARSE_CONFIG_PATH)
    report.changed = write_site(files, dest)
    if store is not None:
        report.blobs_added = _export_blobs(source, manifests, Path(dest), store)
    return report


def _refuse_foreign_config(path: Path) -> None:
    """A config.json already in DEST must be an export's (``blobs`` and ``format``): never a file of yours."""
    try:
        data = json.loads(path.read_bytes())
    except FileNotFoundError:
        return
    except (OSError, ValueError):
        data = None
    if not (isinstance(data, dict) and {"blobs", "format"} <= data.keys()):
        raise ConfigError(
            f"{path} is not the config.json of an export; nothing was exported",
            hint="export to a new folder, or move that file out of the way first",
        )


def _index_files(source) -> dict[str, bytes]:
    """``index/config.json`` and every component's index file, as the shelf holds them."""
    names = source.index.names()
    paths = [layout.INDEX_CONFIG_PATH, *(layout.index_path(n) for n in names)]
    return dict(source.mirror.read_many(source.head, paths, missing_ok=True))


def _component_files(source, files: dict[str, bytes]) -> list[Manifest]:
    """Add every file directly in a version's folder (manifest, signature, key); returns the manifests."""
    if not source.index.names():
        return []  # an empty shelf has no components folder at all
    paths = [
        entry.path
        for entry in source.mirror.list_tree(source.head, layout.COMPONENTS_DIR, recursive=True)
        if entry.kind == "blob" and len(PurePosixPath(entry.path).parts) == 4
    ]
    found = source.mirror.read_many(source.head, paths) if paths else {}
    files.update(found)
    manifests = []
    for name in source.index.names():
        for entry in source.index.entries(name):
            data = found.get(layout.manifest_path(entry.name, entry.version))
            if data is not None:
                manifests.append(source.check_manifest(entry, data))
    return manifests


def _export_blobs(source, manifests: list[Manifest], dest: Path, store) -> int:
    """Every blob the manifests name, at ``blobs/sha256/<aa>/<oid>`` (from the store, fetched if absent)."""
    from shelf.remote.lfs_protocol import LfsObject

    wanted = {f.sha256: f.size for m in manifests for files in m.items.values() for f in files}
    missing = {oid: size for oid, size in sorted(wanted.items()) if not _has_blob(dest, oid, size)}
    if not missing:
        return 0
    source.transport().download([LfsObject(oid, size) for oid, size in missing.items()], store)
    for oid in missing:
        _copy_blob(store.path(oid), dest / layout.blob_path(oid))
    return len(missing)


def _copy_blob(blob: Path, target: Path) -> None:
    """A copy, not a link: a file in DEST edited in place must not change the store's verified blob."""
    import shutil

    from shelf.fsutil import atomic_file

    target.parent.mkdir(parents=True, exist_ok=True)
    with blob.open("rb") as src, atomic_file(target, mode=0o644) as out:
        shutil.copyfileobj(src, out, 1 << 20)


def _has_blob(dest: Path, oid: str, size: int) -> bool:
    try:
        return (dest / layout.blob_path(oid)).stat().st_size == size
    except OSError:
        return False
