"""Requirement strings and SemVer-evaluated specifiers."""

from __future__ import annotations

import pytest

from registry_index import RequirementError, SpecifierSet, parse_requirement, parse_version, validate_name


def matches(requirement: str, version: str, prereleases: bool = False) -> bool:
    return parse_requirement(requirement).matches(parse_version(version), prereleases=prereleases)


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("en_wiki_clm_1", "en_wiki_clm_1"),
        ("en_wiki_clm_1@1.2.3", "en_wiki_clm_1@1.2.3"),
        ("en_wiki_clm_1@v1.2.3", "en_wiki_clm_1@1.2.3"),
        ("en_wiki_clm_1>=0.2,<0.3", "en_wiki_clm_1>=0.2,<0.3"),
        ("en_wiki_clm_1 >= 0.2 , < 0.3", "en_wiki_clm_1>=0.2,<0.3"),
        ("a~=0.2", "a~=0.2"),
        ("a==0.2.*", "a==0.2.*"),
        ("a!=1.0.0", "a!=1.0.0"),
        ("a>=v1.0", "a>=1.0"),
        ("a.b-c_d>1.0.0-rc.1", "a.b-c_d>1.0.0-rc.1"),
    ],
)
def test_parse_and_round_trip(text, canonical):
    requirement = parse_requirement(text)
    assert str(requirement) == canonical
    assert parse_requirement(str(requirement)) == requirement


def test_exact_pin_fields():
    requirement = parse_requirement("x@1.2.3")
    assert requirement.exact == parse_version("1.2.3")
    assert not requirement.specifier
    assert requirement.name == "x"


@pytest.mark.parametrize(
    ("requirement", "version", "expected"),
    [
        ("a>=0.2,<0.3", "0.2.0", True),
        ("a>=0.2,<0.3", "0.2.9", True),
        ("a>=0.2,<0.3", "0.3.0", False),
        ("a>=0.2,<0.3", "0.1.9", False),
        ("a~=0.2", "0.9.0", True),
        ("a~=0.2", "1.0.0", False),
        ("a~=0.2.1", "0.2.5", True),
        ("a~=0.2.1", "0.3.0", False),
        ("a~=0.2.1", "0.2.0", False),
        ("a==0.2.*", "0.2.7", True),
        ("a==0.2.*", "0.3.0", False),
        ("a!=0.2.*", "0.3.0", True),
        ("a==1.*", "1.9.0", True),
        ("a!=1.0.0", "1.0.0", False),
        ("a!=1.0.0", "1.0.1", True),
        ("a==1.0", "1.0.0", True),
        ("a<=1.0.0", "1.0.0", True),
        ("a>1.0.0", "1.0.0", False),
        ("a", "7.0.0", True),
        ("a@1.2.3", "1.2.3", True),
        ("a@1.2.3", "1.2.4", False),
        # SemVer precedence, not string order: 0.10.0 > 0.9.0.
        ("a>0.9.0", "0.10.0", True),
        # Build metadata does not affect precedence.
        ("a==1.0.0", "1.0.0+build.7", True),
    ],
)
def test_matches_uses_semver_precedence(requirement, version, expected):
    assert matches(requirement, version) is expected


def test_prereleases_only_when_asked_for_named_or_pinned():
    assert not matches("a>=0.9", "1.0.0-rc.1")
    assert matches("a>=0.9", "1.0.0-rc.1", prereleases=True)
    assert matches("a>=1.0.0-rc.1", "1.0.0-rc.2")
    assert parse_requirement("a>=1.0.0-rc.1").specifier.allows_prereleases
    assert not parse_requirement("a>=1.0.0").specifier.allows_prereleases
    assert not parse_requirement("a>=1.0.0+build-7").specifier.allows_prereleases
    assert matches("a@1.0.0-rc.1", "1.0.0-rc.1")
    assert not matches("a", "1.0.0-rc.1")


def test_specifier_set_contains_and_str():
    specifiers = SpecifierSet.parse(">=1.0, <2")
    assert str(specifiers) == ">=1.0,<2"
    assert specifiers.contains(parse_version("1.5.0"))
    assert not specifiers.contains(parse_version("2.0.0"))
    assert SpecifierSet().contains(parse_version("3.0.0"))


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "no component name"),
        ("@1.0.0", "no component name"),
        ("Foo>=1.0", "invalid component name 'Foo'"),
        ("a>=", "cannot read '>='"),
        ("a=>1.0", "cannot read '=>1.0'"),
        ("a@1.2", "after '@' comes a full version"),
        ("a~=1", "'~=' needs at least MAJOR.MINOR"),
        ("a>=0.2.*", "'.*' only goes with == or !="),
        ("a>=1.0,", "cannot read ''"),
        ("a b", "cannot read 'b'"),
        ("a>=01.0", "'01.0' is not a version"),
        ("0<Vv0", "'v0' is not a version"),  # one leading v is taken, not two (str() would lose it)
        ("a>=vv1.0.0", "'v1.0.0' is not a version"),
        ("a==vv1.*", "'v1.*' is not a version"),
        ("a" * 65, "the limit is 64"),
    ],
)
def test_bad_requirements_raise_with_text_and_example(text, fragment):
    with pytest.raises(RequirementError) as info:
        parse_requirement(text)
    message = str(info.value)
    assert fragment in message
    assert "hint:" in message


def test_validate_name_suggests_lowercase():
    with pytest.raises(RequirementError, match=r"e\.g\. 'en_wiki'"):
        validate_name("EN_WIKI")
    assert validate_name("en_wiki.v2-x") == "en_wiki.v2-x"


def test_non_string_requirement_is_rejected():
    with pytest.raises(RequirementError, match="must be a string"):
        parse_requirement(None)  # type: ignore[arg-type]
