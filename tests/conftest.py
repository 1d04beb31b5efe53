"""Settings shared by every test: keep the user's real cache, home and credentials out of reach."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


@pytest.fixture(autouse=True)
def _isolated_environment(tmp_path_factory, monkeypatch):
    """Point every per-user location of cclm-shelf at a fresh folder for each test."""
    root = tmp_path_factory.mktemp("env")
    monkeypatch.setenv("CCLM_SHELF_CACHE_DIR", str(root / "cache"))
    monkeypatch.setenv("CCLM_SHELF_HOME", str(root / "home"))
    for name in (
        "CCLM_SHELF_URL",
        "CCLM_SHELF_OFFLINE",
        "CCLM_SHELF_TOKEN",
        "CCLM_SHELF_JOBS",
        "CCLM_SHELF_LINK_MODE",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GIT_AUTHOR_NAME", "cclm-shelf tests")
    monkeypatch.setenv("GIT_AUTHOR_EMAIL", "tests@cclm-shelf.invalid")
    monkeypatch.setenv("GIT_COMMITTER_NAME", "cclm-shelf tests")
    monkeypatch.setenv("GIT_COMMITTER_EMAIL", "tests@cclm-shelf.invalid")
