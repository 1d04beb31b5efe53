"""The project file: finding it, reading it, and editing ``requires`` without touching anything else."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from shelf.errors import ConfigError, NotFoundError
from shelf.project import Project, add_requirements, find_project, remove_requirement

PYPROJECT = """\
[build-system]
requires = ["setuptools>=68"]  # not ours: must never change

[project]
name = "my-app"
dependencies = [
    "numpy",  # a comment with requires = ["x"] inside
]

[tool.cclm-shelf]
# our table
shelves = ["https://example.org/shelf.git", "../local"]
requires = [
    "en_wiki_clm_1>=0.2",   # language model
    'en_wiki_ner_1',
]
target = "models"

[tool.other]
requires = ["keep-me"]
"""


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def outside_requires(text: str) -> tuple[str, str]:
    """The text before and after our ``requires`` array."""
    start = text.index("requires = [", text.index("[tool.cclm-shelf]"))
    end = text.index("]\n", start) + 1
    return text[:start], text[end:]


def test_load_pyproject_table(tmp_path: Path) -> None:
    path = write(tmp_path / "pyproject.toml", PYPROJECT)
    project = Project.load(path)
    assert project.requirement_strings == ("en_wiki_clm_1>=0.2", "en_wiki_ner_1")
    assert [r.name for r in project.requirements] == ["en_wiki_clm_1", "en_wiki_ner_1"]
    assert project.shelves == ("https://example.org/shelf.git", "../local")
    assert project.shelf_locations()[1] == str((tmp_path.parent / "local").resolve())
    assert project.target == (tmp_path / "models").resolve()


def test_own_file_with_single_shelf_and_defaults(tmp_path: Path) -> None:
    write(tmp_path / "cclm-shelf.toml", 'shelf = "git@example.org:team/shelf.git"\n')
    project = Project.load(tmp_path)
    assert project.shelves == ("git@example.org:team/shelf.git",)
    assert project.shelf_locations() == ("git@example.org:team/shelf.git",)
    assert project.requirement_strings == ()
    assert project.target == (tmp_path / ".cclm").resolve()


def test_find_project_walks_up_and_prefers_own_file(tmp_path: Path) -> None:
    write(tmp_path / "pyproject.toml", PYPROJECT)
    deep = tmp_path / "src" / "pkg"
    deep.mkdir(parents=True)
    assert find_project(deep).path == (tmp_path / "pyproject.toml").resolve()
    write(tmp_path / "cclm-shelf.toml", 'requires = ["x_1"]\n')
    assert find_project(deep).requirement_strings == ("x_1",)


def test_find_project_skips_pyproject_without_our_table(tmp_path: Path) -> None:
    write(tmp_path / "pyproject.toml", '[project]\nname = "x"\n')
    assert find_project(tmp_path) is None


@pytest.mark.parametrize(
    ("text", "fact"),
    [
        ('requires = "en_wiki_clm_1"\n', "'requires' must be a list of strings"),
        ('requires = ["Bad Name"]\n', "Bad Name"),
        ('shelves = ["a"]\nshelf = "b"\n', "either 'shelf' or 'shelves'"),
        ("shelves = [1]\n", "'shelves' must be a list"),
        ("target = 3\n", "'target' must be a folder path"),
        ("requirez = []\n", "unknown setting(s) requirez"),
        ("requires = [\n", "not valid TOML"),
    ],
)
def test_bad_content_is_a_config_error_naming_the_file(tmp_path: Path, text: str, fact: str) -> None:
    path = write(tmp_path / "cclm-shelf.toml", text)
    with pytest.raises(ConfigError) as caught:
        Project.load(path)
    assert fact in str(caught.value)
    assert str(path.resolve()) in str(caught.value) or str(path) in str(caught.value)


def test_pyproject_without_table_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "pyproject.toml", '[project]\nname = "x"\n')
    with pytest.raises(ConfigError, match=r"no \[tool.cclm-shelf\] table"):
        Project.load(path)


def test_add_keeps_every_other_byte_of_pyproject(tmp_path: Path) -> None:
    path = write(tmp_path / "pyproject.toml", PYPROJECT)
    project = add_requirements(path, ["en_wiki_pos_1>=0.1", "en_wiki_clm_1@0.2.1"])
    assert project.requirement_strings == ("en_wiki_clm_1@0.2.1", "en_wiki_ner_1", "en_wiki_pos_1>=0.1")
    after = path.read_text()
    assert outside_requires(after) == outside_requires(PYPROJECT)
    data = tomllib.loads(after)
    assert data["tool"]["other"]["requires"] == ["keep-me"]
    assert data["build-system"]["requires"] == ["setuptools>=68"]


def test_remove_then_add_round_trip(tmp_path: Path) -> None:
    path = write(tmp_path / "pyproject.toml", PYPROJECT)
    remove_requirement(path, "en_wiki_ner_1")
    assert Project.load(path).requirement_strings == ("en_wiki_clm_1>=0.2",)
    remove_requirement(path, "en_wiki_clm_1")
    assert Project.load(path).requirement_strings == ()
    assert outside_requires(path.read_text()) == outside_requires(PYPROJECT)


def test_remove_unknown_name_says_what_is_required(tmp_path: Path) -> None:
    path = write(tmp_path / "pyproject.toml", PYPROJECT)
    with pytest.raises(NotFoundError, match="does not require 'nope_1'"):
        remove_requirement(path, "nope_1")
    assert path.read_text() == PYPROJECT


def test_add_creates_table_in_plain_pyproject_edit_keeps_content(tmp_path: Path) -> None:
    original = '[project]\nname = "x"\n'
    path = write(tmp_path / "pyproject.toml", original)
    # A pyproject without our table is not a project yet, so adding goes through the text editor directly.
    from shelf.project import replace_requires

    text = replace_requires(original, ["a_1"], in_pyproject=True)
    assert text.startswith(original)
    assert tomllib.loads(text)["tool"]["cclm-shelf"]["requires"] == ["a_1"]
    assert path.read_text() == original


def test_add_to_own_file_without_requires_key(tmp_path: Path) -> None:
    original = '# my stack\nshelves = ["../shelf"]\n\n# where models go\ntarget = "m"\n'
    path = write(tmp_path / "cclm-shelf.toml", original)
    add_requirements(path, ["en_wiki_clm_1"])
    text = path.read_text()
    assert text.endswith(original)
    assert text.startswith("requires = [\n")
    assert Project.load(path).requirement_strings == ("en_wiki_clm_1",)


def test_add_bad_requirement_leaves_file_alone(tmp_path: Path) -> None:
    path = write(tmp_path / "pyproject.toml", PYPROJECT)
    with pytest.raises(ConfigError, match="Bad"):
        add_requirements(path, ["Bad Name"])
    assert path.read_text() == PYPROJECT


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ("requires = []\n", 'requires = [\n    "c_1",\n]\n'),
        (
            'requires = ["a_1"]  # note ] tricky\ntarget = "m"\n',
            'requires = [\n    "c_1",\n]  # note ] tricky\ntarget = "m"\n',
        ),
        ("requires = [\n  'a_1', # old ] one\n  \"b_1\"]\n", 'requires = [\n    "c_1",\n]\n'),
    ],
)
def test_text_edit_replaces_only_the_array(before: str, after: str) -> None:
    from shelf.project import replace_requires

    assert replace_requires(before, ["c_1"], in_pyproject=False) == after


def test_quoted_table_header_and_neighbour_tables(tmp_path: Path) -> None:
    text = '[tool."cclm-shelf"]\nrequires=["a_1"]\n[tool.x]\nrequires = []\n'
    path = write(tmp_path / "pyproject.toml", text)
    add_requirements(path, ["b_1"])
    assert (
        path.read_text()
        == '[tool."cclm-shelf"]\nrequires=[\n    "a_1",\n    "b_1",\n]\n[tool.x]\nrequires = []\n'
    )


def test_inline_table_is_refused_rather_than_broken(tmp_path: Path) -> None:
    text = '[tool]\ncclm-shelf = { requires = ["a_1"] }\n'
    path = write(tmp_path / "pyproject.toml", text)
    with pytest.raises(ConfigError, match="could not edit 'requires'"):
        add_requirements(path, ["b_1"])
    assert path.read_text() == text
