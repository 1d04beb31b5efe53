"""Turn resolvelib's conflict causes into a ResolutionError told in model terms.

Three stories: an unknown component name (with a "did you mean"), no version matching the requirements
(naming who asked for what, and any yanked or pre-release version that was held back), and components whose
bases disagree ("X 0.3.0 needs embedder sha256:ab12… (via Y>=0.3) but Z 0.2.1, pinned by you, provides
sha256:cd34…"), each with what would fix it.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from registry_index.versions import is_prerelease
from shelf.errors import ResolutionError
from shelf.resolution.models import (
    BASE_KEYS,
    BASE_LABELS,
    BaseRequirement,
    ComponentCandidate,
    ComponentRequirement,
    base_identifier,
)
from shelf.resolution.provider import PROVIDED_KEYS, ShelfProvider, base_values
from shelf.resolution.reporter import ShelfReporter

_MAX_CHAIN = 4
_MAX_VERSIONS = 5
_GENERIC_HINT = "loosen a version requirement or remove a component, then try again"


def short(value: str) -> str:
    """A fingerprint shortened to 12 hex characters (``sha256:ab12cd34ef56…``); other values unchanged."""
    algo, sep, digest = value.partition(":")
    if sep and len(digest) > 12:
        return f"{algo}:{digest[:12]}…"
    return value


@dataclass(frozen=True)
class Explainer:
    """Everything a conflict story needs: the provider (index + policy), the reporter, known names.

    ``known_names`` lists every name only when a story needs it (an unknown name): listing a large index
    costs more than a whole resolve that never fails.
    """

    provider: ShelfProvider
    reporter: ShelfReporter
    known_names: Callable[[], Sequence[str]] = tuple

    def explain(self, causes: Sequence[Any]) -> ResolutionError:
        by_identifier: dict[str, list[Any]] = {}
        for cause in causes:
            by_identifier.setdefault(cause.requirement.identifier, []).append(cause)
        for key in BASE_KEYS:
            if base_identifier(key) in by_identifier:
                return self.base_conflict(key, by_identifier[base_identifier(key)])
        if not by_identifier:
            return ResolutionError("no compatible set of components exists", hint=_GENERIC_HINT)
        name, infos = next(iter(by_identifier.items()))
        if not self.provider.index.candidates(name):
            return self.unknown_name(name, infos[0].parent)
        return self.no_version(name, [i.requirement for i in infos], [i.parent for i in infos])

    # --- origins -----------------------------------------------------------------------------------

    def origin(self, candidate: ComponentCandidate, depth: int = 0) -> str:
        """Why ``candidate`` is in the set: "pinned by you", "requested by you", "via X>=1, needed by ..."."""
        pinned = self.provider.policy.pinned_version(candidate.name)
        pairs = [
            (req, parent)
            for req, parent in self.reporter.requirers(candidate.name)
            if isinstance(req, ComponentRequirement) and req.requirement.matches(candidate.version, True)
        ]
        for req, parent in pairs:
            if parent is None:
                if _is_pin(req):
                    return "pinned by you"
                if pinned is not None and str(candidate.version) == pinned.lstrip("v"):
                    return f"locked by cclm-shelf.lock, requested by you as {req.text}"
                return f"requested by you as {req.text}"
        if not pairs or depth >= _MAX_CHAIN:
            return "needed by the set"
        req, parent = pairs[0]
        assert parent is not None
        return f"via {req.text}, needed by {parent} ({self.origin(parent, depth + 1)})"

    def asked_by(self, requirement: ComponentRequirement, parent: ComponentCandidate | None) -> str:
        if parent is None:
            return f"{requirement.text} ({'pinned' if _is_pin(requirement) else 'asked for'} by you)"
        return f"{requirement.text} (from {parent}, {self.origin(parent)})"

    # --- stories -----------------------------------------------------------------------------------

    def unknown_name(self, name: str, parent: ComponentCandidate | None) -> ResolutionError:
        where = "" if parent is None else f" (required by {parent}, {self.origin(parent)})"
        close = difflib.get_close_matches(name, list(self.known_names()), n=1, cutoff=0.6)
        message = f"no component named {name!r} on the shelf{where}"
        if close:
            message += f"; did you mean {close[0]!r}?"
        return ResolutionError(message, hint="check the spelling, or add the shelf that publishes it")

    def no_version(
        self, name: str, requirements: Sequence[Any], parents: Sequence[ComponentCandidate | None]
    ) -> ResolutionError:
        clash = self.base_clash(name, requirements, parents)
        if clash is not None:
            return clash
        asks = _unique(self.asked_by(r, p) for r, p in zip(requirements, parents, strict=True))
        every = self.provider.index.candidates(name)
        published = ", ".join(_labelled(c) for c in every[:_MAX_VERSIONS])
        message = f"no version of {name} satisfies " + " and ".join(asks)
        message += f"; published: {published}" + (", ..." if len(every) > _MAX_VERSIONS else "")
        return ResolutionError(message, hint=self._held_back(name, requirements) or _loosen_hint(name))

    def base_clash(
        self, name: str, requirements: Sequence[Any], parents: Sequence[ComponentCandidate | None]
    ) -> ResolutionError | None:
        """Two asks for versions of an embedder package that stand for different embedders, in model terms.

        Each side is a component (the embedder it was trained on) or the user's own pin of the embedder
        package (the embedder that version provides). None when every side could share one embedder.
        """
        if not any(c.entry.kind == "embedder" for c in self.provider.index.candidates(name)):
            return None  # only an embedder package stands for a base
        sides = [(r, p, self._side_embedders(name, r, p)) for r, p in zip(requirements, parents, strict=True)]
        for i, (req_a, parent_a, a) in enumerate(sides):
            for req_b, parent_b, b in sides[i + 1 :]:
                if a and b and not a & b:
                    left, right = self._side(req_a, parent_a, a), self._side(req_b, parent_b, b)
                    message = f"{left[0]} and {right[0]} can never share a base: {left[1]}, {right[1]}"
                    rejected = self._rejected(name, (left[0], a), (right[0], b))
                    message += f"; versions of {name} rejected: {rejected}"
                    return ResolutionError(message, hint=self._clash_fix(name, parent_a, parent_b, a, b))
        return None

    def _side_embedders(self, name: str, requirement: Any, parent: ComponentCandidate | None) -> set[str]:
        if parent is not None and base_values(parent.entry).get("embedder"):
            return {base_values(parent.entry)["embedder"]}
        matching = [
            c
            for c in self.provider.index.candidates(name)
            if requirement.requirement.matches(c.version, True)
        ]
        return {v for c in matching if (v := base_values(c.entry).get("embedder"))}

    def _side(
        self, requirement: Any, parent: ComponentCandidate | None, embedders: set[str]
    ) -> tuple[str, str]:
        """(who, what they stand on): ``comp_a 0.1.0`` and ``comp_a 0.1.0 (origin) was trained on ...``."""
        listed = " or ".join(short(e) for e in sorted(embedders))
        if parent is None:
            return f"your {requirement.text}", f"you asked for {requirement.text}, whose embedder is {listed}"
        story = (
            f"{parent} ({self.origin(parent)}) needs {requirement.text} and was trained on embedder {listed}"
        )
        return str(parent), story

    def _rejected(self, name: str, *sides: tuple[str, set[str]]) -> str:
        """Each published version of the embedder package, and the side whose embedder it is not."""
        found = []
        for candidate in self.provider.index.candidates(name)[:_MAX_VERSIONS]:
            value = base_values(candidate.entry).get("embedder")
            misfit = next((who for who, values in sides if value not in values), None)
            if value is not None and misfit is not None:
                found.append(f"{candidate.version} (embedder {short(value)}): not the base of {misfit}")
        return ", ".join(found) or "none published"

    def _clash_fix(
        self,
        name: str,
        parent_a: ComponentCandidate | None,
        parent_b: ComponentCandidate | None,
        a: set,
        b: set,
    ) -> str:
        fixes = []
        for party, wanted in ((parent_b, a), (parent_a, b)):
            if party is None:
                continue
            fits = [
                c
                for c in self.provider.allowed(party.name, [])
                if base_values(c.entry).get("embedder") in wanted
            ]
            if fits:
                versions = ", ".join(str(c.version) for c in fits[:_MAX_VERSIONS])
                fixes.append(
                    f"{party.name} {versions} is trained on the other's embedder: allow one of those"
                )
        if fixes:
            return "; ".join(fixes)
        return (
            "components trained on different embedders cannot be composed: drop one of them, or publish a "
            f"version of it trained on the other's version of {name}"
        )

    def _held_back(self, name: str, requirements: Sequence[Any]) -> str | None:
        """A hint naming a yanked or pre-release version that would otherwise have matched."""
        matching = [
            c
            for c in self.provider.index.candidates(name)
            if all(r.requirement.matches(c.version, prereleases=True) for r in requirements)
        ]
        yanked = [c for c in matching if c.entry.yanked]
        if yanked:
            reason = f" ({yanked[0].entry.yank_reason})" if yanked[0].entry.yank_reason else ""
            return (
                f"{name} {yanked[0].version} matches but is yanked{reason}; a yanked version is installed "
                f"only when pinned exactly ({name}@{yanked[0].version}) or by cclm-shelf.lock"
            )
        pre = [c for c in matching if is_prerelease(c.version)]
        if pre:
            return (
                f"{name} {pre[0].version} matches but is a pre-release; ask for it explicitly "
                f"({name}@{pre[0].version}) or allow pre-releases (--pre)"
            )
        return None

    def base_conflict(self, key: str, causes: Sequence[Any]) -> ResolutionError:
        label = BASE_LABELS[key]
        # The side the user pinned reads best last: "X needs A but Y, pinned by you, provides B".
        sides = sorted(_sides(causes), key=lambda side: self.origin(side[1][0]).startswith("pinned"))
        if len(sides) < 2:
            return self._base_exhausted(label, sides)
        (value_a, party_a), (value_b, party_b) = sides[0], sides[1]
        message = (
            f"{_versions(party_a)} needs {label} {short(value_a)} ({self.origin(party_a[0])}) but "
            f"{_versions(party_b)}, {self.origin(party_b[0])}, {_verb(party_b[0], key)} {short(value_b)}"
        )
        for value, party in sides[2:]:
            message += f"; and {_versions(party)} {_verb(party[0], key)} {short(value)}"
        return ResolutionError(message, hint=self._base_fix(key, sides))

    def _base_exhausted(
        self, label: str, sides: Sequence[tuple[str, list[ComponentCandidate]]]
    ) -> ResolutionError:
        """Every way out was tried and failed elsewhere: say which base the remaining versions share."""
        if not sides:
            return ResolutionError(
                f"no compatible set of components agrees on one {label}", hint=_GENERIC_HINT
            )
        value, party = sides[0]
        message = (
            f"no compatible set of components exists: {_versions(party)} ({self.origin(party[0])}) "
            f"needs {label} {short(value)}, and every other choice was ruled out"
        )
        return ResolutionError(message, hint=_GENERIC_HINT)

    def _base_fix(self, key: str, sides: Sequence[tuple[str, list[ComponentCandidate]]]) -> str:
        label = BASE_LABELS[key]
        (value_a, party_a), (value_b, party_b) = sides[0], sides[1]
        fixes = []
        for party, other_value in ((party_b, value_a), (party_a, value_b)):
            name = party[0].name
            fits = [c for c in self.provider.allowed(name, []) if _base_value(c, key) == other_value]
            if fits:
                versions = ", ".join(str(c.version) for c in fits[:_MAX_VERSIONS])
                fixes.append(
                    f"{name} {versions} {_verb(party[0], key)} {short(other_value)}: allow one of those"
                )
        if not fixes:
            return (
                f"no published version of {party_a[0].name} or {party_b[0].name} shares the other's {label}; "
                "drop one of them, or publish a version trained on the other's base"
            )
        return "; ".join(fixes)


def _sides(causes: Sequence[Any]) -> list[tuple[str, list[ComponentCandidate]]]:
    """Group the conflicting base requirements by value: [(value, [candidates needing it])], in order."""
    grouped: dict[str, list[ComponentCandidate]] = {}
    for cause in causes:
        requirement: BaseRequirement = cause.requirement
        party = grouped.setdefault(requirement.value, [])
        if cause.parent is not None and cause.parent not in party:
            party.append(cause.parent)
    return [(value, party) for value, party in grouped.items() if party]


def _labelled(candidate: ComponentCandidate) -> str:
    """A version with what holds it back: ``0.3.1 (yanked)``, ``0.4.0-rc.1 (pre-release)``."""
    if candidate.entry.yanked:
        return f"{candidate.version} (yanked)"
    if is_prerelease(candidate.version):
        return f"{candidate.version} (pre-release)"
    return str(candidate.version)


def _versions(party: Sequence[ComponentCandidate]) -> str:
    """``en_wiki_ner_1 0.3.0`` or ``en_wiki_ner_1 0.3.0 (also 0.2.0)`` for one name's candidates."""
    first = party[0]
    others = [str(c.version) for c in party[1:] if c.name == first.name]
    return f"{first}" + (f" (also {', '.join(others)})" if others else "")


def _verb(candidate: ComponentCandidate, key: str) -> str:
    return "provides" if key in PROVIDED_KEYS.get(candidate.entry.kind, ()) else "is built on"


def _base_value(candidate: ComponentCandidate, key: str) -> str | None:
    return base_values(candidate.entry).get(key)


def _is_pin(requirement: ComponentRequirement) -> bool:
    """``name@1.2.3`` or ``name==1.2.3``: one version and no other."""
    specifiers = requirement.requirement.specifier.specifiers
    exact_clause = len(specifiers) == 1 and specifiers[0].operator == "==" and not specifiers[0].is_wildcard
    return requirement.requirement.exact is not None or exact_clause


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _loosen_hint(name: str) -> str:
    return f"loosen one of the requirements on {name}, or publish a version that satisfies all of them"
