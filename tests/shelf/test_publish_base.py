"""Publishing a component finds its base: the published embedder it was trained on becomes a requirement."""

from __future__ import annotations

import json

from registry_index.manifest import Manifest
from shelf.api import Shelf
from shelf.yanking import yank
from tests.shelf.conftest import BASE, MLM, OTHER_BASE, publish_folder, shelf_refs


def _manifest(shelf, name: str, version: str) -> Manifest:
    source = Shelf(str(shelf)).source()
    return source.manifest(source.entry(name, version))[0]


def test_a_component_without_requires_gets_its_published_base(cli, shelf_path, saved_models, tmp_path):
    publish_folder(shelf_path, saved_models / BASE, "base", "0.1.0")
    publish_folder(shelf_path, saved_models / OTHER_BASE, "other", "0.1.0")  # another embedder: not it
    done = cli("--shelf", shelf_path, "publish", saved_models / MLM, "--name", "mlm", "--version", "0.1.0")
    assert done.code == 0, done.err
    assert "requires base==0.1.0 (added: the embedder it was trained on)" in done.out
    assert _manifest(shelf_path, "mlm", "0.1.0").requires == ("base==0.1.0",)
    installed = cli("--shelf", shelf_path, "install", "mlm", "--target", tmp_path / "t", "--json")
    assert {r["name"] for r in json.loads(installed.out)["installed"]} == {"base", "mlm"}
    again = cli(
        "--shelf", shelf_path, "publish", saved_models / MLM, "--name", "mlm", "--version", "0.1.0", "--json"
    )  # the same folder again: the same requirement, so the same manifest
    assert again.json()["unchanged"] is True and again.json()["requires_added"] == "base==0.1.0"


def test_the_newest_not_yanked_version_of_the_base_is_required(cli, shelf_path, saved_models):
    for version in ("0.1.0", "0.2.0", "0.3.0"):
        publish_folder(shelf_path, saved_models / BASE, "base", version)
    yank(Shelf(str(shelf_path)).source(), "base", "0.3.0", "bad")
    report = publish_folder(shelf_path, saved_models / MLM, "mlm", "0.1.0")
    assert report.requires_added == "base==0.2.0"
    assert _manifest(shelf_path, "mlm", "0.1.0").requires == ("base==0.2.0",)


def test_explicit_requires_are_kept_as_given(shelf_path, saved_models):
    publish_folder(shelf_path, saved_models / BASE, "base", "0.1.0")
    report = publish_folder(shelf_path, saved_models / MLM, "mlm", "0.1.0", ["base>=0.1"])
    assert report.requires_added is None
    assert _manifest(shelf_path, "mlm", "0.1.0").requires == ("base>=0.1",)


def test_a_component_whose_base_is_not_published_is_refused(cli, shelf_path, saved_models):
    publish_folder(shelf_path, saved_models / OTHER_BASE, "other", "0.1.0")
    before = shelf_refs(shelf_path)
    result = cli(
        "--shelf", shelf_path, "publish", saved_models / MLM, "--name", "mlm", "--version", "0.1.0", "--json"
    )
    assert result.code == 1
    error = result.json()
    assert "mlm 0.1.0 was trained on the embedder sha256:" in error["error"]
    assert f"no published version on {shelf_path} provides it" in error["error"]
    assert error["hint"].startswith("publish the embedder with fingerprint sha256:")
    assert shelf_refs(shelf_path) == before
    # the command the hint suggests runs as printed (placeholders filled in), on the same shelf
    suggested = error["hint"].split("(", 1)[1].split(", from the folder", 1)[0].split()
    assert suggested[:4] == ["cclm-shelf", "--shelf", str(shelf_path), "publish"]
    filled = {"BASE_FOLDER": str(saved_models / BASE), "NAME": "base", "X": "0.1.0"}
    assert cli(*(filled.get(word, word) for word in suggested[1:])).code == 0
    again = cli("--shelf", shelf_path, "publish", saved_models / MLM, "--name", "mlm", "--version", "0.1.0")
    assert again.code == 0 and "requires base==0.1.0" in again.out


def test_components_on_different_embedders_conflict_in_model_terms(cli, shelf_path, saved_models, tmp_path):
    from tests.shelf.conftest import OTHER_MLM

    publish_folder(shelf_path, saved_models / BASE, "base", "0.1.0")
    publish_folder(shelf_path, saved_models / OTHER_BASE, "base", "0.2.0")  # same name, another embedder
    assert publish_folder(shelf_path, saved_models / MLM, "comp_a", "0.1.0").requires_added == "base==0.1.0"
    assert (
        publish_folder(shelf_path, saved_models / OTHER_MLM, "comp_b", "0.1.0").requires_added
        == "base==0.2.0"
    )
    result = cli("--shelf", shelf_path, "install", "comp_a", "comp_b", "--target", tmp_path / "t", "--json")
    assert result.code == 1
    error = result.json()
    assert error["error"].startswith("comp_a 0.1.0 and comp_b 0.1.0 can never share a base")
    assert (
        "was trained on embedder sha256:" in error["error"] and "versions of base rejected" in error["error"]
    )
    assert "loosen" not in error["error"] + error["hint"]
    assert not (tmp_path / "t").exists()


def test_without_base_publishes_a_component_alone(cli, shelf_path, saved_models):
    result = cli(
        "--shelf", shelf_path, "publish", saved_models / MLM, "--name", "mlm", "--version", "0.1.0",
        "--without-base", "--json",
    )  # fmt: skip
    assert result.code == 0, result.err
    assert result.json()["requires_added"] is None
    assert _manifest(shelf_path, "mlm", "0.1.0").requires == ()
