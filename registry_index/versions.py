"""SemVer 2.0 versions: the only version scheme a shelf knows.

A leading ``v`` is accepted on input (tags are written ``name/v1.2.3``) but never written back.
"""

from __future__ import annotations

import re
from functools import lru_cache

import semver

from registry_index.errors import VersionError

Version = semver.Version

_EXAMPLE = "1.2.3, 0.3.0-rc.1 or 2.0.0+build.5"

_NUM = r"(?:0|[1-9][0-9]*)"
_PRE_ID = r"(?:0|[1-9][0-9]*|[0-9]*[A-Za-z-][0-9A-Za-z-]*)"
_SEMVER = re.compile(
    rf"{_NUM}\.{_NUM}\.{_NUM}(?:-{_PRE_ID}(?:\.{_PRE_ID})*)?(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?",
    re.ASCII,
)


def parse_version(text: str) -> semver.Version:
    """Parse a full SemVer 2.0 version (``MAJOR.MINOR.PATCH[-pre][+build]``), with an optional leading v."""
    if not isinstance(text, str):
        raise VersionError(f"a version must be a string, got {type(text).__name__}", hint=f"use {_EXAMPLE}")
    return _parse_version(text)


@lru_cache(maxsize=8192)
def _parse_version(text: str) -> semver.Version:
    # Cached: reading an index parses each version twice (checking the line, then sorting candidates),
    # and a semver.Version is immutable, so one object can serve every caller.
    raw = text[1:] if text[:1] in ("v", "V") else text
    # Checked here first because semver's own pattern uses \d, which also matches non-ASCII digits.
    if not _SEMVER.fullmatch(raw):
        raise VersionError(f"invalid version {text!r}: not SemVer 2.0", hint=f"use {_EXAMPLE}")
    try:
        return semver.Version.parse(raw)
    except (ValueError, TypeError) as e:
        raise VersionError(f"invalid version {text!r}: not SemVer 2.0", hint=f"use {_EXAMPLE}") from e


def format_version(version: semver.Version) -> str:
    """The canonical text of a version, without a leading ``v``."""
    return str(version)


def is_prerelease(version: semver.Version) -> bool:
    """True for versions with a pre-release part (``1.0.0-rc.1``); build metadata does not count."""
    return version.prerelease is not None


def version_key(version: semver.Version) -> tuple:
    """A plain-tuple sort key with SemVer precedence; build metadata is a last, deterministic tie-break.

    Cheaper than sorting ``semver.Version`` objects (whose comparisons re-parse), which matters when an
    index of 100,000 versions is rebuilt. A release sorts after its pre-releases; pre-release identifiers
    compare numerically when numeric, numeric before alphanumeric, and a shorter list first on a tie.
    """
    if version.prerelease is None:
        release: tuple = (1,)
    else:
        parts = version.prerelease.split(".")
        release = (0, tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in parts))
    return (version.major, version.minor, version.patch, release, version.build or "")
