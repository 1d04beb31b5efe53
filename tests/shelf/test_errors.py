"""Errors of registry_index and cclm_core become shelf errors at the boundary, of the kind that happened."""

from __future__ import annotations

import pytest

from cclm_core.errors import DataError, IncompatibleComponentError, UnsafeModelError
from registry_index.errors import (
    IndexFetchError,
    LayoutError,
    ManifestError,
    PointerError,
    RequirementError,
    VersionError,
)
from registry_index.requirements import parse_requirement
from shelf.errors import (
    ConfigError,
    IntegrityError,
    InvalidValueError,
    NotFoundError,
    ResolutionError,
    ShelfError,
    TransportError,
    UnsafeContentError,
    translate,
    translated,
)


@pytest.mark.parametrize(
    ("foreign", "kind"),
    [
        (RequirementError("bad requirement", hint="e.g. a_1"), InvalidValueError),
        (VersionError("bad version"), InvalidValueError),
        (LayoutError("bad path"), InvalidValueError),
        (PointerError("not a pointer"), IntegrityError),
        (ManifestError([]), IntegrityError),
        (IndexFetchError("unreachable"), TransportError),
        (DataError("empty corpus", hint="give texts"), ConfigError),
        (UnsafeModelError("a Lambda layer"), UnsafeContentError),
        (IncompatibleComponentError("another embedder"), ResolutionError),
    ],
)
def test_each_foreign_error_has_its_kind_message_and_hint(foreign: Exception, kind: type) -> None:
    mapped = translate(foreign)
    assert type(mapped) is kind
    assert mapped.message == foreign.message and mapped.hint == foreign.hint  # type: ignore[attr-defined]


def test_a_kind_can_be_forced_and_others_pass_through() -> None:
    assert type(translate(VersionError("x"), ConfigError)) is ConfigError
    assert translate(NotFoundError("ours already")) is None
    assert translate(KeyError("a bug")) is None


def test_translated_keeps_the_cause_and_lets_bugs_through() -> None:
    with pytest.raises(InvalidValueError, match="invalid component name") as info, translated():
        parse_requirement("Not A Name")
    assert isinstance(info.value.__cause__, RequirementError) and isinstance(info.value, ShelfError)
    with pytest.raises(KeyError, match="a bug"), translated():
        raise KeyError("a bug")

    @translated()
    def reads_a_version() -> None:
        raise VersionError("banana is not a version")

    with pytest.raises(InvalidValueError, match="banana"):
        reads_a_version()
