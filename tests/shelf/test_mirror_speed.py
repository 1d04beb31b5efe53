"""Mirrors stay cheap: a shallow, tagless fetch of the branch heads, tags listed and fetched on demand.

A shelf's history and its release tags grow with every publication, while reading needs only the tree at
the head. These tests check what the mirror holds (plain git on the mirror folder), that tags are still
seen and readable, that publishing from a shallow mirror works over local and served remotes, and what
offline mode knows.
"""

from __future__ import annotations

import logging
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from shelf.api import Shelf
from shelf.errors import NotFoundError, OfflineError
from shelf.remote.commits import init_shelf
from shelf.remote.mirror import ShelfMirror
from tests.support.git_servers import GitDaemon
from tests.support.shelves import BASE, MLM, VERSION, published_shelf

INITIAL = {"index/config.json": b'{"format": 1}\n'}
PUBLICATIONS = 30


def git(*args: str) -> str:
    done = subprocess.run(["git", *args], capture_output=True, text=True, check=True)
    return done.stdout.strip()


def publish_history(repo: Path, count: int, first: int = 0) -> None:
    """``count`` commits on main, one file and one release tag each, written with git fast-import."""
    records = []
    for number in range(first, first + count):
        message, content = f"Publish c{number}", f'{{"n": {number}}}\n'
        parent = "refs/heads/main^0" if number == first else f":{number}"
        records.append(
            f"commit refs/heads/main\nmark :{number + 1}\n"
            f"committer t <t@example.invalid> {1_700_000_000 + number} +0000\n"
            f"data {len(message)}\n{message}\nfrom {parent}\n"
            f"M 100644 inline index/c{number}\ndata {len(content)}\n{content}\n"
            f"reset refs/tags/c{number}/v1.0.0\nfrom :{number + 1}\n\n"
        )
    stream = "".join(records).encode()
    subprocess.run(["git", "--git-dir", str(repo), "fast-import", "--quiet"], input=stream, check=True)


def remote_tags(repo: Path) -> dict[str, str]:
    lines = git("--git-dir", str(repo), "show-ref", "--tags").splitlines()
    return {ref.removeprefix("refs/tags/"): oid for oid, ref in (line.split(" ") for line in lines)}


def commits_in(mirror: ShelfMirror) -> int:
    """Every commit object in the mirror, referenced or not."""
    out = git("--git-dir", str(mirror.path), "cat-file", "--batch-all-objects", "--batch-check=%(objecttype)")
    return out.split().count("commit")


def local_tag_refs(mirror: ShelfMirror) -> list[str]:
    return git("--git-dir", str(mirror.path), "for-each-ref", "--format=%(refname)", "refs/tags").split()


def git_commands(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "shelf.remote.git"]


@pytest.fixture
def shelf_repo(tmp_path: Path) -> Path:
    repo = Path(init_shelf(tmp_path / "srv" / "shelf.git", initial_files=INITIAL))
    publish_history(repo, PUBLICATIONS)
    return repo


@pytest.fixture(params=["path", pytest.param("git", marks=pytest.mark.network)])
def shelf_url(request: pytest.FixtureRequest, shelf_repo: Path) -> Iterator[str]:
    if request.param == "path":
        yield str(shelf_repo)
    else:
        with GitDaemon(shelf_repo.parent) as server:
            yield server.url(shelf_repo.name)


def test_a_new_mirror_holds_the_head_only(shelf_url: str, shelf_repo: Path) -> None:
    mirror = ShelfMirror.open(shelf_url)

    assert git("--git-dir", str(mirror.path), "rev-parse", "--is-shallow-repository") == "true"
    assert commits_in(mirror) == 1  # not the 31 commits of the shelf's history
    assert local_tag_refs(mirror) == []
    assert mirror.head() == git("--git-dir", str(shelf_repo), "rev-parse", "main")
    assert mirror.read_file("HEAD", f"index/c{PUBLICATIONS - 1}") == f'{{"n": {PUBLICATIONS - 1}}}\n'.encode()


def test_tags_are_listed_from_the_remote_and_fetched_when_read(shelf_url: str, shelf_repo: Path) -> None:
    published = remote_tags(shelf_repo)
    mirror = ShelfMirror.open(shelf_url)

    assert mirror.tags() == published
    assert mirror.tags("c1*") == {name: oid for name, oid in published.items() if name.startswith("c1")}
    assert mirror.read_file("c3/v1.0.0", "index/c3") == b'{"n": 3}\n'  # index/c4 is not there yet
    assert not mirror.exists("c3/v1.0.0", "index/c4")
    assert local_tag_refs(mirror) == ["refs/tags/c3/v1.0.0"]  # only the tag that was read
    with pytest.raises(NotFoundError, match="no-such-tag"):
        mirror.head("no-such-tag")


def test_the_tag_listing_is_asked_once_until_the_next_refresh(shelf_repo: Path, caplog) -> None:
    mirror = ShelfMirror.open(shelf_repo)
    with caplog.at_level(logging.DEBUG, logger="shelf.remote.git"):
        first = mirror.tags()
        assert mirror.tags() == first
        assert sum(" ls-remote " in c for c in git_commands(caplog)) == 1
        publish_history(shelf_repo, 1, first=PUBLICATIONS)
        mirror.refresh()
        assert set(mirror.tags()) - set(first) == {f"c{PUBLICATIONS}/v1.0.0"}
    assert sum(" ls-remote " in c for c in git_commands(caplog)) == 2


def test_publishing_from_a_shallow_mirror(shelf_url: str, shelf_repo: Path) -> None:
    mirror = ShelfMirror.open(shelf_url)
    parent = mirror.head()

    commit = mirror.commit_and_push(
        {"index/new": b"new\n"}, "new", parent=parent, branch="main", tags=["new/v1"]
    )

    assert git("--git-dir", str(shelf_repo), "rev-parse", "main", "new/v1") == f"{commit}\n{commit}"
    assert git("--git-dir", str(shelf_repo), "rev-parse", f"{commit}^") == parent
    assert int(git("--git-dir", str(shelf_repo), "rev-list", "--count", "main")) == PUBLICATIONS + 2
    subprocess.run(
        ["git", "--git-dir", str(shelf_repo), "fsck", "--no-progress"], check=True, capture_output=True
    )
    assert "new/v1" in mirror.tags()


def test_refreshing_fetches_the_new_head_not_the_commits_between(shelf_repo: Path) -> None:
    mirror = ShelfMirror.open(shelf_repo)
    publish_history(shelf_repo, 10, first=PUBLICATIONS)

    mirror.refresh()

    assert mirror.head() == git("--git-dir", str(shelf_repo), "rev-parse", "main")
    assert mirror.read_file("HEAD", f"index/c{PUBLICATIONS + 9}") == f'{{"n": {PUBLICATIONS + 9}}}\n'.encode()
    assert commits_in(mirror) == 2  # the old head and the new one, none of the 9 between


def test_offline_knows_the_listed_tags_and_reads_the_fetched_ones(shelf_repo: Path) -> None:
    online = ShelfMirror.open(shelf_repo)
    online.head("c1/v1.0.0")  # read once online: fetched
    listed = online.tags()

    offline = ShelfMirror.open(shelf_repo, offline=True)
    assert offline.tags() == listed
    assert offline.read_file("c1/v1.0.0", "index/c1") == b'{"n": 1}\n'
    with pytest.raises(OfflineError, match=r"c2/v1\.0\.0") as info:
        offline.exists("c2/v1.0.0", "index/c2")
    assert "CCLM_SHELF_OFFLINE" in info.value.hint


def test_the_first_install_from_a_shelf_warms_up_on_a_side_thread(
    tmp_path_factory, tmp_path: Path, monkeypatch
) -> None:
    shelf_path = published_shelf(tmp_path_factory, tmp_path / "shelf.git")
    started: list[str] = []
    original = threading.Thread.start

    def recording_start(thread: threading.Thread) -> None:
        started.append(thread.name)
        original(thread)

    monkeypatch.setattr(threading.Thread, "start", recording_start)
    first = Shelf(str(shelf_path)).install(f"{MLM}@v{VERSION}", target=tmp_path / "one")
    assert started.count("cclm-shelf-warm-up") == 1  # no mirror yet: imports overlap the first fetch
    assert sorted(first.installed) == [(BASE, VERSION), (MLM, VERSION)]

    second = Shelf(str(shelf_path)).install(f"{MLM}@v{VERSION}", target=tmp_path / "two")
    assert started.count("cclm-shelf-warm-up") == 1  # mirrored: a warm install imports nothing extra
    assert second.objects_fetched == 0
