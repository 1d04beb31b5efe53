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

from shelf.errors import ShelfError

# name -> ("module:attribute", one-line help shown by `cclm-shelf --help`)
COMMANDS: dict[str, tuple[str, str]] = {
    "init": ("shelf.commands.publishing:init_cmd", "Create a local shelf (a bare git repository)."),
    "publish": ("shelf.commands.publishing:publish_cmd", "Publish a saved component folder to a shelf."),
    "keygen": ("shelf.commands.keys:keygen_cmd", "Make a key pair for signing what you publish."),
    "yank": ("shelf.commands.publishing:yank_cmd", "Mark a published version as not to be used."),
    "install": ("shelf.commands.installing:install_cmd", "Install components by name@version or lockfile."),
    "uninstall": ("shelf.commands.installing:uninstall_cmd", "Remove an installed component."),
    "list": ("shelf.commands.installing:list_cmd", "List installed components."),
    "verify": ("shelf.commands.installing:verify_cmd", "Re-hash installed files against the manifests."),
    "compose": ("shelf.commands.compose:compose_cmd", "Check installed components' bases; build the model."),
    "add": ("shelf.commands.project:add_cmd", "Add requirements to the project, lock and install."),
    "remove": ("shelf.commands.project:remove_cmd", "Remove a requirement from the project."),
    "lock": ("shelf.commands.project:lock_cmd", "Resolve the project's requirements into the lockfile."),
    "tree": ("shelf.commands.project:tree_cmd", "Show the locked stack with bases and output sizes."),
    "why": ("shelf.commands.project:why_cmd", "Show why a component is in the stack."),
    "show": ("shelf.commands.browse:show_cmd", "Show a component's versions or one manifest."),
    "search": ("shelf.commands.browse:search_cmd", "Search a shelf's components by name."),
    "cache": ("shelf.commands.cache:cache_group", "Inspect, verify and prune the blob store."),
    "serve": ("shelf.commands.serve:serve_cmd", "Serve a shelf to a team: git daemon + LFS server."),
    "quickstart": ("shelf.commands.quickstart:quickstart_cmd", "Train, publish, install and compose a demo."),
}


@dataclass
class Settings:
    """Options shared by every subcommand."""

    shelf: str | None
    cache_dir: Path | None
    offline: bool
    verbose: bool


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use."""

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
    help="Shelf to use: a path, file://, git:// or http(s):// URL. "
    "Default: the project's shelf, else the local shelf on disk.",
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


def _error_exit(exc: BaseException, verbose: bool) -> int:
    from shelf.errors import ConfigError

    code = getattr(exc, "exit_code", 1)
    if isinstance(exc, ConfigError):
        code = 2
    click.secho(f"error: {exc}", fg="red", err=True)
    if verbose:
        import traceback

        traceback.print_exception(exc, file=sys.stderr)
    return code


def _known_errors() -> tuple[type[BaseException], ...]:
    """Error roots whose messages are meant for users; anything else is a bug and shows a traceback."""
    errors: list[type[BaseException]] = [ShelfError]
    roots = (("registry_index.errors", "RegistryIndexError"), ("cclm_core.errors", "CoreError"))
    for module_name, name in roots:
        try:
            errors.append(getattr(importlib.import_module(module_name), name))
        except (ImportError, AttributeError):
            continue
    return tuple(errors)


def main(argv: list[str] | None = None) -> int:
    """Console entry point."""
    # TensorFlow's C++ start-up notes (CPU features, missing CUDA) would bury the command's own output.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    verbose = "-v" in (argv or sys.argv[1:]) or "--verbose" in (argv or sys.argv[1:])
    try:
        cli.main(args=argv, prog_name="cclm-shelf", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 130
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        return 130
    except _known_errors() as exc:
        return _error_exit(exc, verbose)
    return 0


if __name__ == "__main__":
    sys.exit(main())
