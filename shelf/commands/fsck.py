"""``fsck``: check a local shelf's blobs against what its published versions need."""

from __future__ import annotations

from pathlib import Path

import click

from shelf.commands._common import emit, json_option, settings


@click.command("fsck")
@click.argument("shelf_path", metavar="[SHELF]", required=False)
@json_option
@click.pass_context
def fsck_cmd(ctx, shelf_path, as_json):
    """Re-hash a shelf's own blobs and name the versions whose blobs are missing or damaged.

    SHELF is a shelf on this machine (a served shelf's path: the server keeps its blobs there); without
    it, the shelf named by --shelf, else the local shelf. Exits 1 when anything is missing or damaged;
    publishing the same folder again (same name and version) restores it. Changes nothing else.
    """
    from shelf.commands.serve import _local_shelf
    from shelf.fsck import fsck
    from shelf.source import ShelfSource, ensure_embedded_shelf

    named = shelf_path or settings(ctx).shelf
    path = _local_shelf(named, "fsck") or Path(ensure_embedded_shelf())
    source = ShelfSource(str(Path(path).resolve()), cache_dir=settings(ctx).cache_dir)
    source.refresh()
    report = fsck(Path(path).resolve(), source, progress=lambda m: click.echo(m, err=True))
    data = {
        "shelf": report.shelf,
        "versions": report.versions,
        "objects": report.objects,
        "bytes_verified": report.bytes,
        "problems": [p.__dict__ for p in report.problems],
    }
    emit(as_json, data, _lines(report))
    if report.problems:
        raise SystemExit(1)


def _lines(report) -> list[str]:
    if not report.problems:
        return [f"{report.objects} object(s) of {report.versions} version(s) in {report.shelf}: all intact"]
    lines = [f"{p.state:8} {p.name} {p.version}  {p.path}  {p.oid}" for p in report.problems]
    versions = ", ".join(f"{n}@{v}" for n, v in report.broken_versions)
    lines.append(f"{len(report.broken_versions)} version(s) need their blobs again: {versions}")
    lines.append("  to restore them, publish the same folder again with the same --name and --version")
    if all(p.state == "missing" for p in report.problems) and report.bytes == 0:
        lines.append(
            "  every blob is missing here: a shelf served with --s3-bucket keeps them in the bucket, and fsck"
            " reads only <shelf>/lfs/objects"
        )
    return lines
