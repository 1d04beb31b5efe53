"""Shelves crafted for the reliability tests, with synthetic blobs and no TensorFlow.

A crafted shelf is a real bare git repository whose manifests, pointer files and index are written with the
package's own formats and committed with ``ShelfMirror.commit_and_push``; its blobs are uploaded to a real
LFS server (or put in the repository's ``lfs/objects``). ``commit_raw`` writes any bytes at any path, which
is how hostile shelves are made: what a malicious publisher could push with plain git.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

EMBEDDER = "sha256:" + hashlib.sha256(b"reliability embedder").hexdigest()
VOCAB = "sha256:" + hashlib.sha256(b"reliability vocabulary").hexdigest()
BASE = {"embedder": EMBEDDER, "vocab": VOCAB, "max_input_length": 64, "n_chars": 100}
REPO_ROOT = Path(__file__).resolve().parents[2]


def blob(seed: int, size: int) -> bytes:
    """Deterministic pseudo-random bytes."""
    return random.Random(seed).randbytes(size)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def manifest_dict(
    name: str, version: str, files: Mapping[str, bytes], requires: Sequence[str] = (), kind: str = "component"
) -> dict:
    """A valid manifest for synthetic files (``item/path`` -> bytes)."""
    items: dict[str, dict] = {}
    for rel, data in sorted(files.items()):
        item, path = rel.split("/", 1)
        items.setdefault(item, {"files": []})["files"].append(
            {"path": path, "sha256": sha256(data), "size": len(data)}
        )
    data = {
        "schema_version": 1,
        "name": name,
        "version": version,
        "kind": kind,
        "summary": f"{name} for reliability tests",
        "license": "MIT",
        "items": items,
        "base": dict(BASE),
        "provides": {"output_dim": 8},
        "requires": list(requires),
        "framework": {"cclm-core": ">=0.1"},
    }
    if kind == "embedder":
        data["provides"] = {
            **{k: BASE[k] for k in ("embedder", "max_input_length", "n_chars")},
            "output_dim": 8,
        }
    return data


@dataclass
class CraftedShelf:
    """A bare shelf repository plus where its blobs go; ``url`` is what installers are given."""

    repo: Path
    work: Path
    lfs_endpoint: str | None = None  # upload blobs here (None: into the repository's lfs/objects)

    @property
    def url(self) -> str:
        return str(self.repo)

    @classmethod
    def create(cls, repo: Path, *, lfs_url: str | None = None, upload_to: str | None = None) -> CraftedShelf:
        from shelf.source import create_shelf

        create_shelf(repo, lfs_url=lfs_url)
        return cls(repo, repo.parent / f"{repo.name}-work", upload_to)

    def _mirror(self):
        from shelf.remote.mirror import ShelfMirror

        mirror = ShelfMirror.open(self.url, cache_dir=self.work / "cache")
        mirror.refresh()
        return mirror

    def commit_raw(
        self, files: Mapping[str, bytes | None], tags: Sequence[str] = (), message: str = "craft"
    ) -> str:
        """Commit arbitrary bytes at arbitrary paths, as a hostile publisher could."""
        mirror = self._mirror()
        return mirror.commit_and_push(
            dict(files), message, parent=mirror.head(), branch=mirror.default_branch(), tags=list(tags)
        )

    def put_blobs(self, blobs: Sequence[bytes]) -> None:
        """Make the blobs available where installers will fetch them."""
        from shelf.remote.lfs_http import LfsClient
        from shelf.remote.lfs_local import LocalLfsObjects
        from shelf.remote.lfs_protocol import LfsObject

        folder = self.work / "blobs"
        folder.mkdir(parents=True, exist_ok=True)
        pairs = []
        for data in blobs:
            path = folder / sha256(data)
            path.write_bytes(data)
            pairs.append((LfsObject(sha256(data), len(data)), path))
        transport = LfsClient(self.lfs_endpoint, jobs=2) if self.lfs_endpoint else LocalLfsObjects(self.repo)
        transport.upload(pairs)

    def publish(
        self,
        name: str,
        version: str,
        files: Mapping[str, bytes],
        requires: Sequence[str] = (),
        kind: str = "component",
        *,
        manifest: dict | None = None,
        index_line: dict | None = None,
    ) -> str:
        """Publish synthetic files; ``manifest``/``index_line`` replace what is committed."""
        from registry_index import layout
        from registry_index.pointer import LfsPointer, format_pointer

        self.put_blobs(list(files.values()))
        data = manifest or manifest_dict(name, version, files, requires, kind)
        raw = json.dumps(data, indent=2, sort_keys=True).encode() + b"\n"
        changes: dict[str, bytes | None] = {layout.manifest_path(name, version): raw}
        for rel, content in files.items():
            item, path = rel.split("/", 1)
            changes[f"{layout.component_dir(name, version)}/{item}/{path}"] = format_pointer(
                LfsPointer(sha256(content), len(content))
            )
        changes[layout.index_path(name)] = self._index_file(name, version, data, raw, index_line)
        return self.commit_raw(changes, tags=[layout.release_tag(name, version)], message=f"Publish {name}")

    def _index_file(self, name: str, version: str, data: dict, raw: bytes, line: dict | None) -> bytes:
        """The index file with one more line: ``line`` as given, or the entry of ``raw``."""
        from registry_index import layout
        from registry_index.errors import RegistryIndexError
        from registry_index.index import entry_from_manifest
        from registry_index.manifest import Manifest, manifest_digest

        existing = self._existing_lines(layout.index_path(name))
        if line is not None:
            return existing + json.dumps(line).encode() + b"\n"
        try:
            manifest = Manifest.from_dict(data)
        except RegistryIndexError:
            # A hostile manifest does not validate: its entry comes from a valid twin, pointed at its bytes.
            twin = manifest_dict(name, version, {"model/x": b""}, data.get("requires", ()), data["kind"])
            manifest = Manifest.from_dict(twin)
        return existing + entry_from_manifest(manifest, manifest_digest(raw)).to_line()

    def _existing_lines(self, path: str) -> bytes:
        mirror = self._mirror()
        return mirror.read_file(mirror.head(), path) if mirror.exists(mirror.head(), path) else b""


def stack_files(seed: int, count: int = 3, size: int = 64 * 1024) -> dict[str, bytes]:
    """``count`` synthetic files for one component, the first one ``size`` bytes, the others smaller."""
    files = {"model/weights.h5": blob(seed, size)}
    for i in range(1, count):
        files[f"model/part{i}.bin"] = blob(seed * 100 + i, 1024 + i)
    return files


def git_fsck(repo: Path) -> str:
    done = subprocess.run(
        ["git", "fsck", "--strict", "--no-progress"], cwd=repo, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return done.stdout + done.stderr


def cli_env(**extra: str) -> dict[str, str]:
    """The environment for a ``cclm-shelf`` child process run from this checkout."""
    return {**os.environ, "PYTHONPATH": str(REPO_ROOT), **extra}


def run_cli(*args: str, cache: Path, timeout: float = 120, **env: str) -> subprocess.CompletedProcess:
    """``cclm-shelf ARGS`` in a child process with its own cache; whatever it says, never a traceback."""
    done = subprocess.run(
        [sys.executable, "-m", "shelf.cli", *args],
        env=cli_env(CCLM_SHELF_CACHE_DIR=str(cache), **env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert "Traceback" not in done.stderr, done.stderr
    return done


# Invariants ---------------------------------------------------------------------------------------------


def tree(folder: Path) -> dict[str, tuple[int, int, int]]:
    """Every path under ``folder`` with size, inode and mtime: two equal trees are untouched trees."""
    if not folder.exists():
        return {}
    found = {}
    for path in sorted(folder.rglob("*")):
        st = path.lstat()
        found[path.relative_to(folder).as_posix()] = (
            st.st_size if path.is_file() else -1,
            st.st_ino,
            st.st_mtime_ns,
        )
    return found


def store_blobs(cache: Path) -> dict[str, tuple[int, int, int]]:
    """The store's finished blobs (partial files, locks and scratch left out)."""
    return {k: v for k, v in tree(cache / "blobs").items() if v[0] >= 0 and not k.endswith(".incomplete")}


def check_store(cache: Path, known: Mapping[str, bytes], before: Mapping[str, tuple] | None = None) -> None:
    """Every blob is verified and every partial file is a true prefix; nothing that was there changed."""
    blobs = store_blobs(cache)
    for rel in blobs:
        oid = rel.rsplit("/", 1)[1]
        assert sha256((cache / "blobs" / rel).read_bytes()) == oid, f"unverified blob {rel} in the store"
    for partial in (cache / "blobs").rglob("*.incomplete") if (cache / "blobs").exists() else ():
        oid = partial.name.removesuffix(".incomplete")
        data = partial.read_bytes()
        assert oid in known and known[oid].startswith(data), (
            f"partial file {partial.name} is not a true prefix"
        )
    for rel, stat in (before or {}).items():
        assert blobs.get(rel) == stat, f"blob {rel} changed or vanished"
    scratch = list((cache / "tmp").glob("*")) if (cache / "tmp").exists() else []
    assert not scratch, f"scratch files left in the store: {scratch}"


def check_target(target: Path) -> int:
    """The install record's every file verifies, and no staging or trash folder is left."""
    from shelf.install import installed_file_count, verify_installed

    assert verify_installed(target) == []
    debris = [p.name for p in target.iterdir() if p.name.startswith((".staging-", ".trash-"))]
    assert not debris, f"debris in the target: {debris}"
    return installed_file_count(target)
