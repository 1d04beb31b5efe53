"""Git transport: mirrors over every kind of remote, atomic publishing, init_shelf, URL handling.

Every test talks to real bare repositories; the git:// and http:// ones through real servers on 127.0.0.1.
Remote state is checked with plain git commands, independently of the code under test.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from shelf.errors import (
    AuthError,
    ConfigError,
    GitError,
    NotFoundError,
    OfflineError,
    PushRejected,
    ShelfError,
    UnsafeContentError,
)
from shelf.redaction import redact
from shelf.remote.commits import init_shelf, record_push
from shelf.remote.git import FALLBACK_EMAIL, FALLBACK_NAME
from shelf.remote.mirror import ShelfMirror, TreeEntry, mirror_path
from shelf.remote.url import is_local_url, normalise_url
from tests.support.git_servers import GitDaemon, GitHttpServer

LFS_URL = "http://127.0.0.1:9/lfs/shelf"
INITIAL = {
    ".gitattributes": b"*.h5 filter=lfs diff=lfs merge=lfs -text\n",
    "index/config.json": b'{"format": 1}\n',
}
POINTER = b"version https://git-lfs.github.com/spec/v1\noid sha256:" + b"ab" * 32 + b"\nsize 12\n"


def git(*args: str, cwd: Path | None = None) -> str:
    """Plain git, for setting up and inspecting remotes independently of shelf.remote."""
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def remote_files(repo: Path, ref: str = "main") -> dict[str, bytes]:
    names = git("--git-dir", str(repo), "ls-tree", "-r", "--name-only", ref).splitlines()
    return {
        name: subprocess.run(
            ["git", "--git-dir", str(repo), "cat-file", "blob", f"{ref}:{name}"],
            capture_output=True,
            check=True,
        ).stdout
        for name in names
    }


def remote_refs(repo: Path) -> dict[str, str]:
    out = git("--git-dir", str(repo), "for-each-ref", "--format=%(refname) %(objectname)")
    return dict(line.split(" ") for line in out.splitlines())


def git_commands(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "shelf.remote.git"]


@pytest.fixture
def shelf_repo(tmp_path: Path) -> Path:
    """A fresh shelf made by init_shelf, with an LFS URL, in a folder servers can export."""
    return Path(init_shelf(tmp_path / "srv" / "shelf.git", lfs_url=LFS_URL, initial_files=INITIAL))


@pytest.fixture(
    params=[
        "path",
        "file",
        pytest.param("git", marks=pytest.mark.network),
        pytest.param("http", marks=pytest.mark.network),
    ]
)
def shelf_url(request: pytest.FixtureRequest, shelf_repo: Path) -> Iterator[str]:
    """The shelf_repo reached as a local path, a file:// URL, through git daemon, or over smart HTTP."""
    if request.param == "path":
        yield str(shelf_repo)
    elif request.param == "file":
        yield shelf_repo.as_uri()
    else:
        server_type = GitDaemon if request.param == "git" else GitHttpServer
        with server_type(shelf_repo.parent) as server:
            yield server.url(shelf_repo.name)


# ---------------------------------------------------------------------------------------------------------
# Reading through a mirror, over every transport


def test_mirror_reads_files_tags_and_lfs_url(shelf_url: str, shelf_repo: Path) -> None:
    mirror = ShelfMirror.open(shelf_url)

    assert mirror.head() == git("--git-dir", str(shelf_repo), "rev-parse", "main")
    assert mirror.default_branch() == "main"
    assert mirror.read_file("HEAD", "index/config.json") == INITIAL["index/config.json"]
    assert mirror.read_many("main", ["index/config.json", ".gitattributes"]) == INITIAL
    assert mirror.lfs_url("HEAD") == LFS_URL
    assert mirror.exists("HEAD", "index") and not mirror.exists("HEAD", "components")
    assert [e.path for e in mirror.list_tree("HEAD")] == [".gitattributes", ".lfsconfig", "index"]
    assert mirror.tags() == {}
    assert mirror.path.is_relative_to(mirror_path(shelf_url).parent)


def test_mirror_sees_published_tags(shelf_url: str) -> None:
    mirror = ShelfMirror.open(shelf_url)
    files = {"components/a/1.0.0/cclm-manifest.json": b"{}"}
    commit = mirror.commit_and_push(files, "Publish", parent=mirror.head(), branch="main", tags=["a/v1.0.0"])
    fresh = ShelfMirror.open(shelf_url, cache_dir=mirror.path.parent.parent / "other")

    assert fresh.tags() == {"a/v1.0.0": commit}
    assert fresh.tags("a/*") == {"a/v1.0.0": commit}
    assert fresh.tags("b/*") == {}
    assert fresh.head("a/v1.0.0") == commit


def test_list_tree_recursive_and_subfolder(shelf_repo: Path) -> None:
    mirror = ShelfMirror.open(shelf_repo)
    files = {"components/a/1.0/cclm-manifest.json": b"{}", "components/a/1.0/model/w.h5": POINTER}
    mirror.commit_and_push(files, "Publish", parent=mirror.head(), branch="main")

    entries = mirror.list_tree("HEAD", "components/a", recursive=True)
    assert [e.path for e in entries] == sorted(files)
    assert all(e.kind == "blob" and e.mode == "100644" and len(e.oid) == 40 for e in entries)
    folder_oid = git("--git-dir", str(shelf_repo), "rev-parse", "main:components/a")
    assert mirror.list_tree("HEAD", "components") == [TreeEntry("components/a", "040000", "tree", folder_oid)]


def test_annotated_tags_report_their_commit(shelf_repo: Path) -> None:
    head = git("--git-dir", str(shelf_repo), "rev-parse", "main")
    git("--git-dir", str(shelf_repo), "tag", "-a", "-m", "release", "v1.0.0", head)

    assert ShelfMirror.open(shelf_repo).tags() == {"v1.0.0": head}


def test_missing_things_raise_not_found_naming_them(shelf_repo: Path) -> None:
    mirror = ShelfMirror.open(shelf_repo)

    with pytest.raises(NotFoundError, match=r"'nope/file.json' at 'HEAD'"):
        mirror.read_file("HEAD", "nope/file.json")
    with pytest.raises(NotFoundError, match="no-such-branch"):
        mirror.head("no-such-branch")
    with pytest.raises(NotFoundError, match=r"no files 'a', 'b' at 'HEAD'"):
        mirror.read_many("HEAD", ["a", "index/config.json", "b"])
    with pytest.raises(NotFoundError, match="'components'"):
        mirror.list_tree("HEAD", "components")
    assert mirror.read_many("HEAD", ["a", "index/config.json"], missing_ok=True) == {
        "index/config.json": INITIAL["index/config.json"]
    }
    assert mirror.read_many("HEAD", ["index"], missing_ok=True) == {}  # a folder is not a file
    assert mirror.exists("no-such-branch", "index") is False


def test_lfs_url_is_none_without_lfsconfig(tmp_path: Path) -> None:
    repo = init_shelf(tmp_path / "plain.git", initial_files=INITIAL)

    assert ShelfMirror.open(repo).lfs_url("HEAD") is None


def test_read_many_uses_one_git_process_for_500_files(shelf_repo: Path, caplog) -> None:
    mirror = ShelfMirror.open(shelf_repo)
    files = {f"index/{i:03d}/component_{i}": f'{{"v": {i}}}\n'.encode() for i in range(500)}
    mirror.commit_and_push(files, "500 components", parent=mirror.head(), branch="main")

    with caplog.at_level(logging.DEBUG, logger="shelf.remote.git"):
        found = mirror.read_many("HEAD", list(files))

    assert found == files
    commands = git_commands(caplog)
    assert len(commands) == 2 and "cat-file --batch" in commands[1]  # resolve the ref, then one batch


def test_reads_at_a_commit_sha_cost_one_process_each(shelf_repo: Path, caplog) -> None:
    mirror = ShelfMirror.open(shelf_repo)
    commit = mirror.head()

    with caplog.at_level(logging.DEBUG, logger="shelf.remote.git"):
        assert mirror.exists(commit, "index/config.json")
        assert mirror.read_file(commit, "index/config.json") == INITIAL["index/config.json"]
        assert mirror.read_many(commit, ["index/config.json"]) == {
            "index/config.json": INITIAL["index/config.json"]
        }

    assert len(git_commands(caplog)) == 3
    with pytest.raises(NotFoundError):
        mirror.read_file("0" * 40, "index/config.json")


# ---------------------------------------------------------------------------------------------------------
# Refreshing and offline mode


def test_refresh_fetches_into_the_same_mirror(shelf_repo: Path, tmp_path: Path, caplog) -> None:
    mirror = ShelfMirror.open(shelf_repo)
    sentinel = mirror.path / "sentinel"
    sentinel.write_text("still here")
    inode = mirror.path.stat().st_ino
    work = tmp_path / "work"
    git("clone", "--quiet", str(shelf_repo), str(work))
    (work / "README.md").write_text("hello\n")
    git("add", "README.md", cwd=work)
    git("commit", "--quiet", "-m", "readme", cwd=work)
    git("tag", "v9", cwd=work)
    git("push", "--quiet", "origin", "main", "v9", cwd=work)

    with caplog.at_level(logging.DEBUG, logger="shelf.remote.git"):
        reopened = ShelfMirror.open(shelf_repo)
        assert not any(" fetch " in c for c in git_commands(caplog))  # opening alone fetches nothing
        assert mirror.refreshed and not reopened.refreshed
        reopened.refresh()
    assert reopened.refreshed

    commands = git_commands(caplog)
    assert any(" fetch " in c for c in commands)
    assert not any(" clone " in c or " init " in c for c in commands)
    assert reopened.path == mirror.path and mirror.path.stat().st_ino == inode
    assert sentinel.read_text() == "still here"
    assert reopened.head() == git("rev-parse", "HEAD", cwd=work)
    assert reopened.read_file("HEAD", "README.md") == b"hello\n"
    assert reopened.tags() == {"v9": reopened.head()}


def test_refresh_prunes_deleted_branches(shelf_repo: Path) -> None:
    head = git("--git-dir", str(shelf_repo), "rev-parse", "main")
    git("--git-dir", str(shelf_repo), "update-ref", "refs/heads/topic", head)
    mirror = ShelfMirror.open(shelf_repo)
    assert mirror.head("topic") == head
    git("--git-dir", str(shelf_repo), "update-ref", "-d", "refs/heads/topic")

    mirror.refresh()

    with pytest.raises(NotFoundError):
        mirror.head("topic")


def test_offline_before_mirroring_names_the_url(shelf_repo: Path) -> None:
    with pytest.raises(OfflineError, match=str(shelf_repo)) as info:
        ShelfMirror.open(shelf_repo, offline=True)
    assert "offline" in str(info.value)
    assert not mirror_path(str(shelf_repo)).exists()


def test_offline_uses_only_the_mirror(shelf_repo: Path, monkeypatch) -> None:
    head = ShelfMirror.open(shelf_repo).head()
    subprocess.run(["rm", "-rf", str(shelf_repo)], check=True)  # the remote is gone; the mirror is not

    offline = ShelfMirror.open(shelf_repo, offline=True)
    assert offline.refresh().head() == head
    assert offline.read_file("HEAD", "index/config.json") == INITIAL["index/config.json"]
    with pytest.raises(OfflineError):
        offline.commit_and_push({"x": b"1"}, "x", parent=head, branch="main")
    monkeypatch.setenv("CCLM_SHELF_OFFLINE", "1")
    assert ShelfMirror.open(shelf_repo).offline is True


def test_two_openers_at_once_share_one_mirror(shelf_repo: Path) -> None:
    with ThreadPoolExecutor(max_workers=4) as pool:
        mirrors = list(pool.map(lambda _: ShelfMirror.open(shelf_repo).refresh(), range(4)))

    heads = {m.head() for m in mirrors}
    assert heads == {git("--git-dir", str(shelf_repo), "rev-parse", "main")}
    assert len({m.path for m in mirrors}) == 1


def test_default_branch_follows_the_remote_head(tmp_path: Path) -> None:
    repo = tmp_path / "legacy.git"
    git("init", "--quiet", "--bare", "--initial-branch=master", str(repo))
    work = tmp_path / "work"
    git("clone", "--quiet", str(repo), str(work))
    (work / "model").mkdir()
    (work / "model" / "en.tar.gz").write_bytes(POINTER)
    git("add", ".", cwd=work)
    git("commit", "--quiet", "-m", "legacy", cwd=work)
    git("push", "--quiet", "origin", "master", cwd=work)
    git("push", "--quiet", "origin", "master:other", cwd=work)

    mirror = ShelfMirror.open(repo)
    assert mirror.default_branch() == "master"
    assert mirror.read_file("HEAD", "model/en.tar.gz") == POINTER
    git("--git-dir", str(repo), "symbolic-ref", "HEAD", "refs/heads/gone")  # HEAD names a missing branch
    assert ShelfMirror.open(repo, cache_dir=tmp_path / "c2").default_branch() == "master"


# ---------------------------------------------------------------------------------------------------------
# Publishing


def test_commit_and_push_writes_exactly_the_expected_tree(shelf_url: str, shelf_repo: Path) -> None:
    mirror = ShelfMirror.open(shelf_url)
    parent = mirror.head()
    files = {
        "components/a/1.0.0/cclm-manifest.json": b'{"name": "a"}\n',
        "components/a/1.0.0/model/model.weights.h5": POINTER,
        "index/1/a": b'{"name": "a", "vers": "1.0.0"}\n',
        ".lfsconfig": None,  # deleted
    }

    commit = mirror.commit_and_push(files, "Publish a 1.0.0", parent=parent, branch="main", tags=["a/v1.0.0"])

    expected = {**INITIAL, **{k: v for k, v in files.items() if v is not None}}
    assert remote_files(shelf_repo) == expected
    refs = remote_refs(shelf_repo)
    assert refs == {"refs/heads/main": commit, "refs/tags/a/v1.0.0": commit}
    assert git("--git-dir", str(shelf_repo), "rev-parse", f"{commit}^") == parent
    assert git("--git-dir", str(shelf_repo), "log", "-1", "--format=%s", commit) == "Publish a 1.0.0"
    assert mirror.head() == commit and mirror.tags() == {"a/v1.0.0": commit}  # no fetch needed


def test_publishing_a_new_branch_requires_it_to_be_absent(shelf_repo: Path, tmp_path: Path) -> None:
    mirror = ShelfMirror.open(shelf_repo)
    stale = ShelfMirror.open(shelf_repo, cache_dir=tmp_path / "stale")
    created = mirror.commit_and_push({"x": b"1"}, "x", parent=mirror.head(), branch="staging")

    with pytest.raises(PushRejected):
        stale.commit_and_push({"y": b"2"}, "y", parent=stale.head(), branch="staging")
    assert remote_refs(shelf_repo)["refs/heads/staging"] == created


@pytest.mark.network
def test_large_push_over_http_is_streamed(shelf_repo: Path) -> None:
    big = os.urandom(3 << 20)  # beyond git's 1 MiB post buffer: the push body is sent chunked
    with GitHttpServer(shelf_repo.parent) as server:
        mirror = ShelfMirror.open(server.url(shelf_repo.name))
        mirror.commit_and_push({"big.bin": big}, "big", parent=mirror.head(), branch="main")

    assert remote_files(shelf_repo)["big.bin"] == big


def test_shared_mirror_never_moves_back(shelf_repo: Path) -> None:
    one, two = ShelfMirror.open(shelf_repo), ShelfMirror.open(shelf_repo)  # one mirror folder, two users
    first = one.commit_and_push({"x": b"1"}, "x", parent=one.head(), branch="main")
    second = two.commit_and_push({"y": b"2"}, "y", parent=two.head(), branch="main")

    record_push(one, first, "main", [])  # a late record of the older push

    assert one.head() == two.head() == second == remote_refs(shelf_repo)["refs/heads/main"]


def test_file_may_replace_a_folder(shelf_repo: Path) -> None:
    mirror = ShelfMirror.open(shelf_repo)

    mirror.commit_and_push({"index": b"now a file"}, "flatten", parent=mirror.head(), branch="main")

    assert remote_files(shelf_repo)["index"] == b"now a file"
    assert "index/config.json" not in remote_files(shelf_repo)


def test_stale_publisher_is_rejected_and_remote_unchanged(shelf_url: str, shelf_repo: Path, tmp_path) -> None:
    first = ShelfMirror.open(shelf_url, cache_dir=tmp_path / "one")
    second = ShelfMirror.open(shelf_url, cache_dir=tmp_path / "two")
    base = second.head()
    winner = first.commit_and_push(
        {"index/1/a": b"a\n"}, "a", parent=first.head(), branch="main", tags=["a/v1"]
    )
    before = (remote_refs(shelf_repo), remote_files(shelf_repo))

    with pytest.raises(PushRejected) as info:
        second.commit_and_push({"index/1/b": b"b\n"}, "b", parent=base, branch="main", tags=["b/v1"])

    assert info.value.reasons["refs/heads/main"] in {"stale info", "fetch first", "non-fast-forward"}
    assert "refs/tags/b/v1" in info.value.reasons
    assert info.value.hint and "try again" in info.value.hint
    assert (remote_refs(shelf_repo), remote_files(shelf_repo)) == before
    assert remote_refs(shelf_repo)["refs/heads/main"] == winner
    second.refresh()  # the loser refreshes and wins the retry
    retried = second.commit_and_push({"index/1/b": b"b\n"}, "b", parent=second.head(), branch="main")
    assert set(remote_files(shelf_repo)) >= {"index/1/a", "index/1/b"}
    assert git("--git-dir", str(shelf_repo), "rev-parse", f"{retried}^") == winner


def test_known_tag_is_refused_before_pushing(shelf_repo: Path) -> None:
    mirror = ShelfMirror.open(shelf_repo)
    tagged = mirror.commit_and_push({"x": b"1"}, "x", parent=mirror.head(), branch="main", tags=["a/v1"])
    before = remote_refs(shelf_repo)

    with pytest.raises(PushRejected, match="a/v1") as info:
        mirror.commit_and_push({"y": b"2"}, "y", parent=tagged, branch="main", tags=["a/v1"])

    assert info.value.reasons == {"refs/tags/a/v1": "already exists"}
    assert remote_refs(shelf_repo) == before


def test_remote_tag_is_never_overwritten(shelf_url: str, shelf_repo: Path) -> None:
    mirror = ShelfMirror.open(shelf_url)
    head = mirror.head()
    git("--git-dir", str(shelf_repo), "tag", "a/v1", head)  # published by someone the mirror has not seen

    with pytest.raises(PushRejected) as info:
        mirror.commit_and_push({"x": b"1"}, "x", parent=head, branch="main", tags=["a/v1"])

    assert info.value.reasons["refs/tags/a/v1"] == "already exists"
    assert remote_refs(shelf_repo) == {"refs/heads/main": head, "refs/tags/a/v1": head}  # branch did not move


@pytest.mark.parametrize(
    "bad", ["../escape", "/abs/path", "a//b", "a/./b", ".git/config", "A/.GIT/x", "a\\b", ""]
)
def test_unsafe_paths_are_refused(shelf_repo: Path, bad: str) -> None:
    mirror = ShelfMirror.open(shelf_repo)
    before = remote_refs(shelf_repo)

    with pytest.raises(UnsafeContentError, match="refusing to commit"):
        mirror.commit_and_push({bad: b"x"}, "bad", parent=mirror.head(), branch="main")
    assert remote_refs(shelf_repo) == before


def test_bad_tag_and_branch_names_are_config_errors(shelf_repo: Path) -> None:
    mirror = ShelfMirror.open(shelf_repo)

    with pytest.raises(ConfigError, match="not a valid tag"):
        mirror.commit_and_push({"x": b"1"}, "x", parent=mirror.head(), branch="main", tags=["bad..tag"])
    with pytest.raises(ConfigError, match="not a valid branch"):
        mirror.commit_and_push({"x": b"1"}, "x", parent=mirror.head(), branch="bad branch")


def test_publishing_works_without_any_configured_identity(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", "/dev/null")
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for name in ("AUTHOR", "COMMITTER"):
        monkeypatch.delenv(f"GIT_{name}_NAME", raising=False)
        monkeypatch.delenv(f"GIT_{name}_EMAIL", raising=False)
    monkeypatch.delenv("EMAIL", raising=False)
    repo = init_shelf(tmp_path / "shelf.git", initial_files=INITIAL)
    mirror = ShelfMirror.open(repo)

    commit = mirror.commit_and_push({"x": b"1"}, "x", parent=mirror.head(), branch="main")

    ident = f"{FALLBACK_NAME} <{FALLBACK_EMAIL}>"
    assert git("--git-dir", repo, "log", "-1", "--format=%an <%ae>|%cn <%ce>", commit) == f"{ident}|{ident}"


def test_configured_identity_is_kept(shelf_repo: Path) -> None:
    mirror = ShelfMirror.open(shelf_repo)
    commit = mirror.commit_and_push({"x": b"1"}, "x", parent=mirror.head(), branch="main")

    assert git("--git-dir", str(shelf_repo), "log", "-1", "--format=%an", commit) == "cclm-shelf tests"


# ---------------------------------------------------------------------------------------------------------
# URLs and bad remotes


def test_url_pointing_at_a_file_is_refused(tmp_path: Path) -> None:
    regular = tmp_path / "shelf.txt"
    regular.write_text("not a repository")

    for url in (str(regular), regular.as_uri()):
        with pytest.raises(ConfigError, match="is a file, not a shelf") as info:
            ShelfMirror.open(url)
        assert str(regular) in str(info.value)


def test_missing_folder_is_not_found(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "shelf.git"

    with pytest.raises(NotFoundError, match=f"{missing} does not exist") as info:
        ShelfMirror.open(missing)
    assert info.value.hint == f"check the path, or make a shelf there: cclm-shelf init {missing}"
    assert not mirror_path(str(missing)).exists()


def test_folder_that_is_not_a_repository_fails_clearly(tmp_path: Path) -> None:
    folder = tmp_path / "plain"
    folder.mkdir()

    with pytest.raises(GitError, match="plain") as info:
        ShelfMirror.open(folder)
    # one line of ours, not git's several
    assert info.value.message == f"there is no shelf at {folder}: no git repository there"
    assert "cclm-shelf init" in (info.value.hint or "")
    assert not mirror_path(str(folder)).exists()  # no half-made mirror left behind


@pytest.mark.network
def test_unknown_repository_on_a_server_fails_clearly(shelf_repo: Path) -> None:
    with GitDaemon(shelf_repo.parent) as daemon, pytest.raises(GitError, match=r"missing\.git"):
        ShelfMirror.open(daemon.url("missing.git"))
    with GitHttpServer(shelf_repo.parent) as server, pytest.raises(GitError) as info:
        ShelfMirror.open(server.url("missing.git"))
    assert info.value.message == f"there is no shelf at {server.url('missing.git')}: no git repository there"


@pytest.mark.network
def test_private_http_shelf_needs_credentials(shelf_repo: Path) -> None:
    with GitHttpServer(shelf_repo.parent, credentials=("alice", "s3cret")) as server:
        url = server.url(shelf_repo.name)
        with pytest.raises(AuthError, match="needs credentials") as info:
            ShelfMirror.open(url)
        assert info.value.hint and "credential" in info.value.hint
        anonymous = ShelfMirror.open(
            url.replace("http://", "http://alice:s3cret@"), cache_dir=server.base_path / "c"
        )
        anonymous.url = url  # the same mirror, pushing without credentials
        with pytest.raises(AuthError):
            anonymous.commit_and_push({"x": b"1"}, "x", parent=anonymous.head(), branch="main")
        with_credentials = url.replace("http://", "http://alice:s3cret@")
        mirror = ShelfMirror.open(with_credentials)
        commit = mirror.commit_and_push({"x": b"1"}, "x", parent=mirror.head(), branch="main")

    assert mirror.path == mirror_path(url)  # credentials do not change where the mirror lives
    assert "s3cret" not in repr(mirror)
    assert "s3cret" not in (mirror.path / "config").read_text()  # never stored on disk
    assert remote_refs(shelf_repo)["refs/heads/main"] == commit


def test_normalise_url_and_is_local_url(tmp_path: Path) -> None:
    assert normalise_url(tmp_path.as_uri()) == str(tmp_path) == normalise_url(f"{tmp_path}/")
    assert normalise_url("HTTPS://Example.COM/org/shelf.git/") == "https://example.com/org/shelf.git"
    assert normalise_url("http://User:Pw@Host:8080/s") == "http://User:Pw@host:8080/s"
    assert normalise_url("git@github.com:org/shelf.git") == "git@github.com:org/shelf.git"
    assert is_local_url(str(tmp_path)) and is_local_url(tmp_path.as_uri()) and is_local_url("rel/dir")
    assert not any(map(is_local_url, ["git://h/r", "http://h/r", "https://h/r", "git@github.com:o/r"]))
    for bad in ("", "ftp://host/shelf", "http:///no-host", "file://otherhost/x"):
        with pytest.raises(ConfigError):
            normalise_url(bad)


def test_mirror_path_ignores_spelling_and_credentials(tmp_path: Path) -> None:
    assert mirror_path(str(tmp_path)) == mirror_path(tmp_path.as_uri())
    assert mirror_path("https://u:secret@host/o/shelf.git") == mirror_path("https://host/o/shelf.git")
    assert mirror_path("https://host/o/shelf.git") != mirror_path("https://host/p/shelf.git")
    assert mirror_path("https://host/o/shelf.git").name.startswith("shelf-")
    assert mirror_path("https://host/o/shelf.git", cache_dir=tmp_path).parent == tmp_path / "mirrors"


def test_credentials_never_appear_in_errors() -> None:
    assert redact("fetch https://alice:s3cret@host/x failed") == "fetch https://***@host/x failed"
    with pytest.raises(ShelfError) as info:
        ShelfMirror.open("http://alice:s3cret@127.0.0.1:9/shelf.git")
    assert "s3cret" not in str(info.value) and "alice" not in str(info.value)


# ---------------------------------------------------------------------------------------------------------
# init_shelf and interop with plain git


def test_init_shelf_is_cloneable_by_plain_git(shelf_repo: Path, tmp_path: Path) -> None:
    clone = tmp_path / "clone"
    git("clone", "--quiet", str(shelf_repo), str(clone))

    assert (clone / "index" / "config.json").read_bytes() == INITIAL["index/config.json"]
    assert (clone / ".gitattributes").read_bytes() == INITIAL[".gitattributes"]
    assert git("config", "--file", str(clone / ".lfsconfig"), "lfs.url") == LFS_URL
    assert git("rev-parse", "--abbrev-ref", "HEAD", cwd=clone) == "main"
    assert git("--git-dir", str(shelf_repo), "rev-parse", "--is-bare-repository") == "true"


def test_published_tag_is_cloneable_by_plain_git(shelf_repo: Path, tmp_path: Path) -> None:
    mirror = ShelfMirror.open(shelf_repo)
    mirror.commit_and_push(
        {"components/a/1/m.json": b"{}"}, "a", parent=mirror.head(), branch="main", tags=["a/v1"]
    )
    clone = tmp_path / "clone"

    git("clone", "--quiet", "--branch", "a/v1", str(shelf_repo), str(clone))

    assert (clone / "components" / "a" / "1" / "m.json").read_bytes() == b"{}"


@pytest.mark.skipif(shutil.which("git-lfs") is None, reason="needs the git-lfs client")
def test_mirror_reads_pointers_pushed_by_git_lfs_and_never_their_content(tmp_path: Path) -> None:
    shelf_repo = Path(init_shelf(tmp_path / "local.git", initial_files=INITIAL))  # LFS objects live beside it
    work = tmp_path / "work"
    git("clone", "--quiet", str(shelf_repo), str(work))
    git("lfs", "install", "--local", cwd=work)
    (work / "w.h5").write_bytes(b"weights " * 1000)
    git("add", "w.h5", cwd=work)
    git("commit", "--quiet", "-m", "weights", cwd=work)
    git("push", "--quiet", "origin", "main", cwd=work)
    assert any((shelf_repo / "lfs" / "objects").rglob("*"))  # git-lfs stored the content beside the repo

    mirror = ShelfMirror.open(shelf_repo)

    pointer = mirror.read_file("HEAD", "w.h5")
    assert pointer.startswith(b"version https://git-lfs.github.com/spec/v1\n") and b"size 8000" in pointer
    assert not (mirror.path / "lfs").exists()


def test_init_shelf_returns_an_existing_shelf_unchanged(shelf_repo: Path) -> None:
    head = git("--git-dir", str(shelf_repo), "rev-parse", "main")

    assert init_shelf(shelf_repo, initial_files={"other": b"x"}) == str(shelf_repo)
    assert git("--git-dir", str(shelf_repo), "rev-parse", "main") == head


def test_init_shelf_refuses_other_non_empty_folders(tmp_path: Path) -> None:
    folder = tmp_path / "busy"
    folder.mkdir()
    (folder / "keep.txt").write_text("mine")

    with pytest.raises(ConfigError, match="non-empty folder that is not a shelf"):
        init_shelf(folder, initial_files=INITIAL)
    assert [p.name for p in folder.iterdir()] == ["keep.txt"]
    regular = tmp_path / "file"
    regular.write_text("x")
    with pytest.raises(ConfigError, match="is a file"):
        init_shelf(regular, initial_files=INITIAL)
    with pytest.raises(ConfigError, match="not a local path"):
        init_shelf("https://host/shelf.git", initial_files=INITIAL)


def test_init_shelf_in_an_empty_folder_and_argument_conflicts(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert init_shelf(empty, initial_files=INITIAL) == str(empty)
    assert remote_files(empty) == INITIAL

    with pytest.raises(ConfigError, match="lfs_url"):
        init_shelf(tmp_path / "both", lfs_url=LFS_URL, initial_files={".lfsconfig": b""})
    with pytest.raises(UnsafeContentError):
        init_shelf(tmp_path / "unsafe", initial_files={"../x": b""})
    assert not (tmp_path / "unsafe").exists()  # a failed creation leaves nothing behind
    given = tmp_path / "given"
    given.mkdir()
    with pytest.raises(UnsafeContentError):
        init_shelf(given, initial_files={"a/../b": b""})
    assert given.is_dir() and not any(given.iterdir())  # ... and a folder handed over empty stays empty


def test_shelf_refuses_history_rewrites(shelf_repo: Path) -> None:
    assert git("--git-dir", str(shelf_repo), "config", "receive.denyNonFastForwards") == "true"
    assert git("--git-dir", str(shelf_repo), "config", "receive.denyDeletes") == "true"
