"""``cache info | verify | prune``: the content-addressed blob store."""

from __future__ import annotations

from pathlib import Path

import click

from shelf.commands._common import emit, json_option, note, settings


def _store(ctx):
    from shelf import constants
    from shelf.store import BlobStore

    root = settings(ctx).cache_dir or constants.cache_dir()
    return BlobStore(Path(root))


@click.group("cache")
def cache_group():
    """Inspect, verify, prune and fill the blob store shared by every install on this machine."""


@cache_group.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@json_option
@click.pass_context
def import_cmd(ctx, file, as_json):
    """Fill the store from a bundle (`cclm-shelf bundle`), for later offline installs.

    The whole bundle is verified before anything is kept. Then `cclm-shelf --offline install` installs
    the lockfile it was made from without a network.
    """
    from shelf.commands.bundling import import_bundle

    import_bundle(ctx, file, as_json)


@cache_group.command("info")
@json_option
@click.pass_context
def info_cmd(ctx, as_json):
    """Where the store is, how many blobs it holds and their size."""
    info = _store(ctx).info()
    emit(as_json, info, [f"store   {info['root']}", f"blobs   {info['count']}", f"bytes   {info['bytes']}"])


@cache_group.command("verify")
@json_option
@click.pass_context
def verify_cmd(ctx, as_json):
    """Re-hash every blob; remove and report the ones that do not match their name."""
    store = _store(ctx)
    problems = store.verify()
    rows = [{"oid": p.oid, "path": str(p.path), "reason": p.reason} for p in problems]
    count = store.info()["count"]
    lines = [f"removed {r['oid']}: {r['reason']}" for r in rows] or [f"verified {count} blob(s): all match"]
    emit(as_json, {"problems": rows, "blobs": count}, lines)
    if problems:
        note("damaged blobs were removed; the next install fetches them again")
        raise SystemExit(1)


@cache_group.command("prune")
@click.option(
    "--keep-lockfile",
    "keep_lockfiles",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Also keep what this lockfile pins (repeatable).",
)
@click.option("--dry-run", is_flag=True, help="Only say what would be removed.")
@json_option
@click.pass_context
def prune_cmd(ctx, keep_lockfiles, dry_run, as_json):
    """Remove blobs that no known lockfile pins.

    Known lockfiles are the ones cclm-shelf wrote or installed from on this machine. Installed files are
    hardlinks, so pruning never breaks an install folder.
    """
    from shelf.known_lockfiles import known_lockfiles

    store = _store(ctx)
    locks = [*known_lockfiles(store.root), *keep_lockfiles]
    pinned = [c for path in locks for c in _pins_to_keep(path).components]
    # Manifests imported from bundles are stored by their digest: keep them with their files.
    keep = {f.sha256 for c in pinned for f in c.files}
    keep |= {c.manifest_digest.removeprefix("sha256:") for c in pinned}
    if dry_run:
        doomed = [b for b in store.iter_blobs() if b.oid not in keep]
        emit(
            as_json,
            {"would_remove": len(doomed), "bytes": sum(b.size for b in doomed)},
            [f"would remove {len(doomed)} blob(s), {sum(b.size for b in doomed)} bytes"],
        )
        return
    count, freed = store.prune(keep)
    emit(
        as_json,
        {"removed": count, "bytes": freed, "kept_for_lockfiles": [str(p) for p in locks]},
        [f"removed {count} blob(s), {freed} bytes; kept what {len(locks)} lockfile(s) pin"],
    )


def _pins_to_keep(path: Path):
    """A lockfile whose pins prune keeps; one it cannot read stops the prune (its blobs would go)."""
    from shelf.errors import LockfileError
    from shelf.lockfile import load_lockfile

    try:
        return load_lockfile(path)
    except LockfileError as e:
        raise LockfileError(
            f"cannot prune: {e.message}; nothing was removed (prune keeps what every lockfile used on this "
            "machine pins)",
            hint=f"fix that lockfile (in its project: {e.hint or 'cclm-shelf lock'}), then prune again",
        ) from e
