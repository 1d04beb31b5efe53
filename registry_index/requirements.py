"""Requirement strings (``name``, ``name@1.2.3``, ``name>=0.2,<0.3``) evaluated with SemVer precedence.

The operators are those of ``packaging.specifiers`` (``==``, ``!=``, ``>=``, ``<=``, ``>``, ``<``, ``~=``,
and the ``==X.Y.*`` / ``!=X.Y.*`` prefix forms), but versions are SemVer 2.0 and compare by SemVer
precedence, so a small ``SpecifierSet`` of our own is used instead of packaging's PEP 440 one.

Versions inside specifiers may be partial (``>=0.2`` means ``>=0.2.0``). Pre-releases match only when
asked for (``prereleases=True``), when a specifier names one (``>=1.0.0-rc.1``), or when pinned
(``name@1.0.0-rc.1``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property, lru_cache

import semver

from registry_index.errors import RequirementError, VersionError
from registry_index.versions import is_prerelease, parse_version

MAX_NAME_LENGTH = 64
_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]*", re.ASCII)
_EXAMPLE = "en_wiki_clm_1, en_wiki_clm_1@0.2.1 or en_wiki_clm_1>=0.2,<0.3"
_OPERATORS = ("~=", "==", "!=", "<=", ">=", "<", ">")
_CLAUSE = re.compile(r"\s*(~=|==|!=|<=|>=|<|>)\s*([^\s<>=!~,]+)\s*", re.ASCII)
# Matched against the version text once its one leading v is gone (so "vv1" is no version).
_PARTIAL = re.compile(r"(0|[1-9][0-9]*)(?:\.(0|[1-9][0-9]*))?(?:\.(0|[1-9][0-9]*))?", re.ASCII)
_WILDCARD = re.compile(r"(0|[1-9][0-9]*)(?:\.(0|[1-9][0-9]*))?\.\*", re.ASCII)


def validate_name(name: str) -> str:
    """Return ``name`` if it is a valid component name, else raise RequirementError saying why."""
    if not isinstance(name, str) or not name:
        raise RequirementError("a component name must be a non-empty string", hint="e.g. en_wiki_clm_1")
    if len(name) > MAX_NAME_LENGTH:
        raise RequirementError(
            f"component name {name[:20]!r}... is {len(name)} characters long; the limit is {MAX_NAME_LENGTH}",
            hint="choose a shorter name",
        )
    if not _NAME.fullmatch(name):
        raise RequirementError(
            f"invalid component name {name!r}: use lowercase letters, digits, '_', '.' and '-', "
            "starting with a letter or digit",
            hint=f"e.g. {name.lower()!r}" if _NAME.fullmatch(name.lower()) else "e.g. en_wiki_clm_1",
        )
    return name


@dataclass(frozen=True)
class Specifier:
    """One clause such as ``>=0.2.0`` or ``==0.2.*``; ``text`` is the version part as written."""

    operator: str
    text: str

    @property
    def is_wildcard(self) -> bool:
        return self.text.endswith(".*")

    @property
    def names_prerelease(self) -> bool:
        # Only the part before build metadata counts: "1.0.0+build-7" is not a pre-release.
        return not self.is_wildcard and "-" in self.text.split("+", 1)[0]

    @cached_property
    def _bound(self) -> semver.Version:
        """The version written, completed (``0.2`` is ``0.2.0``); made once per clause, not per test."""
        return _complete(self.text)

    def contains(self, version: semver.Version) -> bool:
        """Whether ``version`` satisfies this clause (pre-release gating is the SpecifierSet's job)."""
        if self.is_wildcard:
            inside = _prefix_matches(self.text, version)
            return inside if self.operator == "==" else not inside
        bound = self._bound
        if self.operator == "~=":
            return _order(bound, version) <= 0 and _order(version, _compatible_ceiling(self.text)) < 0
        return _COMPARISONS[self.operator](_order(version, bound))

    def __str__(self) -> str:
        return f"{self.operator}{self.text}"


_COMPARISONS = {
    "==": lambda order: order == 0,
    "!=": lambda order: order != 0,
    ">=": lambda order: order >= 0,
    "<=": lambda order: order <= 0,
    ">": lambda order: order > 0,
    "<": lambda order: order < 0,
}


def _order(version: semver.Version, other: semver.Version) -> int:
    """``version.compare(other)``, deciding on the release numbers alone when they differ (semver's own
    compare turns both versions into tuples first, which is most of a resolve's comparing)."""
    mine, theirs = (version.major, version.minor, version.patch), (other.major, other.minor, other.patch)
    if mine != theirs:
        return -1 if mine < theirs else 1
    return version.compare(other)


def _complete(text: str) -> semver.Version:
    """A possibly partial version (``0.2``) as a full one (``0.2.0``)."""
    match = _PARTIAL.fullmatch(text)
    if match:
        major, minor, patch = (int(part or 0) for part in match.groups())
        return semver.Version(major, minor, patch)
    return parse_version(text)


def _compatible_ceiling(text: str) -> semver.Version:
    """The exclusive upper bound of ``~=text``: bump the second-to-last written release number."""
    release = text.lstrip("v").split("-")[0].split("+")[0].split(".")
    if len(release) == 2:
        return semver.Version(int(release[0]) + 1, 0, 0)
    return semver.Version(int(release[0]), int(release[1]) + 1, 0)


def _prefix_matches(text: str, version: semver.Version) -> bool:
    parts = [int(p) for p in text.lstrip("v")[:-2].split(".")]
    return [version.major, version.minor][: len(parts)] == parts


def _parse_clause(clause: str, source: str) -> Specifier:
    match = _CLAUSE.fullmatch(clause)
    if not match:
        raise RequirementError(
            f"invalid requirement {source!r}: cannot read {clause.strip()!r} as a version constraint",
            hint=f"write one of {', '.join(_OPERATORS)} followed by a version, e.g. {_EXAMPLE}",
        )
    operator, text = match.groups()
    text = text[1:] if text[:1] in ("v", "V") else text  # canonical form has no leading v
    if _WILDCARD.fullmatch(text):
        if operator not in ("==", "!="):
            raise RequirementError(
                f"invalid requirement {source!r}: '.*' only goes with == or !=", hint="e.g. name==0.2.*"
            )
        return Specifier(operator, text)
    _check_version(text, operator, source)
    return Specifier(operator, text)


def _check_version(text: str, operator: str, source: str) -> None:
    if operator == "~=" and not re.fullmatch(r"v?[0-9]+\.[0-9]+(\.[0-9]+)?([-+].*)?", text, re.ASCII):
        raise RequirementError(
            f"invalid requirement {source!r}: '~=' needs at least MAJOR.MINOR", hint="e.g. name~=0.2"
        )
    if _PARTIAL.fullmatch(text):
        return
    try:
        if text[:1] in ("v", "V"):  # its one leading v is gone already: "vv1.0.0" is no version
            raise VersionError(f"{text!r} starts with a second v")
        parse_version(text)
    except VersionError as e:
        raise RequirementError(
            f"invalid requirement {source!r}: {text!r} is not a version",
            hint=f"use SemVer (1.2.3, 1.2 or 1.0.0-rc.1), e.g. {_EXAMPLE}",
        ) from e


@dataclass(frozen=True)
class SpecifierSet:
    """A conjunction of clauses; the empty set matches every release (and pre-releases when allowed)."""

    specifiers: tuple[Specifier, ...] = ()

    @classmethod
    def parse(cls, text: str, source: str | None = None) -> SpecifierSet:
        """Parse ``">=0.2, <0.3"``; ``source`` is the whole requirement, quoted in errors."""
        if not text.strip():
            return cls(())
        return cls(tuple(_parse_clause(clause, source or text) for clause in text.split(",")))

    @property
    def allows_prereleases(self) -> bool:
        return any(spec.names_prerelease for spec in self.specifiers)

    def contains(self, version: semver.Version, prereleases: bool = False) -> bool:
        if is_prerelease(version) and not (prereleases or self.allows_prereleases):
            return False
        return all(spec.contains(version) for spec in self.specifiers)

    def __str__(self) -> str:
        return ",".join(str(spec) for spec in self.specifiers)

    def __bool__(self) -> bool:
        return bool(self.specifiers)


@dataclass(frozen=True)
class Requirement:
    """A component name plus either a specifier set or an exact pin (``name@1.2.3``)."""

    name: str
    specifier: SpecifierSet
    exact: semver.Version | None = None

    def matches(self, version: semver.Version, prereleases: bool = False) -> bool:
        """Whether ``version`` satisfies this requirement; an exact pin accepts its own pre-release."""
        if self.exact is not None:
            if version.compare(self.exact) != 0:
                return False
            return self.exact.build is None or version.build == self.exact.build
        return self.specifier.contains(version, prereleases=prereleases)

    def pins_exactly(self) -> bool:
        """``name@1.2.3`` or ``name==1.2.3``: only one published version can ever satisfy it."""
        if self.exact is not None:
            return True
        clauses = self.specifier.specifiers
        return (
            len(clauses) == 1
            and clauses[0].operator == "=="
            and not clauses[0].is_wildcard
            and clauses[0].text.count(".") >= 2
        )

    def __str__(self) -> str:
        if self.exact is not None:
            return f"{self.name}@{self.exact}"
        return f"{self.name}{self.specifier}"


def parse_requirement(text: str) -> Requirement:
    """Parse a requirement string; anything unreadable raises RequirementError quoting it."""
    if not isinstance(text, str):
        raise RequirementError(f"a requirement must be a string, got {type(text).__name__}", hint=_EXAMPLE)
    return _parse_requirement(text)


@lru_cache(maxsize=4096)
def _parse_requirement(text: str) -> Requirement:
    # Cached: the versions of one component mostly repeat the same requirement strings, and an index
    # read parses every line's. A Requirement is immutable, so one object can serve every caller.
    match = re.fullmatch(r"\s*([^\s@~=!<>,]*)\s*(.*?)\s*", text, re.DOTALL)
    name, rest = match.groups() if match else ("", text)
    if not name:
        raise RequirementError(f"invalid requirement {text!r}: no component name", hint=f"e.g. {_EXAMPLE}")
    try:
        validate_name(name)
    except RequirementError as e:
        raise RequirementError(f"invalid requirement {text!r}: {e.message}", hint=e.hint) from e
    if rest.startswith("@"):
        return Requirement(name, SpecifierSet(), _parse_exact(rest[1:].strip(), text))
    return Requirement(name, SpecifierSet.parse(rest, source=text))


def _parse_exact(version_text: str, source: str) -> semver.Version:
    try:
        return parse_version(version_text)
    except VersionError as e:
        raise RequirementError(
            f"invalid requirement {source!r}: after '@' comes a full version, got {version_text!r}",
            hint="e.g. en_wiki_clm_1@0.2.1",
        ) from e
