"""A resolvelib reporter that remembers who asked for what, so a conflict can be told as a chain."""

from __future__ import annotations

from typing import Any

from resolvelib.reporters import BaseReporter

from shelf.resolution.models import AnyCandidate, AnyRequirement, ComponentCandidate


class ShelfReporter(BaseReporter):
    """Records every (requirement, parent) pair the resolver added, plus counts for benchmarks."""

    def __init__(self) -> None:
        self.requested: dict[str, list[tuple[AnyRequirement, ComponentCandidate | None]]] = {}
        self._seen: set[tuple[AnyRequirement, ComponentCandidate | None]] = set()
        self.rounds = 0
        self.backtracks = 0
        self.pins = 0

    def starting_round(self, index: int) -> None:
        self.rounds = index + 1

    def adding_requirement(self, requirement: AnyRequirement, parent: AnyCandidate | None) -> None:
        pair = (requirement, parent if isinstance(parent, ComponentCandidate) else None)
        if pair not in self._seen:  # a set: backtracking adds the same pairs again and again
            self._seen.add(pair)
            self.requested.setdefault(requirement.identifier, []).append(pair)

    def resolving_conflicts(self, causes: Any) -> None:
        self.backtracks += 1

    def pinning(self, candidate: AnyCandidate) -> None:
        self.pins += 1

    def requirers(self, name: str) -> list[tuple[AnyRequirement, ComponentCandidate | None]]:
        """Every (requirement, parent) seen for ``name``, user requirements (parent None) first."""
        return sorted(self.requested.get(name, []), key=lambda pair: pair[1] is not None)
