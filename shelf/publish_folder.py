"""The folder being published: its items, their files, its publish file, and a snapshot into the store.

An item is a sub-folder holding one of ``MARKERS`` (or the folder itself); links and special files are
refused. ``snapshot`` copies every file into the blob store while hashing it, and ``check_unchanged``
refuses a publish when a file changed (size, mtime, inode) while it was being copied.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from shelf.errors import PublishError, UnsafeContentError
from shelf.store import BlobStore

METADATA_FILE = "cclm-publish.toml"  # describes the package; never one of its files
MARKERS = ("cclm_config.json", "embedder.json", "component.json", "composed.json")


@dataclass(frozen=True)
class SnapshotFile:
    item: str
    path: str  # relative to the item folder, POSIX separators
    sha256: str
    size: int


def find_items(folder: Path) -> dict[str, Path]:
    """The saved items in a folder: itself if the core saved an item there, else its subfolders."""
    folder = _checked_dir(folder)
    if any((folder / m).is_file() for m in MARKERS):
        return {_item_type(folder): folder}
    items: dict[str, Path] = {}
    for child in sorted(folder.iterdir()):
        if child.name == METADATA_FILE:
            continue
        if child.is_symlink() or not child.is_dir():
            raise UnsafeContentError(
                f"{child} is not a saved item folder", hint="a publish folder holds only saved items"
            )
        kind = _item_type(child)
        if kind in items:
            raise PublishError(f"{folder} holds two {kind} items: {items[kind].name} and {child.name}")
        items[kind] = child
    if not items:
        raise PublishError(f"{folder} holds no saved item", hint="save a model with the core, then publish")
    return items


def _checked_dir(folder: Path) -> Path:
    if folder.is_symlink() or not folder.is_dir():
        raise PublishError(f"{folder} is not a folder", hint="pass the folder the model was saved to")
    return folder.resolve()


def _item_type(folder: Path) -> str:
    from cclm_core.fingerprint import item_type

    return item_type(folder)


def walk_item(folder: Path) -> list[tuple[str, Path]]:
    """Every regular file of an item folder; links, devices and other special files are refused."""
    found = []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=False):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            mode = path.lstat().st_mode
            if stat.S_ISLNK(mode):
                raise UnsafeContentError(f"refusing to publish the symbolic link {path}")
            if name in filenames and not stat.S_ISREG(mode):
                raise UnsafeContentError(f"refusing to publish the special file {path}")
        for name in filenames:
            path = Path(dirpath) / name
            found.append((path.relative_to(folder).as_posix(), path))
    # The publish file describes the package; it is not part of the item saved beside it.
    return sorted(f for f in found if f[0] != METADATA_FILE)


def snapshot(items: dict[str, Path], store: BlobStore) -> list[SnapshotFile]:
    """Copy every file into the store, hashing as it goes; refuse files that change meanwhile."""
    files = []
    for item, folder in sorted(items.items()):
        for rel, path in walk_item(folder):
            before = _state(path)
            oid = store.add_file(path)
            if _state(path) != before:
                raise _changed([path])
            files.append(SnapshotFile(item, rel, oid, before[0]))
    return files


def _state(path: Path) -> tuple[int, int, int]:
    info = path.stat()
    return info.st_size, info.st_mtime_ns, info.st_ino


def folder_state(items: dict[str, Path]) -> dict[Path, tuple[int, int, int]]:
    """Size, modification time and inode of every file of the items, to notice changes later."""
    return {path: _state(path) for folder in items.values() for _rel, path in walk_item(folder)}


def check_unchanged(items: dict[str, Path], before: dict[Path, tuple[int, int, int]]) -> None:
    """Refuse a publish whose files changed between fingerprinting and hashing."""
    after = folder_state(items)
    changed = sorted(p for p in before.keys() | after.keys() if before.get(p) != after.get(p))
    if changed:
        raise _changed(changed)


def _changed(paths: Sequence[Path]) -> PublishError:
    listed = ", ".join(str(p) for p in paths[:5]) + (" ..." if len(paths) > 5 else "")
    return PublishError(
        f"files changed while they were being published: {listed}",
        hint="wait until the model is saved completely, then publish again",
    )


def read_metadata_file(folder: Path) -> dict:
    """Name, version and the rest from ``cclm-publish.toml`` in the folder, when there is one."""
    import tomllib

    path = folder / METADATA_FILE
    if not path.is_file():
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise PublishError(f"{path} is not valid TOML: {e}") from e
    _check_metadata_types(path, data)
    return data


_METADATA_TYPES: dict[str, tuple[type, str]] = {
    "name": (str, "a string"),
    "version": (str, 'a string such as "0.1.0"'),
    "summary": (str, "a string"),
    "license": (str, "a string"),
    "requires": (list, "a list of requirement strings"),
    "training": (dict, "a table"),
}


def _check_metadata_types(path: Path, data: dict) -> None:
    for key, (kind, what) in _METADATA_TYPES.items():
        value = data.get(key)
        if value is not None and not isinstance(value, kind):
            raise PublishError(
                f"{path}: {key!r} must be {what}, not {value!r}", hint=f"fix {key} in {path.name}"
            )
    if any(not isinstance(r, str) for r in data.get("requires", [])):
        raise PublishError(
            f"{path}: every entry of 'requires' must be a string", hint='e.g. requires = ["base==0.1.0"]'
        )
