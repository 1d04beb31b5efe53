"""How a download moves bytes: straight from http.client, every framing and encoding a server may use,
bytes kept up to a break, connections back in the pool, and the disk started early on large blobs."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

from shelf import blob_writer, fsutil
from shelf.errors import IntegrityError
from shelf.remote.http import BodyReader, plain_body
from shelf.remote.lfs_http import LfsClient, RetryPolicy
from shelf.remote.lfs_protocol import LfsObject
from shelf.store import BlobStore

pytestmark = pytest.mark.network
FAST = RetryPolicy(attempts=3, total_seconds=20, base_delay=0.05)


class _Handler(BaseHTTPRequestHandler):
    """Batch answers point at /obj/<oid>; each GET answers in the next way of ``server.script``."""

    server: _Server
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        self.server.connections += 1

    def log_message(self, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        base = f"http://127.0.0.1:{self.server.server_port}"
        objects = [
            {**o, "actions": {"download": {"href": f"{base}/obj/{o['oid']}"}}} for o in body["objects"]
        ]
        self._plain(200, json.dumps({"transfer": "basic", "objects": objects}).encode(), {})

    def do_GET(self) -> None:
        self.server.ranges.append(self.headers.get("Range"))
        way = self.server.script.pop(0) if self.server.script else "plain"
        data = self.server.blobs[self.path.rsplit("/", 1)[-1]]
        start = int((self.headers.get("Range") or "bytes=0-")[6:].rstrip("-"))
        headers = {"Content-Range": f"bytes {start}-{len(data) - 1}/{len(data)}"} if start else {}
        status, data = (206 if start else 200), data[start:]
        if way == "gzip":
            self._plain(status, gzip.compress(data), {**headers, "Content-Encoding": "gzip"})
        elif way == "chunked":
            self._chunked(status, [data[:1000], data[1000:50_000], data[50_000:]], headers)
        elif way == "chunked-cut":  # two whole chunks, then the connection closes mid-body
            self._chunked(status, [data[:30_000], data[30_000:60_000]], headers, end=False)
        elif way == "chunked-long":
            self._chunked(status, [data, b"extra bytes"], headers)
        else:
            self._plain(status, data, headers)

    def _plain(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in {"Content-Length": str(len(body)), **headers}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _chunked(self, status: int, parts: list[bytes], headers: dict[str, str], end: bool = True) -> None:
        self.send_response(status)
        for name, value in {"Transfer-Encoding": "chunked", **headers}.items():
            self.send_header(name, value)
        self.end_headers()
        for part in parts:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
        if end:
            self.wfile.write(b"0\r\n\r\n")
        else:
            self.wfile.flush()
            self.close_connection = True


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.blobs: dict[str, bytes] = {}
        self.script: list[str] = []
        self.ranges: list[str | None] = []
        self.connections = 0

    def add(self, data: bytes) -> LfsObject:
        oid = hashlib.sha256(data).hexdigest()
        self.blobs[oid] = data
        return LfsObject(oid, len(data))

    def url(self, obj: LfsObject) -> str:
        return f"http://127.0.0.1:{self.server_port}/obj/{obj.oid}"

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server_port}/org/shelf.git/info/lfs"


@pytest.fixture
def server() -> Iterator[_Server]:
    running = _Server()
    thread = threading.Thread(target=running.serve_forever, daemon=True)
    thread.start()
    yield running
    running.shutdown()
    running.server_close()


@pytest.fixture
def store(tmp_path: Path) -> BlobStore:
    return BlobStore(tmp_path / "store")


def test_a_plain_body_is_read_from_http_client_not_through_urllib3(server: _Server, monkeypatch) -> None:
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


def test_a_gzip_encoded_body_is_decoded_then_verified(server: _Server, store: BlobStore) -> None:
    data = b"weights " * 20_000
    obj = server.add(data)
    server.script = ["gzip"]
    with requests.get(server.url(obj), stream=True, timeout=10) as response:
        assert plain_body(response) is None  # urllib3 must undo the encoding
    server.script = ["gzip"]
    LfsClient(server.endpoint, retry=FAST, jobs=1).download([obj], store)
    assert store.path(obj.oid).read_bytes() == data


def test_a_chunked_body_downloads_and_verifies(server: _Server, store: BlobStore) -> None:
    data = os.urandom(120_000)
    obj = server.add(data)
    server.script = ["chunked"]
    report = LfsClient(server.endpoint, retry=FAST, jobs=1).download([obj], store)
    assert report.bytes_transferred == len(data)
    assert store.path(obj.oid).read_bytes() == data


def test_a_chunked_body_that_breaks_off_resumes_after_the_bytes_that_came(
    server: _Server, store: BlobStore
) -> None:
    data = os.urandom(120_000)
    obj = server.add(data)
    server.script = ["chunked-cut"]
    report = LfsClient(server.endpoint, retry=FAST, jobs=1).download([obj], store)
    assert server.ranges == [None, "bytes=60000-"]  # nothing that arrived whole is fetched twice
    assert report.bytes_transferred == len(data)
    assert store.path(obj.oid).read_bytes() == data


def test_a_chunked_body_longer_than_declared_is_refused(server: _Server, store: BlobStore) -> None:
    obj = server.add(os.urandom(70_000))
    server.script = ["chunked-long"]
    with pytest.raises(IntegrityError, match="longer than its declared size"):
        LfsClient(server.endpoint, retry=FAST, jobs=1).download([obj], store)
    assert not store.has(obj.oid) and store.partial_size(obj.oid) == 0


def test_connections_go_back_to_the_pool_after_each_body(server: _Server, store: BlobStore) -> None:
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

    monkeypatch.setattr(blob_writer, "WRITEBACK_BYTES", 64 * 1024)
    monkeypatch.setattr(blob_writer, "start_writeback", record)
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
