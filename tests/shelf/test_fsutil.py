"""One way to write to disk: atomic writes, hashing copies, folder swaps; and the one sha256 check."""

from __future__ import annotations

import hashlib
import io
import os
import threading
from pathlib import Path

import pytest

from registry_index.pointer import is_sha256_hex
from shelf.errors import StoreError
from shelf.fsutil import (
    atomic_file,
    atomic_write,
    copy_hashing,
    discard,
    hash_file,
    new_staging,
    swap_dir,
)
from shelf.store import check_oid

OID = hashlib.sha256(b"x").hexdigest()


def test_atomic_write_replaces_the_file_and_leaves_nothing_beside_it(tmp_path: Path) -> None:
    target = tmp_path / "lock.toml"
    target.write_text("old\n")
    atomic_write(target, "new\r\nline\n")
    assert target.read_bytes() == b"new\r\nline\n"  # text is written as given, newlines untouched
    atomic_write(target, b"\x00bytes")
    assert target.read_bytes() == b"\x00bytes"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lock.toml"]


def test_a_failed_write_keeps_the_old_file_and_removes_its_temporary(tmp_path: Path) -> None:
    target = tmp_path / "record.json"
    target.write_text("kept")
    with pytest.raises(RuntimeError, match="disk on fire"), atomic_file(target) as handle:
        handle.write(b"half")
        raise RuntimeError("disk on fire")
    assert target.read_text() == "kept"
    assert [p.name for p in tmp_path.iterdir()] == ["record.json"]


def test_concurrent_writers_never_share_a_temporary_name(tmp_path: Path) -> None:
    target = tmp_path / "known.json"
    errors: list[BaseException] = []

    def write(n: int) -> None:
        try:
            for _ in range(20):
                atomic_write(target, f"{n}\n" * 1000)
        except BaseException as e:  # collected: a thread's exception would otherwise vanish
            errors.append(e)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    lines = set(target.read_text().splitlines())
    assert len(lines) == 1  # one writer's whole file, never a mix
    assert [p.name for p in tmp_path.iterdir()] == ["known.json"]


def test_atomic_file_sets_the_mode_and_can_stage_in_another_folder(tmp_path: Path) -> None:
    staging = tmp_path / "tmp"
    staging.mkdir()
    target = tmp_path / "objects" / "blob"
    target.parent.mkdir()
    with atomic_file(target, tmp_dir=staging, mode=0o444) as handle:
        handle.write(b"data")
        assert [p.parent for p in staging.iterdir()] == [staging]
    assert target.read_bytes() == b"data" and (target.stat().st_mode & 0o777) == 0o444
    assert list(staging.iterdir()) == []


def test_copy_hashing_copies_hashes_and_stops_at_the_limit() -> None:
    data = os.urandom(3 * 1024 * 1024 + 7)  # several chunks and a tail
    out = io.BytesIO()
    assert copy_hashing(io.BytesIO(data), out) == (hashlib.sha256(data).hexdigest(), len(data))
    assert out.getvalue() == data
    digest, size = copy_hashing(io.BytesIO(data), None, limit=10)
    assert (digest, size) == (hashlib.sha256(data[:10]).hexdigest(), 10)
    assert copy_hashing(io.BytesIO(b""), None) == (hashlib.sha256(b"").hexdigest(), 0)


def test_hash_file(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"x")
    assert hash_file(path) == (OID, 1)


def test_swap_dir_replaces_a_folder_and_discard_removes_one(tmp_path: Path) -> None:
    final = tmp_path / "component"
    final.mkdir()
    (final / "old").write_text("old")
    staging = new_staging(final)
    assert staging.parent == tmp_path and staging.name.startswith(".staging-component-")
    (staging / "new").write_text("new")
    swap_dir(staging, final)
    assert [p.name for p in final.iterdir()] == ["new"]
    assert [p.name for p in tmp_path.iterdir()] == ["component"]  # no staging or trash left
    fresh = new_staging(tmp_path / "other")
    swap_dir(fresh, tmp_path / "other")
    assert (tmp_path / "other").is_dir()
    discard(final)
    discard(final)  # nothing there is fine
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other"]


def test_discard_removes_a_link_without_following_it(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_text("keep")
    link = tmp_path / "inside"
    link.symlink_to(outside, target_is_directory=True)
    discard(link)
    assert not link.is_symlink() and (outside / "keep").read_text() == "keep"


@pytest.mark.parametrize("bad", [OID + "\n", OID.upper(), OID[:-1], " " + OID, "sha256:" + OID, None, 7])
def test_the_one_sha256_check_refuses_anything_but_64_lowercase_hex(bad: object) -> None:
    assert not is_sha256_hex(bad)
    with pytest.raises(StoreError, match="is not a sha256 object id"):
        check_oid(bad)  # type: ignore[arg-type]


def test_the_one_sha256_check_accepts_a_digest() -> None:
    assert is_sha256_hex(OID) and check_oid(OID) == OID


def test_atomic_write_without_fsync_still_replaces_all_at_once(tmp_path, monkeypatch):
    path = tmp_path / "record.json"
    atomic_write(path, "old\n")
    synced: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: synced.append(fd) or real_fsync(fd))
    atomic_write(path, "new\n", durable=False)
    assert path.read_text() == "new\n" and synced == []
    assert [p.name for p in tmp_path.iterdir()] == ["record.json"]  # no temporary file left beside it
    atomic_write(path, "newer\n")
    assert path.read_text() == "newer\n" and len(synced) == 2  # the file and its folder
