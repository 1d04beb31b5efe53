"""Exact pins of versions the metadata mirror already holds install without asking the shelf anything."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from shelf.api import Shelf
from shelf.errors import ShelfError
from tests.support.shelves import (
    BASE,
    MLM,
    VERSION,
    publish_folder,
)


def test_exact_pins_need_no_fetch_once_mirrored(stack_shelf: Path, tmp_path: Path) -> None:
    Shelf(str(stack_shelf)).install(f"{MLM}@v{VERSION}", target=tmp_path / "one")
    # The shelf disappears entirely: the mirror and the store must be enough for an exact pin.
    shutil.move(stack_shelf, tmp_path / "away.git")
    report = Shelf(str(stack_shelf)).install(f"{MLM}=={VERSION}", target=tmp_path / "two")
    assert sorted(report.installed) == [(BASE, VERSION), (MLM, VERSION)]
    assert report.objects_fetched == 0


def test_a_range_still_asks_the_shelf(stack_shelf: Path, tmp_path: Path) -> None:
    Shelf(str(stack_shelf)).install(f"{MLM}@v{VERSION}", target=tmp_path / "one")
    shutil.move(stack_shelf, tmp_path / "away.git")
    with pytest.raises(ShelfError):  # ">=" could match something published since: the fetch is required
        Shelf(str(stack_shelf)).install(f"{MLM}>=0.1", target=tmp_path / "two")
    assert not (tmp_path / "two").exists()


def test_an_exact_pin_not_yet_mirrored_fetches(tiny_stack, stack_shelf: Path, tmp_path: Path) -> None:
    Shelf(str(stack_shelf)).install(f"{MLM}@v{VERSION}", target=tmp_path / "one")
    publish_folder(str(stack_shelf), tiny_stack.base, BASE, "0.2.0", cache_dir=tmp_path / "publisher-cache")
    report = Shelf(str(stack_shelf)).install(f"{BASE}@v0.2.0", target=tmp_path / "two")
    assert report.installed == [(BASE, "0.2.0")]


def test_manifests_are_validated_once_per_machine(stack_shelf: Path, tmp_path: Path, monkeypatch) -> None:
    import registry_index.manifest as manifest_module

    calls: list[str] = []
    real = manifest_module.validate_manifest
    monkeypatch.setattr(
        manifest_module, "validate_manifest", lambda data: calls.append(data.get("name")) or real(data)
    )
    Shelf(str(stack_shelf)).install(f"{MLM}@v{VERSION}", target=tmp_path / "one")
    assert sorted(c for c in calls if c) == [BASE, MLM]  # (a warm-up thread may validate {} once)
    calls.clear()
    report = Shelf(str(stack_shelf)).install(f"{MLM}@v{VERSION}", target=tmp_path / "two")
    assert [c for c in calls if c] == []  # the same bytes (same digest) were validated by the first install
    assert sorted(report.installed) == [(BASE, VERSION), (MLM, VERSION)]


def test_a_warm_reinstall_through_the_cli_imports_only_what_it_uses(
    stack_shelf: Path, tmp_path: Path
) -> None:
    import json
    import os
    import subprocess
    import sys

    cache, cwd = tmp_path / "cache", tmp_path / "cwd"
    cwd.mkdir()
    args = ["--shelf", str(stack_shelf), "--cache-dir", str(cache), "install", f"{MLM}@v{VERSION}"]
    code = (
        "import json, sys\nfrom shelf.cli import main\ncode = None\ntry:\n    main(sys.argv[1:])\n"
        "except SystemExit as e:\n    code = e.code\n"
        "print(json.dumps([code, sorted(sys.modules)]))\n"
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    for target in ("one", "two"):  # the first install (same interpreter and paths) fills the cache
        done = subprocess.run(
            [sys.executable, "-c", code, *args, "--target", str(tmp_path / target)],
            capture_output=True, text=True, env=env, cwd=cwd,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
    status, modules = json.loads(done.stdout.strip().splitlines()[-1])
    assert status in (0, None) and (tmp_path / "two" / MLM).is_dir()
    unused = {"tensorflow", "requests", "jsonschema", "model_signing", "tomllib", "rich", "h5py", "numpy"}
    # Nor what a warm install can do without: a lock library, logging, framework specifiers met before.
    unused |= {"filelock", "logging", "packaging", "importlib.metadata", "email"}
    # Nor the blob protocol (no blob moves), the original layout's fetch, publishing, offline picking.
    unused |= {
        "shelf.remote.lfs_protocol",
        "shelf.legacy",
        "tarfile",
        "shelf.remote.commits",
        "shelf.offline_index",
    }
    assert unused.isdisjoint(modules), unused.intersection(modules)


def test_a_warm_reinstall_runs_one_git_process_per_level_of_the_stack(
    stack_shelf: Path, tmp_path: Path, caplog
) -> None:
    import logging

    Shelf(str(stack_shelf), cache_dir=tmp_path / "cache").install(
        f"{MLM}@v{VERSION}", target=tmp_path / "one"
    )
    with caplog.at_level(logging.DEBUG, logger="shelf.remote.git"):
        report = Shelf(str(stack_shelf), cache_dir=tmp_path / "cache").install(
            f"{MLM}@v{VERSION}", target=tmp_path / "two"
        )
    commands = [r.getMessage() for r in caplog.records if r.name == "shelf.remote.git"]
    assert sorted(report.installed) == [(BASE, VERSION), (MLM, VERSION)]
    # The mirror's head, then one batch read of the pin's index file and manifest (and signature), then
    # one of the base's that the pin's index entry requires exactly.
    assert [c.split("autoDetach=false ")[-1] for c in commands] == [
        "rev-parse --verify --quiet HEAD^{commit}",
        "cat-file --batch",
        "cat-file --batch",
    ]


def test_a_cold_install_of_a_range_reads_each_kind_of_file_once(
    stack_shelf: Path, tmp_path: Path, caplog
) -> None:
    import logging

    with caplog.at_level(logging.DEBUG, logger="shelf.remote.git"):
        report = Shelf(str(stack_shelf), cache_dir=tmp_path / "cache").install(MLM, target=tmp_path / "one")
    verbs = [r.getMessage().split("autoDetach=false ")[-1].split(" ")[0] for r in caplog.records]
    assert sorted(report.installed) == [(BASE, VERSION), (MLM, VERSION)]
    # A new mirror (init, fetch, its branches), then the requested names' index files, the base's (named by
    # what the resolver picked), every picked manifest with its signature (one process each), and the
    # shelf's LFS settings for the blobs.
    assert [v for v in verbs if not v.startswith("git")] == [
        "fetch",
        "for-each-ref",
        "cat-file",
        "cat-file",
        "cat-file",
        "config",
    ]


def test_a_lockfile_install_reads_the_pinned_metadata_with_one_git_process(
    stack_shelf: Path, tmp_path: Path, caplog
) -> None:
    import logging

    from shelf.lockfile import Lockfile

    shelf = Shelf(str(stack_shelf), cache_dir=tmp_path / "cache")
    components, _ = shelf.pin(shelf.resolve([MLM]))
    lock = Lockfile("sha256:" + "0" * 64, tuple(components))
    shelf.install_locked(lock, target=tmp_path / "one")
    with caplog.at_level(logging.DEBUG, logger="shelf.remote.git"):
        report = Shelf(str(stack_shelf), cache_dir=tmp_path / "cache").install_locked(
            lock, target=tmp_path / "two"
        )
    verbs = [r.getMessage().split("autoDetach=false ")[-1].split(" ")[0] for r in caplog.records]
    assert sorted(report.installed) == [(BASE, VERSION), (MLM, VERSION)]
    # The mirror's head, then both manifests (and signatures) and both index files (yank status) at once.
    assert verbs == ["rev-parse", "cat-file"]
