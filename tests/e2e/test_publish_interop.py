"""The real git-lfs client reads what ``publish`` wrote, byte for byte: from a local and a served shelf."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from registry_index import layout
from shelf.source import create_shelf
from tests.shelf.conftest import BASE, MLM, publish_folder, saved_models  # noqa: F401 - shared fixture
from tests.support.served import served_lfs_shelf


def run(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
    assert done.returncode == 0, f"{' '.join(args)} failed:\n{done.stderr}"
    return done.stdout


def lfs_clone(url: str, dest: Path, home: Path) -> Path:
    """Clone without smudging, then let git-lfs fetch and check out every LFS file."""
    import os

    home.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "HOME": str(home), "GIT_LFS_SKIP_SMUDGE": "1", "GIT_TERMINAL_PROMPT": "0"}
    run("git", "clone", "--quiet", url, str(dest), env=env)
    run("git", "lfs", "install", "--local", cwd=dest, env=env)
    run("git", "lfs", "pull", cwd=dest, env=env)
    return dest


def assert_same_files(checkout: Path, name: str, version: str, folder: Path, items: list[str]) -> int:
    compared = 0
    for item in items:
        for original in sorted(p for p in (folder / item).rglob("*") if p.is_file()):
            rel = original.relative_to(folder / item).as_posix()
            pulled = checkout / layout.file_path(name, version, item, rel)
            assert pulled.read_bytes() == original.read_bytes(), f"{pulled} differs from {original}"
            compared += 1
    return compared


def test_git_lfs_pulls_a_local_shelf(tmp_path, saved_models):  # noqa: F811
    shelf = Path(create_shelf(tmp_path / "shelf.git"))
    publish_folder(shelf, saved_models / BASE, "base", "0.1.0")
    publish_folder(shelf, saved_models / MLM, "mlm", "0.1.0", ["base==0.1.0"])
    checkout = lfs_clone(str(shelf), tmp_path / "checkout", tmp_path / "home")
    compared = assert_same_files(checkout, "base", "0.1.0", saved_models / BASE, ["preprocessor", "embedder"])
    mlm = checkout / "components" / "mlm" / "0.1.0" / "component"
    for original in (saved_models / MLM).iterdir():  # a component is saved as the item folder itself
        assert (mlm / original.name).read_bytes() == original.read_bytes()
        compared += 1
    assert compared == 5
    assert "base/v0.1.0" in run("git", "tag", cwd=checkout)


@pytest.mark.network
def test_git_lfs_pulls_a_served_shelf(tmp_path, saved_models, monkeypatch):  # noqa: F811
    with served_lfs_shelf(tmp_path, "interop-token-0123456789", monkeypatch) as servers:
        publish_folder(servers.http_url, saved_models / BASE, "base", "0.1.0")
        monkeypatch.delenv("CCLM_SHELF_TOKEN")
        checkout = lfs_clone(servers.git_url, tmp_path / "checkout", tmp_path / "home")
        assert (
            assert_same_files(checkout, "base", "0.1.0", saved_models / BASE, ["preprocessor", "embedder"])
            == 3
        )
        listed = run("git", "lfs", "ls-files", "--long", cwd=checkout)
        assert listed.count(" * ") == 3  # all three files are real content, not pointers
