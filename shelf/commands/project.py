"""``add``, ``remove``, ``lock``, ``tree`` and ``why``: a project's stack, resolved and pinned."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import click

from shelf import constants
from shelf.commands._common import emit, json_option, note, open_shelf, project, settings
from shelf.fsutil import atomic_write


def lock_path(proj) -> Path:
    return proj.root / constants.LOCK_FILE


def read_lock(proj):
    from shelf.lockfile import load_lockfile

    path = lock_path(proj)
    return load_lockfile(path) if path.is_file() else None


def resolve_and_lock(shelf, proj, previous=None, upgrade=False):
    """Resolve the project's requirements (keeping previous pins unless upgraded) and write the lock."""
    from shelf.known_lockfiles import remember_lockfile
    from shelf.lockfile import Lockfile, write_lockfile

    locked = previous.pins() if previous else {}
    resolution = shelf.resolve(list(proj.requirement_strings), locked=locked, upgrade=upgrade)
    components, _manifests = shelf.pin(resolution)
    lock = Lockfile.build(proj.requirement_strings, proj.shelves, components)
    write_lockfile(lock, lock_path(proj))
    remember_lockfile(shelf.cache_dir, lock_path(proj))
    return lock, resolution


def ensure_lock(ctx, frozen: bool = False):
    """The project's shelf and an up-to-date lockfile (locking first unless ``frozen``)."""
    from shelf.errors import LockfileError

    proj = project(required=True)
    shelf = open_shelf(ctx, proj)
    lock = read_lock(proj)
    fresh = lock is not None and not lock.is_stale(proj.requirement_strings, proj.shelves)
    if fresh:
        from shelf.known_lockfiles import remember_lockfile

        remember_lockfile(shelf.cache_dir, lock_path(proj))
        return shelf, lock
    if frozen:
        what = "missing" if lock is None else "stale (the requirements changed)"
        raise LockfileError(f"{lock_path(proj)} is {what}", hint="run `cclm-shelf lock`, then install again")
    note(f"locking {len(proj.requirement_strings)} requirement(s)")
    lock, _ = resolve_and_lock(shelf, proj, previous=lock)
    return shelf, lock


@click.command("add")
@click.argument("requirements", nargs=-1, required=True)
@click.option("--no-install", is_flag=True, help="Only edit the project file and the lockfile.")
@json_option
@click.pass_context
def add_cmd(ctx, requirements, no_install, as_json):
    """Add requirements to the project, lock, and install.

    \b
    Starts a cclm-shelf.toml here if there is no project yet (with --shelf recorded in it). If the new
    set does not resolve or does not install, the project file and lockfile are left as they were.

    \b
    Example:
      cclm-shelf add 'en_wiki_ner_1>=0.3' en_wiki_clm_1@v0.2.1
    """
    from shelf.project import add_requirements

    existing = project()
    proj = existing or _start_project(ctx)
    with _rollback_on_failure(proj, created=existing is None) as saved:
        proj = add_requirements(proj.path, requirements)
        shelf = open_shelf(ctx, proj)
        lock, _ = resolve_and_lock(shelf, proj, previous=read_lock_quiet(saved.lock))
        mode = _link_mode(proj)
        report = shelf.install_locked(lock, target=proj.target, link_mode=mode) if not no_install else None
    installed = report.installed if report else []
    for warning in report.warnings if report else shelf.locked_yank_warnings(lock.components):
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


@dataclass(frozen=True)
class _Saved:
    project: bytes | None
    lock: bytes | None


@contextmanager
def _rollback_on_failure(proj, created: bool = False) -> Iterator[_Saved]:
    """Put the project file and the lockfile back as they were if the block fails (or is interrupted)."""
    lock = lock_path(proj)
    saved = _Saved(None if created else proj.path.read_bytes(), lock.read_bytes() if lock.is_file() else None)
    try:
        yield saved
    except BaseException:
        _restore(proj.path, saved.project)
        _restore(lock, saved.lock)
        raise


def read_lock_quiet(data: bytes | None):
    from shelf.lockfile import loads_lockfile

    return loads_lockfile(data.decode("utf-8")) if data else None


def _restore(path: Path, data: bytes | None) -> None:
    if data is None:
        path.unlink(missing_ok=True)
    else:
        atomic_write(path, data)


def _start_project(ctx):
    from shelf.project import Project

    path = Path.cwd() / constants.PROJECT_FILE
    shelf = settings(ctx).shelf
    lines = ["# The components this project stands on (see `cclm-shelf --help`).\n"]
    if shelf:
        import json

        lines.append(f"shelves = [{json.dumps(shelf)}]\n")
    lines.append("requires = []\n")
    atomic_write(path, "".join(lines))
    note(f"started {path}")
    return Project.load(path)


@click.command("remove")
@click.argument("names", nargs=-1, required=True)
@click.option("--no-install", is_flag=True, help="Keep the install folder as it is.")
@json_option
@click.pass_context
def remove_cmd(ctx, names, no_install, as_json):
    """Remove requirements from the project, re-lock, and uninstall what is no longer needed."""
    from shelf.install import InstallTarget, uninstall
    from shelf.project import remove_requirement

    proj = project(required=True)
    with _rollback_on_failure(proj):
        for name in names:
            proj = remove_requirement(proj.path, name)
        shelf = open_shelf(ctx, proj)
        lock, _ = resolve_and_lock(shelf, proj, previous=read_lock(proj))
    lines = [f"removed {', '.join(names)}; locked {len(lock.components)} component(s)"]
    uninstalled = []
    if not no_install:
        keep = set(lock.pins())
        for name in sorted(InstallTarget(proj.target).read_record()["components"]):
            if name not in keep:
                version, kept = uninstall(proj.target, name)
                uninstalled.append({"name": name, "version": version})
                lines.append(f"uninstalled {name}" + (f" (edited files moved to {kept})" if kept else ""))
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
    proj = project(required=True)
    previous = read_lock(proj)
    if check:
        stale = previous is None or previous.is_stale(proj.requirement_strings, proj.shelves)
        state = "missing" if previous is None else ("stale" if stale else "up to date")
        emit(as_json, {"lockfile": str(lock_path(proj)), "state": state}, [f"{lock_path(proj)} is {state}"])
        if stale:
            raise SystemExit(1)
        return
    from shelf import lockdiff

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

    proj = project(required=True)
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

    proj = project(required=True)
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
