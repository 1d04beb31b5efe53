"""SemVer parsing and the error tree's formatting."""

from __future__ import annotations

import pytest

from registry_index import (
    IndexFormatError,
    ManifestError,
    Problem,
    RegistryIndexError,
    VersionError,
    format_version,
    is_prerelease,
    parse_version,
    version_key,
)


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("1.2.3", "1.2.3"),
        ("v1.2.3", "1.2.3"),
        ("0.3.0-rc.1", "0.3.0-rc.1"),
        ("2.0.0+build.5", "2.0.0+build.5"),
    ],
)
def test_parse_version_accepts_semver_and_leading_v(text, canonical):
    assert format_version(parse_version(text)) == canonical


@pytest.mark.parametrize(
    "text", ["1.2", "01.2.3", " 1.2.3", "1.2.3\n", "1.2.3-", "١.2.3", "", "vv1.0.0", "1.0.0-01"]
)
def test_parse_version_rejects_non_semver_with_version_error(text):
    with pytest.raises(VersionError) as info:
        parse_version(text)
    assert "not SemVer 2.0" in str(info.value)
    assert "hint:" in str(info.value)


def test_parse_version_rejects_non_strings():
    with pytest.raises(VersionError, match="must be a string"):
        parse_version(123)  # type: ignore[arg-type]


def test_prerelease_and_precedence_order():
    assert is_prerelease(parse_version("1.0.0-rc.1"))
    assert not is_prerelease(parse_version("1.0.0+build"))
    texts = ["1.0.0", "1.0.0-rc.1", "1.0.0-alpha", "0.9.9", "1.0.0-rc.2", "1.0.0-alpha.1"]
    ordered = sorted(texts, key=lambda t: version_key(parse_version(t)))
    assert ordered == ["0.9.9", "1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-rc.1", "1.0.0-rc.2", "1.0.0"]


def test_build_metadata_breaks_ties_deterministically():
    texts = ["1.0.0+b", "1.0.0+a", "1.0.0"]
    assert sorted(texts, key=lambda t: version_key(parse_version(t))) == ["1.0.0", "1.0.0+a", "1.0.0+b"]


def test_error_str_includes_hint():
    error = RegistryIndexError("broken", hint="fix it")
    assert str(error) == "broken\n  hint: fix it"
    assert str(RegistryIndexError("plain")) == "plain"


def test_manifest_error_lists_every_problem():
    error = ManifestError(
        [Problem("$.name", "bad name"), Problem("$.version", "bad version")], source="m.json"
    )
    text = str(error)
    assert text.startswith("m.json: 2 problems in manifest")
    assert "  - $.name: bad name" in text and "  - $.version: bad version" in text
    assert isinstance(error, RegistryIndexError)


def test_index_format_error_carries_path_and_line():
    error = IndexFormatError("index/ab/cd/abcd", 7, "garbled")
    assert (error.path, error.line) == ("index/ab/cd/abcd", 7)
    assert str(error) == "index/ab/cd/abcd:7: garbled"
