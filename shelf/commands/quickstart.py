"""``quickstart``: train, publish, install by name@version, verify and compose, all offline."""

from __future__ import annotations

import shlex
from pathlib import Path

import click

from shelf.commands._common import note, settings


@click.command("quickstart")
@click.option(
    "--workdir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where the trained folders and the install folder go "
    "(default: quickstart/ in the user data folder, printed at the start).",
)
@click.option("--small", is_flag=True, help="A smaller corpus and model (for tests and slow machines).")
@click.option("--epochs", type=click.IntRange(1, 50), default=None, help="Training epochs per component.")
@click.pass_context
def quickstart_cmd(ctx, workdir, small, epochs):
    """Train a tiny stack on Python's own documentation, publish it, install it, verify it, compose it.

    Needs no network and no server: it publishes to the local shelf on disk (or --shelf), then installs by
    name@vX.Y.Z into WORKDIR/.cclm exactly as an install from a remote shelf would. WORKDIR defaults to
    quickstart/ in the user data folder; the commands it prints at the end run as printed.
    """
    import dataclasses

    from shelf.native_logs import quiet_native_logs
    from shelf.quickstart import SMALL, QuickstartConfig, claim_workdir, run

    quiet_native_logs()

    config = SMALL if small else QuickstartConfig()
    if epochs:
        config = dataclasses.replace(config, epochs=epochs)
    opts = settings(ctx)
    if workdir is None:
        workdir = default_workdir().absolute()
        claim_workdir(workdir)  # its own folder: earlier runs' saved/ and .cclm/ are quickstart's
    workdir = workdir.absolute()
    note(f"working in {workdir}")
    result = run(workdir, opts.shelf, config, note, cache_dir=opts.cache_dir)
    names = " ".join(f"{n}@v{v}" for n, v in result.installed if n != "stdlib_docs_base")
    click.echo("")
    click.echo(f"folder           {workdir}")
    click.echo(f"shelf            {result.shelf}")
    click.echo(f"trained folders  {result.saved}")
    for name, version in result.installed:
        click.echo(f"installed        {name} {version} -> {result.target / name}")
    click.echo(f"verified         {result.verified_files} file(s), every sha256 matches")
    click.echo(f"composed output  {result.output_shape}  (batch, characters, features)")
    click.echo(f"took             {result.seconds:.1f} s")
    click.echo("")
    click.echo("next, in any folder:")
    # Name the shelf unless it is the default one, so the command works as printed in any folder.
    shelf_option = f"--shelf {shlex.quote(result.shelf)} " if opts.shelf else ""
    program = program_name()
    click.echo(f"  {program} {shelf_option}install {names}")
    click.echo(f"  {program} compose            # check the bases; --save DIR builds the composed model")


def default_workdir() -> Path:
    """Quickstart's own folder, under the user data folder (never the current directory)."""
    from shelf import constants

    return constants.home_dir() / "quickstart"


def program_name() -> str:
    """``cclm-shelf`` when that is what PATH finds, else the path of this one, so printed commands run."""
    import shutil
    import sys

    beside = Path(sys.executable).parent / "cclm-shelf"
    found = shutil.which("cclm-shelf")
    if found and (not beside.is_file() or Path(found).resolve() == beside.resolve()):
        return "cclm-shelf"
    if beside.is_file():
        return shlex.quote(str(beside))
    return f"{shlex.quote(sys.executable)} -m shelf.cli"
