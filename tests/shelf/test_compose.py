"""Composing installed components: shapes, selection, and refusal of a foreign base before weights load."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from cclm_core.errors import IncompatibleComponentError
from shelf.api import Shelf
from shelf.compose import check_stack, compose_installed, find_stack
from shelf.errors import ConfigError, NotFoundError, ResolutionError
from tests.support.shelves import (
    BASE,
    CHARS,
    CHARS_DIM,
    FOREIGN,
    MAX_LEN,
    MLM,
    MLM_DIM,
    VERSION,
    publish_folder,
)


def test_installed_components_compose_into_one_model(stack_shelf: Path, tmp_path: Path) -> None:
    target = tmp_path / "target"
    Shelf(str(stack_shelf)).install(MLM, CHARS, target=target)
    composed = compose_installed(target=target)
    x = composed.preprocessor.string_to_array("cclm is neat", composed.preprocessor.max_example_len)
    assert tuple(composed.model(x).shape) == (1, MAX_LEN, MLM_DIM + CHARS_DIM)
    only = compose_installed([CHARS], target=target)
    assert tuple(only.model(x).shape) == (1, MAX_LEN, CHARS_DIM)
    assert check_stack(find_stack(target))["output_dim"] == MLM_DIM + CHARS_DIM


def _move_installed(source: Path, target: Path, name: str) -> None:
    """Move an installed component and its record entry from one target into another, as by hand."""
    os.replace(source / name, target / name)
    paths = [folder / ".cclm-shelf-install.json" for folder in (source, target)]
    records = [json.loads(path.read_text()) for path in paths]
    records[1]["components"][name] = records[0]["components"][name]
    paths[1].write_text(json.dumps(records[1]))


def test_a_component_on_another_embedder_is_refused_before_weights_load(
    stack_shelf: Path, tiny_stack, tmp_path: Path, monkeypatch
) -> None:
    stack = tiny_stack
    publisher = tmp_path / "publisher"
    publish_folder(str(stack_shelf), stack.foreign_base, "tiny_foreign_base", VERSION, cache_dir=publisher)
    publish_folder(str(stack_shelf), stack.foreign, FOREIGN, VERSION, cache_dir=publisher)
    target, other = tmp_path / "target", tmp_path / "other"
    Shelf(str(stack_shelf)).install(MLM, target=target)
    with pytest.raises(ResolutionError, match="embedders disagree"):  # install keeps a target one stack
        Shelf(str(stack_shelf)).install(FOREIGN, target=target)
    # A folder assembled by other means (by hand, or by an older cclm-shelf) is still checked by compose;
    # the foreign component's own embedder is not moved along: it is not in this stack.
    Shelf(str(stack_shelf)).install(FOREIGN, target=other)
    _move_installed(other, target, FOREIGN)

    def must_not_load(*_args, **_kwargs):
        raise AssertionError("weights were loaded before the bases were checked")

    monkeypatch.setattr("cclm_core.component.load_component", must_not_load)
    monkeypatch.setattr("cclm_core.models.Embedder.load", must_not_load)
    with pytest.raises(ResolutionError) as info:  # translated at the boundary, the core's error kept
        compose_installed(target=target)
    assert isinstance(info.value.__cause__, IncompatibleComponentError)
    message = str(info.value)
    embedder = json.loads((target / BASE / "cclm-manifest.json").read_text())["provides"]["embedder"]
    foreign_base = json.loads((target / FOREIGN / "cclm-manifest.json").read_text())["base"]["embedder"]
    assert f"component {FOREIGN} {VERSION} needs embedder {foreign_base[:19]}" in message
    assert f"but the embedder is {embedder[:19]}" in message
    assert MLM not in message  # the matching component is not blamed


def test_composing_needs_exactly_one_embedder_and_a_component(stack_shelf: Path, tmp_path: Path) -> None:
    target = tmp_path / "target"
    with pytest.raises(NotFoundError, match="not installed"):
        compose_installed([MLM], target=target)
    Shelf(str(stack_shelf)).install(BASE, target=target)
    with pytest.raises(NotFoundError, match="no component to compose"):
        compose_installed(target=target)
    with pytest.raises(NotFoundError, match=f"not installed in {target}: {CHARS}"):
        compose_installed([CHARS], target=target)


def _second_base(base: Path, tmp_path: Path, stack_shelf: Path) -> None:
    """Publish another embedder (same vocabulary and sizes, other weights) as ``other_base``."""
    from cclm_core.models import Embedder
    from cclm_core.preprocessing import Preprocessor

    prep = Preprocessor(load_from=str(base / "preprocessor" / "cclm_config.json"))
    folder = tmp_path / "other_base"
    prep.save(folder / "preprocessor")
    sizes = {"char_emb_size": 4, "n_filters": 8, "n_blocks": 1, "filter_len": 3}
    Embedder(prep.max_example_len, prep.n_chars, **sizes).save(folder / "embedder")
    publish_folder(str(stack_shelf), folder, "other_base", VERSION, cache_dir=tmp_path / "publisher")


def test_the_embedder_the_components_were_trained_on_is_picked(
    stack_shelf: Path, tiny_stack, tmp_path: Path
) -> None:
    _second_base(tiny_stack.base, tmp_path, stack_shelf)
    target = tmp_path / "target"
    Shelf(str(stack_shelf)).install(MLM, target=target)
    # install keeps one base per target; a folder assembled by hand (or by an older cclm-shelf) may hold two
    Shelf(str(stack_shelf)).install("other_base", target=tmp_path / "other")
    _move_installed(tmp_path / "other", target, "other_base")
    stack = find_stack(target, [MLM])
    assert stack.embedder == target / BASE / "embedder"
    composed = compose_installed([MLM], target=target)
    assert composed.output_dim == MLM_DIM


def test_compose_from_a_lockfile_and_through_the_cli(stack_shelf: Path, tmp_path: Path, monkeypatch) -> None:
    from tests.support.shelves import cli

    project = tmp_path / "app"
    project.mkdir()
    (project / "cclm-shelf.toml").write_text(
        f'shelves = [{json.dumps(str(stack_shelf))}]\nrequires = ["{CHARS}"]\n'
    )
    assert cli("install", cwd=project).returncode == 0
    composed = compose_installed(target=project / ".cclm", lockfile=project / "cclm-shelf.lock")
    assert composed.output_dim == CHARS_DIM
    checked = cli("compose", "--json", cwd=project)
    assert checked.returncode == 0, checked.stderr
    data = json.loads(checked.stdout)
    assert data["output_shape"] == [1, MAX_LEN, CHARS_DIM]
    assert [c["name"] for c in data["components"]] == [f"{CHARS} {VERSION}"]
    saved = cli("compose", "--save", str(tmp_path / "composed"), cwd=project)
    assert saved.returncode == 0, saved.stderr
    assert (tmp_path / "composed" / "composed.json").is_file()
    (tmp_path / "composed" / "components" / "7").mkdir()  # a leftover an older, larger save would leave
    again = cli(
        "compose", "--save", str(tmp_path / "composed"), cwd=project
    )  # an earlier save: replaced whole
    assert again.returncode == 0, again.stderr
    assert sorted(p.name for p in (tmp_path / "composed" / "components").iterdir()) == ["0"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging or trash folder left
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    refused = cli("compose", "--save", str(mine), cwd=project)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert (
        refused.stderr.splitlines()[0]
        == f"error: {mine} holds files that are not a composed model; nothing was saved"
    )
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]
    missing = cli("compose", MLM, cwd=project)
    assert (
        missing.returncode == 1 and "not installed in" in missing.stderr and "Traceback" not in missing.stderr
    )


def test_compose_refuses_a_framework_this_machine_lacks(stack_shelf: Path, tmp_path: Path) -> None:
    target = tmp_path / "target"
    Shelf(str(stack_shelf)).install(MLM, target=target)
    manifest = target / MLM / "cclm-manifest.json"
    data = json.loads(manifest.read_text())
    data["framework"] = {"packaging": ">=999"}
    manifest.write_text(json.dumps(data))
    with pytest.raises(
        ConfigError, match=f"{MLM} {VERSION} needs packaging>=999, but packaging .* is installed"
    ) as info:
        check_stack(find_stack(target))
    assert "pip install" in (info.value.hint or "")
