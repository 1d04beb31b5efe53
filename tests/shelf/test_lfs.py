"""The LFS transport against a real giftless server, a scripted fault server, local shelves and git-lfs."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

from registry_index.errors import PointerError
from registry_index.pointer import LfsPointer
from shelf.credentials import BearerAuth
from shelf.errors import (
    AuthError,
    ConfigError,
    IntegrityError,
    NotFoundError,
    OfflineError,
    TransportError,
)
from shelf.remote.http import BoundedRetry
from shelf.remote.lfs_http import LfsClient, RetryPolicy
from shelf.remote.lfs_local import LocalLfsObjects
from shelf.remote.lfs_protocol import Action, LfsObject, ObjectAction
from shelf.remote.transport import endpoint_for, transport_for
from shelf.store import BlobStore
from tests.support.giftless import GiftlessServer, giftless_fixture, jwt_giftless_fixture

network = pytest.mark.network
FAST = RetryPolicy(attempts=4, total_seconds=20, base_delay=0.05)


def _blob(data: bytes) -> LfsObject:
    return LfsObject(hashlib.sha256(data).hexdigest(), len(data))


def _files(folder: Path, count: int, size: int = 3000) -> list[tuple[LfsObject, Path]]:
    folder.mkdir(parents=True, exist_ok=True)
    pairs = []
    for i in range(count):
        data = os.urandom(size + i)
        path = folder / f"f{i}.bin"
        path.write_bytes(data)
        pairs.append((_blob(data), path))
    return pairs


def _counting_session() -> tuple[requests.Session, list[str]]:
    """A real session that records each request's method and path."""
    session = requests.Session()
    seen: list[str] = []
    session.hooks["response"].append(
        lambda r, *a, **k: seen.append(f"{r.request.method} {r.request.path_url}")
    )
    return session, seen


@pytest.fixture(scope="module")
def giftless(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GiftlessServer]:
    yield from giftless_fixture(tmp_path_factory)


@pytest.fixture(scope="module")
def jwt_giftless(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GiftlessServer]:
    yield from jwt_giftless_fixture(tmp_path_factory)


@pytest.fixture
def store(tmp_path: Path) -> BlobStore:
    return BlobStore(tmp_path / "store")


def _repo(request: pytest.FixtureRequest) -> str:
    return re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")


# Endpoints ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("remote", "expected"),
    [
        ("https://example.com/org/shelf", "https://example.com/org/shelf.git/info/lfs"),
        ("https://example.com/org/shelf.git/", "https://example.com/org/shelf.git/info/lfs"),
        ("http://127.0.0.1:8080/org/shelf.git", "http://127.0.0.1:8080/org/shelf.git/info/lfs"),
        ("git@example.com:org/shelf.git", "https://example.com/org/shelf.git/info/lfs"),
        ("ssh://git@example.com:2222/org/shelf", "https://example.com/org/shelf.git/info/lfs"),
        ("git://example.com/org/shelf", "https://example.com/org/shelf.git/info/lfs"),
        ("/srv/shelves/main.git", None),
        ("file:///srv/shelves/main.git", None),
        ("./relative/shelf", None),
    ],
)
def test_endpoint_for_follows_git_lfs_rules(remote: str, expected: str | None) -> None:
    assert endpoint_for(remote) == expected


def test_lfs_url_wins_and_bad_remotes_are_refused() -> None:
    assert (
        endpoint_for("https://example.com/a/b", "https://lfs.example.com/x/") == "https://lfs.example.com/x"
    )
    with pytest.raises(ConfigError, match="cannot find the LFS server"):
        endpoint_for("ftp://example.com/shelf")


def test_transport_for_picks_local_or_http(tmp_path: Path) -> None:
    assert isinstance(transport_for(str(tmp_path)), LocalLfsObjects)
    client = transport_for("https://example.com/org/shelf", auth=None)
    assert isinstance(client, LfsClient) and client.endpoint.endswith("/org/shelf.git/info/lfs")


def test_lfs_object_is_the_pointer_value_and_rejects_bad_values() -> None:
    assert LfsObject is LfsPointer  # one value from the pointer file to the store
    with pytest.raises(PointerError, match="invalid LFS oid"):
        LfsObject("xyz", 1)
    with pytest.raises(PointerError, match="invalid LFS oid"):
        LfsObject("0" * 64 + "\n", 1)
    with pytest.raises(PointerError, match="invalid LFS object size"):
        LfsObject("0" * 64, -1)


# Against giftless ---------------------------------------------------------------------------------------


@network
def test_round_trip_in_one_batch_each(
    giftless: GiftlessServer, store: BlobStore, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    pairs = _files(tmp_path / "src", 30, size=2000)
    session, seen = _counting_session()
    client = LfsClient(giftless.endpoint("org", _repo(request)), session=session, jobs=4)
    up = client.upload(pairs)
    assert sorted(up.uploaded) == sorted(o.oid for o, _ in pairs) and up.skipped == ()
    assert [s for s in seen if s.endswith("/objects/batch")] == [
        f"POST /org/{_repo(request)}.git/info/lfs/objects/batch"
    ]
    seen.clear()
    down = client.download([o for o, _ in pairs], store)
    assert len(down.downloaded) == 30 and down.bytes_transferred == sum(o.size for o, _ in pairs)
    assert sum(s.endswith("/objects/batch") for s in seen) == 1
    for obj, path in pairs:
        assert store.path(obj.oid).read_bytes() == path.read_bytes()


@network
def test_upload_skips_what_the_server_has(
    giftless: GiftlessServer, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    pairs = _files(tmp_path / "src", 3)
    client = LfsClient(giftless.endpoint("org", _repo(request)))
    client.upload(pairs[:1])
    session, seen = _counting_session()
    report = LfsClient(giftless.endpoint("org", _repo(request)), session=session).upload(pairs)
    assert report.skipped == (pairs[0][0].oid,)
    assert sorted(report.uploaded) == sorted(o.oid for o, _ in pairs[1:])
    assert not any(s.startswith("PUT") and pairs[0][0].oid in s for s in seen)
    assert sum(s.startswith("PUT") for s in seen) == 2
    assert sum(s.startswith("POST") and "/verify" in s for s in seen) == 2  # giftless's verify actions


@network
def test_changed_file_is_refused_before_upload(
    giftless: GiftlessServer, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    (obj, path), *_ = _files(tmp_path / "src", 1)
    path.write_bytes(b"edited after hashing")
    session, seen = _counting_session()
    with pytest.raises(IntegrityError, match="does not match object"):
        LfsClient(giftless.endpoint("org", _repo(request)), session=session).upload([(obj, path)])
    assert seen == []


@network
def test_nothing_missing_means_no_request(giftless: GiftlessServer, store: BlobStore, tmp_path: Path) -> None:
    (obj, path), *_ = _files(tmp_path / "src", 1)
    store.add_file(path)
    session, seen = _counting_session()
    report = LfsClient("http://127.0.0.1:9/nowhere.git/info/lfs", session=session).download([obj], store)
    assert report.skipped == (obj.oid,) and report.downloaded == () and seen == []


@network
def test_missing_object_is_not_found(giftless: GiftlessServer, store: BlobStore) -> None:
    ghost = _blob(b"never uploaded")
    with pytest.raises(NotFoundError, match=ghost.oid):
        LfsClient(giftless.endpoint("org", "empty")).download([ghost], store)


@network
def test_corrupted_object_never_enters_the_store(
    giftless: GiftlessServer, store: BlobStore, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    (obj, path), *_ = _files(tmp_path / "src", 1, size=50_000)
    client = LfsClient(giftless.endpoint("org", _repo(request)), retry=FAST)
    client.upload([(obj, path)])
    stored = giftless.object_path("org", _repo(request), obj.oid)
    stored.write_bytes(bytes(b ^ 0xFF for b in path.read_bytes()))  # same length, other bytes
    with pytest.raises(IntegrityError, match=obj.oid):
        client.download([obj], store)
    assert not store.has(obj.oid) and store.partial_size(obj.oid) == 0


@network
def test_expired_actions_are_batched_again(
    giftless: GiftlessServer, store: BlobStore, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    pairs = _files(tmp_path / "src", 2)
    LfsClient(giftless.endpoint("org", _repo(request))).upload(pairs)
    now = [1000.0]
    session, seen = _counting_session()

    def clock() -> float:
        # Time jumps past the action lifetime right after the first batch answer was read.
        value = now[0]
        now[0] += 100_000.0 if len(seen) == 1 else 0.0
        return value

    client = LfsClient(giftless.endpoint("org", _repo(request)), session=session, clock=clock, jobs=1)
    client.download([o for o, _ in pairs], store)
    # The first answer, then one fresh answer for each object whose action had expired.
    assert sum(s.endswith("/objects/batch") for s in seen) == 3
    assert all(store.has(o.oid, o.size) for o, _ in pairs)


@network
def test_resume_when_the_server_ignores_range(
    giftless: GiftlessServer, store: BlobStore, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    (obj, path), *_ = _files(tmp_path / "src", 1, size=40_000)
    client = LfsClient(giftless.endpoint("org", _repo(request)))
    client.upload([(obj, path)])
    with pytest.raises(RuntimeError), store.writer(obj.oid, obj.size) as w:
        w.write(path.read_bytes()[:10_000])
        raise RuntimeError("interrupted")
    assert store.partial_size(obj.oid) == 10_000
    report = client.download([obj], store)
    assert report.bytes_transferred == obj.size  # giftless answered 200: started over
    assert store.path(obj.oid).read_bytes() == path.read_bytes()


def test_unusable_action_url_is_a_transport_error(store: BlobStore) -> None:
    client = LfsClient("http://127.0.0.1:9/x.git/info/lfs")
    answer = ObjectAction(_blob(b"x"), {"download": Action("notaurl?jwt=SECRET")})
    with pytest.raises(TransportError, match="MissingSchema") as failed:
        client._download_one(answer, store)
    assert "SECRET" not in str(failed.value) and not store.has(answer.oid)


@network
def test_offline_mode_refuses_downloads(monkeypatch: pytest.MonkeyPatch, store: BlobStore) -> None:
    monkeypatch.setenv("CCLM_SHELF_OFFLINE", "1")
    with pytest.raises(OfflineError, match="offline"):
        LfsClient("http://127.0.0.1:9/x.git/info/lfs").download([_blob(b"x")], store)


@network
def test_jwt_server_needs_a_token_and_never_shows_it(
    jwt_giftless: GiftlessServer, store: BlobStore, tmp_path: Path
) -> None:
    pairs = _files(tmp_path / "src", 2)
    endpoint = jwt_giftless.endpoint("org", "private")
    with pytest.raises(AuthError, match="needs credentials") as anonymous:
        LfsClient(endpoint).upload(pairs)
    assert "CCLM_SHELF_TOKEN" in str(anonymous.value)
    wrong = jwt_giftless.mint_token("org", "private")[:-4] + "AAAA"
    with pytest.raises(AuthError) as refused:
        LfsClient(endpoint, auth=BearerAuth(wrong)).upload(pairs)
    assert wrong not in str(refused.value) and wrong not in repr(refused.value)
    token = jwt_giftless.mint_token("org", "private")
    client = LfsClient(endpoint, auth=BearerAuth(token))
    assert len(client.upload(pairs).uploaded) == 2
    assert len(client.download([o for o, _ in pairs], store).downloaded) == 2
    assert token not in repr(client) and token not in repr(client.auth)


@network
def test_token_from_environment_reaches_the_server(
    jwt_giftless: GiftlessServer, store: BlobStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pairs = _files(tmp_path / "src", 1)
    monkeypatch.setenv("CCLM_SHELF_TOKEN", jwt_giftless.mint_token("org", "envrepo"))
    remote = jwt_giftless.base_url + "/org/envrepo"
    client = transport_for(remote)
    assert isinstance(client, LfsClient)
    assert client.upload(pairs).uploaded == (pairs[0][0].oid,)


# Against a scripted fault server ------------------------------------------------------------------------


class _FaultHandler(BaseHTTPRequestHandler):
    """A tiny LFS server: batch answers point at /obj/<oid>; GETs follow a script of faults."""

    server: _FaultServer
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.server.malformed_batch:
            answer = {"objects": [{"oid": o["oid"], "actions": "none"} for o in body["objects"]]}
            return self._send(200, json.dumps(answer).encode())
        base = f"http://{self.server.href_host}:{self.server.server_port}"
        action = {
            "expires_in": 60,
            **({"header": self.server.action_header} if self.server.action_header else {}),
        }
        objects = [
            {**o, "actions": {"download": {"href": f"{base}/obj/{o['oid']}?jwt=SECRET", **action}}}
            for o in body["objects"]
        ]
        self._send(200, json.dumps({"transfer": "basic", "objects": objects}).encode())

    def do_GET(self) -> None:
        self.server.ranges.append(self.headers.get("Range"))
        self.server.authorizations.append(self.headers.get("Authorization"))
        fault = self.server.script.pop(0) if self.server.script else None
        data = self.server.blobs[self.path.split("/")[-1].split("?")[0]]
        if fault in (503, 429):
            headers = {"Retry-After": "1"} if fault == 429 else {}
            return self._send(fault, b'{"message": "busy, token=SECRET"}', headers)
        if fault == "long":
            return self._send(200, data + b"extra bytes")
        start = int(re.match(r"bytes=(\d+)-", self.headers.get("Range") or "bytes=0-").group(1))
        status = 206 if start else 200
        headers = {"Content-Range": f"bytes {start}-{len(data) - 1}/{len(data)}"} if start else {}
        if fault == "cut":
            return self._send(status, data[start:], headers, cut_at=(len(data) - start) // 2)
        return self._send(status, data[start:], headers)

    def _send(
        self, status: int, body: bytes, headers: dict[str, str] | None = None, cut_at: int = -1
    ) -> None:
        self.send_response(status)
        for name, value in {"Content-Length": str(len(body)), **(headers or {})}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body if cut_at < 0 else body[:cut_at])
        if cut_at >= 0:
            self.wfile.flush()
            self.close_connection = True


class _FaultServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _FaultHandler)
        self.blobs: dict[str, bytes] = {}
        self.script: list[object] = []
        self.ranges: list[str | None] = []
        self.authorizations: list[str | None] = []  # each GET's Authorization header
        self.malformed_batch = False
        self.href_host = "127.0.0.1"  # "localhost": download links on another host than the endpoint
        self.action_header: dict[str, str] = {}  # headers the batch answer gives each download action

    def add(self, data: bytes) -> LfsObject:
        obj = _blob(data)
        self.blobs[obj.oid] = data
        return obj

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server_port}/org/shelf.git/info/lfs"


@pytest.fixture
def faults() -> Iterator[_FaultServer]:
    server = _FaultServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@network
def test_retries_5xx_and_honours_retry_after(faults: _FaultServer, store: BlobStore, monkeypatch) -> None:
    obj = faults.add(os.urandom(20_000))
    faults.script = [503, 429]
    waits: list[float] = []  # what the adapter's retries decided to wait, recorded instead of slept

    def sleep(retry: BoundedRetry, response=None) -> None:
        waits.append((response is not None and retry.get_retry_after(response)) or retry.get_backoff_time())

    monkeypatch.setattr(BoundedRetry, "sleep", sleep)
    report = LfsClient(faults.endpoint, retry=FAST).download([obj], store)
    assert waits == [0.0, 1.0]  # urllib3 retries at once after the first failure; then the Retry-After: 1
    assert report.downloaded == (obj.oid,) and store.has(obj.oid, obj.size)
    assert len(faults.ranges) == 3


@network
def test_netrc_credentials_never_replace_an_actions_own_header_nor_go_to_another_host(
    faults: _FaultServer, store: BlobStore, tmp_path: Path, monkeypatch
) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login me password mine\nmachine localhost login me password mine\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    first, second = faults.add(b"a" * 100), faults.add(b"b" * 100)
    faults.action_header = {"Authorization": "RemoteAuth from-the-batch"}
    LfsClient(faults.endpoint, retry=FAST).download([first], store)
    assert faults.authorizations == ["RemoteAuth from-the-batch"]  # not netrc's Basic credentials
    faults.action_header, faults.href_host = {}, "localhost"
    LfsClient(faults.endpoint, auth=BearerAuth("ours"), retry=FAST).download([second], store)
    assert faults.authorizations[1] is None  # neither our token nor netrc's go to another host
    assert store.has(first.oid, first.size) and store.has(second.oid, second.size)


@network
def test_gives_up_after_bounded_attempts_without_leaking(faults: _FaultServer, store: BlobStore) -> None:
    obj = faults.add(b"x" * 100)
    faults.script = [503] * 10
    with pytest.raises(TransportError, match="after 4 attempt") as failed:
        LfsClient(faults.endpoint, retry=FAST).download([obj], store)
    assert "SECRET" not in str(failed.value)
    assert not store.has(obj.oid)


@network
def test_broken_connection_resumes_with_a_real_206(faults: _FaultServer, store: BlobStore) -> None:
    data = os.urandom(100_000)
    obj = faults.add(data)
    faults.script = ["cut"]
    report = LfsClient(faults.endpoint, retry=FAST).download([obj], store)
    assert faults.ranges == [None, "bytes=50000-"]
    assert report.bytes_transferred == len(data)  # half, then the other half
    assert store.path(obj.oid).read_bytes() == data


@network
def test_malformed_batch_answer_is_a_transport_error(faults: _FaultServer, store: BlobStore) -> None:
    obj = faults.add(b"abc")
    faults.malformed_batch = True
    with pytest.raises(TransportError, match="malformed batch answer"):
        LfsClient(faults.endpoint, retry=FAST).download([obj], store)


@network
def test_too_long_body_is_rejected(faults: _FaultServer, store: BlobStore) -> None:
    obj = faults.add(b"exact" * 100)
    faults.script = ["long"]
    with pytest.raises(IntegrityError, match="longer than its declared size"):
        LfsClient(faults.endpoint, retry=FAST).download([obj], store)
    assert not store.has(obj.oid) and store.partial_size(obj.oid) == 0


# Local shelves and git-lfs ------------------------------------------------------------------------------


def test_local_objects_round_trip(tmp_path: Path, store: BlobStore) -> None:
    shelf = LocalLfsObjects(tmp_path / "shelf.git")
    pairs = _files(tmp_path / "src", 3)
    assert len(shelf.upload(pairs).uploaded) == 3
    assert shelf.upload(pairs).skipped == tuple(o.oid for o, _ in pairs)
    obj = pairs[0][0]
    assert (
        shelf.object_path(obj.oid)
        == tmp_path / "shelf.git/lfs/objects" / obj.oid[:2] / obj.oid[2:4] / obj.oid
    )
    report = shelf.download([o for o, _ in pairs], store)
    assert len(report.downloaded) == 3
    assert all(store.path(o.oid).read_bytes() == p.read_bytes() for o, p in pairs)


def test_local_objects_refuse_missing_and_corrupt(tmp_path: Path, store: BlobStore) -> None:
    shelf = LocalLfsObjects(tmp_path / "shelf.git")
    (obj, path), *_ = _files(tmp_path / "src", 1)
    with pytest.raises(NotFoundError, match=obj.oid):
        shelf.download([obj], store)
    path.write_bytes(b"changed")
    with pytest.raises(IntegrityError, match="does not match"):
        shelf.upload([(obj, path)])
    assert not list((tmp_path / "shelf.git").rglob("*.tmp"))
    shelf.object_path(obj.oid).parent.mkdir(parents=True, exist_ok=True)
    shelf.object_path(obj.oid).write_bytes(os.urandom(obj.size))
    with pytest.raises(IntegrityError):
        shelf.download([obj], store)
    assert not store.has(obj.oid)


def _git(*args: str, cwd: Path, env: dict[str, str] | None = None) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, env=env)


def _lfs_work_tree(tmp_path: Path, data: bytes) -> tuple[Path, Path]:
    """A bare ``shelf.git`` and a git-lfs work tree with one commit tracking ``model.bin`` (``data``),
    the bare repository as its remote ``origin``; nothing pushed yet."""
    bare, work = tmp_path / "shelf.git", tmp_path / "work"
    _git("init", "-q", "-b", "main", "--bare", str(bare), cwd=tmp_path)
    _git("init", "-q", "-b", "main", str(work), cwd=tmp_path)
    _git("lfs", "install", "--local", cwd=work)
    _git("lfs", "track", "*.bin", cwd=work)
    (work / "model.bin").write_bytes(data)
    _git("add", ".gitattributes", "model.bin", cwd=work)
    _git("commit", "-q", "-m", "add a model", cwd=work)
    # git-lfs needs a named remote (or a file:// URL) to push objects to a local path.
    _git("remote", "add", "origin", str(bare), cwd=work)
    return bare, work


def test_objects_pushed_by_git_lfs_are_readable(tmp_path: Path, store: BlobStore) -> None:
    data = os.urandom(30_000)
    bare, work = _lfs_work_tree(tmp_path, data)
    _git("push", "-q", "origin", "main", cwd=work)
    transport = transport_for(str(bare))
    assert isinstance(transport, LocalLfsObjects)
    transport.download([_blob(data)], store)
    assert store.path(_blob(data).oid).read_bytes() == data


def test_git_lfs_reads_objects_uploaded_locally(tmp_path: Path) -> None:
    data = os.urandom(20_000)
    (bare, work), clone = _lfs_work_tree(tmp_path, data), tmp_path / "clone"
    # Push only the pointer; the object goes in through LocalLfsObjects instead of git-lfs.
    _git("push", "-q", "origin", "main", cwd=work, env={**os.environ, "GIT_LFS_SKIP_PUSH": "1"})
    assert not (bare / "lfs").exists()
    LocalLfsObjects(bare).upload([(_blob(data), work / "model.bin")])
    lfs_filter = [
        "-c", "filter.lfs.process=git-lfs filter-process",
        "-c", "filter.lfs.smudge=git-lfs smudge -- %f",
        "-c", "filter.lfs.required=true",
    ]  # fmt: skip
    _git(*lfs_filter, "clone", "-q", str(bare), str(clone), cwd=tmp_path)
    assert (clone / "model.bin").read_bytes() == data


@network
def test_large_batches_are_split_at_the_git_lfs_limit(
    giftless: GiftlessServer, store: BlobStore, tmp_path: Path, request: pytest.FixtureRequest, monkeypatch
) -> None:
    from shelf import constants

    monkeypatch.setattr(constants, "BATCH_SIZE", 4)
    pairs = _files(tmp_path / "src", 10, size=100)
    session, seen = _counting_session()
    client = LfsClient(giftless.endpoint("org", _repo(request)), session=session, jobs=4)
    client.upload(pairs)
    assert sum(s.endswith("/objects/batch") for s in seen) == 3  # 4 + 4 + 2
    seen.clear()
    down = client.download([o for o, _ in pairs], store)
    assert sum(s.endswith("/objects/batch") for s in seen) == 3
    assert sorted(down.downloaded) == sorted(o.oid for o, _ in pairs)
