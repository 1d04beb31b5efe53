"""HttpIndex against real servers on 127.0.0.1: python -m http.server, and a small ETag server."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from registry_index import (
    HttpIndex,
    IndexFormatError,
    LocalIndex,
    Manifest,
    build_index,
    dump_manifest,
    manifest_digest,
)
from registry_index.errors import IndexFetchError
from tests.registry_index import factories
from tests.support.git_servers import free_port
from tests.support.processes import stop_process

pytestmark = pytest.mark.network
ROOT = Path(__file__).resolve().parents[2]


def publish_tree(root: Path, versions: list[str]) -> None:
    manifests = []
    for version in versions:
        manifest = Manifest.from_dict(factories.component("en_wiki_ner_1", version))
        manifests.append((manifest, manifest_digest(dump_manifest(manifest))))
    manifests.append((m := Manifest.from_dict(factories.embedder()), manifest_digest(dump_manifest(m))))
    for relative, data in build_index(manifests).items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_bytes(data)


def wait_until_serving(port: int) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            requests.get(f"http://127.0.0.1:{port}/", timeout=1)
            return
        except requests.ConnectionError:
            time.sleep(0.05)
    raise RuntimeError(f"server on port {port} did not start")


@pytest.fixture
def plain_server(tmp_path):
    """``python -m http.server`` serving a shelf folder (no ETags)."""
    folder = tmp_path / "shelf"
    folder.mkdir()
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "http.server",
        str(port),
        "--bind",
        "127.0.0.1",
        "--directory",
        str(folder),
    ]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until_serving(port)
        yield folder, f"http://127.0.0.1:{port}"
    finally:
        stop_process(process)


@pytest.fixture
def etag_server(tmp_path):
    """The ETag-aware server from etag_server.py; yields (folder, url, log file)."""
    folder = tmp_path / "shelf"
    folder.mkdir()
    command = [sys.executable, "-m", "tests.registry_index.etag_server", str(folder)]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        port = int(process.stdout.readline().split()[1])
        wait_until_serving(port)
        yield folder, f"http://127.0.0.1:{port}", Path(str(folder.resolve()) + ".log")
    finally:
        stop_process(process)


def statuses(log: Path, name: str) -> list[str]:
    return [line.split()[0] for line in log.read_text().splitlines() if line.endswith("/" + name)]


def test_reads_only_the_files_asked_for(plain_server, tmp_path):
    folder, url = plain_server
    publish_tree(folder, ["0.2.0", "0.3.0"])
    index = HttpIndex(url, tmp_path / "cache")
    entries = index.entries("en_wiki_ner_1")
    assert [e.version for e in entries] == ["0.2.0", "0.3.0"]
    assert entries == LocalIndex(folder).entries("en_wiki_ner_1")
    assert (index.files_read, index.requests_made) == (1, 1)
    assert index.entries("not_on_this_shelf") == []


def test_without_etag_every_lookup_downloads(plain_server, tmp_path):
    folder, url = plain_server
    publish_tree(folder, ["0.2.0"])
    index = HttpIndex(url, tmp_path / "cache")
    index.entries("en_wiki_ner_1")
    index.entries("en_wiki_ner_1")
    assert (index.requests_made, index.not_modified) == (2, 0)


def test_etag_revalidation_uses_the_cache_on_304(etag_server, tmp_path):
    folder, url, log = etag_server
    publish_tree(folder, ["0.2.0"])
    first = HttpIndex(url, tmp_path / "cache").entries("en_wiki_ner_1")
    again = HttpIndex(url, tmp_path / "cache")
    assert again.entries("en_wiki_ner_1") == first
    assert again.not_modified == 1
    assert statuses(log, "en_wiki_ner_1") == ["200", "304"]


def test_changed_file_is_downloaded_again(etag_server, tmp_path):
    folder, url, log = etag_server
    publish_tree(folder, ["0.2.0"])
    index = HttpIndex(url, tmp_path / "cache")
    index.entries("en_wiki_ner_1")
    publish_tree(folder, ["0.2.0", "0.4.0"])
    assert [e.version for e in index.entries("en_wiki_ner_1")] == ["0.2.0", "0.4.0"]
    assert statuses(log, "en_wiki_ner_1") == ["200", "200"]


def test_offline_reads_the_cache_and_names_what_is_missing(etag_server, tmp_path):
    folder, url, _ = etag_server
    publish_tree(folder, ["0.2.0"])
    online = HttpIndex(url, tmp_path / "cache").entries("en_wiki_ner_1")
    offline = HttpIndex(url, tmp_path / "cache", offline=True)
    assert offline.entries("en_wiki_ner_1") == online
    assert offline.requests_made == 0
    with pytest.raises(IndexFetchError, match="'en_wiki_clm_1' is not cached and offline mode is on"):
        offline.entries("en_wiki_clm_1")


def test_garbled_download_is_reported_and_not_cached(etag_server, tmp_path):
    folder, url, _ = etag_server
    publish_tree(folder, ["0.2.0"])
    HttpIndex(url, tmp_path / "cache").entries("en_wiki_ner_1")
    target = folder / "index/en/_w/en_wiki_ner_1"
    target.write_bytes(target.read_bytes()[:-10])
    with pytest.raises(IndexFormatError) as info:
        HttpIndex(url, tmp_path / "cache").entries("en_wiki_ner_1")
    assert (info.value.path, info.value.line) == ("index/en/_w/en_wiki_ner_1", 1)
    offline = HttpIndex(url, tmp_path / "cache", offline=True)
    assert [e.version for e in offline.entries("en_wiki_ner_1")] == ["0.2.0"]


def test_unreachable_server_raises_fetch_error(tmp_path):
    index = HttpIndex(f"http://127.0.0.1:{free_port()}", tmp_path / "cache")
    with pytest.raises(IndexFetchError, match="fetching the index of 'abc'") as info:
        index.entries("abc")
    assert "hint:" in str(info.value)


def test_404_drops_a_stale_cache(etag_server, tmp_path):
    folder, url, _ = etag_server
    publish_tree(folder, ["0.2.0"])
    HttpIndex(url, tmp_path / "cache").entries("en_wiki_ner_1")
    (folder / "index/en/_w/en_wiki_ner_1").unlink()
    assert HttpIndex(url, tmp_path / "cache").entries("en_wiki_ner_1") == []
    with pytest.raises(IndexFetchError):
        HttpIndex(url, tmp_path / "cache", offline=True).entries("en_wiki_ner_1")
