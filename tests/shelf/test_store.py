"""The content-addressed blob store: atomic verified writes, resume, locking, maintenance."""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import stat
import tempfile
from pathlib import Path

import pytest

from shelf import constants
from shelf.errors import IntegrityError, StoreError
from shelf.store import BlobStore


def _oid(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def store(tmp_path: Path) -> BlobStore:
    return BlobStore(tmp_path / "store")


def test_default_root_follows_the_environment() -> None:
    assert BlobStore().root == constants.cache_dir()
    assert str(BlobStore().root).startswith(os.environ[constants.ENV_CACHE_DIR])


def test_writer_commits_a_verified_read_only_blob(store: BlobStore) -> None:
    data = b"hello blob" * 1000
    oid = _oid(data)
    with store.writer(oid, len(data)) as w:
        w.write(data[:100])
        w.write(data[100:])
    blob = store.path(oid)
    assert blob == store.root / "blobs" / "sha256" / oid[:2] / oid
    assert blob.read_bytes() == data
    assert not blob.stat().st_mode & stat.S_IWUSR
    assert store.has(oid, len(data)) and not store.has(oid, len(data) + 1)
    assert (store.root / "CACHEDIR.TAG").read_text().startswith("Signature: 8a477f597d28d172789f06886806bc55")
    assert store.info() == {"root": str(store.root), "count": 1, "bytes": len(data)}


def test_wrong_bytes_never_enter_the_store(store: BlobStore) -> None:
    data = b"a" * 64
    oid = _oid(data)
    with pytest.raises(IntegrityError, match="sha256"), store.writer(oid, len(data)) as w:
        w.write(b"b" * 64)
    assert not store.has(oid)
    assert store.partial_size(oid) == 0


def test_too_long_and_too_short_are_rejected(store: BlobStore) -> None:
    data = b"0123456789"
    oid = _oid(data)
    with pytest.raises(IntegrityError, match="longer"), store.writer(oid, len(data)) as w:
        w.write(data + b"!")
    with pytest.raises(IntegrityError, match="9 bytes but 10"), store.writer(oid, len(data)) as w:
        w.write(data[:9])
    assert not store.has(oid) and store.partial_size(oid) == 0


def test_interrupted_write_resumes_from_its_prefix(store: BlobStore) -> None:
    data = os.urandom(5000)
    oid = _oid(data)
    with pytest.raises(ConnectionError), store.writer(oid, len(data)) as w:
        w.write(data[:1234])
        raise ConnectionError("network went away")
    assert not store.has(oid)
    assert store.partial_size(oid) == 1234
    with store.writer(oid, len(data)) as w:
        assert w.offset == 1234
        w.write(data[1234:])
    assert store.path(oid).read_bytes() == data


def test_corrupt_partial_is_caught_at_commit_and_removed(store: BlobStore) -> None:
    data = os.urandom(300)
    oid = _oid(data)
    with pytest.raises(RuntimeError), store.writer(oid, len(data)) as w:
        w.write(b"\0" * 100)  # wrong prefix, as if a previous run got bad bytes
        raise RuntimeError("stop")
    with pytest.raises(IntegrityError), store.writer(oid, len(data)) as w:
        w.write(data[w.offset :])
    assert not store.has(oid) and store.partial_size(oid) == 0


def test_restart_discards_the_prefix(store: BlobStore) -> None:
    data = b"xyz" * 10
    oid = _oid(data)
    with store.writer(oid, len(data)) as w:
        w.write(b"junk")
        w.restart()
        assert w.offset == 0
        w.write(data)
    assert store.has(oid, len(data))


def test_writer_of_present_blob_is_complete(store: BlobStore) -> None:
    data = b"present"
    oid = _oid(data)
    with store.writer(oid, len(data)) as w:
        w.write(data)
    with store.writer(oid, len(data)) as w:
        assert w.complete
        with pytest.raises(StoreError):
            w.write(b"more")


def test_bad_oid_is_refused(store: BlobStore) -> None:
    with pytest.raises(StoreError, match="not a sha256 object id"):
        store.path("../../etc/passwd")
    with pytest.raises(StoreError, match="not a sha256"):
        store.has("ABC")


def test_add_file_hashes_and_verifies(store: BlobStore, tmp_path: Path) -> None:
    source = tmp_path / "weights.bin"
    source.write_bytes(b"w" * 3000)
    oid = store.add_file(source)
    assert oid == _oid(b"w" * 3000)
    assert store.add_file(source, oid, 3000) == oid
    with pytest.raises(IntegrityError, match="expected"):
        store.add_file(source, "0" * 64)
    with pytest.raises(IntegrityError, match="3000 bytes but 5"):
        store.add_file(source, size=5)
    assert not store.has("0" * 64)
    assert list((store.root / "tmp").iterdir()) == []
    with pytest.raises(StoreError, match="not a file"):
        store.add_file(tmp_path / "missing")


def test_link_into_hardlinks_and_replaces(store: BlobStore, tmp_path: Path) -> None:
    oid = store.add_file(_write(tmp_path / "a", b"A" * 10))
    dest = tmp_path / "install" / "model" / "model.bin"
    dest.parent.mkdir(parents=True)
    dest.write_bytes(b"old")
    assert store.link_into(oid, dest) == "hardlink"
    assert dest.read_bytes() == b"A" * 10
    assert dest.stat().st_ino == store.path(oid).stat().st_ino
    assert [p.name for p in dest.parent.iterdir()] == ["model.bin"]


def test_link_into_copies_across_file_systems(store: BlobStore, tmp_path: Path) -> None:
    other = Path("/dev/shm")
    if not other.is_dir() or other.stat().st_dev == tmp_path.stat().st_dev:
        pytest.skip("no second file system to copy across")
    oid = store.add_file(_write(tmp_path / "a", b"B" * 10))
    with tempfile.TemporaryDirectory(dir=other) as folder:
        dest = Path(folder) / "x" / "model.bin"
        assert store.link_into(oid, dest) == "copy"
        assert dest.read_bytes() == b"B" * 10
        assert not dest.stat().st_mode & stat.S_IWUSR


def test_link_into_falls_back_to_copy_when_links_fail(
    store: BlobStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    oid = store.add_file(_write(tmp_path / "a", b"C" * 10))

    def refuse(*_args: object) -> None:
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", refuse)
    dest = tmp_path / "out.bin"
    assert store.link_into(oid, dest) == "copy"
    assert dest.read_bytes() == b"C" * 10
    assert dest.stat().st_ino != store.path(oid).stat().st_ino


def test_link_into_missing_blob(store: BlobStore, tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="not in the store"):
        store.link_into("1" * 64, tmp_path / "x")


def test_verify_removes_damaged_blobs(store: BlobStore, tmp_path: Path) -> None:
    good = store.add_file(_write(tmp_path / "g", b"good"))
    bad = store.add_file(_write(tmp_path / "b", b"bad!"))
    damaged = store.path(bad)
    os.chmod(damaged, 0o644)
    damaged.write_bytes(b"BAD!")
    stray = store.root / "blobs" / "sha256" / "zz" / "not-an-oid"
    stray.parent.mkdir()
    stray.write_bytes(b"?")
    problems = store.verify()
    assert {p.oid for p in problems} == {bad, "not-an-oid"}
    assert not damaged.exists() and not stray.exists()
    assert store.has(good) and store.verify() == []


def test_prune_keeps_only_what_is_asked(store: BlobStore, tmp_path: Path) -> None:
    keep = store.add_file(_write(tmp_path / "k", b"keep"))
    drop = store.add_file(_write(tmp_path / "d", b"drop me"))
    partial_oid = _oid(b"partial")
    with pytest.raises(RuntimeError), store.writer(partial_oid, 7) as w:
        w.write(b"par")
        raise RuntimeError
    assert store.prune({keep}) == (1, len(b"drop me") + 3)
    assert store.has(keep) and not store.has(drop) and store.partial_size(partial_oid) == 0
    assert [b.oid for b in store.iter_blobs()] == [keep]


def _add_in_process(root: str, files: list[str]) -> list[str]:
    store = BlobStore(Path(root))
    return [store.add_file(Path(f)) for f in files]


def _write_in_process(root: str, data: bytes) -> None:
    with BlobStore(Path(root)).writer(_oid(data), len(data)) as w:
        if not w.complete:
            for start in range(0, len(data), 4096):
                w.write(data[start : start + 4096])


def test_eight_processes_adding_the_same_objects(tmp_path: Path) -> None:
    payloads = [os.urandom(200_000 + i) for i in range(4)]
    files = [str(_write(tmp_path / f"f{i}", p)) for i, p in enumerate(payloads)]
    root = str(tmp_path / "shared")
    # Spawned, not forked: by now the test process has threads (servers, TensorFlow) and a forked child can
    # inherit one of their locks held, and hang. The children import only shelf.store.
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(8) as pool:
        added = pool.starmap(_add_in_process, [(root, files)] * 8)
        pool.starmap(_write_in_process, [(root, payloads[0])] * 8)
    expected = [_oid(p) for p in payloads]
    assert added == [expected] * 8
    store = BlobStore(Path(root))
    assert sorted(b.oid for b in store.iter_blobs()) == sorted(expected)
    assert store.verify() == []
    assert not list((Path(root) / "blobs").glob("*/*/*.incomplete"))


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_link_modes_copy_and_symlink(store: BlobStore, tmp_path: Path) -> None:
    oid = store.add_file(_write(tmp_path / "a", b"D" * 10))
    copied, linked = tmp_path / "copy.bin", tmp_path / "link.bin"
    assert store.link_into(oid, copied, "copy") == "copy"
    assert store.link_into(oid, linked, "symlink") == "symlink"
    assert copied.stat().st_ino != store.path(oid).stat().st_ino and not copied.is_symlink()
    assert linked.is_symlink() and linked.resolve() == store.path(oid).resolve()
    assert copied.read_bytes() == linked.read_bytes() == b"D" * 10


def test_a_verified_blob_is_stamped_and_trusted_on_a_stat(
    store: BlobStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shelf import store as store_module

    oid = store.add_file(_write(tmp_path / "a", b"E" * 10))
    assert store.path(oid).stat().st_mtime_ns == store_module.VERIFIED_MTIME_NS

    def no_hashing(path: Path) -> tuple[str, int]:
        raise AssertionError(f"{path} was re-hashed although its stamp is intact")

    monkeypatch.setattr(store_module, "hash_file", no_hashing)
    assert store.revalidate(oid, 10)


def test_a_blob_written_through_a_link_is_evicted_before_it_is_linked_again(
    store: BlobStore, tmp_path: Path
) -> None:
    oid = store.add_file(_write(tmp_path / "a", b"F" * 10))
    installed = tmp_path / "installed.bin"
    store.link_into(oid, installed)
    with installed.open("r+b") as fh:  # as root: the read-only mode does not stop this
        fh.write(b"G")
    assert store.has(oid, 10)  # same size: a size check alone would trust it
    assert not store.revalidate(oid, 10)
    assert not store.has(oid)
    assert installed.read_bytes() == b"G" + b"F" * 9  # the edited copy is the user's, left alone


def test_an_unstamped_blob_with_right_bytes_is_rehashed_once_and_stamped(
    store: BlobStore, tmp_path: Path
) -> None:
    from shelf.store import VERIFIED_MTIME_NS

    oid = store.add_file(_write(tmp_path / "a", b"H" * 10))
    os.utime(store.path(oid), ns=(0, 12345))  # as a blob stored before stamps existed
    assert store.revalidate(oid, 10)
    assert store.path(oid).stat().st_mtime_ns == VERIFIED_MTIME_NS


def test_a_cache_path_that_is_a_file_is_one_clear_error(tmp_path: Path) -> None:
    cache = _write(tmp_path / "cache", b"not a folder")
    for root in (cache, cache / "below"):
        with pytest.raises(StoreError, match="is a file, not a folder") as caught:
            BlobStore(root)
        assert constants.ENV_CACHE_DIR in (caught.value.hint or "")
    assert cache.read_bytes() == b"not a folder"
