"""Paths inside a shelf repository, and the .gitattributes that routes files to LFS."""

from __future__ import annotations

import hashlib
import shutil
import subprocess

import pytest

from registry_index import (
    GITATTRIBUTES,
    INDEX_CONFIG_PATH,
    MANIFEST_NAME,
    LayoutError,
    LfsPointer,
    component_dir,
    file_path,
    format_pointer,
    index_path,
    legacy_archive_path,
    legacy_tag,
    lfs_object_path,
    manifest_path,
    parse_version,
    release_tag,
)
from registry_index.layout import validate_relative_path


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("a", "index/1/a"),
        ("ab", "index/2/ab"),
        ("abc", "index/3/a/abc"),
        ("abcd", "index/ab/cd/abcd"),
        ("en_wiki_clm_1", "index/en/_w/en_wiki_clm_1"),
    ],
)
def test_index_path_uses_cargo_prefixes(name, expected):
    assert index_path(name) == expected


def test_component_paths():
    assert component_dir("en_wiki_ner_1", "0.3.0") == "components/en_wiki_ner_1/0.3.0"
    assert manifest_path("x", parse_version("1.0.0")) == f"components/x/1.0.0/{MANIFEST_NAME}"
    assert file_path("x", "v1.0.0", "model", "sub/w.h5") == "components/x/1.0.0/model/sub/w.h5"
    assert release_tag("x", "1.0.0-rc.1") == "x/v1.0.0-rc.1"
    assert legacy_tag("0.1.1") == "v0.1.1"
    assert legacy_archive_path("preprocessor", "en_wiki_clm_1") == "preprocessor/en_wiki_clm_1.tar.gz"
    assert INDEX_CONFIG_PATH == "index/config.json"


@pytest.mark.parametrize(
    "call",
    [
        lambda: component_dir("../etc", "1.0.0"),
        lambda: component_dir("x", "1.0"),
        lambda: index_path("ab..c"),
        lambda: file_path("x", "1.0.0", "../model", "a"),
        lambda: file_path("x", "1.0.0", "model", "../a"),
        lambda: file_path("x", "1.0.0", "model", "/etc/passwd"),
        lambda: file_path("x", "1.0.0", "model", "a\\b"),
        lambda: file_path("x", "1.0.0", "model", "a//b"),
        lambda: file_path("x", "1.0.0", "model", "./a"),
        lambda: file_path("x", "1.0.0", "model", "a\x00b"),
        lambda: legacy_archive_path("preprocessor", "Bad"),
        lambda: release_tag("x", "latest"),
    ],
)
def test_unsafe_components_raise_layout_error(call):
    with pytest.raises(LayoutError) as info:
        call()
    assert str(info.value)


def test_relative_path_messages_name_the_problem():
    with pytest.raises(LayoutError, match="absolute"):
        validate_relative_path("/a")
    with pytest.raises(LayoutError, match="backslash"):
        validate_relative_path("a\\b")
    with pytest.raises(LayoutError, match="not normalised"):
        validate_relative_path("a/../b")


def test_gitattributes_routes_weights_and_item_files_to_lfs(tmp_path):
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / ".gitattributes").write_text(GITATTRIBUTES)
    paths = [
        "components/x/1.0.0/model/model.weights.h5",
        "components/x/1.0.0/preprocessor/cclm_config.json",
        "preprocessor/en_wiki_clm_1.tar.gz",
        "components/x/1.0.0/cclm-manifest.json",
        "index/3/a/abc",
    ]
    result = subprocess.run(
        ["git", "check-attr", "filter", "--", *paths],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    filters = dict(line.rsplit(": filter: ", 1) for line in result.stdout.splitlines())
    assert [filters[p] for p in paths] == ["lfs", "lfs", "lfs", "unspecified", "unspecified"]


def git(cwd, *args: str) -> bytes:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, check=True).stdout


@pytest.mark.skipif(shutil.which("git-lfs") is None, reason="git-lfs is not installed")
def test_git_lfs_agrees_with_our_pointers_and_object_paths(tmp_path):
    """The real client, through GITATTRIBUTES, writes our pointer bytes and stores objects at our paths."""
    bare, work = tmp_path / "shelf.git", tmp_path / "work"
    git(tmp_path, "init", "-q", "--bare", str(bare))
    git(tmp_path, "init", "-q", str(work))
    git(work, "lfs", "install", "--local")
    (work / ".gitattributes").write_text(GITATTRIBUTES)
    content = b"not really weights\x00\x01"
    relative = file_path("x", "1.0.0", "model", "model.weights.h5")
    (work / relative).parent.mkdir(parents=True)
    (work / relative).write_bytes(content)
    git(work, "add", ".")
    git(work, "commit", "-q", "-m", "publish x 1.0.0")
    git(work, "remote", "add", "origin", str(bare))  # git-lfs needs a named remote to push to a path
    git(work, "push", "-q", "origin", "HEAD:main")
    oid = hashlib.sha256(content).hexdigest()
    assert git(work, "show", f"HEAD:{relative}") == format_pointer(LfsPointer(oid, len(content)))
    assert (bare / lfs_object_path(oid)).read_bytes() == content


def test_lfs_object_path_checks_the_oid():
    assert lfs_object_path("ab" * 32) == "lfs/objects/ab/ab/" + "ab" * 32
    with pytest.raises(LayoutError, match="64 lowercase hex"):
        lfs_object_path("../../etc")
