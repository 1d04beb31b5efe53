"""The ``cclm-shelf`` command line.

Subcommands live in ``shelf/commands/`` and are imported only when run, so ``cclm-shelf --help`` stays fast
and never imports TensorFlow. This module is the one place where errors become messages and exit codes.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import click

from shelf.errors import ShelfError, translated

# name -> ("module:attribute", one-line help shown by `cclm-shelf --help`)
COMMANDS: dict[str, tuple[str, str]] = {
    "init": ("shelf.commands.publishing:init_cmd", "Create a local shelf (a bare git repository)."),
    "publish": ("shelf.commands.publishing:publish_cmd", "Publish a saved component folder to a shelf."),
    "keygen": ("shelf.commands.keys:keygen_cmd", "Make a key pair for signing what you publish."),
    "yank": ("shelf.commands.publishing:yank_cmd", "Mark a published version as not to be used."),
    "unyank": ("shelf.commands.publishing:unyank_cmd", "Undo a yank: let ranges pick the version again."),
    "install": ("shelf.commands.installing:install_cmd", "Install components by name@version or lockfile."),
    "uninstall": ("shelf.commands.installing:uninstall_cmd", "Remove an installed component."),
    "list": ("shelf.commands.installing:list_cmd", "List installed components."),
    "verify": ("shelf.commands.installing:verify_cmd", "Re-hash installed files; --behaviour runs probes."),
    "compose": ("shelf.commands.compose:compose_cmd", "Check installed components' bases; build the model."),
    "add": ("shelf.commands.project:add_cmd", "Add requirements to the project, lock and install."),
    "remove": ("shelf.commands.project:remove_cmd", "Remove a requirement from the project."),
    "lock": ("shelf.commands.project:lock_cmd", "Resolve the project's requirements into the lockfile."),
    "tree": ("shelf.commands.project:tree_cmd", "Show the locked stack with bases and output sizes."),
    "why": ("shelf.commands.project:why_cmd", "Show why a component is in the stack."),
    "show": ("shelf.commands.browse:show_cmd", "Show a component's versions or one manifest."),
    "search": ("shelf.commands.browse:search_cmd", "Search a shelf's components by name."),
    "bundle": ("shelf.commands.bundling:bundle_cmd", "Write the lockfile and all it pins to one file."),
    "export": ("shelf.commands.export:export_cmd", "Write a shelf as static files: sparse index, pages."),
    "cache": ("shelf.commands.cache:cache_group", "Inspect, verify, prune and import into the blob store."),
    "fsck": ("shelf.commands.fsck:fsck_cmd", "Check a shelf's blobs (or its bucket's); name what is lost."),
    "serve": ("shelf.commands.serve:serve_cmd", "Serve one shelf to a team: git, Git LFS, web pages."),
    "quickstart": ("shelf.commands.quickstart:quickstart_cmd", "Train, publish, install and compose a demo."),
}


@dataclass
class Settings:
    """Options shared by every subcommand."""

    shelf: str | None
    cache_dir: Path | None
    offline: bool
    verbose: bool


# Options of the whole program that may also be written after the command, as pip and uv accept them.
GLOBAL_FLAGS = frozenset({"--offline", "-v", "--verbose"})
GLOBAL_WITH_VALUE = frozenset({"--shelf", "--cache-dir"})


def hoist_global_options(args: list[str]) -> list[str]:
    """``install X --shelf URL --offline`` -> ``--shelf URL --offline install X``.

    Global options found after the command name (and before a ``--``) move in front of it, in their order;
    a ``--json`` written before the command moves after it (it is each reporting command's option);
    everything else keeps its place.
    """
    command_at = _command_position(args)
    if command_at is None:
        return list(args)
    if "--json" in args[:command_at]:  # `cclm-shelf --json show x`: --json belongs to the command
        front = [a for a in args[:command_at] if a != "--json"]
        rest = list(args[command_at:])
        end = rest.index("--") if "--" in rest else len(rest)
        return hoist_global_options([*front, *rest[:end], "--json", *rest[end:]])
    moved: list[str] = []
    kept: list[str] = []
    rest = args[command_at + 1 :]
    i = 0
    while i < len(rest):
        token = rest[i]
        if token == "--":
            kept += rest[i:]
            break
        name = token.split("=", 1)[0]
        if token in GLOBAL_FLAGS or (name in GLOBAL_WITH_VALUE and "=" in token):
            moved.append(token)
        elif token in GLOBAL_WITH_VALUE:
            moved += rest[i : i + 2]
            i += 1
        else:
            kept.append(token)
        i += 1
    return [*args[:command_at], *moved, args[command_at], *kept]


def _command_position(args: list[str]) -> int | None:
    """Where the command name is: the first word that is neither an option nor a global option's value."""
    i = 0
    while i < len(args):
        token = args[i]
        if token == "--":
            return None
        if token in GLOBAL_WITH_VALUE:
            i += 2
            continue
        if not token.startswith("-"):
            return i
        i += 1
    return None


def wants_json(args: list[str]) -> bool:
    """``--json`` anywhere before ``--``: errors then go to stdout as one JSON object too."""
    return "--json" in (args[: args.index("--")] if "--" in args else args)


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use; global options may follow the command."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, hoist_global_options(args))

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [name for name in COMMANDS if _available(name)]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS or not _available(cmd_name):
            return None
        target = COMMANDS[cmd_name][0]
        module_name, attribute = target.split(":")
        return getattr(importlib.import_module(module_name), attribute)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][1]) for name in self.list_commands(ctx)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


def _available(name: str) -> bool:
    """True when the command's module exists (lets the CLI grow one module at a time)."""
    module_name = COMMANDS[name][0].split(":")[0]
    return importlib.util.find_spec(module_name) is not None


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="cclm-shelf", prog_name="cclm-shelf")
@click.option(
    "--shelf",
    "shelf",
    metavar="URL",
    envvar="CCLM_SHELF_URL",
    help="Shelf to use: a path, user@host:path, or a file://, ssh://, git://, http(s):// or "
    "sparse+http(s):// (static, read-only) URL. Default: the project's shelf, else the local shelf on disk.",
)
@click.option(
    "--cache-dir",
    type=click.Path(path_type=Path),
    envvar="CCLM_SHELF_CACHE_DIR",
    help="Blob store and metadata mirrors (default: the user cache folder).",
)
@click.option(
    "--offline",
    is_flag=True,
    envvar="CCLM_SHELF_OFFLINE",
    help="Never use the network; work from the store and mirrors alone.",
)
@click.option("-v", "--verbose", is_flag=True, help="Show tracebacks for unexpected errors.")
@click.pass_context
def cli(ctx: click.Context, shelf: str | None, cache_dir: Path | None, offline: bool, verbose: bool) -> None:
    """cclm-shelf: install, publish and compose character-level model components.

    \b
    Examples:
      cclm-shelf quickstart                      train, publish, install and compose a demo stack
      cclm-shelf install en_wiki_clm_1@v0.2.1    install one component into ./.cclm
      cclm-shelf publish ./my_component --name my_component --version 0.1.0
    """
    ctx.obj = Settings(shelf=shelf, cache_dir=cache_dir, offline=offline, verbose=verbose)


def _error_exit(exc: BaseException, verbose: bool, as_json: bool) -> int:
    from shelf.errors import ConfigError

    code = getattr(exc, "exit_code", 1)
    if isinstance(exc, ConfigError):
        code = 2
    message = getattr(exc, "message", None) or str(exc)
    _report_error(message, getattr(exc, "hint", None), code, as_json, text=f"error: {exc}")
    if verbose:
        import traceback

        traceback.print_exception(exc, file=sys.stderr)
    return code


def _report_error(message: str, hint: str | None, code: int, as_json: bool, text: str) -> None:
    """One line (and its hint) on stderr for people; with --json, also one JSON object on stdout."""
    if as_json:
        import json

        click.echo(json.dumps({"error": message, "hint": hint, "exit_code": code}, sort_keys=True))
    click.secho(text, fg="red", err=True)


def _usage_exit(exc: click.ClickException, as_json: bool) -> int:
    if as_json:
        hint = None
        if isinstance(exc, click.UsageError):
            where = exc.ctx.command_path if exc.ctx is not None else "cclm-shelf"
            hint = f"see `{where} --help`"
        _report_error(exc.format_message(), hint, exc.exit_code, True, text=f"error: {exc.format_message()}")
    else:
        exc.show()
    return exc.exit_code


def main(argv: list[str] | None = None) -> int:
    """Console entry point."""
    # TensorFlow's C++ start-up notes (CPU features, missing CUDA) would bury the command's own output.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args = list(sys.argv[1:] if argv is None else argv)
    verbose = "-v" in args or "--verbose" in args
    as_json = wants_json(args)
    try:
        with translated():  # registry_index's and cclm_core's errors become ShelfErrors here at the latest
            cli.main(args=args, prog_name="cclm-shelf", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 130
    except click.ClickException as exc:
        return _usage_exit(exc, as_json)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        return 130
    except ShelfError as exc:
        return _error_exit(exc, verbose, as_json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
