"""A shelf served by ``cclm-shelf serve`` (git://, smart HTTP, LFS) and ready for a publisher with a token."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from shelf import serve
from shelf.source import ShelfSource, create_shelf


@contextmanager
def served_lfs_shelf(tmp_path: Path, token: str, monkeypatch) -> Iterator:
    """A new shelf served with ``token``, its LFS URL pointed at the served LFS, the token set to publish."""
    shelf = Path(create_shelf(tmp_path / "team.git"))
    (tmp_path / "tokens").write_text(f"{token}\n")
    with serve.start(shelf, token_file=tmp_path / "tokens") as servers:
        source = ShelfSource(str(shelf), cache_dir=tmp_path / "server-cache")
        source.refresh()
        serve.point_lfs_url(source, servers.lfs_url)
        monkeypatch.setenv("CCLM_SHELF_TOKEN", token)  # publishing goes over HTTP, with the token
        yield servers
