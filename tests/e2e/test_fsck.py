"""fsck names what a shelf lost; publishing the same content again restores it, locally and when served."""

# ruff: noqa: F811 - the shared fixtures are imported by name for pytest

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from shelf.errors import NotFoundError
from shelf.source import create_shelf
from tests.shelf.conftest import BASE, MLM, cli, saved_models, shelf_refs  # noqa: F401 - shared fixtures
from tests.support.served import served_lfs_shelf

TOKEN = "fsck-token-0123456789abcdef"


def oid_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def lfs_object(shelf_path: Path, oid: str) -> Path:
    return shelf_path / "lfs" / "objects" / oid[:2] / oid[2:4] / oid


def flip_a_byte(path: Path) -> None:
    """Damage a file in place, keeping its size (what a bad disk or a stray write does)."""
    path.chmod(0o644)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def publish_both(cli, url: str, saved_models: Path) -> list:
    results = []
    for folder, name, extra in ((BASE, "base", []), (MLM, "mlm", ["--requires", "base==0.1.0"])):
        args = ["--shelf", url, "publish", saved_models / folder, "--name", name, "--version", "0.1.0"]
        results.append(cli(*args, *extra))
    return results


def test_fsck_names_missing_and_damaged_versions_and_a_second_publish_restores_them(
    cli, saved_models, tmp_path
):
    shelf_path = Path(create_shelf(tmp_path / "shelf.git"))
    assert all(r.code == 0 for r in publish_both(cli, str(shelf_path), saved_models))
    clean = cli("fsck", shelf_path, "--json")
    assert clean.code == 0, clean.err
    assert clean.json()["versions"] == 2 and clean.json()["objects"] == 5 and clean.json()["problems"] == []

    embedder = oid_of(saved_models / BASE / "embedder" / "embedder.weights.h5")
    component = oid_of(saved_models / MLM / "component.weights.h5")
    lfs_object(shelf_path, embedder).unlink()
    flip_a_byte(lfs_object(shelf_path, component))
    refs = shelf_refs(shelf_path)

    broken = cli("fsck", shelf_path)
    assert broken.code == 1
    assert f"missing  base 0.1.0  embedder/embedder.weights.h5  {embedder}" in broken.out
    assert f"damaged  mlm 0.1.0  component/component.weights.h5  {component}" in broken.out
    assert "2 version(s) need their blobs again: base@0.1.0, mlm@0.1.0" in broken.out

    again = publish_both(cli, str(shelf_path), saved_models)
    for result in again:
        assert result.code == 0, result.err
        assert "with identical content; restored 1 object(s) it had lost or damaged" in result.out
    assert oid_of(lfs_object(shelf_path, embedder)) == embedder
    assert oid_of(lfs_object(shelf_path, component)) == component
    assert shelf_refs(shelf_path) == refs  # blobs restored, the shelf's history untouched
    assert cli("fsck", shelf_path).code == 0
    third = publish_both(cli, str(shelf_path), saved_models)
    assert all("nothing to do" in r.out for r in third)  # intact now: nothing is uploaded
    for blob in [p for p in (shelf_path / "lfs" / "objects").rglob("*") if p.is_file()]:
        blob.unlink()
    emptied = cli("fsck", shelf_path)
    assert emptied.code == 1 and "a shelf served with --s3-bucket keeps them in the bucket" in emptied.out


def test_fsck_refuses_what_is_not_a_shelf_on_this_machine(cli, tmp_path):
    remote = cli("fsck", "git://example.invalid/shelf.git")
    assert remote.code == 2 and "is not a shelf on this machine" in remote.err and "hint:" in remote.err
    missing = cli("fsck", tmp_path / "nowhere.git")
    assert missing.code == 1 and "does not exist" in missing.err


@pytest.mark.network
def test_a_served_shelf_refuses_a_damaged_blob_and_a_second_publish_restores_it(
    cli, saved_models, tmp_path, monkeypatch
):
    shelf_path = tmp_path / "team.git"
    with served_lfs_shelf(tmp_path, TOKEN, monkeypatch) as servers:
        assert all(r.code == 0 for r in publish_both(cli, servers.http_url, saved_models))
        component = oid_of(saved_models / MLM / "component.weights.h5")
        flip_a_byte(lfs_object(shelf_path, component))

        monkeypatch.delenv("CCLM_SHELF_TOKEN")
        monkeypatch.setenv("CCLM_SHELF_CACHE_DIR", str(tmp_path / "reader"))
        from shelf.api import Shelf

        with pytest.raises(NotFoundError, match=component):  # never the damaged bytes
            Shelf(servers.git_url).install("mlm==0.1.0", target=tmp_path / "first")
        assert not (tmp_path / "first").exists()
        damaged = cli("fsck", shelf_path, "--json")
        assert damaged.code == 1
        assert [(p["name"], p["state"]) for p in damaged.json()["problems"]] == [("mlm", "damaged")]

        monkeypatch.setenv("CCLM_SHELF_CACHE_DIR", str(tmp_path / "publisher"))
        refused = publish_both(cli, servers.http_url, saved_models)[1]  # no token: nobody may restore
        assert refused.code == 1 and "needs credentials (403)" in refused.err
        monkeypatch.setenv("CCLM_SHELF_TOKEN", TOKEN)
        restored = publish_both(cli, servers.http_url, saved_models)[1]
        assert restored.code == 0 and "restored 1 object(s)" in restored.out, restored.err

        monkeypatch.delenv("CCLM_SHELF_TOKEN")
        monkeypatch.setenv("CCLM_SHELF_CACHE_DIR", str(tmp_path / "reader-2"))
        report = Shelf(servers.git_url).install("mlm==0.1.0", target=tmp_path / "second")
        assert dict(report.installed) == {"base": "0.1.0", "mlm": "0.1.0"}
    assert json.loads(cli("fsck", shelf_path, "--json").out)["problems"] == []
    assert os.stat(lfs_object(shelf_path, component)).st_size > 0
