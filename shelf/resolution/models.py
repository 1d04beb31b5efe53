"""Requirement and candidate values the resolver works with.

Components are real packages. A component's *base* (embedder fingerprint, vocabulary fingerprint, input
length) is modelled as three virtual packages, ``base:embedder``, ``base:vocab`` and
``base:max_input_length``, whose candidates are plain values. Every component with a base depends on
exactly one value of each; an embedder depends on the fingerprint it provides, a preprocessor on the
vocabulary it provides. So a set is only complete when they all agree, and resolvelib backtracks to older
versions until they do.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import semver

from registry_index.requirements import Requirement

BASE_PREFIX = "base:"
BASE_KEYS = ("embedder", "vocab", "max_input_length")
BASE_LABELS = {"embedder": "embedder", "vocab": "vocabulary", "max_input_length": "input length"}

if TYPE_CHECKING:
    from registry_index.index import IndexEntry


def base_identifier(key: str) -> str:
    return f"{BASE_PREFIX}{key}"


def is_base_identifier(identifier: str) -> bool:
    return identifier.startswith(BASE_PREFIX)


@dataclass(frozen=True)
class ComponentRequirement:
    """A requirement on a real component, as written (``text``) and parsed.

    Equality and hashing use the text alone: the resolver hashes requirements constantly, and the parsed
    form follows from the text.
    """

    requirement: Requirement = field(compare=False)
    text: str
    _hash: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_hash", hash(self.text))  # hashed once, not once per lookup

    def __hash__(self) -> int:
        return self._hash

    @property
    def identifier(self) -> str:
        return self.requirement.name

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class _BaseValue:
    """One value of a base (``key`` is one of BASE_KEYS), named like the virtual package it belongs to."""

    key: str
    value: str

    identifier = property(lambda self: base_identifier(self.key), doc="The virtual package's name.")

    def __str__(self) -> str:
        return f"{BASE_LABELS[self.key]} {self.value}"


@dataclass(frozen=True)
class BaseRequirement(_BaseValue):
    """A component's need for one exact base value."""


@dataclass(frozen=True)
class ComponentCandidate:
    """One published version of a component; equal (and hashed) by name and canonical version text."""

    entry: IndexEntry = field(compare=False)
    name: str
    version: semver.Version = field(compare=False)
    version_text: str = ""
    _hash: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_hash", hash((self.name, self.version_text)))

    def __hash__(self) -> int:
        return self._hash

    @property
    def identifier(self) -> str:
        return self.name

    def __str__(self) -> str:
        return f"{self.name} {self.version}"


@dataclass(frozen=True)
class BaseCandidate(_BaseValue):
    """The value a virtual base package settles on."""


AnyRequirement = ComponentRequirement | BaseRequirement
AnyCandidate = ComponentCandidate | BaseCandidate
