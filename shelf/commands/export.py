"""``export``: a shelf written out as files (for now its web pages; the sparse index will join them)."""

from __future__ import annotations

from pathlib import Path

import click

from shelf.commands._common import emit, json_option, open_shelf, project


@click.command("export")
@click.argument("dest", type=click.Path(file_okay=False, path_type=Path))
@click.option("--html", is_flag=True, help="Write the web pages: a front page, one per component and base.")
@click.option(
    "--shelf-url",
    metavar="URL",
    help="Where people install from, shown in the pages' install commands (default: the shelf's URL, "
    "unless it is a path on this machine).",
)
@json_option
@click.pass_context
def export_cmd(ctx, dest, html, shelf_url, as_json):
    """Write a shelf out as files under DEST, to serve from any static web server.

    \b
    With --html: index.html lists every component (latest version, kind, summary, base); a page per
    component shows its versions (yanked ones with the reason), files and sizes, requires, base
    fingerprints, signer, and the install command to copy; a page per base lists what was trained on it.
    Plain HTML and one stylesheet, no scripts. Files that did not change are not rewritten; nothing else
    in DEST is touched.

    \b
    Example:
      cclm-shelf export site/ --html --shelf-url https://models.example.org/shelf.git
    """
    from shelf.gitrepo import is_local_url
    from shelf.site import export_site

    if not html:
        raise click.UsageError("say what to export: --html writes the web pages")
    source = open_shelf(ctx, project()).source()
    url = shelf_url or (None if is_local_url(source.url) else source.url)
    changed = export_site(source, dest, url)
    emit(
        as_json,
        {"dest": str(dest), "changed": changed},
        [f"wrote {len(changed)} changed file(s) to {dest}; open {dest / 'index.html'}"],
    )
