"""The resolvelib provider: reads index entries through one ``entries(name)`` interface, nothing else.

Policy lives here: newest versions first, a locked version first when the name is not being upgraded,
yanked versions only when the lockfile or an exact requirement pins them, pre-releases only when asked for.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, cast

import semver
from resolvelib.providers import AbstractProvider

from registry_index.requirements import parse_requirement
from registry_index.versions import is_prerelease, parse_version, version_key
from shelf.resolution.models import (
    BASE_KEYS,
    AnyCandidate,
    AnyRequirement,
    BaseCandidate,
    BaseRequirement,
    ComponentCandidate,
    ComponentRequirement,
    is_base_identifier,
)

if TYPE_CHECKING:
    from registry_index.index import IndexEntry


# The base values a kind provides itself (an embedder's manifest must provide its fingerprint and length).
PROVIDED_KEYS = {"embedder": ("embedder", "max_input_length"), "preprocessor": ("vocab", "max_input_length")}


class EntrySource(Protocol):
    """Anything that lists the published versions of a component (``registry_index`` readers do)."""

    def entries(self, name: str) -> list[IndexEntry]: ...


@dataclass(frozen=True)
class Policy:
    """What the caller asked for beyond the requirements."""

    locked: Mapping[str, str]
    upgrade: bool | frozenset[str] = False
    allow_prereleases: bool = False

    def pinned_version(self, name: str) -> str | None:
        """The locked version of ``name`` still in force (not being upgraded), if any."""
        if self.upgrade is True or (isinstance(self.upgrade, frozenset) and name in self.upgrade):
            return None
        return self.locked.get(name)


class CandidateIndex:
    """Parsed, sorted candidates per name, read from the source once per name."""

    def __init__(self, source: EntrySource) -> None:
        self._source = source
        self._cache: dict[str, tuple[ComponentCandidate, ...]] = {}

    def candidates(self, name: str) -> tuple[ComponentCandidate, ...]:
        """Every published version of ``name``, newest first."""
        if name not in self._cache:
            entries = self._source.entries(name)
            found = [ComponentCandidate(e, e.name, parse_version(e.version), e.version) for e in entries]
            found.sort(key=lambda c: version_key(c.version), reverse=True)  # tuples: no semver compares
            self._cache[name] = tuple(found)
        return self._cache[name]


class ShelfProvider(AbstractProvider):
    """resolvelib's view of a shelf: components plus the virtual base packages."""

    def __init__(
        self,
        index: CandidateIndex,
        policy: Policy,
        direct: Iterable[str],
        backtracks: Callable[[], int] = lambda: 0,
    ) -> None:
        """``backtracks`` counts the conflicts so far (the reporter's count): resolvelib rewrites its list
        of backtrack causes in place after each, so the count tells a rewritten list from the same one."""
        self.index = index
        self._backtracks = backtracks
        self.policy = policy
        self._direct = frozenset(direct)
        self._dependency_cache: dict[ComponentCandidate, tuple[AnyRequirement, ...]] = {}
        # Backtracking asks the same questions many times; each answer is computed once.
        self._accepting_cache: dict[ComponentRequirement, frozenset[ComponentCandidate]] = {}
        self._allowed_cache: dict[tuple[str, frozenset[ComponentRequirement]], list[ComponentCandidate]] = {}
        self._eligible_cache: dict[tuple[str, bool], tuple[ComponentCandidate, ...]] = {}
        self._spread_cache: dict[str, tuple[int, bool]] = {}
        self._last_causes: tuple[Any, int, frozenset[str]] = (None, 0, frozenset())

    def identify(self, requirement_or_candidate: AnyRequirement | AnyCandidate) -> str:
        return requirement_or_candidate.identifier

    def get_preference(
        self,
        identifier: str,
        resolutions: Mapping[str, AnyCandidate],
        candidates: Mapping[str, Iterator[AnyCandidate]],
        information: Mapping[str, Iterator[Any]],
        backtrack_causes: Sequence[Any],
    ) -> tuple[bool, int, bool, bool, str]:
        # Smaller sorts first. Settled base values (one candidate each) go first, then the most constrained
        # components: those published on the fewest distinct bases. A component that exists on one base
        # only fixes the base for everyone; pinned early, the others skip their disagreeing versions one
        # by one instead of backtracking through whole stacks. Then what caused the last backtrack, then
        # what the user asked for by name, then the rest alphabetically.
        if is_base_identifier(identifier):
            return (False, 0, False, False, identifier)
        spread, undirect = self._fixed_preference(identifier)
        return (True, spread, identifier not in self._causes(backtrack_causes), undirect, identifier)

    def _fixed_preference(self, name: str) -> tuple[int, bool]:
        """What of ``name``'s preference never changes: its base spread, and whether the user named it."""
        found = self._spread_cache.get(name)
        if found is None:
            bases = {tuple(sorted(base_values(c.entry).items())) for c in self.index.candidates(name)}
            found = self._spread_cache[name] = (len(bases), name not in self._direct)
        return found

    def _causes(self, backtrack_causes: Sequence[Any]) -> frozenset[str]:
        """The identifiers named in the last conflict (computed once per round, not once per identifier)."""
        last, count, names = self._last_causes
        if backtrack_causes is not last or self._backtracks() != count:
            found = {c.requirement.identifier for c in backtrack_causes}
            found |= {c.parent.identifier for c in backtrack_causes if c.parent is not None}
            names = frozenset(found)
            # The list is held, so no other list can take its id meanwhile.
            self._last_causes = (backtrack_causes, self._backtracks(), names)
        return names

    def find_matches(
        self,
        identifier: str,
        requirements: Mapping[str, Iterator[AnyRequirement]],
        incompatibilities: Mapping[str, Iterator[AnyCandidate]],
    ) -> list[AnyCandidate]:
        wanted = list(requirements[identifier])
        excluded = set(incompatibilities[identifier])
        if is_base_identifier(identifier):
            return self._base_matches(wanted, excluded)
        # Only a base identifier gathers base requirements: these are all component requirements.
        components = cast("list[ComponentRequirement]", wanted)
        allowed = self._allowed(identifier, components)
        return [c for c in allowed if c not in excluded] if excluded else list(allowed)

    def _allowed(self, name: str, wanted: list[ComponentRequirement]) -> list[ComponentCandidate]:
        """``allowed`` once per set of requirements (each parent repeats its requirement; backtracking asks
        again and again)."""
        key = (name, frozenset(wanted))
        found = self._allowed_cache.get(key)
        if found is None:
            found = self._allowed_cache[key] = self.allowed(name, list(key[1]))
        return found

    def _base_matches(self, wanted: list[Any], excluded: set[Any]) -> list[AnyCandidate]:
        values = {r.value for r in wanted}
        if len(values) != 1:
            return []  # two components disagree on this base value: nothing can satisfy both
        candidate = BaseCandidate(wanted[0].key, values.pop())
        return [] if candidate in excluded else [candidate]

    def allowed(self, name: str, wanted: Sequence[ComponentRequirement]) -> list[ComponentCandidate]:
        """The versions of ``name`` the policy allows and every requirement accepts, preferred first."""
        eligible = self._eligible(name, self._prereleases_allowed(wanted))
        accepting = [self._accepting(r) for r in wanted]
        # PEP 592: a yanked version is still what an exact pin (name@1.2.3, ==1.2.3) names.
        pinned = [
            c for r in wanted if r.requirement.pins_exactly() for c in self._accepting(r) if c.entry.yanked
        ]
        ordered = dict.fromkeys([*eligible, *pinned])
        if not accepting:
            return list(ordered)
        accepted = accepting[0].intersection(*accepting[1:])
        return [c for c in ordered if c in accepted]

    def _accepting(self, requirement: ComponentRequirement) -> frozenset[ComponentCandidate]:
        """Every published version ``requirement`` accepts (policy aside)."""
        found = self._accepting_cache.get(requirement)
        if found is None:
            candidates = self.index.candidates(requirement.identifier)
            matches = requirement.requirement.matches
            found = frozenset(c for c in candidates if matches(c.version, True))
            self._accepting_cache[requirement] = found
        return found

    def _eligible(self, name: str, prereleases: bool) -> tuple[ComponentCandidate, ...]:
        """The versions the policy allows: no yanked or pre-release ones unless locked; locked one first."""
        key = (name, prereleases)
        if key not in self._eligible_cache:
            pinned = self.policy.pinned_version(name)
            pin = parse_version(pinned) if pinned else None
            allowed = [
                c
                for c in self.index.candidates(name)
                if _same(c.version, pin)
                or (not c.entry.yanked and (prereleases or not is_prerelease(c.version)))
            ]
            # The locked version goes first so an unchanged project resolves to its lockfile.
            allowed.sort(key=lambda c: not _same(c.version, pin))
            self._eligible_cache[key] = tuple(allowed)
        return self._eligible_cache[key]

    def _prereleases_allowed(self, wanted: Sequence[ComponentRequirement]) -> bool:
        if self.policy.allow_prereleases:
            return True
        return any(
            r.requirement.exact is not None or r.requirement.specifier.allows_prereleases for r in wanted
        )

    def is_satisfied_by(self, requirement: AnyRequirement, candidate: AnyCandidate) -> bool:
        if isinstance(requirement, BaseRequirement):
            return isinstance(candidate, BaseCandidate) and candidate.value == requirement.value
        accepted = self._accepting_cache.get(requirement)  # resolvelib asks this most: the cache first
        return candidate in (accepted if accepted is not None else self._accepting(requirement))

    def get_dependencies(self, candidate: AnyCandidate) -> list[AnyRequirement]:
        if isinstance(candidate, BaseCandidate):
            return []
        if candidate not in self._dependency_cache:
            self._dependency_cache[candidate] = dependencies_of(candidate.entry)
        return list(self._dependency_cache[candidate])


def _same(version: semver.Version, pin: semver.Version | None) -> bool:
    return pin is not None and version.compare(pin) == 0 and (version.build or "") == (pin.build or "")


def base_values(entry: IndexEntry) -> dict[str, str]:
    """The base values ``entry`` needs: from its base, overridden by what an embedder/preprocessor provides.

    An embedder *is* the embedder fingerprint it provides and a preprocessor *is* the vocabulary it
    provides, so what they provide is what they bind the rest of the set to.
    """
    values: dict[str, str] = {}
    if entry.base is not None:
        # A base without a vocabulary fingerprint (None) constrains nothing there.
        raw = {key: getattr(entry.base, key) for key in BASE_KEYS}
        values = {key: str(value) for key, value in raw.items() if value is not None}
    provides = entry.provides or {}
    for key in PROVIDED_KEYS.get(entry.kind, ()):
        if provides.get(key) is not None:
            values[key] = str(provides[key])
    return values


def dependencies_of(entry: IndexEntry) -> tuple[AnyRequirement, ...]:
    """The component requirements of ``entry`` followed by one requirement per base value."""
    components = tuple(ComponentRequirement(parse_requirement(text), text) for text in entry.requires)
    bases = tuple(BaseRequirement(key, value) for key, value in sorted(base_values(entry).items()))
    return components + bases
