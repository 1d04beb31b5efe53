"""The pages (and sparse index) of a served shelf, kept current: rewritten when a publish or a yank moves it.

``cclm-shelf serve`` mounts the folder read-only at its HTTP root and calls ``update`` from its wait loop;
reading the served repository's branch heads is one git process, and the pages are only rewritten (only the
changed files) when a head moved.
"""

from __future__ import annotations

from pathlib import Path

from shelf.gitrepo import run_git
from shelf.site.render import export_site


class LiveSite:
    """``folder`` holds the pages of the bare repository ``shelf_path``, read through ``source``."""

    def __init__(
        self, source, shelf_path: Path, folder: Path, shelf_url: str | None, lfs_url: str | None = None
    ) -> None:
        self.source = source
        self.shelf_path = Path(shelf_path)
        self.folder = Path(folder)
        self.shelf_url = shelf_url
        self.lfs_url = lfs_url  # set: the folder also holds the shelf's sparse index, blobs from there
        self._heads: str | None = None

    def update(self) -> bool:
        """Rewrite the pages if the shelf moved since the last call (always on the first); True if so."""
        heads = self._branch_heads()
        if heads == self._heads:
            return False
        self.source.mark_stale()
        self.source.refresh()
        export_site(self.source, self.folder, self.shelf_url)
        if self.lfs_url:
            from shelf.sparse_export import export_sparse

            export_sparse(self.source, self.folder, lfs_url=self.lfs_url)
        self._heads = heads
        return True

    def skip_current(self) -> None:
        """Do not try again until the shelf moves (after an update failed on what it holds now)."""
        self._heads = self._branch_heads()

    def _branch_heads(self) -> str:
        args = ["--git-dir", str(self.shelf_path), "for-each-ref", "--format=%(objectname) %(refname)"]
        return run_git([*args, "refs/heads"]).stdout.decode()
