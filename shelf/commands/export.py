"""``export``: a shelf written out as static files: its sparse index (and blobs), and its web pages."""

from __future__ import annotations

from pathlib import Path

import click

from shelf.commands._common import emit, json_option, note, open_shelf, project


@click.command("export")
@click.argument("dest", type=click.Path(file_okay=False, path_type=Path))
@click.option("--with-blobs", is_flag=True, help="Also copy every blob into DEST (blobs/sha256/<aa>/<oid>).")
@click.option(
    "--lfs-url",
    metavar="URL",
    help="The LFS server clients of the export download blobs from (default: the one the shelf names); "
    "not with --with-blobs.",
)
@click.option("--html", is_flag=True, help="Also write the web pages: one per component and base.")
@click.option(
    "--shelf-url",
    metavar="URL",
    help="Where people install from, shown in the pages' install commands (default: the shelf's URL, "
    "unless it is a path on this machine).",
)
@json_option
@click.pass_context
def export_cmd(ctx, dest, with_blobs, lfs_url, html, shelf_url, as_json):
    """Write a shelf out as static files under DEST, to serve from any static web server or bucket.

    \b
    DEST gets the shelf's sparse index: config.json (where blobs come from), index/<prefix>/<name>
    per component, index/names.txt, and every manifest and signature under components/. Clients read
    it with `--shelf sparse+https://HOST/PATH/` (plain GETs, no git). Blobs stay on the shelf's LFS
    server unless --with-blobs copies them in. Files whose bytes did not change are not rewritten, and
    nothing else in DEST is touched, so a sync to object storage moves only what changed. (With --html
    and no blobs to point at, only the pages are written, and a note says why.)

    \b
    With --html, also the web pages: index.html lists every component (latest version, kind, summary,
    base); a page per component shows its versions (yanked ones with the reason), files and sizes,
    requires, base fingerprints, signer, and the install command to copy; a page per base lists what
    was trained on it. Plain HTML and one stylesheet, no scripts. A file of yours where a page goes (your
    own index.html) is never written over: export refuses and writes nothing.

    \b
    Examples:
      cclm-shelf export public/ --with-blobs --html
      cclm-shelf export site/ --html --shelf-url https://models.example.org/shelf.git
    """
    from shelf.errors import ConfigError
    from shelf.sparse_export import ExportReport, blob_source, export_sparse

    if with_blobs and lfs_url:
        raise click.UsageError("give either --with-blobs or --lfs-url, not both")
    shelf = open_shelf(ctx, project())
    source = shelf.source()
    pages = _pages(source, dest, shelf_url) if html else {}
    report = ExportReport()
    try:
        blobs_from = blob_source(source, lfs_url, with_blobs)
    except ConfigError as e:
        if not html:
            raise
        note(f"note: only the web pages were written; the sparse index was not: {e.message} ({e.hint})")
    else:
        store = shelf.store if with_blobs else None
        report = export_sparse(source, dest, lfs_url=blobs_from, store=store)
    changed = list(report.changed)
    if html:
        from shelf.site import write_site

        changed += write_site(pages, dest)
    emit(
        as_json,
        {"dest": str(dest), "changed": changed, "blobs_added": report.blobs_added},
        [f"wrote {len(changed)} changed file(s) and {report.blobs_added} new blob(s) to {dest}"],
    )


def _pages(source, dest: Path, shelf_url: str | None) -> dict[str, bytes]:
    """The web pages, rendered before anything is written; refused when DEST holds a file of the user's."""
    from shelf.errors import ConfigError
    from shelf.remote.url import is_local_url
    from shelf.site import foreign_pages, site_pages

    pages = site_pages(source, shelf_url or (None if is_local_url(source.url) else source.url))
    foreign = foreign_pages(pages, dest)
    if foreign:
        raise ConfigError(
            f"{dest / foreign[0]} is not a page cclm-shelf wrote; nothing was exported",
            hint="export the pages to a new folder, or move that file out of the way first",
        )
    return pages
