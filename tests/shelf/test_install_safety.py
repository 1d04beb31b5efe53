"""Install never destroys what it did not install: folders in the way, edited files, link modes, repairs.

Every test runs as the suite does (often as root, where a read-only mode protects nothing) on the shared
published shelf of real tiny models, and through the ``cclm-shelf`` command where a user would meet it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from shelf.api import Shelf
from shelf.errors import ConfigError, NotFoundError, TargetError
from shelf.install import uninstall
from shelf.stack import dependents
from shelf.store import BlobStore
from tests.support.shelves import (
    BASE,
    CHARS,
    MLM,
    VERSION,
    assert_installed,
    cli,
    sha256_of,
)

WEIGHTS = Path(MLM) / "component" / "component.weights.h5"


def _store() -> BlobStore:
    return BlobStore(Path(os.environ["CCLM_SHELF_CACHE_DIR"]))


def _trash(target: Path) -> list[Path]:
    folder = target / ".cclm-shelf-trash"
    return sorted(folder.iterdir()) if folder.is_dir() else []


def _write_in_place(path: Path, data: bytes) -> None:
    """What a fine-tuning script run as root does: open the installed file for writing, no chmod."""
    with path.open("r+b") as handle:
        handle.write(data)


def test_a_folder_cclm_shelf_did_not_install_is_refused_and_kept(stack_shelf: Path, tmp_path: Path) -> None:
    target = tmp_path / "target"
    (target / MLM).mkdir(parents=True)
    (target / MLM / "notes.txt").write_text("my notes")
    with pytest.raises(TargetError, match=f"{MLM} is not installed by cclm-shelf"):
        Shelf(str(stack_shelf)).install(MLM, target=target)
    assert sorted(p.name for p in target.rglob("*")) == ["notes.txt", MLM]  # nothing else written
    done = cli("--shelf", str(stack_shelf), "install", MLM, "--target", str(target))
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.startswith("error: ") and "--force" in done.stderr
    assert (target / MLM / "notes.txt").read_text() == "my notes"
    # --force moves it aside into the target's trash, whole; it never deletes it.
    done = cli("--shelf", str(stack_shelf), "install", MLM, "--target", str(target), "--force")
    assert done.returncode == 0, done.stderr
    assert "moved the previous" in done.stdout
    (kept,) = _trash(target)
    assert (kept / "notes.txt").read_text() == "my notes"
    assert_installed(target, MLM)


def test_uninstall_refuses_a_foreign_folder_and_trashes_edited_ones(
    stack_shelf: Path, tmp_path: Path
) -> None:
    target = tmp_path / "target"
    Shelf(str(stack_shelf)).install(MLM, target=target)
    (target / "mine").mkdir()
    done = cli("uninstall", "mine", "--target", str(target))
    assert done.returncode == 1 and "not installed by cclm-shelf" in done.stderr
    assert (target / "mine").is_dir()
    (target / MLM / "component" / "my-eval.json").write_text("{}")
    done = cli("uninstall", MLM, "--target", str(target))
    assert done.returncode == 0 and "moved to" in done.stdout, done.stderr
    (kept,) = _trash(target)
    assert (kept / "component" / "my-eval.json").read_text() == "{}"
    done = cli("uninstall", BASE, "--target", str(target))  # untouched: simply removed
    assert done.returncode == 0 and not (target / BASE).exists() and len(_trash(target)) == 1


def test_uninstall_refuses_what_a_component_staying_needs(stack_shelf: Path, tmp_path: Path) -> None:
    target = tmp_path / "target"
    Shelf(str(stack_shelf)).install(MLM, CHARS, target=target)
    record = (target / ".cclm-shelf-install.json").read_bytes()
    for names in ([BASE], [BASE, MLM]):  # chars needs the base in both: nothing at all is removed
        done = cli("uninstall", *names, "--target", str(target))
        assert done.returncode == 1 and "Traceback" not in done.stderr
        assert f"cannot uninstall {BASE} from {target}: {CHARS} needs {BASE}" in done.stderr
        assert "--force" in done.stderr and f"uninstall {' '.join(sorted(names))} {CHARS}" in done.stderr
        assert (target / ".cclm-shelf-install.json").read_bytes() == record
        for name in (BASE, MLM, CHARS):
            assert_installed(target, name)
    done = cli("uninstall", MLM, CHARS, BASE, "--target", str(target), "--json")  # all together: fine
    assert done.returncode == 0, done.stderr
    assert [r["name"] for r in json.loads(done.stdout)["removed"]] == [MLM, CHARS, BASE]
    assert not any((target / name).exists() for name in (BASE, MLM, CHARS))


def test_uninstall_force_removes_what_others_need_and_verify_still_passes_the_rest(
    stack_shelf: Path, tmp_path: Path
) -> None:
    target = tmp_path / "target"
    Shelf(str(stack_shelf)).install(MLM, target=target)
    with pytest.raises(TargetError, match=f"{MLM} needs {BASE}"):
        uninstall(target, [BASE])
    with pytest.raises(NotFoundError, match="nothing is not installed"):
        uninstall(target, [MLM, BASE, "nothing"])
    assert_installed(target, BASE) and assert_installed(target, MLM)
    assert cli("verify", "--target", str(target)).returncode == 0
    assert uninstall(target, [BASE], force=True) == [(BASE, VERSION, None)]
    assert not (target / BASE).exists()
    assert_installed(target, MLM)
    done = cli("verify", "--target", str(target))
    assert done.returncode == 1 and f"{MLM} needs {BASE}, which is not installed" in done.stdout
    done = cli("uninstall", MLM, "--target", str(target))
    assert done.returncode == 0 and f"removed {MLM} {VERSION}" in done.stdout, done.stderr


def _installed(root: Path, name: str, manifest: dict) -> dict:
    (root / name).mkdir(parents=True)
    (root / name / "cclm-manifest.json").write_text(json.dumps({"name": name, **manifest}))
    return {"version": "1.0.0"}


def test_dependents_follow_requirements_and_the_embedder_a_component_was_trained_on(tmp_path: Path) -> None:
    base = {"embedder": "e1", "vocab": None, "max_input_length": 8, "n_chars": 4}
    provides = {"embedder": "e1", "max_input_length": 8, "n_chars": 4, "output_dim": 2}
    embedder = {"kind": "embedder", "base": base, "provides": provides}
    components = {
        "emb": _installed(tmp_path, "emb", embedder),
        "head": _installed(tmp_path, "head", {"kind": "component", "base": base}),  # published without base
        "app": _installed(tmp_path, "app", {"kind": "bundle", "requires": ["head>=1"]}),
    }
    assert dependents(tmp_path, components, {"emb"}) == {"head": ["emb"]}
    assert dependents(tmp_path, components, {"head"}) == {"app": ["head"]}
    assert dependents(tmp_path, components, {"emb", "head"}) == {"app": ["head"]}
    assert dependents(tmp_path, components, {"emb", "head", "app"}) == {}
    components["emb_copy"] = _installed(tmp_path, "emb_copy", embedder)  # provides the same embedder
    assert dependents(tmp_path, components, {"emb"}) == {}
    assert dependents(tmp_path, components, {"emb", "emb_copy"}) == {"head": ["emb", "emb_copy"]}


def test_an_edit_through_a_hardlink_is_caught_and_every_target_repaired(
    stack_shelf: Path, tmp_path: Path
) -> None:
    first, second, later = tmp_path / "first", tmp_path / "second", tmp_path / "later"
    for target in (first, second):
        Shelf(str(stack_shelf)).install(MLM, target=target)
    good = sha256_of(first / WEIGHTS)
    blob = _store().path(good)
    assert (first / WEIGHTS).stat().st_ino == blob.stat().st_ino  # hardlinks, the default
    _write_in_place(first / WEIGHTS, b"fine-tuned!")
    assert sha256_of(second / WEIGHTS) != good  # a hardlink shares its bytes: the damage spread
    done = cli("verify", "--target", str(second))
    assert done.returncode == 1 and "component.weights.h5" in done.stdout
    # A new target gets the verified bytes: the store re-hashed the changed blob, evicted and re-fetched it.
    report = Shelf(str(stack_shelf)).install(MLM, target=later)
    assert report.objects_fetched == 1 and sha256_of(later / WEIGHTS) == good
    assert sha256_of(blob) == good
    # Installing again into a target sharing the damaged file repairs it; the edited folder is kept aside.
    done = cli("--shelf", str(stack_shelf), "install", MLM, "--target", str(second))
    assert done.returncode == 0 and f"installed {MLM}" in done.stdout, done.stderr
    assert sha256_of(second / WEIGHTS) == good and cli("verify", "--target", str(second)).returncode == 0
    report = Shelf(str(stack_shelf)).install(MLM, target=first)
    assert (MLM, VERSION) in report.installed and sha256_of(first / WEIGHTS) == good
    (kept,) = _trash(first)
    assert (kept / "component" / "component.weights.h5").read_bytes().startswith(b"fine-tuned!")


def test_copy_mode_keeps_an_edit_in_its_own_target(stack_shelf: Path, tmp_path: Path) -> None:
    linked, copied = tmp_path / "linked", tmp_path / "copied"
    Shelf(str(stack_shelf)).install(MLM, target=linked)
    done = cli("--shelf", str(stack_shelf), "install", MLM, "--target", str(copied), "--link-mode", "copy")
    assert done.returncode == 0, done.stderr
    good = sha256_of(linked / WEIGHTS)
    assert (copied / WEIGHTS).stat().st_ino != (linked / WEIGHTS).stat().st_ino
    _write_in_place(copied / WEIGHTS, b"fine-tuned!")
    assert sha256_of(linked / WEIGHTS) == good and sha256_of(_store().path(good)) == good
    assert cli("verify", "--target", str(linked)).returncode == 0
    # A warm reinstall in the same mode notices the edit, keeps it aside and restores the copy.
    report = Shelf(str(stack_shelf)).install(MLM, target=copied, link_mode="copy")
    assert report.installed == [(MLM, VERSION)] and sha256_of(copied / WEIGHTS) == good
    assert len(_trash(copied)) == 1
    # With no mode chosen, installed components keep theirs (and new ones are hardlinked).
    report = Shelf(str(stack_shelf)).install(MLM, target=copied)
    assert report.installed == [] and (MLM, VERSION) in report.unchanged
    assert (copied / WEIGHTS).stat().st_ino != _store().path(good).stat().st_ino


def test_the_link_mode_comes_from_the_environment_and_the_project_file(
    stack_shelf: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "cclm-shelf.toml").write_text(f'shelf = "{stack_shelf}"\nlink-mode = "symlink"\n')
    done = cli("install", MLM, cwd=project)
    assert done.returncode == 0, done.stderr
    weights = project / ".cclm" / WEIGHTS
    assert weights.is_symlink() and weights.resolve() == _store().path(sha256_of(weights)).resolve()
    again = cli("install", MLM, cwd=project)
    assert f"unchanged {MLM}" in again.stdout  # a warm install in the same mode relinks nothing
    done = cli("install", MLM, cwd=project, env={"CCLM_SHELF_LINK_MODE": "copy"})  # the variable wins
    assert done.returncode == 0 and not weights.is_symlink(), done.stderr
    assert weights.stat().st_ino != _store().path(sha256_of(weights)).stat().st_ino
    done = cli("install", MLM, cwd=project, env={"CCLM_SHELF_LINK_MODE": "reflink"})
    assert done.returncode == 2 and "unknown link mode 'reflink'" in done.stderr
    assert "Traceback" not in done.stderr
    monkeypatch.setenv("CCLM_SHELF_LINK_MODE", "bogus")
    with pytest.raises(ConfigError, match="CCLM_SHELF_LINK_MODE: unknown link mode"):
        Shelf(str(stack_shelf)).install(MLM, target=tmp_path / "other")
    assert not (tmp_path / "other").exists()


def test_a_cache_path_that_is_a_file_and_verify_of_an_empty_target_fail_in_one_line(
    stack_shelf: Path, tmp_path: Path
) -> None:
    cache = tmp_path / "cache-file"
    cache.write_text("x")
    done = cli("--shelf", str(stack_shelf), "install", MLM, env={"CCLM_SHELF_CACHE_DIR": str(cache)})
    assert done.returncode == 1 and "is a file, not a folder" in done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 2  # error + hint
    (tmp_path / "empty").mkdir()
    done = cli("verify", "--target", str(tmp_path / "empty"))
    assert done.returncode == 1 and "nothing is installed" in done.stderr
