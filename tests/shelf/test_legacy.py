"""Legacy tarballs are untrusted: absolute paths, ``..``, links, devices and FIFOs are refused with nothing
written outside the target, nor inside it."""

from __future__ import annotations

import hashlib
import io
import tarfile
from pathlib import Path

import pytest

from registry_index.pointer import LfsPointer
from shelf.errors import UnsafeContentError
from shelf.install import InstallTarget
from shelf.legacy import check_archive, extract_archive, install_legacy_item
from shelf.remote.lfs_local import LocalLfsObjects
from shelf.store import BlobStore
from tests.support.shelves import sha256_of, tarball, tree_snapshot


def _member(name: str, kind: bytes = tarfile.REGTYPE, data: bytes = b"", link: str = "") -> tuple:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    info.linkname = link
    return info, io.BytesIO(data) if kind == tarfile.REGTYPE else None


def _archive(path: Path, *members: tuple) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        tar.addfile(*_member("cclm_config.json", data=b"{}"))
        for info, data in members:
            tar.addfile(info, data)
    return path


# kind -> (member arguments, what the refusal says)
HOSTILE = {
    "absolute path": (("/tmp/owned.txt", tarfile.REGTYPE, b"x"), "absolute path"),
    "dot-dot": (("sub/../../owned.txt", tarfile.REGTYPE, b"x"), "'..'"),
    "symlink": (("link", tarfile.SYMTYPE, b"", "/etc/passwd"), "is a link"),
    "hardlink": (("hard", tarfile.LNKTYPE, b"", "cclm_config.json"), "is a link"),
    "character device": (("tty", tarfile.CHRTYPE), "device or FIFO"),
    "block device": (("disk", tarfile.BLKTYPE), "device or FIFO"),
    "fifo": (("pipe", tarfile.FIFOTYPE), "device or FIFO"),
    "backslash": (("..\\owned.txt", tarfile.REGTYPE, b"x"), "absolute path"),
    "duplicate": (("cclm_config.json", tarfile.REGTYPE, b"[]"), "twice"),
}


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_hostile_archives_are_refused_before_anything_is_written(kind: str, tmp_path: Path) -> None:
    args, message = HOSTILE[kind]
    (tmp_path / "in").mkdir()
    archive = _archive(tmp_path / "in" / "evil.tar.gz", _member(*args))
    dest = tmp_path / "area" / "target" / "ident" / "preprocessor"
    dest.parent.mkdir(parents=True)
    before = tree_snapshot(tmp_path)
    with pytest.raises(UnsafeContentError, match=message):
        check_archive(archive, "preprocessor/ident.tar.gz at v1")
    with pytest.raises(UnsafeContentError, match=message):
        extract_archive(archive, dest, "preprocessor/ident.tar.gz at v1")
    assert tree_snapshot(tmp_path) == before  # no staging folder left, nothing outside or inside


def test_a_readable_archive_extracts_regular_files_only(tmp_path: Path) -> None:
    archive = tarball(tmp_path / "ok.tar.gz", {"cclm_config.json": b"{}", "./sub/weights.bin": b"w" * 10})
    dest = tmp_path / "target" / "ident" / "preprocessor"
    assert check_archive(archive, "ok") == ["cclm_config.json", "sub/weights.bin"]
    written = extract_archive(archive, dest, "ok")
    assert written == {"cclm_config.json": _sha(b"{}"), "sub/weights.bin": _sha(b"w" * 10)}
    assert (dest / "sub" / "weights.bin").read_bytes() == b"w" * 10
    assert sorted(p.name for p in dest.parent.iterdir()) == ["preprocessor"]


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_member_paths_that_cannot_form_a_tree_are_refused(tmp_path: Path) -> None:
    archive = _archive(
        tmp_path / "tree.tar.gz", _member("a", data=b"file"), _member("a/b", data=b"below a file")
    )
    dest = tmp_path / "target" / "ident" / "preprocessor"
    with pytest.raises(UnsafeContentError, match="cannot extract"):
        extract_archive(archive, dest, "tree")
    assert not dest.exists() and list(dest.parent.iterdir()) == []


def test_bytes_that_are_not_a_tarball_are_refused(tmp_path: Path) -> None:
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(b"not a tar archive at all" * 20)
    with pytest.raises(UnsafeContentError, match="not a readable tar archive"):
        check_archive(junk, "preprocessor/junk.tar.gz at v1")


def _local_shelf_with(tmp_path: Path, archive: Path) -> tuple[LocalLfsObjects, LfsPointer]:
    objects = LocalLfsObjects(tmp_path / "shelf.git")
    pointer = LfsPointer(sha256_of(archive), archive.stat().st_size)
    from shelf.remote.lfs_protocol import LfsObject

    objects.upload([(LfsObject(pointer.oid, pointer.size), archive)])
    return objects, pointer


def test_install_of_a_hostile_archive_leaves_the_target_untouched(tmp_path: Path) -> None:
    archive = _archive(tmp_path / "evil.tar.gz", _member(*HOSTILE["symlink"][0]))
    transport, pointer = _local_shelf_with(tmp_path, archive)
    target = InstallTarget(tmp_path / "target")
    store = BlobStore(tmp_path / "cache")
    with pytest.raises(UnsafeContentError, match="is a link"):
        install_legacy_item(target, store, transport, "ident", "preprocessor", "v1", pointer)
    assert not target.root.exists()


def test_install_replaces_the_item_per_tag_and_skips_what_is_current(tmp_path: Path) -> None:
    first = tarball(tmp_path / "a.tar.gz", {"cclm_config.json": b'{"v": 1}'})
    second = tarball(tmp_path / "b.tar.gz", {"cclm_config.json": b'{"v": 2}', "extra.txt": b"e"})
    target = InstallTarget(tmp_path / "target")
    store = BlobStore(tmp_path / "cache")
    transport, one = _local_shelf_with(tmp_path, first)
    _, two = _local_shelf_with(tmp_path, second)
    dest = install_legacy_item(target, store, transport, "ident", "preprocessor", "v1", one)
    inode = (dest / "cclm_config.json").stat().st_ino
    # Same tag again: nothing is extracted again.
    install_legacy_item(target, store, transport, "ident", "preprocessor", "v1", one)
    assert (dest / "cclm_config.json").stat().st_ino == inode
    install_legacy_item(target, store, transport, "ident", "preprocessor", "v2", two)
    assert sorted(p.name for p in dest.iterdir()) == ["cclm_config.json", "extra.txt"]
    assert (dest / "cclm_config.json").read_bytes() == b'{"v": 2}'
    (dest.parent / ".staging-preprocessor-dead0000").mkdir()  # debris of an interrupted run
    install_legacy_item(target, store, transport, "ident", "preprocessor", "v1", one)
    assert sorted(p.name for p in dest.parent.iterdir()) == ["preprocessor"]
    assert sorted(p.name for p in dest.iterdir()) == ["cclm_config.json"]


def test_an_archive_that_unpacks_to_far_more_than_allowed_is_refused(tmp_path: Path, monkeypatch) -> None:
    import shelf.legacy

    archive = tarball(tmp_path / "bomb.tar.gz", {"cclm_config.json": b"\0" * (1 << 20)})
    assert archive.stat().st_size < 10_000  # a megabyte of zeros packs into a few kilobytes
    monkeypatch.setattr(shelf.legacy, "MAX_UNPACKED_BYTES", 512 * 1024)
    with pytest.raises(UnsafeContentError, match="would unpack to 1048576 bytes"):
        check_archive(archive, "preprocessor/bomb.tar.gz at v1")
    monkeypatch.setattr(shelf.legacy, "MAX_UNPACKED_BYTES", 2 << 20)
    assert check_archive(archive, "preprocessor/bomb.tar.gz at v1") == ["cclm_config.json"]
