"""What the subcommands share: the settings, the shelf they act on, the project, and how they print."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from shelf import constants
from shelf.project import Project, find_project

json_option = click.option("--json", "as_json", is_flag=True, help="Print one JSON document for scripts.")
target_option = click.option(
    "--target",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help=f"Install folder (default: the project's target, else ./{constants.DEFAULT_TARGET}).",
)

link_mode_option = click.option(
    "--link-mode",
    type=click.Choice(["hardlink", "copy", "symlink"]),
    default=None,
    help="How installed files point at the blob store (default: $CCLM_SHELF_LINK_MODE, the project's "
    "link-mode, else hardlink). copy keeps edits in this folder; hardlink and symlink share the bytes.",
)


def settings(ctx: click.Context):
    return ctx.find_root().obj


def project(required: bool = False) -> Project | None:
    found = find_project(Path.cwd())
    if found is None and required:
        from shelf.errors import ConfigError

        raise ConfigError(
            f"no project here: no {constants.PROJECT_FILE} and no [tool.cclm-shelf] table in pyproject.toml",
            hint="run `cclm-shelf add NAME` to start one, or cd into the project",
        )
    return found


def open_shelf(ctx: click.Context, proj: Project | None = None, progress=None):
    """A ``Shelf`` for the URL given on the command line, else the project's shelves, else the default."""
    from shelf.api import Shelf
    from shelf.source import pick_shelf_url

    opts = settings(ctx)
    offline = opts.offline or None
    common = {"cache_dir": opts.cache_dir, "offline": offline, "progress": progress}
    common["trust"] = trust_policy(ctx, proj)
    if not opts.shelf and proj and proj.shelves:  # the project's shelves, in its priority order
        return Shelf(shelves=list(proj.shelf_locations()), **common)
    return Shelf(pick_shelf_url(opts.shelf), **common)


TRUST_KEYS = "cclm_shelf.trust_keys"  # ctx.meta key: the command's --trust-key files


def trust_policy(ctx: click.Context, proj: Project | None):
    """The keys a command trusts: its --trust-key options, the project's trusted-keys, the environment."""
    from shelf.trust import policy_for

    return policy_for(proj.trusted_keys if proj else (), ctx.meta.get(TRUST_KEYS, ()))


def source_of(shelf, proj: Project | None, name: str):
    """The shelf ``name`` is read from: the one the project's lockfile pinned it from, else the first of
    ``shelf``'s shelves that publishes it (the first shelf when none does)."""
    if proj is not None:
        lock_file = proj.root / constants.LOCK_FILE
        if lock_file.is_file():
            from shelf.lockfile import load_lockfile

            for component in load_lockfile(lock_file).components:
                if component.name == name:
                    return shelf.source_for(component.source)
    return shelf.index.source_of(name)


def install_target(explicit: Path | None, proj: Project | None) -> Path:
    if explicit is not None:
        return explicit
    return proj.target if proj else Path(constants.DEFAULT_TARGET)


def emit(as_json: bool, data: Any, lines: list[str]) -> None:
    """Print ``data`` as JSON, or ``lines`` for people."""
    if as_json:
        click.echo(json.dumps(data, indent=2, sort_keys=True, default=str))
        return
    for line in lines:
        click.echo(line)


def note(message: str) -> None:
    """A progress line on stderr (kept off stdout so --json output stays clean)."""
    click.echo(message, err=True)


def is_tty() -> bool:
    return sys.stderr.isatty()
