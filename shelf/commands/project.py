"""``add``, ``remove``, ``lock``, ``tree`` and ``why``: a project's stack, resolved and pinned."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click

from shelf.commands._common import emit, json_option, note, open_shelf, project, settings
from shelf.locking import lock_path, read_lock

if TYPE_CHECKING:
    from shelf.api import Shelf
    from shelf.lockfile import Lockfile
    from shelf.project import Project

__all__ = ["ensure_lock", "lock_path", "read_lock"]  # bundling and installing use them


def _editing_command(name: str, argument: str, no_install_help: str) -> Callable[[Callable], click.Command]:
    """``add`` and ``remove``: a list of names, ``--no-install``, ``--json``, the context."""

    def decorate(function: Callable) -> click.Command:
        function = click.pass_context(function)
        function = json_option(function)
        function = click.option("--no-install", is_flag=True, help=no_install_help)(function)
        function = click.argument(argument, nargs=-1, required=True)(function)
        return click.command(name)(function)

    return decorate


def _required_project() -> Project:
    proj = project(required=True)
    assert proj is not None  # required=True raised otherwise
    return proj


def ensure_lock(ctx: click.Context, frozen: bool = False) -> tuple[Shelf, Lockfile]:
    """The project's shelf and an up-to-date lockfile (locking first unless ``frozen``)."""
    from shelf import locking

    proj = _required_project()
    shelf = open_shelf(ctx, proj)
    if not frozen and not locking.is_fresh(proj, read_lock(proj)):
        note(f"locking {len(proj.requirement_strings)} requirement(s)")
    return shelf, locking.ensure_lock(shelf, proj, frozen=frozen)


@_editing_command("add", "requirements", "Only edit the project file and the lockfile.")
def add_cmd(ctx, requirements, no_install, as_json):
    """Add requirements to the project, lock, and install.

    \b
    Starts a cclm-shelf.toml here if there is no project yet (with --shelf recorded in it). If the new
    set does not resolve or does not install, the project file and lockfile are left as they were.

    \b
    Example:
      cclm-shelf add 'en_wiki_ner_1>=0.3' en_wiki_clm_1@v0.2.1
    """
    from shelf import locking

    existing = project()
    proj = existing or _start_project(ctx)
    change = locking.add(
        proj,
        requirements,
        open_shelf=lambda p: open_shelf(ctx, p),
        install=not no_install,
        created=existing is None,
        link_mode=_link_mode(proj),
    )
    proj, lock, installed = change.project, change.lock, change.installed
    for warning in change.warnings:
        note(f"warning: {warning}")
    lines = [
        f"added {', '.join(requirements)} to {proj.path.name}; locked {len(lock.components)} component(s)"
    ]
    lines += [f"installed {name} {version} -> {proj.target / name}" for name, version in installed]
    data = {
        "added": list(requirements),
        "project": str(proj.path),
        "lockfile": str(lock_path(proj)),
        "locked": _pin_rows(lock.pins()),
        "installed": _pin_rows(dict(installed)),
        "target": str(proj.target),
    }
    emit(as_json, data, lines)


def _pin_rows(pins: dict[str, str]) -> list[dict[str, str]]:
    return [{"name": name, "version": version} for name, version in sorted(pins.items())]


def _link_mode(proj) -> str | None:
    from shelf.linking import choose_link_mode

    return choose_link_mode(None, proj.link_mode)


def _start_project(ctx: click.Context) -> Project:
    from shelf.project import start_project

    proj = start_project(Path.cwd(), settings(ctx).shelf)
    note(f"started {proj.path}")
    return proj


@_editing_command("remove", "names", "Keep the install folder as it is.")
def remove_cmd(ctx, names, no_install, as_json):
    """Remove requirements from the project, re-lock, and uninstall what is no longer needed."""
    from shelf import locking

    change = locking.remove(
        _required_project(), names, open_shelf=lambda p: open_shelf(ctx, p), install=not no_install
    )
    proj, lock = change.project, change.lock
    lines = [f"removed {', '.join(names)}; locked {len(lock.components)} component(s)"]
    lines += [
        f"uninstalled {name}" + (f" (edited files moved to {kept})" if kept else "")
        for name, _version, kept in change.uninstalled
    ]
    uninstalled = [{"name": name, "version": version} for name, version, _kept in change.uninstalled]
    data = {
        "removed": list(names),
        "project": str(proj.path),
        "lockfile": str(lock_path(proj)),
        "locked": _pin_rows(lock.pins()),
        "uninstalled": uninstalled,
        "target": str(proj.target),
    }
    emit(as_json, data, lines)


@click.command("lock")
@click.option("--upgrade", is_flag=True, help="Ignore the current pins: take the newest compatible set.")
@click.option(
    "--upgrade-package",
    "upgrade_packages",
    multiple=True,
    metavar="NAME",
    help="Let NAME (repeatable) move to its newest compatible version; keep the rest.",
)
@click.option("--check", is_flag=True, help="Change nothing; exit 1 when the lockfile is missing or stale.")
@json_option
@click.pass_context
def lock_cmd(ctx, upgrade, upgrade_packages, check, as_json):
    """Resolve the project's requirements into cclm-shelf.lock (exact versions, digests, file hashes)."""
    from shelf.locking import resolve_and_lock

    proj = _required_project()
    previous = read_lock(proj)
    if check:
        stale = previous is None or previous.is_stale(proj.requirement_strings, proj.shelves)
        state = "missing" if previous is None else ("stale" if stale else "up to date")
        emit(as_json, {"lockfile": str(lock_path(proj)), "state": state}, [f"{lock_path(proj)} is {state}"])
        if stale:
            raise SystemExit(1)
        return
    from shelf import lockdiff

    _check_upgrade_names(proj, previous, upgrade_packages)
    shelf = open_shelf(ctx, proj)
    lock, _ = resolve_and_lock(shelf, proj, previous, upgrade=upgrade or set(upgrade_packages))
    old = previous.pins() if previous else {}
    changes = lockdiff.changes(old, lock.pins(), shelf, upgrading=upgrade or bool(upgrade_packages))
    if upgrade_packages and not upgrade:
        changes += lockdiff.kept(shelf, list(proj.requirement_strings), lock.pins(), upgrade_packages)
    warnings = shelf.locked_yank_warnings(lock.components)
    for warning in warnings:
        note(f"warning: {warning}")
    data = {
        "lockfile": str(lock_path(proj)),
        "components": _pin_rows(lock.pins()),
        "changes": [c.to_dict() for c in changes],
        "warnings": warnings,
    }
    lines = [f"locked {len(lock.components)} component(s) in {lock_path(proj)}", *(c.line() for c in changes)]
    emit(as_json, data, lines)


def _check_upgrade_names(proj, previous, names) -> None:
    """Refuse an --upgrade-package NAME neither the project nor its lockfile knows: a typo locks nothing."""
    from shelf.errors import NotFoundError

    known = {r.name for r in proj.requirements} | set(previous.pins() if previous else ())
    unknown = sorted(set(names) - known)
    if unknown:
        raise NotFoundError(
            f"--upgrade-package {unknown[0]}: not a component of this project or its lockfile",
            hint=f"it has: {', '.join(sorted(known)) or 'nothing yet'} (see `cclm-shelf tree`)",
        )


def _locked_entries(ctx):
    """The project's lock and the index entries of what it pins (read, never re-resolved)."""
    shelf, lock = ensure_lock(ctx)
    return lock, {c.name: shelf.source_for(c.source).entry(c.name, c.version) for c in lock.components}


def _children(entry, entries) -> list[str]:
    from registry_index.requirements import parse_requirement

    return sorted(n for n in (parse_requirement(r).name for r in entry.requires) if n in entries)


@click.command("tree")
@json_option
@click.pass_context
def tree_cmd(ctx, as_json):
    """Show the locked stack: what requires what, each base, and the composed output size."""
    from registry_index.requirements import parse_requirement

    proj = _required_project()
    _lock, entries = _locked_entries(ctx)
    roots = sorted({parse_requirement(r).name for r in proj.requirement_strings})
    lines: list[str] = []
    for root in roots:
        _tree_lines(root, entries, "", lines, set())
    dims = {n: e.provides.get("output_dim") for n, e in entries.items() if e.kind in ("component", "bundle")}
    total = sum(d for d in dims.values() if isinstance(d, int))
    base = next((e.base for e in entries.values() if e.base is not None), None)
    lines.append(
        f"composed output dimension: {total} ({' + '.join(f'{n} {d}' for n, d in sorted(dims.items()))})"
    )
    data = {
        "roots": roots,
        "components": {
            n: {
                "version": e.version,
                "kind": e.kind,
                "requires": _children(e, entries),
                "output_dim": e.provides.get("output_dim"),
                "base": _base_dict(e.base),
            }
            for n, e in entries.items()
        },
        "composed_output_dim": total,
        "base": _base_dict(base),
    }
    emit(as_json, data, lines)


def _base_dict(base) -> dict | None:
    if base is None:
        return None
    return {
        "embedder": base.embedder,
        "vocab": base.vocab,
        "max_input_length": base.max_input_length,
        "n_chars": base.n_chars,
    }


def _tree_lines(name: str, entries: dict, indent: str, lines: list[str], seen: set[str]) -> None:
    entry = entries[name]
    extra = []
    if entry.base is not None:
        extra.append(f"base {entry.base.embedder[:19]}… len {entry.base.max_input_length}")
    if "output_dim" in entry.provides:
        extra.append(f"out {entry.provides['output_dim']}")
    lines.append(f"{indent}{name} {entry.version} [{entry.kind}] {'  '.join(extra)}")
    if name in seen:
        return
    for child in _children(entry, entries):
        _tree_lines(child, entries, indent + "  ", lines, seen | {name})


@click.command("why")
@click.argument("name")
@json_option
@click.pass_context
def why_cmd(ctx, name, as_json):
    """Show the chains of requirements that bring NAME into the stack."""
    from registry_index.requirements import parse_requirement
    from shelf.errors import NotFoundError

    proj = _required_project()
    _lock, entries = _locked_entries(ctx)
    if name not in entries:
        raise NotFoundError(f"{name} is not in the locked stack", hint="cclm-shelf tree")
    roots = {parse_requirement(r).name: r for r in proj.requirement_strings}
    chains = _chains(name, roots, entries)
    lines = [" -> ".join(["you"] + [f"{n} {entries[n].version}" for n in chain]) for chain in chains]
    emit(as_json, {"name": name, "chains": chains}, lines)


def _chains(name: str, roots: dict[str, str], entries: dict) -> list[list[str]]:
    chains, stack = [], [[name]]
    while stack:
        chain = stack.pop()
        head = chain[0]
        if head in roots:
            chains.append(chain)
        for parent, entry in entries.items():
            if parent not in chain and head in _children(entry, entries):
                stack.append([parent, *chain])
    return sorted(chains)
