"""What a publish costs, checked by mechanism (never by timing): git processes, imports, reads of the bytes.

Publishing hashes each file once, as it is snapshotted into the store, and reads it once more to upload;
it builds its commit with a handful of git processes while the blobs upload; and it opens the shelf while
the folder is fingerprinted, so a problem with the folder is still the one reported first.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from shelf.errors import PublishError
from shelf.publish import PackageInfo, publish
from shelf.remote import lfs_http
from shelf.remote.commits import build_commit, record_push
from shelf.remote.mirror import ShelfMirror
from shelf.source import ShelfSource
from tests.shelf.conftest import (
    BASE,
    MLM,
    lfs_objects,
    publish_folder,
    shelf_refs,
    tampering_store,
    zero_first_byte,
)
from tests.support.served import served_lfs_shelf


def git_subcommands(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The git subcommand of every git process logged (global options such as --git-dir and -c skipped)."""
    found = []
    for record in caplog.records:
        if record.name != "shelf.remote.git":
            continue
        words = record.getMessage().split()[1:]
        while words and words[0] in ("--git-dir", "-c"):
            words = words[2:]
        found.append(words[0])
    return found


def test_a_commit_and_push_costs_nine_git_processes_or_fewer(shelf_path: Path, caplog) -> None:
    mirror = ShelfMirror.open(shelf_path)
    parent = mirror.head()
    with caplog.at_level(logging.DEBUG, logger="shelf.remote.git"):
        commit = mirror.commit_and_push({"a/b": b"1"}, "m", parent=parent, branch="main", tags=["a/v1"])
    ran = git_subcommands(caplog)
    # check-ref-format (the tag), for-each-ref, hash-object, read-tree, update-index, write-tree,
    # commit-tree (identity from git config), push, update-ref: no rev-parse, config or merge-base.
    assert len(ran) <= 9, ran
    assert not {"rev-parse", "config", "merge-base"} & set(ran), ran
    assert mirror.head("refs/heads/main") == commit  # the mirror followed the push
    assert mirror.head("refs/tags/a/v1") == commit


def test_the_mirror_never_moves_back_when_it_is_elsewhere_after_a_push(shelf_path: Path) -> None:
    mirror = ShelfMirror.open(shelf_path)
    parent = mirror.head()
    aside = build_commit(mirror, {"a": b"1"}, "aside", parent=parent, branch="main", tags=["a/v1"])
    newer = mirror.commit_and_push({"b": b"2"}, "newer", parent=parent, branch="main")

    record_push(mirror, aside.commit, "main", aside.tags, parent=parent)  # main is at newer, not parent

    assert mirror.head("refs/heads/main") == newer  # the branch did not go back to a side commit
    assert mirror.head("refs/tags/a/v1") == aside.commit  # the tag, which the remote took, is recorded


def test_telling_an_item_type_imports_neither_h5py_nor_numpy(saved_models: Path) -> None:
    script = (
        "import sys\n"
        "from cclm_core.fingerprint import item_type\n"
        f"assert item_type({str(saved_models / MLM)!r}) == 'component'\n"
        "print(sorted(m for m in ('h5py', 'numpy') if m in sys.modules))\n"
    )
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_a_folder_problem_is_reported_before_an_unreachable_shelf(cli, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    args = ("--cache-dir", tmp_path / "cache", "--shelf", "http://127.0.0.1:9/nowhere.git")
    result = cli(*args, "publish", tmp_path / "empty", "--name", "x", "--version", "0.1.0")
    assert result.code == 1 and "holds no saved item" in result.err


def test_a_snapshot_damaged_before_the_upload_is_refused(shelf_path: Path, models: Path, tmp_path) -> None:
    # as through an installed link: the store's blob changes once it is in
    store = tampering_store(
        tmp_path / "store", "component.weights.h5", lambda _added, blob: zero_first_byte(blob)
    )
    source = ShelfSource(str(shelf_path))
    before = shelf_refs(shelf_path)
    with pytest.raises(PublishError, match="changed while publishing"):
        publish(models / MLM, PackageInfo("mlm", "0.1.0"), source, store, find_base=False)
    assert shelf_refs(shelf_path) == before and lfs_objects(shelf_path) == []


@pytest.mark.network
def test_an_http_upload_does_not_hash_what_the_snapshot_hashed(
    tmp_path: Path, saved_models: Path, monkeypatch, cli
) -> None:
    hashed: list[Path] = []
    real_hash_file = lfs_http.hash_file
    monkeypatch.setattr(lfs_http, "hash_file", lambda path: hashed.append(path) or real_hash_file(path))
    with served_lfs_shelf(tmp_path, "publish-cost-token-0123456789", monkeypatch) as servers:
        report = publish_folder(servers.http_url, saved_models / BASE, "base", "0.1.0")
        assert report.uploaded == 3 and hashed == []
        target = tmp_path / "target"
        args = ("--shelf", servers.http_url, "--cache-dir", tmp_path / "reader")
        installed = cli(*args, "install", "base@0.1.0", "--target", target)
    assert installed.code == 0, installed.err
    for item in ("preprocessor", "embedder"):  # the bytes that went up are the folder's
        for original in (saved_models / BASE / item).iterdir():
            assert (target / "base" / item / original.name).read_bytes() == original.read_bytes()


def test_a_release_tag_the_index_does_not_know_is_named_after_the_push_refuses_it(
    shelf_path: Path, saved_models: Path, caplog
) -> None:
    head = subprocess.run(
        ["git", "--git-dir", str(shelf_path), "rev-parse", "main"], capture_output=True, text=True, check=True
    ).stdout.strip()
    subprocess.run(["git", "--git-dir", str(shelf_path), "tag", "base/v0.1.0", head], check=True)
    before = shelf_refs(shelf_path)
    with (
        caplog.at_level(logging.DEBUG, logger="shelf.remote.git"),
        pytest.raises(PublishError, match=r"the tag base/v0\.1\.0 already exists"),
    ):
        publish_folder(shelf_path, saved_models / BASE, "base", "0.1.0")
    assert shelf_refs(shelf_path) == before
    # The first attempt does not list the remote's tags: its atomic push is refused, and the retry asks.
    assert git_subcommands(caplog).count("ls-remote") == 1
