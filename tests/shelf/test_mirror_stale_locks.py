"""A run killed while git wrote to a shelf's mirror leaves git's lock files there; the next run completes."""

from __future__ import annotations

from pathlib import Path

from shelf.api import Shelf
from shelf.remote.mirror import mirror_path
from tests.support.shelves import (
    BASE,
    MLM,
    VERSION,
    publish_folder,
)

# What a `kill -9` during `git fetch`, `update-ref` or `symbolic-ref` in the mirror leaves behind.
GIT_LOCKS = ("shallow.lock", "packed-refs.lock", "config.lock", "HEAD.lock", "index.lock")


def _plant_locks(mirror: Path) -> list[Path]:
    branch = next((mirror / "refs" / "heads").iterdir()).name
    planted = [mirror / name for name in GIT_LOCKS]
    planted += [mirror / "refs" / "heads" / f"{branch}.lock", mirror / "refs" / "tags" / "v9.lock"]
    for path in planted:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("left by a killed git\n")
    return planted


def test_stale_git_locks_in_the_mirror_do_not_stop_publish_or_install(
    tiny_stack, stack_shelf: Path, tmp_path: Path
) -> None:
    Shelf(str(stack_shelf)).install(f"{MLM}@v{VERSION}", target=tmp_path / "one")
    mirror = mirror_path(str(stack_shelf))
    ours = mirror / "shelf-notes.lock.txt"  # not a git lock file: never touched
    ours.write_text("kept")
    planted = _plant_locks(mirror)

    report = publish_folder(str(stack_shelf), tiny_stack.base, BASE, "0.2.0", cache_dir=mirror.parents[1])
    assert report.version == "0.2.0"
    assert [path for path in planted if path.exists()] == []
    assert ours.read_text() == "kept"

    planted = _plant_locks(mirror)
    installed = Shelf(str(stack_shelf)).install(f"{BASE}>=0.2", target=tmp_path / "two")
    assert installed.installed == [(BASE, "0.2.0")]
    assert [path for path in planted if path.exists()] == []
    assert ours.read_text() == "kept"
