"""Yanking and unyanking a published version: one pushed commit that changes its index line.

A yanked version stays published (a version never changes): ranges skip it, exact and lockfile pins still
install it with a warning.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from registry_index import layout
from registry_index.index import IndexEntry, format_index_file, with_yanked
from registry_index.versions import format_version, parse_version
from shelf.errors import NotFoundError, PublishError, PushRejected, translated
from shelf.source import ShelfSource

if TYPE_CHECKING:
    from collections.abc import Iterable


@dataclass(frozen=True)
class YankOutcome:
    """What ``set_yanked`` did: the version's state now, and the commit (None when nothing changed)."""

    version: str
    yanked: bool
    reason: str | None
    commit: str | None

    def describe(self, name: str, url: str) -> str:
        if self.commit is None:
            state = f"yanked: {self.reason}" if self.yanked else "not yanked"
            return f"{name} {self.version} on {url} is already {state}; nothing changed"
        if self.yanked:
            return f"yanked {name} {self.version} on {url}: {self.reason}"
        return f"unyanked {name} {self.version} on {url}: ranges may pick it again"


def yank(source: ShelfSource, name: str, version: str, reason: str) -> str | None:
    """Mark a published version as yanked in the index; the resolver skips it from then on."""
    return set_yanked(source, name, version, reason).commit


@translated()
def set_yanked(source: ShelfSource, name: str, version: str, reason: str | None) -> YankOutcome:
    """Yank ``version`` (``reason`` given) or unyank it (``reason`` None) with one pushed index commit.

    Yanking a yanked version again keeps the earlier reason in front of the new one, so whoever reads
    ``show`` still sees why it was first withdrawn.
    """
    from shelf.publish import MAX_PUSH_ATTEMPTS, _retry_or_raise, check_online

    check_online(source, "yanking on" if reason is not None else "unyanking on")
    version = format_version(parse_version(version))
    for _attempt in range(MAX_PUSH_ATTEMPTS):
        source.refresh()
        current = _published(source, name, version)
        wanted = _merged_reason(current, reason)
        if current.yanked == (reason is not None) and current.yank_reason == wanted:
            return YankOutcome(version, current.yanked, current.yank_reason, None)
        updated = with_yanked(source.index.entries(name), version, wanted, yanked=reason is not None)
        what = f"Yank {name} {version}: {wanted}" if reason is not None else f"Unyank {name} {version}"
        try:
            commit = source.mirror.commit_and_push(
                {layout.index_path(name): format_index_file(updated)},
                what,
                parent=source.head,
                branch=source.branch,
            )
        except PushRejected as e:
            _retry_or_raise(e, f"{what.split(':')[0].lower()}")
            source.mark_stale()
            continue
        source.reread()
        return YankOutcome(version, reason is not None, wanted, commit)
    raise PublishError(f"gave up changing {name} {version}: the shelf kept moving", hint="try again")


def _published(source: ShelfSource, name: str, version: str) -> IndexEntry:
    for entry in source.index.entries(name):
        if entry.version == version:
            return entry
    raise NotFoundError(f"{name} {version} is not published on {source.url}", hint=f"cclm-shelf show {name}")


def _merged_reason(current: IndexEntry, reason: str | None) -> str | None:
    """The reason to record: a second yank keeps the first reason visible ("first; then: second")."""
    if reason is None or not current.yanked or not current.yank_reason:
        return reason
    if reason == current.yank_reason or current.yank_reason.endswith(f"; then: {reason}"):
        return current.yank_reason
    return f"{current.yank_reason}; then: {reason}"


def yank_warning(entry: IndexEntry, source: ShelfSource) -> str | None:
    """``mlm 0.2.0 is yanked: reason`` for a yanked entry (offline: as of when the index was read)."""
    if not entry.yanked:
        return None
    when = ""
    if source.offline:
        when = f" (as of {source.as_of()}, offline)"
    elif not source.is_fresh():
        when = f" (as of {source.as_of()}; the shelf did not answer)"
    return f"{entry.name} {entry.version} is yanked{when}: {entry.yank_reason or 'no reason given'}"


def yank_warnings(found: Iterable[tuple[IndexEntry, ShelfSource]]) -> list[str]:
    return [w for entry, source in found if (w := yank_warning(entry, source)) is not None]
