"""Yanks as PEP 592 and Cargo have them: ranges skip a yanked version, exact and lockfile pins install it
with a warning that names the reason, and the yank status an install trusts is never older than a set age."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from shelf.api import Shelf
from shelf.yanking import yank
from tests.shelf.conftest import BASE, publish_folder


def _yank_elsewhere(shelf: Path, tmp_path: Path, spec: str, reason: str) -> None:
    """Yank through another machine's cache, so this test's mirror does not see it until it fetches."""
    name, version = spec.split("@")
    yank(Shelf(str(shelf), cache_dir=tmp_path / "publisher-cache").source(), name, version, reason)


@pytest.fixture
def base_two(stocked_shelf, saved_models) -> Path:
    """The stocked shelf plus base 0.2.0, yanked for "wrong vocabulary"."""
    publish_folder(stocked_shelf, saved_models / BASE, "base", "0.2.0")
    yank(Shelf(str(stocked_shelf)).source(), "base", "0.2.0", "wrong vocabulary")
    return stocked_shelf


@pytest.mark.parametrize("spec", ["base@0.2.0", "base==0.2.0"])
def test_an_exact_pin_of_a_yanked_version_installs_with_a_warning(cli, base_two, tmp_path, spec):
    done = cli("--shelf", base_two, "install", spec, "--target", tmp_path / "t", "--json")
    assert done.code == 0, done.err
    assert json.loads(done.out)["installed"] == [{"name": "base", "version": "0.2.0"}]
    assert "warning: base 0.2.0 is yanked: wrong vocabulary" in done.err
    assert json.loads(done.out)["warnings"] == ["base 0.2.0 is yanked: wrong vocabulary"]
    ranged = cli("--shelf", base_two, "install", "base>=0.1", "--target", tmp_path / "r", "--json")
    assert json.loads(ranged.out)["installed"] == [{"name": "base", "version": "0.1.0"}]
    assert "warning" not in ranged.err


def test_a_yank_after_mirroring_is_seen_once_the_mirror_is_older_than_the_max_age(
    cli, stocked_shelf, tmp_path, monkeypatch
):
    assert cli("--shelf", stocked_shelf, "install", "base@0.1.0", "--target", tmp_path / "a").code == 0
    _yank_elsewhere(stocked_shelf, tmp_path, "base@0.1.0", "leaks test data")
    monkeypatch.setenv("CCLM_SHELF_INDEX_MAX_AGE", "0")  # every install looks at the shelf again
    again = cli("--shelf", stocked_shelf, "install", "base@0.1.0", "--target", tmp_path / "b")
    assert again.code == 0, again.err
    assert "warning: base 0.1.0 is yanked: leaks test data" in again.err


def test_a_mirror_fetched_long_ago_is_fetched_again_before_its_yank_status_counts(
    cli, stocked_shelf, tmp_path
):
    from shelf.source import FETCHED_MARK

    assert cli("--shelf", stocked_shelf, "install", "base@0.1.0", "--target", tmp_path / "a").code == 0
    _yank_elsewhere(stocked_shelf, tmp_path, "base@0.1.0", "leaks test data")
    marks = list((Path(os.environ["CCLM_SHELF_CACHE_DIR"]) / "mirrors").glob(f"*/{FETCHED_MARK}"))
    assert len(marks) == 1
    os.utime(marks[0], (1_000_000, 1_000_000))  # fetched in 1970: far older than the default 300 s
    again = cli("--shelf", stocked_shelf, "install", "base@0.1.0", "--target", tmp_path / "b")
    assert "warning: base 0.1.0 is yanked: leaks test data" in again.err


def test_offline_the_warning_says_as_of_when_the_index_was_read(cli, base_two, tmp_path):
    assert cli("--shelf", base_two, "install", "base@0.2.0", "--target", tmp_path / "a").code == 0
    offline = cli("--shelf", base_two, "--offline", "install", "base@0.2.0", "--target", tmp_path / "b")
    assert offline.code == 0, offline.err
    assert (
        "warning: base 0.2.0 is yanked (as of 20" in offline.err
        and "offline): wrong vocabulary" in offline.err
    )


def test_a_lockfile_pin_of_a_yanked_version_installs_with_a_warning(
    cli, stocked_shelf, project_dir, tmp_path
):
    assert cli("--shelf", stocked_shelf, "add", "mlm", "--no-install").code == 0
    yank(Shelf(str(stocked_shelf)).source(), "mlm", "0.1.0", "trained on the test split")
    done = cli("install", "--json")
    assert done.code == 0, done.err
    assert {r["name"] for r in json.loads(done.out)["installed"]} == {"base", "mlm"}
    assert "warning: mlm 0.1.0 is yanked: trained on the test split" in done.err
    locked = cli("lock", "--json")
    assert locked.json()["warnings"] == ["mlm 0.1.0 is yanked: trained on the test split"]
    assert locked.json()["changes"] == []  # a yank alone never moves a locked version


def test_lock_says_why_it_changed_a_version(cli, stocked_shelf, saved_models, project_dir):
    publish_folder(stocked_shelf, saved_models / BASE, "base", "0.2.0")
    assert cli("--shelf", stocked_shelf, "add", "base", "--no-install").code == 0
    yank(Shelf(str(stocked_shelf)).source(), "base", "0.2.0", "wrong vocabulary")
    moved = cli("lock", "--upgrade")
    assert moved.code == 0, moved.err
    assert "~ base 0.2.0 -> 0.1.0 (0.2.0 yanked: wrong vocabulary)" in moved.out


def test_lock_upgrade_package_says_why_it_kept_a_version(cli, stocked_shelf, saved_models, project_dir):
    assert cli("--shelf", stocked_shelf, "add", "mlm", "--no-install").code == 0
    publish_folder(stocked_shelf, saved_models / BASE, "base", "0.2.0")  # mlm 0.1.0 needs base==0.1.0
    kept = cli("lock", "--upgrade-package", "base", "--json")
    assert kept.code == 0, kept.err
    [change] = kept.json()["changes"]
    assert (change["name"], change["old"], change["new"]) == ("base", "0.1.0", "0.1.0")
    assert change["reason"].startswith("0.2.0 cannot join the set: ")
    assert "base==0.1.0" in change["reason"]
    text = cli("lock", "--upgrade-package", "base").out
    assert "= base 0.1.0 kept: 0.2.0 cannot join the set" in text
