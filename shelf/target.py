"""An install target: its folder, the record of what cclm-shelf put there, its lock and its trash.

    <target>/<name>/...                              installed components (see ``shelf.install``)
    <target>/.cclm-shelf-install.json                the record: per component its version, digest, source,
                                                     base, link mode, file stats and sha256s; legacy items
    <target>/.install.lock                           serialises writers of this target
    <target>/.cclm-shelf-trash/<name>-<when>-<id>    what was moved aside instead of deleted
    <target>/.staging-*, <target>/.trash-*           debris of an interrupted run, removed by the next one

cclm-shelf replaces or removes only what its record says it put there, and only as it put it there. A
folder it did not install is refused (``force`` moves it into the trash); a folder of its own that now holds
a file it did not put there, or a file edited since, is moved to the trash as a whole instead of removed.
So nothing is deleted that the store could not recreate byte for byte.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path, PurePosixPath

from shelf import constants
from shelf.errors import ConfigError, TargetError, UnsafeContentError
from shelf.filelocks import FileLock
from shelf.fsutil import STAGING_PREFIX, TRASH_PREFIX, atomic_write, discard, file_in_the_way, remove_tree

RECORD_VERSION = 1


def safe_relative(*parts: str) -> PurePosixPath:
    """Join manifest path parts, refusing anything that could leave the component folder."""
    joined = PurePosixPath(*parts)
    bad = joined.is_absolute() or any(p in ("..", "", ".") for p in joined.parts) or "\\" in str(joined)
    # A colon names a drive or an alternate data stream on Windows: refused everywhere, for portability.
    if bad or ":" in str(joined):
        raise UnsafeContentError(f"refusing unsafe path {str(joined)!r} in a manifest or lockfile")
    return joined


def file_stat(path: Path) -> list[int]:
    """What the record keeps of an installed file (a symlink's blob): size, mtime, inode."""
    st = path.stat()
    return [st.st_size, st.st_mtime_ns, st.st_ino]


class InstallTarget:
    """An install folder and its record of what is installed."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.record_path = self.root / constants.INSTALL_RECORD
        self.trash = self.root / constants.TRASH_DIR

    def lock(self) -> FileLock:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            blocker = file_in_the_way(self.root)
            why = f"{blocker} is a file, not a folder" if blocker is not None else e.strerror
            raise ConfigError(
                f"cannot use {self.root} as an install folder: {why}",
                hint="pass --target with a folder you can write to",
            ) from e
        return FileLock(str(self.root / ".install.lock"))

    def read_record(self) -> dict:
        try:
            data = json.loads(self.record_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            # Missing or damaged: every component is then treated as not installed (and is refused, not
            # replaced, if its folder is there; `--force` moves such folders to the trash).
            return {"record_version": RECORD_VERSION, "components": {}}
        if not isinstance(data, dict) or not isinstance(data.get("components", {}), dict):
            return {"record_version": RECORD_VERSION, "components": {}}
        data.setdefault("components", {})
        return data

    def write_record(self, record: dict) -> None:
        # Atomic but not fsynced (two fsyncs were most of a warm reinstall): the links it lists are not
        # fsynced either, and a record lost in a power cut costs a re-link, or a refusal that --force
        # settles; never the user's files.
        atomic_write(self.record_path, json.dumps(record, indent=2, sort_keys=True) + "\n", durable=False)

    def component_dir(self, name: str) -> Path:
        return self.root / safe_relative(name)

    def clean_debris(self) -> None:
        """Remove staging and trash folders left by an interrupted run (never the user's trash)."""
        if not self.root.is_dir():
            return
        for child in self.root.iterdir():
            if child.name.startswith((STAGING_PREFIX, TRASH_PREFIX)):
                remove_tree(child)

    # Ownership -----------------------------------------------------------------------------------------

    def check_replaceable(self, names: list[str], record: dict, force: bool) -> None:
        """Refuse, before anything moves, to replace a folder that cclm-shelf did not install."""
        if force:
            return
        for name in names:
            folder = self.component_dir(name)
            if (folder.exists() or folder.is_symlink()) and not owns(record, name, folder):
                raise TargetError(
                    f"{folder} is not installed by cclm-shelf (it is not in {self.record_path.name});"
                    " refusing to replace or remove it",
                    hint=f"move it away yourself, or pass --force to move it into {self.trash}",
                )

    def swap_in(self, staging: Path, name: str, entry: dict | None) -> Path | None:
        """Rename ``staging`` to the component's folder; returns where the old folder went, if kept."""
        final = self.component_dir(name)
        kept = self._set_aside(final, entry, staging)
        os.replace(staging, final)
        return kept

    def discard(self, name: str, entry: dict | None) -> Path | None:
        """Take the component's folder away: removed if it is exactly what was installed, else trashed."""
        return self._set_aside(self.component_dir(name), entry, None)

    def _set_aside(self, final: Path, entry: dict | None, new: Path | None) -> Path | None:
        """Move ``final`` out of the way: into the trash if it holds anything not as installed, else away.

        The decision comes first, so a crash can only ever leave a ``.trash-*`` folder (removed by the next
        run) that the store can recreate; what is kept goes straight to the trash folder.
        """
        if not (final.exists() or final.is_symlink()):
            return None
        if entry is not None and not final.is_symlink() and _as_installed(final, entry, new):
            discard(final)
            return None
        self.trash.mkdir(exist_ok=True)
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        kept = self.trash / f"{final.name}-{stamp}-{uuid.uuid4().hex[:6]}"
        os.replace(final, kept)
        return kept


def owns(record: dict, name: str, folder: Path) -> bool:
    """Whether cclm-shelf installed ``<target>/<name>``: the record says so (a component or legacy items).

    With the record lost or damaged, a real folder holding the manifest cclm-shelf writes for ``name``
    counts too; having no record entry, it is then moved to the trash when replaced, never removed.
    """
    if name in record["components"] or any(key.split("/")[0] == name for key in record.get("legacy", {})):
        return True
    try:
        manifest = json.loads((folder / constants.MANIFEST_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return not folder.is_symlink() and isinstance(manifest, dict) and manifest.get("name") == name


def _as_installed(old: Path, entry: dict, new: Path | None) -> bool:
    """True when ``old`` holds only the files cclm-shelf placed, none edited since.

    A file counts as unedited when its stats are the recorded ones, or when it is the very file (same
    inode, same link) the new install placed from the verified store.
    """
    recorded = entry.get("files", {})
    for path in old.rglob("*"):
        rel = path.relative_to(old).as_posix()
        if path.is_dir() and not path.is_symlink():
            continue
        if rel == constants.MANIFEST_FILE:
            continue
        if rel not in recorded or not _unedited(path, recorded[rel], new / rel if new else None):
            return False
    return True


def _unedited(path: Path, recorded: list[int], placed: Path | None) -> bool:
    try:
        if placed is not None and path.is_symlink():
            return placed.is_symlink() and os.readlink(path) == os.readlink(placed)
        if placed is not None and path.lstat().st_ino == placed.lstat().st_ino:
            return True
        return file_stat(path) == recorded
    except OSError:
        return False
