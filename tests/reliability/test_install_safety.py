"""Install never destroys what it did not install, and a target stays one stack: a team's trials.

The shelf is served as a team serves it: `git daemon` for the metadata, giftless for the blobs. Every
install goes over git:// and the LFS batch API, through ``Shelf`` and through the ``cclm-shelf`` command.
The suite runs as root, where an installed file's read-only mode protects nothing: the edits below are
plain writes, as a fine-tuning script would make them.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from shelf.api import Shelf
from shelf.errors import ResolutionError, TargetError
from tests.reliability.conftest import Tally, record, trials
from tests.reliability.kit import (
    VOCAB,
    CraftedShelf,
    check_store,
    manifest_dict,
    run_cli,
    stack_files,
    tree,
)
from tests.support.giftless import GiftlessServer
from tests.support.git_servers import GitDaemon

pytestmark = pytest.mark.network
GROUP = "install"
RERUN = "pytest tests/reliability/test_install_safety.py"
TRASH = ".cclm-shelf-trash"


def _base(label: str) -> dict:
    digest = hashlib.sha256(label.encode()).hexdigest()
    return {"embedder": f"sha256:{digest}", "vocab": VOCAB, "max_input_length": 64, "n_chars": 100}


OLD, NEW = _base("embedder one"), _base("embedder two")


@dataclass(frozen=True)
class Team:
    url: str  # git:// served by git daemon; blobs from giftless
    known: dict[str, bytes]


def _manifest(name: str, version: str, files: dict, requires: tuple, kind: str, base: dict) -> dict:
    data = manifest_dict(name, version, files, requires, kind)
    data["base"] = dict(base)
    if kind == "embedder":
        data["provides"] = {
            **{k: base[k] for k in ("embedder", "max_input_length", "n_chars")},
            "output_dim": 8,
        }
    return data


# name, version, requires, kind, base. ``sb`` never moves to the new embedder; ``sa`` does.
RELEASES = [
    ("sbase", "0.1.0", (), "embedder", OLD),
    ("sa", "0.1.0", ("sbase==0.1.0",), "component", OLD),
    ("sb", "0.1.0", ("sbase==0.1.0",), "component", OLD),
    ("sbase", "0.2.0", (), "embedder", NEW),
    ("sa", "0.2.0", ("sbase==0.2.0",), "component", NEW),
    ("sc", "0.1.0", ("sbase==0.2.0",), "component", NEW),
]


@pytest.fixture(scope="module")
def team(tmp_path_factory) -> Iterator[Team]:
    root = tmp_path_factory.mktemp("install-safety")
    with GiftlessServer(root / "giftless") as lfs, GitDaemon(root) as daemon:
        shelf = CraftedShelf.create(root / "shelf.git", lfs_url=lfs.endpoint(), upload_to=lfs.endpoint())
        known = {}
        for seed, (name, version, requires, kind, base) in enumerate(RELEASES, start=1):
            files = stack_files(seed, count=2, size=96 * 1024)
            data = _manifest(name, version, files, requires, kind, base)
            shelf.publish(name, version, files, requires, kind, manifest=data)
            known.update({hashlib.sha256(d).hexdigest(): d for d in files.values()})
        yield Team(daemon.url("shelf.git"), known)


def _weights(target: Path, name: str) -> Path:
    return target / name / "model" / "weights.h5"


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _plant(target: Path, name: str, kind: int, outside: Path) -> None:
    """Something of the user's where a component would go: a folder, a file, a link, an empty folder."""
    spot = target / name
    target.mkdir(parents=True, exist_ok=True)
    if kind == 0:
        (spot / "notes").mkdir(parents=True)
        (spot / "notes" / "notes.txt").write_text("mine")
    elif kind == 1:
        spot.write_bytes(random.Random(7).randbytes(300))
    elif kind == 2:
        spot.symlink_to(outside, target_is_directory=True)
    else:
        (spot / "model").mkdir(parents=True)  # looks like ours, but nothing records it


def test_a_folder_not_installed_by_cclm_shelf_is_refused_and_kept(
    team: Team, tmp_path: Path, tally: Callable[..., Tally]
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("mine")
    figures = tally(
        GROUP,
        "folder, file or link not installed by cclm-shelf: refused, kept",
        f"{RERUN} -k refused_and_kept",
    )
    for trial in range(trials(4, 12)):
        with figures.trial():
            target, cache = tmp_path / f"t{trial}" / "target", tmp_path / f"t{trial}" / "cache"
            _plant(target, "sa", trial % 4, outside)
            before, outside_before = tree(target), tree(outside)
            if trial % 2:
                done = run_cli("--shelf", team.url, "install", "sa", "--target", str(target), cache=cache)
                assert done.returncode == 1 and "not installed by cclm-shelf" in done.stderr, done.stderr
                assert "--force" in done.stderr
            else:
                with pytest.raises(TargetError, match="not installed by cclm-shelf"):
                    Shelf(team.url, cache_dir=cache).install("sa", target=target)
            assert tree(target) == before and tree(outside) == outside_before


def test_force_moves_what_is_in_the_way_into_the_trash(
    team: Team, tmp_path: Path, tally: Callable[..., Tally]
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    figures = tally(GROUP, "--force: moved into the target's trash, never deleted", f"{RERUN} -k force")
    for trial in range(trials(4, 12)):
        with figures.trial():
            target, cache = tmp_path / f"t{trial}" / "target", tmp_path / f"t{trial}" / "cache"
            _plant(target, "sa", trial % 4, outside)
            planted = tree(target / "sa") if (target / "sa").is_dir() and trial % 4 != 2 else None
            done = run_cli(
                "--shelf", team.url, "install", "sa", "--target", str(target), "--force", cache=cache
            )
            assert done.returncode == 0, done.stderr
            (kept,) = list((target / TRASH).iterdir())
            assert kept.is_symlink() == (trial % 4 == 2)
            if planted is not None:
                assert {k: v[:2] for k, v in tree(kept).items()} == {k: v[:2] for k, v in planted.items()}
            assert run_cli("verify", "--target", str(target), cache=cache).returncode == 0


def _edit_trial(team: Team, root: Path, mode: str) -> None:
    """Install into A and B, edit A's weights in place, then install into C, B and A: all verified."""
    cache = root / "cache"
    a, b, c = root / "a", root / "b", root / "c"
    env = {"CCLM_SHELF_LINK_MODE": mode}
    for target in (a, b):
        assert (
            run_cli(
                "--shelf", team.url, "install", "sa@0.1.0", "--target", str(target), cache=cache, **env
            ).returncode
            == 0
        )
    good = _sha(_weights(a, "sa"))
    with _weights(a, "sa").open("r+b") as handle:  # as root: no chmod needed, the mode stops nothing
        handle.write(b"fine-tuned weights")
    shared = mode != "copy"
    assert (_sha(_weights(b, "sa")) != good) == shared, "an edit in copy mode reached another target"
    assert (run_cli("verify", "--target", str(b), cache=cache).returncode == 1) == shared
    Shelf(team.url, cache_dir=cache).install("sa@0.1.0", target=c, link_mode=mode)
    assert _sha(_weights(c, "sa")) == good, "a damaged blob was linked into a new target"
    for target in (b, a):  # install repairs every target that shares the damaged file
        done = run_cli(
            "--shelf", team.url, "install", "sa@0.1.0", "--target", str(target), cache=cache, **env
        )
        assert done.returncode == 0, done.stderr
        assert _sha(_weights(target, "sa")) == good
        assert run_cli("verify", "--target", str(target), cache=cache).returncode == 0
    # The user's edit is kept aside, never lost: with the folder in the target's trash, or (symlinks: the
    # bytes were the store's) in the store's evicted/ folder.
    (kept,) = list((a / TRASH).iterdir()) if mode != "symlink" else list((cache / "evicted").iterdir())
    edited = kept if mode == "symlink" else kept / "model" / "weights.h5"
    assert edited.read_bytes().startswith(b"fine-tuned weights")
    check_store(cache, team.known)


@pytest.mark.parametrize("mode", ["hardlink", "copy", "symlink"])
def test_an_installed_file_edited_in_place_is_caught_and_repaired(
    team: Team, tmp_path: Path, mode: str, tally: Callable[..., Tally]
) -> None:
    figures = tally(
        GROUP,
        f"installed file edited in place as root, {mode}: store and targets repaired, edit kept",
        f"{RERUN} -k 'edited and {mode}'",
    )
    for trial in range(trials(2, 6)):
        with figures.trial():
            _edit_trial(team, tmp_path / f"t{trial}", mode)


def test_a_component_on_another_base_is_refused_in_model_terms(
    team: Team, tmp_path: Path, tally: Callable[..., Tally]
) -> None:
    figures = tally(
        GROUP,
        "second install on another base: refused in model terms, target unchanged",
        f"{RERUN} -k refused_in_model",
    )
    for trial in range(trials(2, 6)):
        with figures.trial():
            target, cache = tmp_path / f"t{trial}" / "target", tmp_path / f"t{trial}" / "cache"
            Shelf(team.url, cache_dir=cache).install("sb", target=target)
            before = tree(target)
            if trial % 2:
                done = run_cli("--shelf", team.url, "install", "sc", "--target", str(target), cache=cache)
                assert done.returncode == 1 and "embedder" in done.stderr, done.stderr
            else:
                with pytest.raises(ResolutionError, match="embedder"):
                    Shelf(team.url, cache_dir=cache).install("sc", target=target)
            assert tree(target) == before, "a refused install changed the target"
            assert run_cli("verify", "--target", str(target), cache=cache).returncode == 0


def test_a_second_install_moves_the_whole_stack_together(
    team: Team, tmp_path: Path, tally: Callable[..., Tally]
) -> None:
    figures = tally(
        GROUP, "second install on a new base: the whole stack upgraded together", f"{RERUN} -k together"
    )
    for trial in range(trials(2, 6)):
        with figures.trial():
            target, cache = tmp_path / f"t{trial}" / "target", tmp_path / f"t{trial}" / "cache"
            Shelf(team.url, cache_dir=cache).install("sa", "sbase==0.1.0", target=target)
            assert _installed(target) == {"sa": "0.1.0", "sbase": "0.1.0"}
            done = run_cli("--shelf", team.url, "install", "sc", "--target", str(target), cache=cache)
            assert done.returncode == 0, done.stderr
            assert _installed(target) == {"sa": "0.2.0", "sbase": "0.2.0", "sc": "0.1.0"}
            assert run_cli("verify", "--target", str(target), cache=cache).returncode == 0


def _installed(target: Path) -> dict[str, str]:
    data = json.loads((target / ".cclm-shelf-install.json").read_text())
    return {name: entry["version"] for name, entry in data["components"].items()}


def test_verify_reports_a_target_whose_bases_disagree(team: Team, tmp_path: Path) -> None:
    cache, old, new = tmp_path / "cache", tmp_path / "old", tmp_path / "new"
    Shelf(team.url, cache_dir=cache).install("sb", target=old)
    Shelf(team.url, cache_dir=cache).install("sc", target=new)
    # What an earlier cclm-shelf left behind: one folder holding components of two bases.
    os.replace(new / "sc", old / "sc")
    records = [json.loads((t / ".cclm-shelf-install.json").read_text()) for t in (old, new)]
    records[0]["components"]["sc"] = records[1]["components"]["sc"]
    (old / ".cclm-shelf-install.json").write_text(json.dumps(records[0]))
    done = run_cli("verify", "--target", str(old), cache=cache)
    assert done.returncode == 1 and "not one stack" in done.stdout and "embedders disagree" in done.stdout
    record(GROUP, "verify: a target whose bases disagree exits 1", 1, 1, f"{RERUN} -k disagree")


def test_one_line_failures_cache_path_a_file_and_verify_of_nothing(team: Team, tmp_path: Path) -> None:
    cache = tmp_path / "cache-file"
    cache.write_text("x")
    done = run_cli("--shelf", team.url, "install", "sa", "--target", str(tmp_path / "t"), cache=cache)
    assert done.returncode == 1 and done.stderr.startswith("error: ") and "is a file" in done.stderr
    assert cache.read_text() == "x" and not (tmp_path / "t").exists()
    (tmp_path / "empty").mkdir()
    done = run_cli("verify", "--target", str(tmp_path / "empty"), cache=tmp_path / "cache")
    assert done.returncode == 1 and "nothing is installed" in done.stderr
    record(
        GROUP,
        "cache path is a file; verify with nothing installed: one line, exit 1",
        2,
        2,
        f"{RERUN} -k one_line",
    )
