"""What a new lock changed against the old one, and why, in the words ``cclm-shelf lock`` prints.

``+ x 0.2.0`` added, ``- x 0.1.0`` dropped, ``~ x 0.2.0 -> 0.1.0 (0.2.0 yanked: reason)`` changed with its
cause, and ``= x 0.1.0 kept: ...`` for a name ``--upgrade-package`` could not move to its newest version,
with the conflict that holds it back.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from registry_index.versions import parse_version

if TYPE_CHECKING:
    from registry_index.index import IndexEntry
    from shelf.api import Shelf


@dataclass(frozen=True)
class Change:
    """One name's pin: ``old`` None when added, ``new`` None when removed, both equal when kept."""

    name: str
    old: str | None
    new: str | None
    reason: str | None = None

    def line(self) -> str:
        if self.old is None:
            return f"+ {self.name} {self.new}"
        if self.new is None:
            return f"- {self.name} {self.old}"
        if self.old == self.new:
            return f"= {self.name} {self.old} kept: {self.reason}"
        return f"~ {self.name} {self.old} -> {self.new}" + (f" ({self.reason})" if self.reason else "")

    def to_dict(self) -> dict[str, str | None]:
        return asdict(self)


def changes(old: Mapping[str, str], new: Mapping[str, str], shelf: Shelf, upgrading: bool) -> list[Change]:
    """Every added, changed or removed pin, a changed one with why it moved."""
    found = []
    for name, version in new.items():
        before = old.get(name)
        if before is None:
            found.append(Change(name, None, version))
        elif before != version:
            found.append(
                Change(name, before, version, _why_changed(before, shelf.index.entries(name), upgrading))
            )
    return found + [Change(name, version, None) for name, version in old.items() if name not in new]


def _why_changed(before: str, entries: Sequence[IndexEntry], upgrading: bool) -> str:
    entry = next((e for e in entries if e.version == before), None)
    if entry is None:
        return f"{before} is no longer on the shelf"
    if entry.yanked:
        return f"{before} yanked: {entry.yank_reason or 'no reason given'}"
    return "upgraded" if upgrading else f"{before} no longer fits the requirements"


def kept(
    shelf: Shelf, requirements: Sequence[str], new: Mapping[str, str], names: Sequence[str]
) -> list[Change]:
    """For each name asked to upgrade that stayed below its newest release: what holds it back."""
    from shelf.errors import ResolutionError

    lines = []
    for name in names:
        current = new.get(name)
        newest = _newest_release(shelf.index.entries(name))
        if current is None or newest is None or parse_version(newest) <= parse_version(current):
            continue
        try:
            shelf.resolve([*requirements, f"{name}=={newest}"], locked=dict(new), upgrade={name})
        except ResolutionError as e:
            lines.append(Change(name, current, current, f"{newest} cannot join the set: {e.message}"))
        else:
            lines.append(Change(name, current, current, f"{newest} resolves too; lock --upgrade takes it"))
    return lines


def _newest_release(entries: Sequence[IndexEntry]) -> str | None:
    """The newest version a range would pick: not yanked, not a pre-release."""
    releases = [e.version for e in entries if not e.yanked and not parse_version(e.version).prerelease]
    return max(releases, key=parse_version, default=None)
