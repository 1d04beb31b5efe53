"""Installing from remote shelves on loopback: git over ``git daemon`` and smart HTTP, blobs in giftless.

The shelf's ``.lfsconfig`` names the giftless endpoint, so the bare repository holds pointer files only and
every blob travels over the LFS batch API.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from shelf.api import Shelf
from shelf.errors import IntegrityError, NotFoundError, TransportError
from shelf.store import BlobStore
from tests.support.giftless import GiftlessServer
from tests.support.git_servers import GitDaemon, GitHttpServer
from tests.support.shelves import (
    BASE,
    CHARS,
    MLM,
    VERSION,
    SavedStack,
    assert_installed,
    cli,
    corrupt,
    lfs_object,
    manifest_files,
    publish_folder,
    publish_stack,
    session_env,
)

pytestmark = pytest.mark.network


@dataclass(frozen=True)
class RemoteShelf:
    git_url: str
    http_url: str
    repo: Path
    lfs: GiftlessServer


def _serve_shelf(root: Path, lfs: GiftlessServer) -> Path:
    from shelf.source import create_shelf

    repo = root / "repos" / "shelf.git"
    create_shelf(repo, lfs_url=lfs.endpoint("org", "shelf"))
    return repo


@contextmanager
def _base_installed_once(stack: SavedStack, tmp_path: Path) -> Iterator[tuple[str, GiftlessServer]]:
    """BASE published to a shelf on git:// with giftless and installed once (into ``one``): the shelf's
    URL and its LFS server. Both servers stop when the block ends."""
    lfs = GiftlessServer(tmp_path / "giftless").start()
    try:
        with GitDaemon(_serve_shelf(tmp_path, lfs).parent) as daemon:
            url = daemon.url("shelf.git")
            publish_folder(url, stack.base, BASE, cache_dir=tmp_path / "publisher")
            Shelf(url).install(BASE, target=tmp_path / "one")
            yield url, lfs
    finally:
        lfs.stop()


@pytest.fixture(scope="module")
def remote(tmp_path_factory, tiny_stack: SavedStack) -> Iterator[RemoteShelf]:
    """One published shelf for the module, read over git:// and http:// with its blobs in giftless."""
    root = tmp_path_factory.mktemp("remote")
    with GiftlessServer(root / "giftless") as lfs:
        repo = _serve_shelf(root, lfs)
        with GitDaemon(repo.parent) as daemon, session_env(root / "publisher-cache"):
            publish_stack(daemon.url("shelf.git"), tiny_stack, root / "publisher-cache")
            with GitHttpServer(repo.parent) as http:
                yield RemoteShelf(daemon.url("shelf.git"), http.url("shelf.git"), repo, lfs)


def _cache() -> Path:
    return Path(os.environ["CCLM_SHELF_CACHE_DIR"])


def test_the_shelf_holds_pointers_and_giftless_holds_the_blobs(remote: RemoteShelf) -> None:
    assert not (remote.repo / "lfs").exists()
    assert len(list((remote.lfs.storage_path / "org" / "shelf").iterdir())) == 7


def test_install_over_git_daemon_through_the_command(remote: RemoteShelf, tmp_path: Path) -> None:
    target = tmp_path / "target"
    done = cli("--shelf", remote.git_url, "install", f"{MLM}@v{VERSION}", "--target", str(target), "--json")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["objects_fetched"] == assert_installed(target, BASE) + assert_installed(target, MLM)
    assert cli("verify", "--target", str(target)).returncode == 0


def test_install_over_smart_http_through_the_api(remote: RemoteShelf, tmp_path: Path) -> None:
    target = tmp_path / "target"
    report = Shelf(remote.http_url).install(MLM, CHARS, target=target)
    assert sorted(report.installed) == [(BASE, VERSION), (CHARS, VERSION), (MLM, VERSION)]
    for name in (BASE, MLM, CHARS):
        assert_installed(target, name)
    record = json.loads((target / ".cclm-shelf-install.json").read_text())
    assert {entry["source"] for entry in record["components"].values()} == {remote.http_url}
    done = cli("--shelf", remote.http_url, "install", CHARS, "--target", str(target))
    assert done.returncode == 0 and f"unchanged {CHARS} {VERSION}" in done.stdout


def test_a_blob_damaged_on_the_lfs_server_is_refused(remote: RemoteShelf, tmp_path: Path) -> None:
    probe = tmp_path / "probe"
    Shelf(remote.git_url, cache_dir=tmp_path / "probe-cache").install(CHARS, target=probe)
    oid = next(d for rel, (d, _) in manifest_files(probe, CHARS).items() if rel.endswith(".h5"))
    stored = remote.lfs.object_path("org", "shelf", oid)
    original = corrupt(stored)
    target = tmp_path / "target"
    try:
        with pytest.raises(IntegrityError, match=oid):
            Shelf(remote.git_url).install(CHARS, target=target)
        done = cli("--shelf", remote.git_url, "install", CHARS, "--target", str(target))
        assert done.returncode == 1 and oid in done.stderr
    finally:
        stored.write_bytes(original)
    assert not target.exists()
    store = BlobStore(_cache())
    assert not store.has(oid) and store.partial_size(oid) == 0
    assert not list(_cache().rglob("*.incomplete"))
    Shelf(remote.git_url).install(CHARS, target=target)  # the server is fixed: a clean retry works
    assert_installed(target, CHARS)


def test_warm_and_offline_installs_need_neither_server(tiny_stack, tmp_path: Path) -> None:
    with _base_installed_once(tiny_stack, tmp_path) as (url, lfs):
        lfs.stop()
        report = Shelf(url).install(BASE, target=tmp_path / "two")  # metadata from git, blobs from the store
        assert report.installed == [(BASE, VERSION)] and report.objects_fetched == 0
    assert_installed(tmp_path / "two", BASE)
    Shelf(url, offline=True).install(BASE, target=tmp_path / "three")
    assert_installed(tmp_path / "three", BASE)
    with pytest.raises(TransportError, match=r"127\.0\.0\.1"):
        Shelf(url).install(BASE, target=tmp_path / "four")
    assert not (tmp_path / "four").exists()


def test_a_partial_file_left_by_an_earlier_run_is_not_trusted(remote: RemoteShelf, tmp_path: Path) -> None:
    probe = tmp_path / "probe"
    Shelf(remote.git_url, cache_dir=tmp_path / "probe-cache").install(CHARS, target=probe)
    oid, size = next(v for rel, v in manifest_files(probe, CHARS).items() if rel.endswith(".h5"))
    store = BlobStore(_cache())
    partial = store.path(oid).with_name(oid + ".incomplete")
    partial.parent.mkdir(parents=True)
    partial.write_bytes(b"\xff" * (size // 2))  # wrong bytes, as if a crash had left them
    target = tmp_path / "target"
    Shelf(remote.git_url).install(CHARS, target=target)
    assert_installed(target, CHARS)
    assert not partial.exists() and store.verify() == []


def test_a_shelf_served_by_cclm_shelf_serve_installs_over_git_and_lfs(
    stack_shelf: Path, tmp_path: Path
) -> None:
    from shelf import serve

    with serve.start(stack_shelf) as servers:
        assert serve.point_lfs_url(Shelf(str(stack_shelf)).source(), servers.lfs_url)
        target = tmp_path / "target"
        done = cli("--shelf", servers.git_url, "install", MLM, "--target", str(target), "--json")
        assert done.returncode == 0, done.stderr
        files = assert_installed(target, BASE) + assert_installed(target, MLM)
        assert json.loads(done.stdout)["objects_fetched"] == files
        oid = next(d for rel, (d, _) in manifest_files(target, MLM).items() if rel.endswith(".h5"))
        BlobStore(_cache()).path(oid).unlink()  # forget it locally, then damage the served copy
        corrupt(lfs_object(stack_shelf, oid))
        # serve re-hashes an object whose stat changed and answers 404 rather than send damaged bytes
        with pytest.raises(NotFoundError, match=oid):
            Shelf(servers.git_url).install(MLM, target=tmp_path / "second")
    assert not (tmp_path / "second").exists()


def test_a_shelf_that_does_not_answer_is_one_line_and_exact_pins_install_from_the_mirror(
    tiny_stack, tmp_path: Path
) -> None:
    with _base_installed_once(tiny_stack, tmp_path) as (url, _lfs):
        pass  # mirrored, and its blobs in the store; then both servers stop
    always_fetch = {"CCLM_SHELF_INDEX_MAX_AGE": "0"}  # the mirror is too old: the shelf must be asked
    pinned = cli(
        "--shelf", url, "install", f"{BASE}@{VERSION}", "--target", str(tmp_path / "two"), env=always_fetch
    )
    assert pinned.returncode == 0, pinned.stderr
    assert_installed(tmp_path / "two", BASE)
    ranged = cli("--shelf", url, "install", BASE, "--target", str(tmp_path / "three"))
    assert ranged.returncode == 1 and "Traceback" not in ranged.stderr
    first, hint = ranged.stderr.strip().splitlines()
    assert first == f"error: the shelf {url} did not answer (connection refused)"
    assert "--offline" in hint
    shown = cli("--shelf", url, "show", BASE, "--json")
    assert json.loads(shown.stdout)["error"] == f"the shelf {url} did not answer (connection refused)"
    offline = cli("--shelf", url, "--offline", "install", BASE, "--target", str(tmp_path / "four"))
    assert offline.returncode == 0, offline.stderr
