"""Credentials against giftless with JWT authentication, and git credentials in a shelf URL.

A token from ``CCLM_SHELF_TOKEN`` or from a netrc file works; a missing or wrong one gives a clear 401/403
error. The secret never appears in stdout/stderr (verbose included), exception text, the lockfile, the
install record, the metadata mirror's git config, or any other file the package writes.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from shelf.api import Shelf
from shelf.credentials import BearerAuth
from shelf.errors import AuthError
from tests.reliability.conftest import record
from tests.reliability.kit import CraftedShelf, check_target, cli_env, stack_files
from tests.support.giftless import GiftlessServer
from tests.support.git_servers import GitHttpServer

pytestmark = pytest.mark.network

GIT_SECRET = "git-secret-5f1e9c2a7b"
RERUN = "pytest tests/reliability/test_auth.py"


@dataclass(frozen=True)
class AuthShelf:
    shelf: CraftedShelf
    lfs: GiftlessServer
    http_url: str  # the same shelf over smart HTTP, behind basic auth

    def token(self, **kw) -> str:
        return self.lfs.mint_token("org", "shelf", **kw)


@pytest.fixture(scope="module")
def auth_shelf(tmp_path_factory) -> Iterator[AuthShelf]:
    root = tmp_path_factory.mktemp("auth")
    with GiftlessServer(root / "giftless", auth="jwt") as lfs:
        shelf = CraftedShelf.create(root / "repos" / "shelf.git", lfs_url=lfs.endpoint())
        from shelf.lfs import LfsClient

        writer = LfsClient(lfs.endpoint(), auth=BearerAuth(lfs.mint_token("org", "shelf")), jobs=2)
        shelf.put_blobs = lambda blobs: _upload(writer, shelf.work, blobs)  # type: ignore[method-assign]
        shelf.publish("secret_stack", "0.1.0", stack_files(7, size=32 * 1024))
        with GitHttpServer(root / "repos", credentials=("reader", GIT_SECRET)) as http:
            url = http.url("shelf.git").replace("http://", f"http://reader:{GIT_SECRET}@")
            yield AuthShelf(shelf, lfs, url)


def _upload(client, work: Path, blobs: list[bytes]) -> None:
    from shelf.lfs import LfsObject
    from tests.reliability.kit import sha256

    folder = work / "blobs"
    folder.mkdir(parents=True, exist_ok=True)
    pairs = []
    for data in blobs:
        (folder / sha256(data)).write_bytes(data)
        pairs.append((LfsObject(sha256(data), len(data)), folder / sha256(data)))
    client.upload(pairs)


def _cli(*args: str, cwd: Path, verbose: bool = False, **env: str) -> subprocess.CompletedProcess:
    """Run the command; ``verbose`` adds ``-v``, which prints tracebacks on purpose."""
    done = subprocess.run(
        [sys.executable, "-m", "shelf.cli", *(["-v"] if verbose else []), *args],
        env=cli_env(**env),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert verbose or "Traceback" not in done.stderr, done.stderr
    return done


def _nowhere(secret: str, *roots: Path, texts: tuple[str, ...] = ()) -> int:
    """Assert ``secret`` is in none of the texts and no file under the roots; returns files searched."""
    for text in texts:
        assert secret not in text, "a secret leaked into output or an error message"
    searched = 0
    for root in roots:
        for path in root.rglob("*") if root.exists() else ():
            if path.is_file() and not path.is_symlink():
                assert secret.encode() not in path.read_bytes(), f"a secret leaked into {path}"
                searched += 1
    return searched


def test_a_token_from_the_environment_works_and_never_leaks(
    auth_shelf: AuthShelf, tmp_path: Path, monkeypatch
) -> None:
    token = auth_shelf.token(actions="read")
    monkeypatch.setenv("CCLM_SHELF_TOKEN", token)
    Shelf(auth_shelf.shelf.url, cache_dir=tmp_path / "api-cache").install(
        "secret_stack", target=tmp_path / "api"
    )
    assert check_target(tmp_path / "api") == 3
    project = tmp_path / "project"
    project.mkdir()
    cache = tmp_path / "cli-cache"
    env = {"CCLM_SHELF_TOKEN": token, "CCLM_SHELF_CACHE_DIR": str(cache)}
    done = _cli("--shelf", auth_shelf.shelf.url, "add", "secret_stack", cwd=project, verbose=True, **env)
    assert done.returncode == 0, done.stderr
    assert (project / "cclm-shelf.lock").is_file()
    assert check_target(project / ".cclm") == 3
    searched = _nowhere(
        token, project, cache, tmp_path / "api-cache", tmp_path / "api", texts=(done.stdout, done.stderr)
    )
    assert searched > 10
    assert token not in auth_shelf.lfs.log(), "the token reached the LFS server's log"
    record("auth", "token from CCLM_SHELF_TOKEN: install + add (lockfile)", 2, 2, f"{RERUN} -k environment")


def test_a_token_from_netrc_works(auth_shelf: AuthShelf, tmp_path: Path, monkeypatch) -> None:
    token = auth_shelf.token(actions="read")
    netrc = tmp_path / "netrc"
    netrc.write_text(f"machine 127.0.0.1\nlogin _jwt\npassword {token}\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    Shelf(auth_shelf.shelf.url, cache_dir=tmp_path / "c1").install("secret_stack", target=tmp_path / "t1")
    assert check_target(tmp_path / "t1") == 3
    done = _cli("--shelf", auth_shelf.shelf.url, "install", "secret_stack", "--target", str(tmp_path / "t2"),
                cwd=tmp_path, NETRC=str(netrc), CCLM_SHELF_CACHE_DIR=str(tmp_path / "c2"))  # fmt: skip
    assert done.returncode == 0, done.stderr
    _nowhere(
        token,
        tmp_path / "c1",
        tmp_path / "c2",
        tmp_path / "t1",
        tmp_path / "t2",
        texts=(done.stdout, done.stderr),
    )
    record("auth", "token from netrc", 2, 2, f"{RERUN} -k netrc")


BAD = {
    "missing": lambda s: None,
    "wrong signature": lambda s: s.token()[:-6] + "AAAAAA",
    "expired": lambda s: s.token(lifetime=-60),
    "other repository": lambda s: s.lfs.mint_token("org", "elsewhere"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_missing_or_wrong_token_is_a_clear_auth_error(
    auth_shelf: AuthShelf, tmp_path: Path, monkeypatch, case: str
) -> None:
    token = BAD[case](auth_shelf)
    if token:
        monkeypatch.setenv("CCLM_SHELF_TOKEN", token)
    target = tmp_path / "target"
    with pytest.raises(AuthError, match=r"40[13]|refused") as caught:
        Shelf(auth_shelf.shelf.url, cache_dir=tmp_path / "c").install("secret_stack", target=target)
    assert "CCLM_SHELF_TOKEN" in str(caught.value)
    env = {"CCLM_SHELF_CACHE_DIR": str(tmp_path / "c2"), **({"CCLM_SHELF_TOKEN": token} if token else {})}
    done = _cli(
        "--shelf",
        auth_shelf.shelf.url,
        "install",
        "secret_stack",
        "--target",
        str(target),
        cwd=tmp_path,
        **env,
    )
    said = "needs credentials" if token is None else "refused"
    assert done.returncode != 0 and said in done.stderr and "CCLM_SHELF_TOKEN" in done.stderr
    assert not target.exists()
    args = ("--shelf", auth_shelf.shelf.url, "install", "secret_stack", "--target", str(target))
    loud = _cli(*args, cwd=tmp_path, verbose=True, **env)
    assert loud.returncode != 0
    if token:
        _nowhere(token, texts=(loud.stdout, loud.stderr))
        chain = [caught.value, caught.value.__cause__, caught.value.__context__]
        _nowhere(token, tmp_path, texts=(done.stdout, done.stderr, *(repr(e) + str(e) for e in chain if e)))
    node = f"{RERUN}::test_a_missing_or_wrong_token_is_a_clear_auth_error[{case}]"
    record("auth", f"token {case}: clear 401/403", 2, 2, f"pytest '{node.removeprefix('pytest ')}'")


def test_git_credentials_in_the_url_are_not_stored(
    auth_shelf: AuthShelf, tmp_path: Path, monkeypatch
) -> None:
    token = auth_shelf.token(actions="read")
    monkeypatch.setenv("CCLM_SHELF_TOKEN", token)
    cache, target = tmp_path / "cache", tmp_path / "target"
    Shelf(auth_shelf.http_url, cache_dir=cache).install("secret_stack", target=target)
    assert check_target(target) == 3
    done = _cli("--shelf", auth_shelf.http_url, "install", "secret_stack", "--target", str(tmp_path / "t2"),
                cwd=tmp_path, CCLM_SHELF_TOKEN=token, CCLM_SHELF_CACHE_DIR=str(cache))  # fmt: skip
    assert done.returncode == 0, done.stderr
    configs = list(cache.rglob("config"))
    assert configs, "no mirror was made"
    _nowhere(GIT_SECRET, cache, target, tmp_path / "t2", texts=(done.stdout, done.stderr))
    _nowhere(token, cache, target, tmp_path / "t2", texts=(done.stdout, done.stderr))
    wrong = auth_shelf.http_url.replace(GIT_SECRET, "not-the-password")
    done = _cli("--shelf", wrong, "install", "secret_stack", "--target", str(tmp_path / "t3"),
                cwd=tmp_path, CCLM_SHELF_CACHE_DIR=str(tmp_path / "c3"))  # fmt: skip
    assert done.returncode != 0 and "not-the-password" not in done.stderr + done.stdout
    record("auth", "git credentials in the shelf URL (right and wrong)", 3, 3, f"{RERUN} -k git_credentials")
