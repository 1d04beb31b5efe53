"""A served shelf that moved its LFS server: installs from mirrored metadata notice and follow it."""

from __future__ import annotations

from pathlib import Path

import pytest

from shelf import serve
from shelf.api import Shelf
from tests.support.shelves import BASE, CHARS, MLM, VERSION, assert_installed

pytestmark = pytest.mark.network


def test_an_exact_pin_follows_a_moved_lfs_server(stack_shelf: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    git_port = serve.free_port("127.0.0.1")
    with serve.start(stack_shelf, git_port=git_port) as first:
        serve.point_lfs_url(Shelf(str(stack_shelf), cache_dir=tmp_path / "admin").source(), first.lfs_url)
        Shelf(first.git_url, cache_dir=cache).install(f"{MLM}@v{VERSION}", target=tmp_path / "one")
    # The same git URL, blobs now behind another LFS port; the client's mirror still names the old one.
    with serve.start(stack_shelf, git_port=git_port) as second:
        assert second.lfs_url != first.lfs_url
        serve.point_lfs_url(Shelf(str(stack_shelf), cache_dir=tmp_path / "admin").source(), second.lfs_url)
        report = Shelf(second.git_url, cache_dir=cache).install(
            f"{CHARS}@v{VERSION}", target=tmp_path / "two"
        )
    assert sorted(report.installed) == [(BASE, VERSION), (CHARS, VERSION)]
    assert report.objects_fetched > 0
    assert_installed(tmp_path / "two", CHARS)
