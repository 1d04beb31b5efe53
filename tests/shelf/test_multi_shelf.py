"""Several shelves in priority order: each name comes wholly from the first shelf that publishes it."""

from __future__ import annotations

from pathlib import Path

import pytest

from shelf.api import Shelf
from shelf.errors import ResolutionError
from shelf.source import create_shelf
from tests.support.shelves import BASE, CHARS, MLM, publish_folder, published_shelf, saved_stack


@pytest.fixture
def two_shelves(tmp_path_factory, tmp_path: Path) -> tuple[Path, Path]:
    """``team`` holds the whole stack at 0.1.0; ``public`` holds a newer base of the same name and an mlm."""
    team = published_shelf(tmp_path_factory, tmp_path / "team.git")
    public = tmp_path / "public.git"
    create_shelf(public)
    stack = saved_stack(tmp_path_factory)
    cache = tmp_path / "publish-cache"
    publish_folder(str(public), stack.base, BASE, "9.0.0", cache_dir=cache)
    publish_folder(str(public), stack.base, "public_only_base", "1.0.0", cache_dir=cache)
    return team, public


def test_a_name_comes_only_from_the_first_shelf_that_has_it(two_shelves, tmp_path: Path) -> None:
    team, public = two_shelves
    shelf = Shelf(shelves=[str(team), str(public)], cache_dir=tmp_path / "cache")
    resolution = shelf.resolve([MLM])
    assert resolution.versions() == {BASE: "0.1.0", MLM: "0.1.0"}  # 9.0.0 on the public shelf is never seen
    assert [e.version for e in shelf.index.entries(BASE)] == ["0.1.0"]
    assert shelf.index.source_of(BASE).url == str(team)


def test_names_only_a_lower_shelf_has_are_found_there(two_shelves, tmp_path: Path) -> None:
    team, public = two_shelves
    shelf = Shelf(shelves=[str(team), str(public)], cache_dir=tmp_path / "cache")
    report = shelf.install(f"{CHARS}@v0.1.0", "public_only_base", target=tmp_path / "target")
    assert dict(report.installed) == {BASE: "0.1.0", CHARS: "0.1.0", "public_only_base": "1.0.0"}
    components, _ = shelf.pin(shelf.resolve(["public_only_base"]))
    assert components[0].source == str(public)
    assert (tmp_path / "target" / "public_only_base" / "embedder" / "embedder.weights.h5").is_file()


def test_priority_order_matters(two_shelves, tmp_path: Path) -> None:
    team, public = two_shelves
    shelf = Shelf(shelves=[str(public), str(team)], cache_dir=tmp_path / "cache")
    assert shelf.resolve([BASE]).versions() == {BASE: "9.0.0"}
    with pytest.raises(ResolutionError):
        shelf.resolve([f"{BASE}==0.1.0"])  # the public shelf owns the name now; team's 0.1.0 is not mixed in


def _project(folder: Path, shelves: list[Path], requires: list[str]) -> Path:
    import json

    folder.mkdir()
    (folder / "cclm-shelf.toml").write_text(
        f"shelves = {json.dumps([str(s) for s in shelves])}\nrequires = {json.dumps(requires)}\n"
    )
    return folder


def test_show_and_search_read_every_shelf_without_a_lockfile(two_shelves, tmp_path, cli, monkeypatch):
    team, public = two_shelves
    monkeypatch.chdir(_project(tmp_path / "p", [team, public], []))
    shown = cli("show", "public_only_base", "--json")
    assert shown.code == 0, shown.err
    assert shown.json()["shelf"] == str(public)
    one = cli("show", "public_only_base@1.0.0")
    assert one.code == 0 and "public_only_base 1.0.0" in one.out
    assert cli("show", BASE, "--json").json()["shelf"] == str(team)  # the first shelf owns the name
    found = cli("search", "base", "--json").json()["results"]
    assert {(r["name"], r["version"], r["shelf"]) for r in found} == {
        (BASE, "0.1.0", str(team)),
        ("public_only_base", "1.0.0", str(public)),
    }
    missing = cli("show", "nowhere")
    assert missing.code == 1 and f"on {team}, {public}" in missing.err


def test_tree_why_and_show_read_each_name_from_its_locked_shelf(two_shelves, tmp_path, cli, monkeypatch):
    team, public = two_shelves
    monkeypatch.chdir(_project(tmp_path / "p", [team, public], [MLM, "public_only_base"]))
    assert cli("lock").code == 0
    tree = cli("tree", "--json")
    assert tree.code == 0, tree.err
    components = tree.json()["components"]
    assert components["public_only_base"]["version"] == "1.0.0" and components[MLM]["requires"] == [BASE]
    why = cli("why", "public_only_base", "--json")
    assert why.code == 0, why.err
    assert why.json()["chains"] == [["public_only_base"]]
    assert cli("why", BASE, "--json").json()["chains"] == [[MLM, BASE]]
    assert cli("show", "public_only_base", "--json").json()["shelf"] == str(public)
