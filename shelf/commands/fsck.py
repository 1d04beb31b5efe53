"""``fsck``: check a local shelf's blobs (or its S3 bucket's) against what its published versions need."""

from __future__ import annotations

from pathlib import Path

import click

from shelf.commands._common import emit, json_option, settings


@click.command("fsck")
@click.argument("shelf_path", metavar="[SHELF]", required=False)
@click.option(
    "--s3-bucket",
    metavar="BUCKET",
    help="The shelf is served with this --s3-bucket: check its objects there (endpoint, keys and region "
    "from the AWS environment, as for serve).",
)
@click.option("--s3-prefix", metavar="P", default="", help="The --s3-prefix it is served with.")
@click.option(
    "--rehash",
    is_flag=True,
    help="With --s3-bucket: also download every object and re-hash it (without it: existence and size "
    "only). A shelf's own blobs are always re-hashed.",
)
@json_option
@click.pass_context
def fsck_cmd(ctx, shelf_path, s3_bucket, s3_prefix, rehash, as_json):
    """Check the blobs of every published version of a shelf and name those missing or damaged.

    SHELF is a shelf on this machine (a served shelf's path: the server keeps its blobs there, or in the
    bucket named by --s3-bucket); without it, the shelf named by --shelf, else the local shelf. Exits 1
    when anything is missing or damaged; publishing the same folder again (same name and version)
    restores it. Changes nothing else.
    """
    from shelf.commands.serve import local_shelf
    from shelf.fsck import fsck
    from shelf.source import ShelfSource, ensure_embedded_shelf

    named = shelf_path or settings(ctx).shelf
    path = (local_shelf(named, "fsck") or Path(ensure_embedded_shelf())).resolve()
    objects = _bucket_objects(path, s3_bucket, s3_prefix, rehash)
    source = ShelfSource(str(path), cache_dir=settings(ctx).cache_dir)
    source.refresh()
    report = fsck(path, source, progress=lambda m: click.echo(m, err=True), objects=objects)
    data = {
        "shelf": report.shelf,
        "objects_in": report.where,
        "rehashed": report.hashed,
        "versions": report.versions,
        "objects": report.objects,
        "bytes_verified": report.bytes,
        "problems": [p.__dict__ for p in report.problems],
    }
    emit(as_json, data, _lines(report))
    if report.problems:
        raise SystemExit(1)


def _bucket_objects(path: Path, bucket: str | None, prefix: str, rehash: bool):
    """The objects in the bucket a served shelf keeps them in (None: the shelf's own)."""
    from shelf.commands.serve import s3_settings
    from shelf.errors import ConfigError

    if rehash and not bucket:
        raise ConfigError(
            "--rehash is for --s3-bucket: a shelf's own blobs are always re-hashed",
            hint="name the bucket the shelf is served with (--s3-bucket), or leave --rehash out",
        )
    s3 = s3_settings(bucket, prefix)  # checks that boto3 reaches the bucket
    if s3 is None:
        return None
    from shelf.s3_objects import BucketObjects

    return BucketObjects(path, s3["bucket"], s3["prefix"], rehash=rehash)


def _lines(report) -> list[str]:
    if not report.problems:
        where = "" if report.where == report.shelf else f" (objects in {report.where})"
        state = "all intact" if report.hashed else "all there with their sizes (--rehash also re-hashes them)"
        return [
            f"{report.objects} object(s) of {report.versions} version(s) in {report.shelf}{where}: {state}"
        ]
    lines = [f"{p.state:8} {p.name} {p.version}  {p.path}  {p.oid}" for p in report.problems]
    versions = ", ".join(f"{n}@{v}" for n, v in report.broken_versions)
    lines.append(f"{len(report.broken_versions)} version(s) need their blobs again: {versions}")
    lines.append("  to restore them, publish the same folder again with the same --name and --version")
    if report.where != report.shelf and any(p.state == "damaged" for p in report.problems):
        lines.append(
            f"  first delete the damaged objects (key {report.where}/OID): the bucket counts an object"
            " of the right size as there, and a publish would not replace it"
        )
    if (
        report.where == report.shelf
        and all(p.state == "missing" for p in report.problems)
        and not report.bytes
    ):
        lines.append(
            "  every blob is missing here: a shelf served with --s3-bucket keeps them in the bucket;"
            " check them there with fsck --s3-bucket BUCKET [--s3-prefix P]"
        )
    return lines
