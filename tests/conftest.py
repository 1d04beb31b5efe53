"""Settings shared by every test: keep the user's real cache, home and credentials out of reach."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.support.shelves import SavedStack

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


# The published tiny stack of real models (tests/support/shelves.py), for tests anywhere. -----------------


@pytest.fixture(scope="session")
def tiny_stack(tmp_path_factory: pytest.TempPathFactory) -> SavedStack:
    """The session's saved folders of the tiny stack, built on first use: never modify them."""
    from tests.support.shelves import saved_stack

    return saved_stack(tmp_path_factory)


@pytest.fixture
def stack_shelf(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> Path:
    """A local shelf holding the tiny stack published at VERSION: this test's own copy (shelf.git)."""
    from tests.support.shelves import published_shelf

    return published_shelf(tmp_path_factory, tmp_path / "shelf.git")
