"""How a download moves bytes: straight from http.client, every framing and encoding a server may use,
bytes kept up to a break, connections back in the pool, and the disk started early on large blobs."""

from __future__ import annotations

import hashlib
import io
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from shelf import fsutil
from shelf.errors import IntegrityError
from shelf.remote.http import BodyReader, plain_body
from shelf.remote.lfs_http import LfsClient, RetryPolicy
from shelf.store import BlobStore
from tests.support.lfs_script import ScriptServer

pytestmark = pytest.mark.network
FAST = RetryPolicy(attempts=3, total_seconds=20, base_delay=0.05)


@pytest.fixture
def server() -> Iterator[ScriptServer]:
    running = ScriptServer()
    thread = threading.Thread(target=running.serve_forever, daemon=True)
    thread.start()
    yield running
    running.shutdown()
    running.server_close()


@pytest.fixture
def store(tmp_path: Path) -> BlobStore:
    return BlobStore(tmp_path / "store")


def test_a_plain_body_is_read_from_http_client_not_through_urllib3(server: ScriptServer, monkeypatch) -> None:
    data = os.urandom(100_000)
    obj = server.add(data)

    def refused(*args, **kwargs):
        raise AssertionError("a plain body went through urllib3's reader")

    with requests.get(server.url(obj), stream=True, timeout=10) as response:
        monkeypatch.setattr(response.raw, "read1", refused)
        monkeypatch.setattr(response.raw, "read", refused)
        reader = BodyReader(response, size=16_384)
        parts = []
        while chunk := reader.read(len(data) + 1):
            assert len(chunk) <= 16_384  # never more than the reader's size at a time
            parts.append(chunk)
        reader.finish()
    assert b"".join(parts) == data


def test_a_gzip_encoded_body_is_decoded_then_verified(server: ScriptServer, store: BlobStore) -> None:
    data = b"weights " * 20_000
    obj = server.add(data)
    server.script = ["gzip"]
    with requests.get(server.url(obj), stream=True, timeout=10) as response:
        assert plain_body(response) is None  # urllib3 must undo the encoding
    server.script = ["gzip"]
    LfsClient(server.endpoint, retry=FAST, jobs=1).download([obj], store)
    assert store.path(obj.oid).read_bytes() == data


def test_a_chunked_body_downloads_and_verifies(server: ScriptServer, store: BlobStore) -> None:
    data = os.urandom(120_000)
    obj = server.add(data)
    server.script = ["chunked"]
    report = LfsClient(server.endpoint, retry=FAST, jobs=1).download([obj], store)
    assert report.bytes_transferred == len(data)
    assert store.path(obj.oid).read_bytes() == data


def test_a_chunked_body_that_breaks_off_resumes_after_the_bytes_that_came(
    server: ScriptServer, store: BlobStore
) -> None:
    data = os.urandom(120_000)
    obj = server.add(data)
    server.script = ["chunked-cut"]
    report = LfsClient(server.endpoint, retry=FAST, jobs=1).download([obj], store)
    assert server.ranges == [None, "bytes=60000-"]  # nothing that arrived whole is fetched twice
    assert report.bytes_transferred == len(data)
    assert store.path(obj.oid).read_bytes() == data


def test_a_chunked_body_longer_than_declared_is_refused(server: ScriptServer, store: BlobStore) -> None:
    obj = server.add(os.urandom(70_000))
    server.script = ["chunked-long"]
    with pytest.raises(IntegrityError, match="longer than its declared size"):
        LfsClient(server.endpoint, retry=FAST, jobs=1).download([obj], store)
    assert not store.has(obj.oid) and store.partial_size(obj.oid) == 0


def test_connections_go_back_to_the_pool_after_each_body(server: ScriptServer, store: BlobStore) -> None:
    objects = [server.add(os.urandom(50_000 + i)) for i in range(3)]
    server.script = ["plain", "chunked", "plain"]
    LfsClient(server.endpoint, retry=FAST, jobs=1).download(objects, store)
    assert all(store.has(o.oid, o.size) for o in objects)
    assert server.connections == 1  # the batch request and the three downloads on one connection


def test_large_blobs_are_handed_to_the_disk_while_they_stream(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hints: list[tuple[int, int]] = []
    real = fsutil.start_writeback

    def record(fd: int, offset: int, length: int) -> None:
        hints.append((offset, length))
        real(fd, offset, length)

    monkeypatch.setattr(fsutil, "WRITEBACK_BYTES", 64 * 1024)
    monkeypatch.setattr(fsutil, "start_writeback", record)
    data = os.urandom(300_000)
    store = BlobStore(tmp_path / "store")
    oid = hashlib.sha256(data).hexdigest()
    with store.writer(oid, len(data)) as writer:
        for start in range(0, len(data), 10_000):
            writer.write(memoryview(data)[start : start + 10_000])
    assert store.path(oid).read_bytes() == data
    assert [offset for offset, _ in hints] == [0, 70_000, 140_000, 210_000]  # contiguous, in order
    assert all(length == 70_000 for _, length in hints)


def test_start_writeback_reaches_the_kernel(tmp_path: Path) -> None:
    path = tmp_path / "blob"
    with open(path, "wb") as handle:
        handle.write(os.urandom(200_000))
        handle.flush()
        assert fsutil.start_writeback(handle.fileno(), 0, 200_000)  # Linux: a real system call here
        fd = handle.fileno()
    assert not fsutil.start_writeback(fd, 0, 200_000)  # a closed file: refused, and nothing raised
    assert path.stat().st_size == 200_000


def test_copies_into_files_are_handed_to_the_disk_as_they_go(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hints: list[tuple[int, int]] = []
    monkeypatch.setattr(fsutil, "WRITEBACK_BYTES", 64 * 1024)
    monkeypatch.setattr(fsutil, "start_writeback", lambda fd, offset, length: hints.append((offset, length)))
    monkeypatch.setattr(fsutil.constants, "CHUNK_SIZE", 50_000)
    data = os.urandom(300_000)
    source = tmp_path / "weights.h5"
    source.write_bytes(data)
    oid = BlobStore(tmp_path / "store").add_file(source)  # what publish's snapshot does
    assert oid == hashlib.sha256(data).hexdigest()
    assert hints == [(0, 100_000), (100_000, 100_000), (200_000, 100_000)]
    hints.clear()
    with open(source, "rb") as src:
        assert fsutil.copy_hashing(src, io.BytesIO()) == (oid, len(data))  # not a file: no hint, no error
    assert hints == []
