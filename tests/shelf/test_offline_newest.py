"""Offline, a name or a range picks the newest version whose files this machine already holds."""

from __future__ import annotations

import json

from tests.shelf.conftest import BASE, OTHER_BASE
from tests.support.shelves import publish_folder as publish_elsewhere


def publish_folder(shelf, folder, name, version):
    """Publish from another machine's cache, so this machine's store holds none of the blobs."""
    return publish_elsewhere(str(shelf), folder, name, version, cache_dir=shelf.parent / "publisher-cache")


def test_offline_without_a_pin_picks_the_newest_stored_version(cli, shelf_path, saved_models, tmp_path):
    publish_folder(shelf_path, saved_models / BASE, "base", "0.1.0")
    publish_folder(shelf_path, saved_models / OTHER_BASE, "base", "0.2.0")  # other weights: other blobs
    assert cli("--shelf", shelf_path, "install", "base@0.1.0", "--target", tmp_path / "a").code == 0
    offline = cli("--shelf", shelf_path, "--offline", "install", "base", "--target", tmp_path / "b", "--json")
    assert offline.code == 0, offline.err
    assert json.loads(offline.out)["installed"] == [{"name": "base", "version": "0.1.0"}]
    online = cli("--shelf", shelf_path, "install", "base", "--target", tmp_path / "c", "--json")
    assert json.loads(online.out)["installed"] == [{"name": "base", "version": "0.2.0"}]
    pinned = cli("--shelf", shelf_path, "--offline", "install", "base>=0.2", "--target", tmp_path / "d")
    assert pinned.code == 0, pinned.err  # now stored too: the newest again
    assert "installed base 0.2.0" in pinned.out


def test_offline_with_nothing_stored_names_what_is_missing(cli, shelf_path, saved_models, tmp_path):
    publish_folder(shelf_path, saved_models / BASE, "base", "0.1.0")
    assert cli("--shelf", shelf_path, "show", "base").code == 0  # mirrored, but no blob fetched
    result = cli("--shelf", shelf_path, "--offline", "install", "base", "--target", tmp_path / "t")
    assert result.code == 1 and "offline, and the store lacks" in result.err
    assert not (tmp_path / "t").exists()
