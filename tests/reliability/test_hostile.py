"""Hostile input: crafted shelves, archives, requirement strings, model files and URLs.

Each is refused with the package's own error (the CLI exits non-zero without a traceback), and nothing is
written outside the install target: every test installs into ``<tmp>/box/target`` and checks that the rest
of ``<tmp>/box`` (with a sentinel file in it) is exactly as before.
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from shelf.api import Shelf
from shelf.errors import IntegrityError, ShelfError, UnsafeContentError
from tests.reliability.conftest import Tally
from tests.reliability.kit import CraftedShelf, blob, manifest_dict, run_cli, sha256, tree

pytestmark = pytest.mark.network

OWN_ERRORS = ShelfError  # registry_index errors are translated into the shelf tree at the boundary
RERUN = "pytest tests/reliability/test_hostile.py"


class Box:
    """A folder holding the target, a sentinel and the cache; ``untouched`` checks nothing else changed."""

    def __init__(self, root: Path) -> None:
        self.root = root / "box"
        self.target = self.root / "target"
        self.root.mkdir(parents=True)
        (self.root / "sentinel.txt").write_text("keep me")
        self.cache = root / "cache"
        self._before = self._outside()

    def _outside(self) -> dict:
        return {k: v for k, v in tree(self.root).items() if not k.startswith("target")}

    def untouched(self) -> None:
        assert self._outside() == self._before, "something was written outside the target"
        assert not (self.target / ".." / ".." / "escape.bin").exists()
        leftovers = [p.name for p in self.target.rglob("*")] if self.target.exists() else []
        assert not [n for n in leftovers if "escape" in n or n.startswith(".staging-")], leftovers


def _cli(*args: str, cache: Path) -> subprocess.CompletedProcess:
    done = run_cli(*args, cache=cache)
    assert done.returncode != 0, done.stdout
    assert done.stderr.strip() and "Traceback" not in done.stderr, done.stderr
    return done


def _refused_both_ways(shelf: CraftedShelf, request: str, box: Box, match: str, figures: Tally) -> str:
    """Install through the API and the CLI (two trials); both refuse with a message matching ``match``."""
    with figures.trial(), pytest.raises(OWN_ERRORS, match=match) as caught:
        Shelf(shelf.url, cache_dir=box.cache).install(request, target=box.target)
    with figures.trial():
        done = _cli("--shelf", shelf.url, "install", request, "--target", str(box.target), cache=box.cache)
        assert re.search(match, done.stderr), done.stderr
        box.untouched()
    return type(caught.value).__name__


@pytest.fixture
def local_shelf(tmp_path: Path) -> CraftedShelf:
    """A local shelf keeping its blobs in ``lfs/objects``."""
    return CraftedShelf.create(tmp_path / "shelf.git")


FILES = {"model/weights.bin": blob(1, 2048), "model/extra.bin": blob(2, 512)}


def _hostile_manifest(paths: list[str]) -> dict:
    data = manifest_dict("evil", "0.1.0", FILES)
    data["items"]["model"]["files"] = [
        {"path": p, "sha256": sha256(FILES["model/weights.bin"]), "size": 2048} for p in paths
    ]
    return data


MANIFEST_CASES = {
    "dot-dot path": (["../../escape.bin"], r"\.\."),
    "absolute path": (["/tmp/escape.bin"], "absolute|relative"),
    "duplicate path": (["weights.bin", "weights.bin"], "clashes|duplicate"),
    "case-clashing path": (["Weights.bin", "weights.bin"], "clashes|case"),
}


def test_an_item_type_that_climbs_out_is_refused(
    local_shelf: CraftedShelf, tmp_path: Path, tally: Callable[..., Tally]
) -> None:
    figures = tally("hostile", "manifest: item type '..'", f"{RERUN} -k item_type")
    data = manifest_dict("evil", "0.1.0", FILES)
    data["items"] = {"..": data["items"]["model"]}
    local_shelf.publish("evil", "0.1.0", FILES, manifest=data)
    box = Box(tmp_path)
    _refused_both_ways(local_shelf, "evil", box, r"\.\.", figures)


def test_a_symlink_planted_in_the_target_is_refused_then_moved_aside_not_followed(
    local_shelf: CraftedShelf, tmp_path: Path, tally: Callable[..., Tally]
) -> None:
    from shelf.errors import TargetError

    figures = tally("hostile", "symlink planted in the target", f"{RERUN} -k planted")

    local_shelf.publish("planted", "0.1.0", FILES)
    box = Box(tmp_path)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("mine")
    box.target.mkdir()
    (box.target / "planted").symlink_to(outside, target_is_directory=True)
    before = tree(outside)
    with figures.trial():
        with pytest.raises(TargetError, match="not installed by cclm-shelf"):
            Shelf(local_shelf.url, cache_dir=box.cache).install("planted", target=box.target)
        assert (box.target / "planted").is_symlink()
        Shelf(local_shelf.url, cache_dir=box.cache).install("planted", target=box.target, force=True)
        assert not (box.target / "planted").is_symlink() and (box.target / "planted" / "model").is_dir()
        kept = list((box.target / ".cclm-shelf-trash").iterdir())
        assert len(kept) == 1 and kept[0].is_symlink(), "the planted link was not moved aside as a link"
        assert tree(outside) == before, "the install wrote through a planted symlink"


@pytest.mark.parametrize("case", sorted(MANIFEST_CASES))
def test_hostile_manifest_paths_are_refused(
    local_shelf: CraftedShelf, tmp_path: Path, case: str, tally: Callable[..., Tally]
) -> None:
    figures = tally("hostile", f"manifest: {case}", f"{RERUN} -k manifest")
    paths, match = MANIFEST_CASES[case]
    local_shelf.publish("evil", "0.1.0", FILES, manifest=_hostile_manifest(paths))
    box = Box(tmp_path)
    _refused_both_ways(local_shelf, "evil", box, match, figures)
    assert not box.target.exists()


def test_an_index_line_for_another_name_is_refused(
    local_shelf: CraftedShelf, tmp_path: Path, tally: Callable[..., Tally]
) -> None:
    figures = tally("hostile", "index line for another name", f"{RERUN} -k another_name")
    local_shelf.publish("good", "0.1.0", FILES)
    line = {
        "name": "other", "version": "0.2.0", "manifest_digest": "sha256:" + "0" * 64, "kind": "component",
        "base": None, "provides": {}, "requires": [], "items": {}, "yanked": False,
    }  # fmt: skip
    local_shelf.publish("good", "0.2.0", FILES, index_line=line)
    box = Box(tmp_path)
    _refused_both_ways(local_shelf, "good", box, "other", figures)


@pytest.mark.parametrize("lie", [+10, -10])
def test_a_pointer_that_lies_about_size_is_refused(
    local_shelf: CraftedShelf, tmp_path: Path, lie: int, tally: Callable[..., Tally]
) -> None:
    """The manifest and pointer agree with each other and lie about the blob's size."""
    figures = tally("hostile", f"pointer lies about size ({lie:+d} bytes)", f"{RERUN} -k lies")
    data = blob(3, 4096)
    local_shelf.put_blobs([data])
    files = {"model/weights.bin": data}
    manifest = manifest_dict("liar", "0.1.0", files)
    manifest["items"]["model"]["files"][0]["size"] = len(data) + lie
    local_shelf.publish("liar", "0.1.0", files, manifest=manifest)
    from registry_index import layout
    from registry_index.pointer import LfsPointer, format_pointer

    pointer = format_pointer(LfsPointer(sha256(data), len(data) + lie))
    local_shelf.commit_raw({layout.file_path("liar", "0.1.0", "model", "weights.bin"): pointer})
    box = Box(tmp_path)
    _refused_both_ways(local_shelf, "liar", box, "bytes|size", figures)
    assert not box.target.exists() and not list(box.cache.rglob("*.incomplete"))


def _bytes_read() -> int:
    """Bytes this process has read so far (Linux's /proc/self/io ``rchar``)."""
    line = next(x for x in Path("/proc/self/io").read_text().splitlines() if x.startswith("rchar:"))
    return int(line.split()[1])


def test_a_blob_far_larger_than_declared_is_not_read_to_the_end(
    local_shelf: CraftedShelf, tmp_path: Path, tally: Callable[..., Tally]
) -> None:
    """A 2 GiB (sparse) object behind a 16-byte pointer: refused after reading past the declared size."""
    figures = tally("hostile", "blob 2 GiB larger than declared", f"{RERUN} -k far_larger")
    small = blob(4, 16)
    local_shelf.publish("huge", "0.1.0", {"model/weights.bin": small})
    stored = local_shelf.repo / "lfs" / "objects" / sha256(small)[:2] / sha256(small)[2:4] / sha256(small)
    os.chmod(stored, 0o644)
    with open(stored, "r+b") as handle:
        handle.truncate(2 << 30)
    box = Box(tmp_path)
    before = _bytes_read()
    with figures.trial():
        with pytest.raises(IntegrityError, match="16"):
            Shelf(local_shelf.url, cache_dir=box.cache).install("huge", target=box.target)
        assert _bytes_read() - before < 256 << 20, "the whole oversized object was read"
        assert sum(p.stat().st_size for p in box.cache.rglob("*") if p.is_file()) < 1 << 20
        box.untouched()


# Legacy tarballs -------------------------------------------------------------------------------------------


def _member(kind: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo({"absolute": "/tmp/escape.bin", "dotdot": "../escape.bin"}.get(kind, "evil"))
    if kind == "symlink":
        info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
    elif kind == "hardlink":
        info.type, info.linkname = tarfile.LNKTYPE, "/etc/passwd"
    elif kind == "device":
        info.type, info.devmajor, info.devminor = tarfile.CHRTYPE, 1, 3
    elif kind == "fifo":
        info.type = tarfile.FIFOTYPE
    return info


def _hostile_tarball(path: Path, kind: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        ok = tarfile.TarInfo("cclm_config.json")
        ok.size = 2
        tar.addfile(ok, io.BytesIO(b"{}"))
        info = _member(kind)
        payload = b"pwned" if info.isreg() else b""
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    return path


LEGACY_KINDS = ["absolute", "dotdot", "symlink", "hardlink", "device", "fifo"]


def test_hostile_legacy_tarballs_are_refused(tmp_path: Path, tally: Callable[..., Tally]) -> None:
    from tests.support.shelves import legacy_shelf

    archives = {
        f"v0.0.{i}": {
            f"preprocessor/{kind}.tar.gz": _hostile_tarball(tmp_path / "src" / f"{kind}.tar.gz", kind)
        }
        for i, kind in enumerate(LEGACY_KINDS, start=1)
    }
    bare = legacy_shelf(tmp_path, archives)
    figures = tally(
        "hostile", "legacy tarball: absolute, .., symlink, hardlink, device, fifo", f"{RERUN} -k legacy"
    )
    for i, kind in enumerate(LEGACY_KINDS, start=1):
        box = Box(tmp_path / kind)
        with figures.trial():
            with pytest.raises(UnsafeContentError, match=r"refusing|link|absolute|device"):
                Shelf(str(bare), cache_dir=box.cache).fetch(
                    kind, "preprocessor", tag=f"v0.0.{i}", cache_dir=box.target
                )
            box.untouched()
            assert not (box.target / kind).exists()
            assert not Path("/tmp/escape.bin").exists() and not (tmp_path / kind / "escape.bin").exists()


# Requirement strings ------------------------------------------------------------------------------------


SHELL_STRINGS = [
    "../../x",
    "x@v0.1.0/../../..",
    "x; touch {m}",
    "$(touch {m})",
    "`touch {m}`",
    "x && touch {m}",
    "x | touch {m}",
    "x\ntouch {m}",
]


def test_requirements_with_shell_metacharacters_are_refused(
    local_shelf: CraftedShelf, tmp_path: Path, tally: Callable[..., Tally]
) -> None:
    figures = tally("hostile", "requirement strings with shell metacharacters", f"{RERUN} -k shell")
    local_shelf.publish("x", "0.1.0", FILES)
    marker = tmp_path / "marker"
    box = Box(tmp_path)
    for text in [s.format(m=marker) for s in SHELL_STRINGS] + ["x; rm -rf /"]:
        with figures.trial(), pytest.raises(OWN_ERRORS):
            Shelf(local_shelf.url, cache_dir=box.cache).install(text, target=box.target)
        with figures.trial():
            args = ("--shelf", local_shelf.url, "install", text, "--target", str(box.target))
            done = _cli(*args, cache=box.cache)
            assert "requirement" in done.stderr.lower() or "invalid" in done.stderr.lower(), done.stderr
            assert not marker.exists()
    box.untouched()


# A shelf URL that is a file ---------------------------------------------------------------------------------


def test_a_shelf_url_that_is_a_regular_file(tmp_path: Path, tally: Callable[..., Tally]) -> None:
    figures = tally("hostile", "shelf URL is a regular file", f"{RERUN} -k regular_file")
    path = tmp_path / "not-a-shelf.git"
    path.write_text("hello")
    box = Box(tmp_path)
    with figures.trial(), pytest.raises(OWN_ERRORS, match="not-a-shelf"):
        Shelf(str(path), cache_dir=box.cache).install("x", target=box.target)
    with figures.trial():
        done = _cli("--shelf", str(path), "install", "x", "--target", str(box.target), cache=box.cache)
        assert "not-a-shelf" in done.stderr
        box.untouched()


def test_a_planted_symlink_leaves_no_debris(local_shelf: CraftedShelf, tmp_path: Path) -> None:
    local_shelf.publish("planted", "0.1.0", FILES)
    box = Box(tmp_path)
    (tmp_path / "outside").mkdir()
    box.target.mkdir()
    (box.target / "planted").symlink_to(tmp_path / "outside", target_is_directory=True)
    for _ in range(2):  # the second run's clean_debris does not remove it either
        Shelf(local_shelf.url, cache_dir=box.cache).install("planted", target=box.target, force=True)
    assert not [p.name for p in box.target.iterdir() if p.name.startswith(".trash-")]
