"""``cclm-shelf cache info | verify | prune`` on a real store filled by real publishes and installs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from shelf.lockfile import load_lockfile
from shelf.store import BlobStore
from tests.shelf.conftest import OTHER_BASE, publish_folder


@pytest.fixture
def project_dir(tmp_path, monkeypatch, cli, stocked_shelf) -> Path:
    """A project that installed mlm (and base) from the stocked shelf through the default store."""
    folder = tmp_path / "project"
    folder.mkdir()
    monkeypatch.chdir(folder)
    assert cli("--shelf", stocked_shelf, "add", "mlm").code == 0
    return folder


def store() -> BlobStore:
    return BlobStore(Path(os.environ["CCLM_SHELF_CACHE_DIR"]))


def pinned(lockfile: Path) -> set[str]:
    return {f.sha256 for c in load_lockfile(lockfile).components for f in c.files}


def test_info_counts_the_blobs(cli, project_dir):
    info = cli("cache", "info", "--json").json()
    blobs = list(store().iter_blobs())
    assert info["count"] == len(blobs) >= len(pinned(project_dir / "cclm-shelf.lock"))
    assert info["bytes"] == sum(b.size for b in blobs) > 0
    assert info["root"] == os.environ["CCLM_SHELF_CACHE_DIR"]
    assert f"blobs   {info['count']}" in cli("cache", "info").out


def test_verify_removes_and_reports_a_damaged_blob(cli, project_dir):
    clean = cli("cache", "verify")
    assert clean.code == 0 and "all match" in clean.out
    victim = next(b for b in store().iter_blobs() if b.size > 1000)
    victim.path.chmod(0o644)
    victim.path.write_bytes(b"\0" + victim.path.read_bytes()[1:])
    damaged = cli("cache", "verify", "--json")
    assert damaged.code == 1
    assert [p["oid"] for p in damaged.json()["problems"]] == [victim.oid]
    assert not victim.path.exists()
    assert cli("cache", "verify").code == 0


def test_prune_keeps_what_known_lockfiles_pin(cli, project_dir, stocked_shelf, saved_models):
    publish_folder(stocked_shelf, saved_models / OTHER_BASE, "other", "0.1.0")  # hashed into the store too
    keep = pinned(project_dir / "cclm-shelf.lock")
    before = {b.oid for b in store().iter_blobs()}
    unpinned = before - keep
    assert unpinned, "publishing another embedder must leave blobs no lockfile pins"
    dry = cli("cache", "prune", "--dry-run", "--json").json()
    assert dry["would_remove"] == len(unpinned)
    assert {b.oid for b in store().iter_blobs()} == before
    pruned = cli("cache", "prune", "--json").json()
    assert pruned["removed"] == len(unpinned)
    assert pruned["kept_for_lockfiles"] == [str(project_dir / "cclm-shelf.lock")]
    assert {b.oid for b in store().iter_blobs()} == keep
    assert (project_dir / ".cclm" / "mlm" / "component" / "component.weights.h5").is_file()


def test_prune_stops_at_a_known_lockfile_it_cannot_read(cli, project_dir):
    lock = project_dir / "cclm-shelf.lock"
    keep = pinned(lock)
    lock.write_text("garbage\n")  # damaged after it was used: its blobs are still somebody's
    refused = cli("cache", "prune", "--json")
    assert refused.code == 1
    assert refused.json()["error"].startswith(f"cannot prune: {lock} is not valid TOML")
    assert "nothing was removed" in refused.json()["error"]
    assert "cclm-shelf lock" in refused.json()["hint"]
    assert keep <= {b.oid for b in store().iter_blobs()}


def test_prune_forgets_deleted_lockfiles_and_honours_extra_ones(cli, project_dir, tmp_path):
    extra = tmp_path / "elsewhere.lock"
    (project_dir / "cclm-shelf.lock").rename(extra)
    kept = cli("cache", "prune", "--keep-lockfile", extra, "--json").json()
    assert kept["removed"] == 0
    assert {b.oid for b in store().iter_blobs()} == pinned(extra)
    gone = cli("cache", "prune", "--json").json()
    assert gone["removed"] == len(pinned(extra))
    assert list(store().iter_blobs()) == []
