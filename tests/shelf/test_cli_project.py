"""Project commands through the real CLI on a real local shelf: add, remove, lock, tree, why, show, search."""

from __future__ import annotations

import hashlib
import json
import tomllib
from pathlib import Path

import pytest

from tests.shelf.conftest import BASE, MLM, publish_folder


def locked_versions(folder: Path) -> dict[str, str]:
    data = tomllib.loads((folder / "cclm-shelf.lock").read_text(encoding="utf-8"))
    return {c["name"]: c["version"] for c in data["component"]}


def test_add_starts_a_project_locks_and_installs(cli, stocked_shelf, project_dir, saved_models):
    result = cli("--shelf", stocked_shelf, "add", "mlm")
    assert result.code == 0, result.err
    assert "locked 2 component(s)" in result.out
    project = tomllib.loads((project_dir / "cclm-shelf.toml").read_text(encoding="utf-8"))
    assert project["requires"] == ["mlm"] and project["shelves"] == [str(stocked_shelf)]
    assert locked_versions(project_dir) == {"base": "0.1.0", "mlm": "0.1.0"}
    installed = project_dir / ".cclm" / "mlm" / "component" / "component.weights.h5"
    assert installed.read_bytes() == (saved_models / MLM / "component.weights.h5").read_bytes()
    assert (project_dir / ".cclm" / "base" / "embedder" / "embedder.json").is_file()


def test_failing_add_leaves_project_and_lockfile_alone(cli, stocked_shelf, project_dir):
    assert cli("--shelf", stocked_shelf, "add", "mlm").code == 0
    project_before = (project_dir / "cclm-shelf.toml").read_bytes()
    lock_before = (project_dir / "cclm-shelf.lock").read_bytes()
    for bad in (["nothing_like_it"], ["mlm>=5"], ["base==0.1.0", "Not A Requirement"]):
        result = cli("add", *bad)
        assert result.code != 0 and "error: " in result.err
        assert (project_dir / "cclm-shelf.toml").read_bytes() == project_before
        assert (project_dir / "cclm-shelf.lock").read_bytes() == lock_before


def test_failing_first_add_leaves_no_project_behind(cli, stocked_shelf, project_dir):
    result = cli("--shelf", stocked_shelf, "add", "nothing_like_it")
    assert result.code == 1 and "error: no component named 'nothing_like_it'" in result.err
    assert sorted(p.name for p in project_dir.iterdir()) == []


def test_add_that_cannot_install_is_rolled_back(cli, stocked_shelf, project_dir, saved_models, monkeypatch):
    monkeypatch.setenv("CCLM_SHELF_CACHE_DIR", str(project_dir.parent / "fresh-cache"))  # not the publisher's
    assert cli("--shelf", stocked_shelf, "add", "base").code == 0
    project_before = (project_dir / "cclm-shelf.toml").read_bytes()
    lock_before = (project_dir / "cclm-shelf.lock").read_bytes()
    weights = hashlib.sha256((saved_models / MLM / "component.weights.h5").read_bytes()).hexdigest()
    (stocked_shelf / "lfs" / "objects" / weights[:2] / weights[2:4] / weights).unlink()  # a broken shelf
    result = cli("add", "mlm")
    assert result.code == 1 and "error: " in result.err and weights in result.err
    assert (project_dir / "cclm-shelf.toml").read_bytes() == project_before
    assert (project_dir / "cclm-shelf.lock").read_bytes() == lock_before
    assert "added" not in result.out


def test_remove_relocks_and_uninstalls(cli, stocked_shelf, project_dir):
    assert cli("--shelf", stocked_shelf, "add", "mlm", "base").code == 0
    assert cli("remove", "mlm").code == 0
    assert locked_versions(project_dir) == {"base": "0.1.0"}
    assert not (project_dir / ".cclm" / "mlm").exists()
    assert (project_dir / ".cclm" / "base").is_dir()
    missing = cli("remove", "never_added")
    assert missing.code != 0 and "error: " in missing.err


def test_failing_remove_leaves_project_and_lockfile_alone(cli, stocked_shelf, project_dir):
    assert cli("--shelf", stocked_shelf, "add", "mlm", "base", "--no-install").code == 0
    before = [(project_dir / n).read_bytes() for n in ("cclm-shelf.toml", "cclm-shelf.lock")]
    stocked_shelf.rename(stocked_shelf.with_name("moved.git"))  # the shelf is gone: re-locking fails
    result = cli("remove", "mlm")
    assert result.code == 1 and "error: the shelf" in result.err and "does not exist" in result.err
    assert [(project_dir / n).read_bytes() for n in ("cclm-shelf.toml", "cclm-shelf.lock")] == before


def test_lock_check_reports_missing_fresh_and_stale(cli, stocked_shelf, project_dir):
    (project_dir / "cclm-shelf.toml").write_text(
        f'shelves = [{json.dumps(str(stocked_shelf))}]\nrequires = ["mlm"]\n', encoding="utf-8"
    )
    missing = cli("lock", "--check", "--json")
    assert missing.code == 1 and missing.json()["state"] == "missing"
    assert cli("lock").code == 0
    fresh = cli("lock", "--check")
    assert fresh.code == 0 and "is up to date" in fresh.out
    (project_dir / "cclm-shelf.toml").write_text(
        f'shelves = [{json.dumps(str(stocked_shelf))}]\nrequires = ["mlm", "base"]\n', encoding="utf-8"
    )
    stale = cli("lock", "--check")
    assert stale.code == 1 and "is stale" in stale.out
    assert locked_versions(project_dir) == {"base": "0.1.0", "mlm": "0.1.0"}  # --check changed nothing


def test_upgrade_package_moves_only_what_it_names(cli, shelf_path, saved_models, project_dir):
    publish_folder(shelf_path, saved_models / BASE, "base", "0.1.0")
    publish_folder(shelf_path, saved_models / MLM, "mlm", "0.1.0", ["base>=0.1"])
    assert cli("--shelf", shelf_path, "add", "mlm", "--no-install").code == 0
    publish_folder(shelf_path, saved_models / BASE, "base", "0.1.1")
    publish_folder(shelf_path, saved_models / MLM, "mlm", "0.1.1", ["base>=0.1"])
    kept = cli("lock", "--json")
    assert kept.code == 0 and kept.json()["changes"] == []
    assert locked_versions(project_dir) == {"base": "0.1.0", "mlm": "0.1.0"}
    lock_bytes = (project_dir / "cclm-shelf.lock").read_bytes()
    typo = cli("lock", "--upgrade-package", "bsae", "--json")  # a typo is refused, not silently a no-op
    assert typo.code == 1
    assert typo.json()["error"] == "--upgrade-package bsae: not a component of this project or its lockfile"
    assert "base, mlm" in typo.json()["hint"]
    assert (project_dir / "cclm-shelf.lock").read_bytes() == lock_bytes
    one = cli("lock", "--upgrade-package", "base", "--json")
    assert one.json()["changes"] == [{"name": "base", "old": "0.1.0", "new": "0.1.1", "reason": "upgraded"}]
    assert locked_versions(project_dir) == {"base": "0.1.1", "mlm": "0.1.0"}
    everything = cli("lock", "--upgrade")
    assert "~ mlm 0.1.0 -> 0.1.1" in everything.out
    assert locked_versions(project_dir) == {"base": "0.1.1", "mlm": "0.1.1"}


def test_tree_and_why_show_the_locked_stack(cli, stocked_shelf, project_dir):
    assert cli("--shelf", stocked_shelf, "add", "mlm", "--no-install").code == 0
    tree = cli("tree")
    assert tree.code == 0
    assert tree.out.splitlines()[0].startswith("mlm 0.1.0 [component]")
    assert tree.out.splitlines()[1].startswith("  base 0.1.0 [embedder]")
    assert "composed output dimension: 8 (mlm 8)" in tree.out
    data = cli("tree", "--json").json()
    assert data["composed_output_dim"] == 8 and data["roots"] == ["mlm"]
    assert data["components"]["mlm"]["requires"] == ["base"]
    assert data["base"]["max_input_length"] == 16
    why = cli("why", "base")
    assert why.out.strip() == "you -> mlm 0.1.0 -> base 0.1.0"
    assert cli("why", "base", "--json").json()["chains"] == [["mlm", "base"]]
    unknown = cli("why", "elsewhere")
    assert unknown.code == 1 and "error: elsewhere is not in the locked stack" in unknown.err


def test_show_and_search(cli, stocked_shelf):
    versions = cli("--shelf", stocked_shelf, "show", "mlm", "--json").json()
    assert [v["version"] for v in versions["versions"]] == ["0.1.0"]
    manifest = cli("--shelf", stocked_shelf, "show", "mlm@v0.1.0", "--json").json()
    assert manifest["requires"] == ["base==0.1.0"] and manifest["provides"]["output_dim"] == 8
    text = cli("--shelf", stocked_shelf, "show", "mlm@0.1.0").out
    assert "requires  base==0.1.0" in text and "component/component.weights.h5" in text
    found = cli("--shelf", stocked_shelf, "search", "ml", "--json").json()
    assert found["results"] == [
        {"name": "mlm", "version": "0.1.0", "kind": "component", "shelf": str(stocked_shelf)}
    ]
    assert "nothing matches" in cli("--shelf", stocked_shelf, "search", "zebra").out
    missing = cli("--shelf", stocked_shelf, "show", "zebra")
    assert missing.code == 1 and "error: no component named 'zebra'" in missing.err
    suggested = missing.err.split("hint: ", 1)[1].split()  # it names the shelf, so it runs as printed
    assert suggested == ["cclm-shelf", "--shelf", str(stocked_shelf), "search", "TEXT"]
    assert "mlm" in cli(*suggested[1:-1], "ml").out
    absent = cli("--shelf", stocked_shelf, "show", "mlm@0.9.0")
    assert absent.code == 1 and "error: mlm 0.9.0 is not published" in absent.err


def test_search_shows_the_version_an_install_would_pick(cli, stocked_shelf, saved_models):
    publish_folder(stocked_shelf, saved_models / BASE, "base", "0.3.0-rc.1")
    publish_folder(stocked_shelf, saved_models / BASE, "base", "0.2.0")
    assert cli("--shelf", stocked_shelf, "yank", "base@0.2.0", "--reason", "bad").code == 0
    rows = cli("--shelf", stocked_shelf, "search", "base", "--json").json()["results"]
    assert [(r["name"], r["version"], r["kind"]) for r in rows] == [("base", "0.1.0", "embedder")]


def test_pyproject_table_is_a_project(cli, stocked_shelf, project_dir):
    pyproject = project_dir / "pyproject.toml"
    pyproject.write_text(
        '[project]\nname = "demo"\nversion = "0.0.1"\n\n'
        f"[tool.cclm-shelf]\nshelves = [{json.dumps(str(stocked_shelf))}]\nrequires = []\n",
        encoding="utf-8",
    )
    result = cli("add", "mlm")
    assert result.code == 0, result.err
    assert not (project_dir / "cclm-shelf.toml").exists()
    data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    assert data["tool"]["cclm-shelf"]["requires"] == ["mlm"] and data["project"]["name"] == "demo"
    assert locked_versions(project_dir) == {"base": "0.1.0", "mlm": "0.1.0"}
    assert cli("lock", "--check").code == 0
    assert "composed output dimension: 8" in cli("tree").out


def test_project_commands_outside_a_project_say_so(cli, project_dir):
    for args in (["tree"], ["why", "x"], ["lock"], ["remove", "x"]):
        result = cli(*args)
        assert result.code == 2 and "error: no project here" in result.err


def test_a_moved_project_with_a_relative_shelf_keeps_its_lock(cli, stocked_shelf, tmp_path, monkeypatch):
    import shutil

    home = tmp_path / "work"
    home.mkdir()
    shutil.copytree(stocked_shelf, home / "team-shelf.git")
    project = home / "app"
    project.mkdir()
    (project / "cclm-shelf.toml").write_text('shelves = ["../team-shelf.git"]\nrequires = ["mlm"]\n')
    monkeypatch.chdir(project)
    assert cli("lock").code == 0
    moved = tmp_path / "elsewhere"
    shutil.move(home, moved)
    monkeypatch.chdir(moved / "app")
    result = cli("lock", "--check")
    assert result.code == 0, result.out  # the lock records the shelf as written, not where it was
    assert "up to date" in result.out
    assert cli("install").code == 0
    assert (moved / "app" / ".cclm" / "mlm" / "component" / "component.weights.h5").is_file()


def test_project_shelves_are_read_in_priority_order(cli, stocked_shelf, tmp_path, monkeypatch, saved_models):
    from shelf.source import create_shelf

    override = tmp_path / "override.git"
    create_shelf(override)
    publish_folder(override, saved_models / BASE, "base", "3.0.0")  # shadows the stocked shelf's base
    project = tmp_path / "app"
    project.mkdir()
    (project / "cclm-shelf.toml").write_text(
        f'shelves = [{json.dumps(str(override))}, {json.dumps(str(stocked_shelf))}]\nrequires = ["base"]\n'
    )
    monkeypatch.chdir(project)
    assert cli("lock").code == 0
    assert locked_versions(project) == {"base": "3.0.0"}


def test_python_users_lock_add_and_remove_through_project(stocked_shelf, tmp_path):
    """The workflow is library code: ``shelf.Project`` locks, adds and removes without the CLI."""
    import shelf
    from shelf.errors import ResolutionError
    from shelf.project import start_project

    project = start_project(tmp_path, str(stocked_shelf))
    assert isinstance(project, shelf.Project)
    change = project.add(["mlm"])
    assert change.lock.pins() == {"base": "0.1.0", "mlm": "0.1.0"}
    assert sorted(change.installed) == [("base", "0.1.0"), ("mlm", "0.1.0")]
    assert (tmp_path / ".cclm" / "mlm" / "component" / "component.weights.h5").is_file()
    before = (project.path.read_bytes(), (tmp_path / "cclm-shelf.lock").read_bytes())
    with pytest.raises(ResolutionError):
        change.project.add(["mlm>=9"], install=False)
    assert (project.path.read_bytes(), (tmp_path / "cclm-shelf.lock").read_bytes()) == before
    removed = change.project.remove(["mlm"])
    assert removed.lock.pins() == {}
    assert sorted((name, version) for name, version, _kept in removed.uninstalled) == [
        ("base", "0.1.0"),
        ("mlm", "0.1.0"),
    ]
    assert not (tmp_path / ".cclm" / "mlm").exists()
    relocked = shelf.Project.load(tmp_path).lock(shelf.Shelf(str(stocked_shelf)))
    assert relocked.pins() == {} and removed.project.ensure_lock(shelf.Shelf(str(stocked_shelf))) == relocked
