"""``bundle``, ``install --bundle`` and ``cache import``: a lockfile and its bytes in one file."""

from __future__ import annotations

from pathlib import Path

import click

from shelf.commands._common import emit, json_option, note, project, settings, trust_policy


@click.command("bundle")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@json_option
@click.pass_context
def bundle_cmd(ctx, file, as_json):
    """Write one file holding exactly what the project's lockfile pins, for a machine with no network.

    \b
    The bundle holds the lockfile, the manifests (and signatures where the shelf has them) and every
    pinned blob; blobs the store lacks are fetched first. The same lockfile gives the same bytes.
    On the other machine: `cclm-shelf install --bundle FILE` (or `cclm-shelf cache import FILE`).

    \b
    Example:
      cclm-shelf bundle stack.cclm-bundle
    """
    from shelf.bundle import write_bundle
    from shelf.commands.project import ensure_lock

    _check_destination(file)
    shelf, lock = ensure_lock(ctx, frozen=True)
    report = shelf.fill_store(list(lock.components))
    metadata: dict[str, bytes] = {}
    for component in lock.components:
        metadata.update(shelf.published_metadata(component))
    size = write_bundle(lock, metadata, shelf.store, file)
    blobs = len({f.sha256 for c in lock.components for f in c.files})
    data = {"bundle": str(file), "components": len(lock.components), "blobs": blobs, "bytes": size}
    lines = [f"bundled {len(lock.components)} component(s), {blobs} blob(s), {size} bytes -> {file}"]
    if report.objects_fetched:
        lines.insert(0, f"fetched {report.objects_fetched} object(s) the store lacked")
    emit(as_json, data, lines)


def _check_destination(file: Path) -> None:
    """A new file in an existing folder, or an earlier bundle: never a file of the user's (their lockfile)."""
    from shelf.bundle import is_bundle_file
    from shelf.errors import ConfigError

    if not file.parent.is_dir():
        raise ConfigError(
            f"cannot write a bundle to {file}: no such folder {file.parent}",
            hint="give a file path in an existing folder, e.g. stack.cclm-bundle",
        )
    if (file.exists() or file.is_symlink()) and not is_bundle_file(file):
        raise ConfigError(
            f"{file} exists and is not a bundle; nothing was written",
            hint="give a new file name, e.g. stack.cclm-bundle (an earlier bundle is replaced)",
        )


def install_bundle(ctx, file: Path, dest: Path, as_json: bool, **options) -> None:
    """``install --bundle FILE``: verify the whole bundle, then install it (checked against the lockfile).

    ``options`` are ``install_components``'s ``link_mode`` and ``force``.
    """
    from shelf.bundle import check_matches, open_bundle
    from shelf.commands.installing import _print_report
    from shelf.commands.project import lock_path, read_lock
    from shelf.install import install_components
    from shelf.trust import check_published_files

    store = _store(ctx)
    proj = project()
    ours = read_lock(proj) if proj else None
    ours_path = lock_path(proj) if proj else None

    def check(bundled) -> None:
        if ours is not None and ours_path is not None:
            check_matches(bundled, ours, ours_path)

    with open_bundle(file, store, check) as bundle:
        # Signatures travel in the bundle: the trust policy applies before anything is kept or installed.
        check_published_files((ours or bundle.lock).components, bundle.metadata, trust_policy(ctx, proj))
        bundle.keep(store)
    components = list((ours or bundle.lock).components)
    if ours is None:
        note(f"no project lockfile here: installing the {len(components)} component(s) the bundle pins")
    else:
        from shelf.known_lockfiles import remember_lockfile

        assert ours_path is not None  # a lock was read from it
        remember_lockfile(store.root, ours_path)
    report = install_components(
        components, target=dest, store=store, transports={}, manifests=bundle.manifests(), **options
    )
    _print_report(report, dest, as_json)


def import_bundle(ctx, file: Path, as_json: bool) -> None:
    """``cache import FILE``: verify the whole bundle, then keep its content in the store."""
    from shelf.bundle import open_bundle

    store = _store(ctx)
    with open_bundle(file, store) as bundle:
        added = bundle.keep(store)
    names = [f"{c.name} {c.version}" for c in bundle.lock.components]
    emit(
        as_json,
        {"bundle": str(file), "store": str(store.root), "objects": added, "components": names},
        [f"imported {added} object(s) for {len(names)} component(s) into {store.root}"]
        + [f"  {n}" for n in names],
    )


def _store(ctx):
    from shelf import constants
    from shelf.store import BlobStore

    return BlobStore(Path(settings(ctx).cache_dir or constants.cache_dir()))
