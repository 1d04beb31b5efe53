"""cclm-shelf and the real git-lfs client share shelves in both directions.

A shelf published by cclm-shelf is checked out with ``git lfs pull``; that checkout is pushed by git-lfs to
a local bare repository (objects in ``<bare>/lfs/objects``) and, over git daemon, to a repository whose
``lfs.url`` is giftless. cclm-shelf installs from both, and every installed file is byte-identical to the
checkout.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from shelf.api import Shelf
from tests.support.giftless import GiftlessServer
from tests.support.git_servers import GitDaemon
from tests.support.shelves import (
    BASE,
    CHARS,
    LFS_FILTERS,
    MLM,
    VERSION,
    assert_installed,
    cli,
    git,
    lfs_object,
)

pytestmark = pytest.mark.network

NAMES = (BASE, MLM, CHARS)
# No prompts, no lock API round trips against servers that do not offer it.
LFS_ENV = {"GIT_TERMINAL_PROMPT": "0", "GIT_LFS_SKIP_SMUDGE": "1"}


def _checkout(shelf: Path, work: Path) -> Path:
    """Clone with pointers only, then let git-lfs pull every object: the reference bytes."""
    git("clone", "-q", str(shelf), str(work), cwd=work.parent, env=LFS_ENV)
    git("lfs", "install", "--local", cwd=work)
    git("config", "lfs.locksverify", "false", cwd=work)
    git(*LFS_FILTERS, "lfs", "pull", cwd=work)
    weights = work / "components" / MLM / VERSION / "component" / "component.weights.h5"
    assert not weights.read_bytes().startswith(b"version https://git-lfs")
    return work


@pytest.fixture
def work(stack_shelf: Path, tmp_path: Path) -> Path:
    """A git-lfs checkout of this test's copy of the published stack."""
    return _checkout(stack_shelf, tmp_path / "work")


def _assert_same_as_checkout(target: Path, work: Path) -> None:
    for name in NAMES:
        count = assert_installed(target, name)
        published = work / "components" / name / VERSION
        files = [p for p in published.rglob("*") if p.is_file() and p.name != "cclm-manifest.json"]
        assert len(files) == count
        for path in files:
            installed = target / name / path.relative_to(published)
            assert installed.read_bytes() == path.read_bytes(), installed


def _push_all(work: Path, remote: str, env: dict[str, str] | None = None) -> None:
    git(*LFS_FILTERS, "push", "-q", remote, "main", "--tags", cwd=work, env={**LFS_ENV, **(env or {})})


def test_git_lfs_pushes_to_a_local_bare_shelf_that_cclm_shelf_installs(work: Path, tmp_path: Path) -> None:
    bare = tmp_path / "pushed.git"
    git("init", "-q", "--bare", "-b", "main", str(bare), cwd=tmp_path)
    git("remote", "add", "pushed", str(bare), cwd=work)
    _push_all(work, "pushed")
    oid = git("lfs", "ls-files", "--long", cwd=work).split()[0]
    assert lfs_object(bare, oid).is_file()  # git-lfs put it where cclm-shelf looks
    target = tmp_path / "target"
    done = cli("--shelf", str(bare), "install", MLM, CHARS, "--target", str(target))
    assert done.returncode == 0, done.stderr
    _assert_same_as_checkout(target, work)


def test_git_lfs_pushes_to_giftless_and_cclm_shelf_installs_over_git_daemon(
    work: Path, tmp_path: Path
) -> None:
    repos = tmp_path / "repos"
    git("init", "-q", "--bare", "-b", "main", str(repos / "served.git"), cwd=tmp_path)
    with GiftlessServer(tmp_path / "giftless") as lfs, GitDaemon(repos) as daemon:
        endpoint = lfs.endpoint("org", "served")
        (work / ".lfsconfig").write_text(f"[lfs]\n\turl = {endpoint}\n")
        git("add", ".lfsconfig", cwd=work)
        git("commit", "-q", "-m", "Serve blobs from giftless", cwd=work)
        git("remote", "add", "served", daemon.url("served.git"), cwd=work)
        _push_all(work, "served")
        assert not (repos / "served.git" / "lfs").exists()
        assert len(list((lfs.storage_path / "org" / "served").iterdir())) == 7
        target = tmp_path / "target"
        report = Shelf(daemon.url("served.git")).install(MLM, CHARS, target=target)
        assert report.objects_fetched == 7
    _assert_same_as_checkout(target, work)
