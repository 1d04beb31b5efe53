"""A project's workflow: resolve and lock, make sure the lock is current, add and remove with rollback.

The CLI (``add``, ``remove``, ``lock``, ``install``) is a thin layer over these functions, and Python users
reach them as methods of ``shelf.project.Project`` (``project.lock(shelf)``, ``project.add(...)``)::

    from shelf import Project, Shelf

    project = Project.load(".")
    lock = project.lock(Shelf(shelves=list(project.shelf_locations())))

Every change to the project file and its lockfile is all or nothing: if resolving, locking or installing
fails (or is interrupted), both files are put back as they were (``rollback``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shelf import constants
from shelf.errors import LockfileError
from shelf.fsutil import atomic_write

if TYPE_CHECKING:
    from shelf.api import Shelf
    from shelf.lockfile import Lockfile
    from shelf.project import Project

ShelfOpener = Callable[["Project"], "Shelf"]


@dataclass(frozen=True)
class Change:
    """What ``add`` or ``remove`` did: the edited project, its new lock, and the install folder's changes."""

    project: Project
    lock: Lockfile
    installed: list[tuple[str, str]] = field(default_factory=list)  # (name, version)
    uninstalled: list[tuple[str, str, Path | None]] = field(default_factory=list)  # + where edits went
    warnings: list[str] = field(default_factory=list)  # e.g. a pinned version its shelf has yanked


def lock_path(project: Project) -> Path:
    return project.root / constants.LOCK_FILE


def read_lock(project: Project) -> Lockfile | None:
    """The project's lockfile, or None when there is none yet."""
    from shelf.lockfile import load_lockfile

    path = lock_path(project)
    return load_lockfile(path) if path.is_file() else None


def default_shelf(project: Project) -> Shelf:
    """A ``Shelf`` for the project's own shelves (the default shelf when it names none)."""
    from shelf.api import Shelf

    shelves = list(project.shelf_locations())
    return Shelf(shelves=shelves) if shelves else Shelf()


def resolve_and_lock(
    shelf: Shelf, project: Project, previous: Lockfile | None = None, upgrade: bool | set[str] = False
) -> tuple[Lockfile, Any]:
    """Resolve the requirements (keeping ``previous`` pins unless upgraded), write the lock; return both."""
    from shelf.known_lockfiles import remember_lockfile
    from shelf.lockfile import Lockfile, write_lockfile

    locked = previous.pins() if previous else {}
    resolution = shelf.resolve(list(project.requirement_strings), locked=locked, upgrade=upgrade)
    components, _manifests = shelf.pin(resolution)
    lock = Lockfile.build(project.requirement_strings, project.shelves, components)
    write_lockfile(lock, lock_path(project))
    remember_lockfile(shelf.cache_dir, lock_path(project))
    return lock, resolution


def is_fresh(project: Project, lock: Lockfile | None) -> bool:
    return lock is not None and not lock.is_stale(project.requirement_strings, project.shelves)


def ensure_lock(shelf: Shelf, project: Project, *, frozen: bool = False) -> Lockfile:
    """The project's lock, locking first when it is missing or stale (``frozen``: LockfileError instead)."""
    lock = read_lock(project)
    if lock is not None and is_fresh(project, lock):
        from shelf.known_lockfiles import remember_lockfile

        remember_lockfile(shelf.cache_dir, lock_path(project))
        return lock
    if frozen:
        what = "missing" if lock is None else "stale (the requirements changed)"
        raise LockfileError(
            f"{lock_path(project)} is {what}", hint="run `cclm-shelf lock`, then install again"
        )
    lock, _ = resolve_and_lock(shelf, project, previous=lock)
    return lock


def add(
    project: Project,
    requirements: Iterable[str],
    *,
    open_shelf: ShelfOpener = default_shelf,
    install: bool = True,
    created: bool = False,
    link_mode: str | None = None,
) -> Change:
    """Add (or replace, by name) requirements, lock, and install; on any failure nothing changed.

    ``created``: the project file was made for this call, so a failure removes it again.
    """
    from shelf.lockfile import loads_lockfile
    from shelf.project import add_requirements

    with rollback(project, created=created) as saved:
        edited = add_requirements(project.path, list(requirements))
        shelf = open_shelf(edited)
        previous = loads_lockfile(saved.lock.decode("utf-8")) if saved.lock else None
        lock, _ = resolve_and_lock(shelf, edited, previous=previous)
        report = shelf.install_locked(lock, target=edited.target, link_mode=link_mode) if install else None
    warnings = report.warnings if report else shelf.locked_yank_warnings(lock.components)
    return Change(edited, lock, installed=list(report.installed if report else []), warnings=warnings)


def remove(
    project: Project, names: Iterable[str], *, open_shelf: ShelfOpener = default_shelf, install: bool = True
) -> Change:
    """Remove requirements, re-lock, uninstall what the lock no longer pins; on failure nothing changed."""
    from shelf.project import remove_requirement

    edited = project
    with rollback(project):
        for name in names:
            edited = remove_requirement(edited.path, name)
        shelf = open_shelf(edited)
        lock, _ = resolve_and_lock(shelf, edited, previous=read_lock(edited))
    uninstalled = _uninstall_unpinned(edited.target, set(lock.pins())) if install else []
    return Change(edited, lock, uninstalled=uninstalled)


def _uninstall_unpinned(target: Path, keep: set[str]) -> list[tuple[str, str, Path | None]]:
    from shelf.install import InstallTarget, uninstall

    unpinned = sorted(set(InstallTarget(target).read_record()["components"]) - keep)
    return uninstall(target, unpinned)


@dataclass(frozen=True)
class Saved:
    """The bytes of the project file and the lockfile before a change (None: the file did not exist)."""

    project: bytes | None
    lock: bytes | None


@contextmanager
def rollback(project: Project, created: bool = False) -> Iterator[Saved]:
    """Put the project file and the lockfile back as they were if the block fails (or is interrupted)."""
    lock = lock_path(project)
    saved = Saved(
        None if created else project.path.read_bytes(), lock.read_bytes() if lock.is_file() else None
    )
    try:
        yield saved
    except BaseException:
        _restore(project.path, saved.project)
        _restore(lock, saved.lock)
        raise


def _restore(path: Path, data: bytes | None) -> None:
    if data is None:
        path.unlink(missing_ok=True)
    else:
        atomic_write(path, data)
