"""Real shelves for tests: tiny untrained saved folders, published once per session, copied per test.

Building Keras models is the slow part, so ``saved_stack`` builds them once per test session (under the
session's base temporary folder) and later calls reuse the folders::

    stack = saved_stack(tmp_path_factory)            # base/, mlm/, chars/, foreign/ (see SavedStack)
    shelf = published_shelf(tmp_path_factory, tmp_path / "shelf.git")   # a private copy per test

Session-scoped work must not rely on the per-test environment of ``tests/conftest.py`` (it is set up
after session fixtures), so everything here passes cache folders and git identities explicitly.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

BASE, MLM, CHARS, FOREIGN = "tiny_base", "tiny_mlm", "tiny_chars", "tiny_foreign"
VERSION = "0.1.0"
MAX_LEN = 16
MLM_DIM, CHARS_DIM = 8, 4
TEXTS = ["hello world", "cclm is neat", "character level models", "abc xyz 0123"]

_IDENTITY = {
    "GIT_AUTHOR_NAME": "cclm-shelf tests",
    "GIT_AUTHOR_EMAIL": "tests@cclm-shelf.invalid",
    "GIT_COMMITTER_NAME": "cclm-shelf tests",
    "GIT_COMMITTER_EMAIL": "tests@cclm-shelf.invalid",
}
# git-lfs filters for commands run without a global `git lfs install`.
LFS_FILTERS = (
    "-c", "filter.lfs.process=git-lfs filter-process",
    "-c", "filter.lfs.smudge=git-lfs smudge -- %f",
    "-c", "filter.lfs.clean=git-lfs clean -- %f",
    "-c", "filter.lfs.required=true",
)  # fmt: skip


@dataclass(frozen=True)
class SavedStack:
    """Folders saved by the core, ready to publish.

    ``base`` holds ``preprocessor/`` and ``embedder/``; ``mlm`` and ``chars`` are components built on that
    embedder; ``foreign`` is a component of the same shape built on ANOTHER embedder, saved (with the
    same preprocessor) in ``foreign_base``.
    """

    root: Path
    base: Path
    mlm: Path
    chars: Path
    foreign: Path
    foreign_base: Path


@contextmanager
def session_env(cache_dir: Path) -> Iterator[None]:
    """The environment a session fixture needs: its own cache and a git identity."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CCLM_SHELF_CACHE_DIR", str(cache_dir))
        mp.setenv("CCLM_SHELF_HOME", str(cache_dir.parent / "home"))
        mp.delenv("CCLM_SHELF_OFFLINE", raising=False)
        for name, value in _IDENTITY.items():
            mp.setenv(name, value)
        yield


def _build_stack(root: Path) -> None:
    from cclm_core.models import Embedder
    from cclm_core.preprocessing import Preprocessor
    from cclm_core.pretraining import CharacterReconstructionPretrainer, MaskedLanguagePretrainer

    prep = Preprocessor(max_example_len=MAX_LEN).fit(TEXTS)
    sizes = {"char_emb_size": 4, "n_filters": 8, "n_blocks": 1, "filter_len": 3}
    embedder = Embedder(prep.max_example_len, prep.n_chars, **sizes)
    mlm = MaskedLanguagePretrainer(embedder, prep, output_dim=MLM_DIM, hidden_dim=8, num_heads=1)
    chars = CharacterReconstructionPretrainer(embedder, prep, output_dim=CHARS_DIM)
    # Same vocabulary and shapes, other weights: only the embedder fingerprint tells them apart.
    other = Embedder(prep.max_example_len, prep.n_chars, **sizes)
    foreign = CharacterReconstructionPretrainer(other, prep, output_dim=CHARS_DIM)
    prep.save(root / "base" / "preprocessor")
    embedder.save(root / "base" / "embedder")
    mlm.save(root / "mlm")
    chars.save(root / "chars")
    foreign.save(root / "foreign")
    prep.save(root / "foreign_base" / "preprocessor")
    other.save(root / "foreign_base" / "embedder")


def saved_stack(tmp_path_factory: pytest.TempPathFactory) -> SavedStack:
    """The session's saved folders, built on first use (the only TensorFlow work of these helpers)."""
    root = tmp_path_factory.getbasetemp() / "cclm-saved-stack"
    if not (root / ".done").exists():
        shutil.rmtree(root, ignore_errors=True)
        _build_stack(root)
        (root / ".done").write_text("ok")
    return SavedStack(
        root, root / "base", root / "mlm", root / "chars", root / "foreign", root / "foreign_base"
    )


def publish_folder(
    shelf_url: str,
    folder: Path,
    name: str,
    version: str = VERSION,
    requires: Sequence[str] = (),
    *,
    cache_dir: Path,
):
    """Publish one saved folder with the package's own publish; returns its report."""
    from shelf.api import Shelf
    from shelf.publish import PackageInfo, publish

    shelf = Shelf(shelf_url, cache_dir=cache_dir)
    info = PackageInfo(name, version, summary=f"{name} for tests", license="MIT", requires=tuple(requires))
    return publish(folder, info, shelf.source(), shelf.store)


def publish_stack(shelf_url: str, stack: SavedStack, cache_dir: Path, version: str = VERSION) -> None:
    """Publish base, mlm and chars (both requiring the base at the same version)."""
    requires = [f"{BASE}=={version}"]
    publish_folder(shelf_url, stack.base, BASE, version, cache_dir=cache_dir)
    publish_folder(shelf_url, stack.mlm, MLM, version, requires, cache_dir=cache_dir)
    publish_folder(shelf_url, stack.chars, CHARS, version, requires, cache_dir=cache_dir)


def published_shelf(tmp_path_factory: pytest.TempPathFactory, dest: Path) -> Path:
    """A local shelf holding the published stack at ``VERSION``, copied to ``dest`` for one test."""
    template = tmp_path_factory.getbasetemp() / "cclm-shelf-template"
    if not (template / ".done").exists():
        shutil.rmtree(template, ignore_errors=True)
        stack = saved_stack(tmp_path_factory)
        with session_env(template / "cache"):
            from shelf.source import create_shelf

            create_shelf(template / "shelf.git")
            publish_stack(str(template / "shelf.git"), stack, template / "cache")
        (template / ".done").write_text("ok")
    shutil.copytree(template / "shelf.git", dest, symlinks=True)
    return dest


def lfs_object(shelf: Path, oid: str) -> Path:
    """Where a local shelf keeps one blob (git-lfs's own layout)."""
    return shelf / "lfs" / "objects" / oid[:2] / oid[2:4] / oid


def corrupt(path: Path) -> bytes:
    """Flip the first byte of a file in place, keeping its size; returns the original bytes."""
    original = path.read_bytes()
    os.chmod(path, 0o644)
    path.write_bytes(bytes([original[0] ^ 0xFF]) + original[1:])
    return original


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def manifest_files(target: Path, name: str) -> dict[str, tuple[str, int]]:
    """``item/path`` -> (sha256, size) from the manifest installed beside a component."""
    data = json.loads((target / name / "cclm-manifest.json").read_text(encoding="utf-8"))
    return {
        f"{item}/{f['path']}": (f["sha256"], f["size"])
        for item, spec in data["items"].items()
        for f in spec["files"]
    }


def assert_installed(target: Path, name: str) -> int:
    """Check an installed component byte for byte against its manifest; returns the file count."""
    expected = manifest_files(target, name)
    on_disk = {
        p.relative_to(target / name).as_posix()
        for p in (target / name).rglob("*")
        if p.is_file() and p.name != "cclm-manifest.json"
    }
    assert on_disk == set(expected), f"{name}: files on disk differ from the manifest"
    for rel, (digest, size) in expected.items():
        path = target / name / rel
        assert path.stat().st_size == size, rel
        assert sha256_of(path) == digest, rel
    return len(expected)


def tree_snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """Every path under ``folder`` with its size and inode: compares a folder before and after."""
    if not folder.exists():
        return {}
    return {
        p.relative_to(folder).as_posix(): (p.lstat().st_size if p.is_file() else -1, p.lstat().st_ino)
        for p in sorted(folder.rglob("*"))
    }


def git(*args: str, cwd: Path, env: dict[str, str] | None = None) -> str:
    """Run git (with the test identity); returns stdout, raises with stderr on failure."""
    full_env = {**os.environ, **_IDENTITY, **(env or {})}
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, env=full_env, check=False)
    if done.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed:\n{done.stderr.decode(errors='replace')}")
    return done.stdout.decode()


def cli(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None):
    """Run ``python -m shelf.cli`` in a new process, as a user would; returns the CompletedProcess."""
    root = Path(__file__).resolve().parents[2]
    full_env = {**os.environ, "PYTHONPATH": str(root), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "shelf.cli", *args],
        cwd=cwd or root,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def legacy_config(chars: str, max_len: int) -> dict:
    """A preprocessor config in the original cclm format: string ids in char_rev, ids from 4, no 'format'."""
    char_dict = {ch: i + 4 for i, ch in enumerate(chars)}
    return {
        "char_rev": {str(i): ch for ch, i in char_dict.items()},
        "char_dict": char_dict,
        "max_example_len": max_len,
    }


def tarball(path: Path, members: dict[str, bytes]) -> Path:
    """A gzipped tarball of regular files (what the original shelf published per item)."""
    import io
    import tarfile

    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 1_600_000_000
            tar.addfile(info, io.BytesIO(data))
    return path


def legacy_shelf(root: Path, releases: dict[str, dict[str, Path]]) -> Path:
    """A shelf in the ORIGINAL layout, built and pushed with the real git-lfs client.

    ``releases`` maps a shelf-wide tag (``v0.1.1``) to the archives it holds (``{"preprocessor/x.tar.gz":
    path}``). The work tree tracks ``*.tar.gz`` with git-lfs; pushing to the bare repository (a named
    remote on a local path) puts the objects in ``<bare>/lfs/objects``. Returns the bare repository.
    """
    bare, work = root / "legacy-shelf.git", root / "legacy-work"
    git("init", "-q", "--bare", "-b", "main", str(bare), cwd=root)
    git("init", "-q", "-b", "main", str(work), cwd=root)
    git("lfs", "install", "--local", cwd=work)
    git("lfs", "track", "*.tar.gz", cwd=work)
    for tag, archives in releases.items():
        for rel, source in archives.items():
            (work / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, work / rel)
        git("add", "-A", cwd=work)
        git("commit", "-q", "-m", f"Release {tag}", cwd=work)
        git("tag", tag, cwd=work)
    git("remote", "add", "origin", str(bare), cwd=work)
    git("push", "-q", "origin", "main", "--tags", cwd=work)
    return bare


def pointer_oid(bare: Path, ref: str, path: str) -> str:
    """The object id an LFS pointer file names, read from a bare repository."""
    text = git("show", f"{ref}:{path}", cwd=bare)
    return next(line.split(":", 1)[1] for line in text.splitlines() if line.startswith("oid sha256:"))


def add_signature_files(shelf: Path, name: str, version: str, cache_dir: Path) -> dict[str, bytes]:
    """Sign a published version with a new key and commit the signature and public key beside its
    manifest, where signed publishes put them (as someone who holds a key and signs later would)."""
    from registry_index.manifest import Manifest
    from shelf.signing import keygen, sign, signed_digests
    from shelf.source import ShelfSource

    source = ShelfSource(str(shelf), cache_dir=cache_dir)
    source.refresh()
    raw, _unsigned = source.published(name, version)
    manifest = Manifest.from_validated_bytes(raw)
    private, _public, _fingerprint = keygen(Path(cache_dir) / f"{name}-{version}.pem")
    signature = sign(name, signed_digests(raw, [(i, f.path, f.sha256) for i, f in manifest.files()]), private)
    folder = f"components/{name}/{version}"
    files = {
        f"{folder}/cclm-manifest.sig": signature.bundle,
        f"{folder}/cclm-manifest.pub": signature.public_key,
    }
    source.mirror.commit_and_push(files, f"sign {name} {version}", parent=source.head, branch=source.branch)
    return files
