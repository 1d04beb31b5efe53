"""Resolve requirement strings into one compatible set of components, on resolvelib.

``resolve(requirements, source)`` picks the newest versions that satisfy every requirement *and* agree on
their base (embedder fingerprint, vocabulary fingerprint, input length); a locked version is kept unless
its name is upgraded. The algorithm does no I/O of its own: it reads ``source.entries(name)`` for the
names it touches, once each. A conflict becomes a ResolutionError explained in model terms
(``shelf.resolution.explain``), never a resolvelib traceback.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from resolvelib import Resolver
from resolvelib.resolvers import InconsistentCandidate, ResolutionImpossible, ResolutionTooDeep

from registry_index.requirements import Requirement, parse_requirement
from shelf.errors import ResolutionError
from shelf.resolution.explain import Explainer
from shelf.resolution.models import ComponentCandidate, ComponentRequirement
from shelf.resolution.provider import CandidateIndex, EntrySource, Policy, ShelfProvider
from shelf.resolution.reporter import ShelfReporter

MAX_ROUNDS = 20_000

if TYPE_CHECKING:
    from registry_index.index import IndexEntry
    from registry_index.manifest import Base


@dataclass(frozen=True)
class Edge:
    """``parent`` required ``child`` through ``requirement``; parent None means the user asked."""

    parent: str | None
    child: str
    requirement: str


@dataclass(frozen=True)
class Resolution:
    """The chosen set: ``components`` sorted by name, the dependency ``graph`` and the agreed ``base``."""

    components: dict[str, IndexEntry]
    graph: tuple[Edge, ...] = ()
    base: Base | None = None
    stats: Mapping[str, int] = field(default_factory=dict, compare=False)

    def versions(self) -> dict[str, str]:
        return {name: str(entry.version) for name, entry in self.components.items()}

    def roots(self) -> tuple[str, ...]:
        """The names the user asked for, sorted."""
        return tuple(sorted({e.child for e in self.graph if e.parent is None}))

    def dependencies(self, name: str) -> tuple[Edge, ...]:
        """What ``name`` requires (for ``tree``)."""
        return tuple(e for e in self.graph if e.parent == name)

    def dependents(self, name: str) -> tuple[Edge, ...]:
        """Who requires ``name`` (for ``why``); an edge with parent None is the user."""
        return tuple(e for e in self.graph if e.child == name)

    def why(self, name: str) -> list[list[Edge]]:
        """Every chain of edges from the user down to ``name`` (cycles cut)."""
        chains: list[list[Edge]] = []
        stack: list[tuple[str, list[Edge]]] = [(name, [])]
        while stack:
            current, tail = stack.pop()
            for edge in self.dependents(current):
                if edge.parent is None:
                    chains.append([edge, *tail])
                elif all(edge.parent != e.child for e in tail) and edge.parent != name:
                    stack.append((edge.parent, [edge, *tail]))
        return sorted(chains, key=lambda chain: [e.child for e in chain])


def resolve(
    requirements: Sequence[Requirement | str],
    source: EntrySource,
    *,
    locked: Mapping[str, str] | None = None,
    upgrade: bool | Iterable[str] = False,
    allow_prereleases: bool = False,
) -> Resolution:
    """Resolve ``requirements`` against ``source``; raise ResolutionError when no compatible set exists.

    ``locked`` maps names to versions from the lockfile: those versions are preferred (and may be yanked)
    unless ``upgrade`` is True or names them. Pre-releases are considered only when a requirement names one,
    pins one exactly, or ``allow_prereleases`` is set.
    """
    roots = [_root_requirement(r) for r in requirements]
    policy = Policy(dict(locked or {}), _upgrade_set(upgrade), allow_prereleases)
    reporter = ShelfReporter()
    direct = {r.identifier for r in roots}
    provider = ShelfProvider(CandidateIndex(source), policy, direct, lambda: reporter.backtracks)
    explainer = Explainer(provider, reporter, lambda: _known_names(source))
    for root in roots:
        if not provider.index.candidates(root.identifier):
            raise explainer.unknown_name(root.identifier, None)
    return _build(_run(provider, reporter, roots, explainer), reporter)


def _run(
    provider: ShelfProvider, reporter: ShelfReporter, roots: list[ComponentRequirement], explainer: Explainer
) -> Any:
    """resolvelib's result, or a ResolutionError in model terms (never resolvelib's own exception)."""
    try:
        return Resolver(provider, reporter).resolve(roots, max_rounds=MAX_ROUNDS)
    except ResolutionImpossible as e:
        raise explainer.explain(list(e.causes)) from None
    except ResolutionTooDeep:
        raise ResolutionError(
            f"gave up after {MAX_ROUNDS} rounds of backtracking",
            hint="narrow the requirements (e.g. add lower bounds) so fewer combinations need trying",
        ) from None
    except InconsistentCandidate as e:  # a bug in the provider, but still not a traceback for the user
        raise ResolutionError(f"the resolver reached an inconsistent state: {e}") from None


def _root_requirement(requirement: Requirement | str) -> ComponentRequirement:
    if isinstance(requirement, str):
        return ComponentRequirement(parse_requirement(requirement), requirement.strip())
    return ComponentRequirement(requirement, str(requirement))


def _upgrade_set(upgrade: bool | Iterable[str]) -> bool | frozenset[str]:
    if isinstance(upgrade, bool):
        return upgrade
    return frozenset(upgrade)


def _known_names(source: Any) -> tuple[str, ...]:
    """Every name the source knows, for "did you mean"; sources that cannot list names give none."""
    names = getattr(source, "names", None)
    if names is None:
        return ()
    try:
        return tuple(names())
    except Exception:  # listing is a courtesy for error messages; it must not mask the real error
        return ()


def _build(result: Any, reporter: ShelfReporter) -> Resolution:
    chosen = {
        name: candidate
        for name, candidate in result.mapping.items()
        if isinstance(candidate, ComponentCandidate)
    }
    components = {name: chosen[name].entry for name in sorted(chosen)}
    edges = {
        Edge(info.parent.identifier if info.parent is not None else None, name, str(info.requirement))
        for name in chosen
        for info in result.criteria[name].information
    }
    graph = tuple(sorted(edges, key=lambda e: (e.parent or "", e.child, e.requirement)))
    stats = {"rounds": reporter.rounds, "backtracks": reporter.backtracks, "pins": reporter.pins}
    return Resolution(components, graph, _agreed_base(components), stats)


def _agreed_base(components: Mapping[str, IndexEntry]) -> Base | None:
    """The base every component agrees on (resolution guarantees agreement), or None if none has one."""
    return next((e.base for e in components.values() if e.base is not None), None)


__all__ = ["Edge", "Resolution", "resolve"]
