"""A static shelf end to end: `export DEST [--with-blobs]`, served by a plain static HTTP server, read as
`--shelf sparse+http://...` by install, lock, show, search, tree and --offline."""

# ruff: noqa: F811 - the shared fixtures are imported by name for pytest

from __future__ import annotations

import json
import shutil
import signal
import tomllib
from pathlib import Path

import pytest
import requests

from registry_index import layout
from tests.e2e.test_serve import eventually, serve_command
from tests.shelf.conftest import (  # noqa: F401 - shared fixtures
    BASE,
    MLM,
    cli,
    lfs_objects,
    publish_folder,
    saved_models,
    shelf_path,
    stocked_shelf,
)
from tests.support.git_servers import free_port
from tests.support.shelves import corrupt, git
from tests.support.static_server import request_log, static_server

pytestmark = pytest.mark.network


def snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under ``folder``: its bytes and its mtime (nanoseconds)."""
    return {
        p.relative_to(folder).as_posix(): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def shelf_file(shelf: Path, path: str) -> bytes:
    return git("--git-dir", str(shelf), "show", f"HEAD:{path}", cwd=shelf).encode()


def test_export_writes_the_index_and_rewrites_only_what_changed(cli, stocked_shelf, saved_models, tmp_path):
    dest = tmp_path / "public"
    first = cli("--shelf", stocked_shelf, "export", dest, "--with-blobs", "--json")
    assert first.code == 0, first.err
    assert json.loads((dest / "config.json").read_bytes()) == {"blobs": {"kind": "static"}, "format": 1}
    assert (dest / "index/names.txt").read_text() == "base\nmlm\n"
    for path in (layout.index_path(MLM), layout.manifest_path(MLM, "0.1.0"), layout.INDEX_CONFIG_PATH):
        assert (dest / path).read_bytes() == shelf_file(stocked_shelf, path)
    blobs = sorted(p.name for p in (dest / "blobs/sha256").rglob("*") if p.is_file())
    assert blobs == lfs_objects(stocked_shelf) and first.json()["blobs_added"] == len(blobs)
    (dest / "unrelated.txt").write_text("mine")
    before = snapshot(dest)

    again = cli("--shelf", stocked_shelf, "export", dest, "--with-blobs", "--json")
    assert again.json()["changed"] == [] and again.json()["blobs_added"] == 0
    assert snapshot(dest) == before  # same bytes, and not even rewritten

    publish_folder(stocked_shelf, saved_models / MLM, "mlm", "0.2.0", ["base==0.1.0"])
    third = cli("--shelf", stocked_shelf, "export", dest, "--with-blobs", "--json").json()
    assert sorted(third["changed"]) == [layout.manifest_path(MLM, "0.2.0"), layout.index_path(MLM)]
    after = snapshot(dest)
    assert {k for k in after if after[k] != before.get(k)} == set(third["changed"])  # blobs are shared


def test_an_empty_shelf_exports_an_empty_index(cli, shelf_path, tmp_path):
    dest = tmp_path / "public"
    assert cli("--shelf", shelf_path, "export", dest, "--with-blobs").code == 0
    assert (dest / "index/names.txt").read_bytes() == b"" and (dest / "config.json").is_file()


def test_export_without_blobs_needs_an_lfs_server(cli, stocked_shelf, tmp_path):
    dest = tmp_path / "public"
    refused = cli("--shelf", stocked_shelf, "export", dest)
    assert refused.code != 0
    assert "names no http(s) LFS server" in refused.err and "--with-blobs" in refused.err
    assert not dest.exists()
    pointed = cli(
        "--shelf", stocked_shelf, "export", dest, "--lfs-url", "https://lfs.example.org/s.git/info/lfs"
    )
    assert pointed.code == 0, pointed.err
    config = json.loads((dest / "config.json").read_bytes())
    assert config["blobs"] == {"kind": "lfs", "url": "https://lfs.example.org/s.git/info/lfs"}
    assert not (dest / "blobs").exists()


@pytest.fixture
def static_shelf(cli, stocked_shelf, tmp_path):
    """The stocked shelf exported with its blobs and served by ``python -m http.server``."""
    dest = tmp_path / "public"
    assert cli("--shelf", stocked_shelf, "export", dest, "--with-blobs").code == 0
    with static_server(dest) as url:
        yield dest, f"sparse+{url}/"


def test_a_project_locks_installs_and_browses_a_static_shelf(cli, static_shelf, tmp_path, monkeypatch):
    _dest, url = static_shelf
    project = tmp_path / "project"
    project.mkdir()
    monkeypatch.chdir(project)
    (project / "cclm-shelf.toml").write_text(f'shelves = ["{url}"]\nrequires = ["mlm>=0.1"]\n')
    assert cli("lock").code == 0
    lock = tomllib.loads((project / "cclm-shelf.lock").read_text())
    assert {c["source"] for c in lock["component"]} == {url.rstrip("/")}
    installed = cli("install")
    assert installed.code == 0, installed.err
    assert cli("verify").code == 0
    assert (project / ".cclm" / MLM).is_dir() and (project / ".cclm" / BASE).is_dir()
    tree = cli("tree")
    assert tree.code == 0 and "mlm 0.1.0" in tree.out
    assert "0.1.0" in cli("show", MLM).out
    assert [c["name"] for c in cli("search", "m", "--json").json()["results"]] == [MLM]

    bundled = cli("bundle", tmp_path / "stack.cclm-bundle")
    assert bundled.code == 0, bundled.err
    import tarfile

    with tarfile.open(tmp_path / "stack.cclm-bundle") as archive:
        assert layout.manifest_path(MLM, "0.1.0") in archive.getnames()

    # Offline, with the server still there but not asked: a fresh install folder from the cache alone.
    shutil.rmtree(project / ".cclm")
    offline = cli("--offline", "install")
    assert offline.code == 0, offline.err
    assert (project / ".cclm" / MLM).is_dir()


def test_a_damaged_static_blob_is_refused(cli, static_shelf, tmp_path, monkeypatch):
    dest, url = static_shelf
    monkeypatch.setenv("CCLM_SHELF_CACHE_DIR", str(tmp_path / "fresh-cache"))
    for blob in (dest / "blobs/sha256").rglob("*"):
        if blob.is_file():
            corrupt(blob)
    refused = cli("--shelf", url, "install", "mlm@0.1.0", "--target", tmp_path / "t")
    assert refused.code != 0
    assert "sha256" in refused.err or "does not match" in refused.err
    assert not (tmp_path / "t" / MLM).exists()


def test_index_files_are_revalidated_with_etags(cli, stocked_shelf, tmp_path):
    dest = tmp_path / "public"
    assert cli("--shelf", stocked_shelf, "export", dest, "--with-blobs").code == 0
    with static_server(dest, etag=True) as url:
        target = tmp_path / "t"
        assert cli("--shelf", f"sparse+{url}", "install", "mlm@0.1.0", "--target", target).code == 0
        assert cli("--shelf", f"sparse+{url}", "install", "mlm@0.1.0", "--target", target).code == 0
    index = "/" + layout.index_path(MLM)
    assert [line.split()[0] for line in request_log(dest) if line.endswith(index)] == ["200", "304"]
    manifest = "/" + layout.manifest_path(MLM, "0.1.0")
    assert [line for line in request_log(dest) if line.endswith(manifest)] == [f"200 {manifest}"]


def test_a_static_shelf_takes_no_publish(cli, static_shelf, saved_models):
    _dest, url = static_shelf
    refused = cli("--shelf", url, "publish", saved_models / MLM, "--name", MLM, "--version", "0.3.0")
    assert refused.code != 0
    assert "static (sparse) shelf, read-only" in refused.err


def test_serve_serves_the_sparse_index_and_follows_a_publish(cli, stocked_shelf, saved_models, tmp_path):
    git_port, http_port = free_port(), free_port()
    (tmp_path / "tmp").mkdir()
    process = serve_command(stocked_shelf, git_port, http_port, tmp=tmp_path / "tmp")
    root = f"http://127.0.0.1:{http_port}"
    try:
        lines = [process.stdout.readline().rstrip("\n") for _ in range(4)]
        assert lines[3] == f"sparse  sparse+{root}/", lines
        config = requests.get(f"{root}/config.json", timeout=10)
        assert config.json()["blobs"] == {"kind": "lfs", "url": f"{root}/{stocked_shelf.name}/info/lfs"}
        again = requests.get(
            f"{root}/config.json", headers={"If-None-Match": config.headers["ETag"]}, timeout=10
        )
        assert again.status_code == 304
        assert requests.put(f"{root}/config.json", data=b"{}", timeout=10).status_code == 405
        installed = cli("--shelf", f"sparse+{root}/", "install", "mlm@0.1.0", "--target", tmp_path / "t")
        assert installed.code == 0, installed.err
        assert cli("verify", "--target", tmp_path / "t").code == 0

        publish_folder(stocked_shelf, saved_models / MLM, "mlm", "0.2.0", ["base==0.1.0"])
        assert eventually(lambda: "0.2.0" in cli("--shelf", f"sparse+{root}/", "show", MLM).out, timeout=60)
    finally:
        process.send_signal(signal.SIGTERM)
        _out, err = process.communicate(timeout=30)
    assert process.returncode == 0 and "Traceback" not in err and "warning" not in err, err


def test_a_config_of_another_format_is_one_line(cli, static_shelf, tmp_path, monkeypatch):
    dest, url = static_shelf
    monkeypatch.setenv("CCLM_SHELF_CACHE_DIR", str(tmp_path / "fresh-cache"))  # the blobs must be fetched
    (dest / "config.json").write_text('{"format": 2, "blobs": {"kind": "torrent"}}\n')
    refused = cli("--shelf", url, "install", "mlm@0.1.0", "--target", tmp_path / "t")
    assert refused.code != 0 and "config.json is not one this version reads" in refused.err
    assert not (tmp_path / "t").exists()


def test_static_blobs_take_no_upload(tmp_path):
    from shelf.errors import ConfigError
    from shelf.remote.lfs_protocol import LfsObject
    from shelf.static_blobs import StaticBlobs

    blobs = StaticBlobs("http://127.0.0.1:9/public")
    (tmp_path / "f").write_bytes(b"x")
    oid = "2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881"  # sha256 of b"x"
    with pytest.raises(ConfigError, match="read-only"):
        blobs.upload([(LfsObject(oid, 1), tmp_path / "f")])
    [answer] = blobs.batch("download", [LfsObject(oid, 1)])
    assert answer.actions["download"].href == f"http://127.0.0.1:9/public/blobs/sha256/2d/{oid}"
