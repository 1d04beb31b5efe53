"""``init``, ``publish`` and ``yank``: the commands that write to a shelf."""

from __future__ import annotations

from pathlib import Path

import click

from shelf.commands._common import emit, json_option, note, open_shelf, project, settings


@click.command("init")
@click.argument("path", required=False, type=click.Path(file_okay=False, path_type=Path))
@click.option("--lfs-url", metavar="URL", help="LFS server for the shelf's blobs (written to .lfsconfig).")
@json_option
@click.pass_context
def init_cmd(ctx, path, lfs_url, as_json):
    """Create a shelf: a bare git repository with an empty index.

    Without PATH, creates the local shelf on disk that commands use when no shelf is configured.
    Blobs of a local shelf live in PATH/lfs/objects, where git-lfs itself keeps them.
    """
    from shelf.source import create_shelf, embedded_shelf_path

    where = Path(path or embedded_shelf_path()).absolute()
    existed = (where / "HEAD").is_file()
    created = create_shelf(where, lfs_url=lfs_url)
    if existed and lfs_url:
        _check_lfs_url(ctx, created, lfs_url)
    lines = [
        f"shelf {'already there' if existed else 'ready'} at {created}",
        f"publish to it:  cclm-shelf --shelf {created} publish FOLDER --name NAME --version 0.1.0",
    ]
    emit(as_json, {"shelf": created, "created": not existed, "lfs_url": lfs_url}, lines)


def _check_lfs_url(ctx, shelf: str, lfs_url: str) -> None:
    """An existing shelf keeps its LFS server: say so rather than pretend --lfs-url took effect."""
    from shelf.errors import ConfigError
    from shelf.source import ShelfSource

    source = ShelfSource(shelf, cache_dir=settings(ctx).cache_dir)
    source.refresh()
    current = source.mirror.lfs_url(source.head)
    if current != lfs_url:
        raise ConfigError(
            f"{shelf} already exists with LFS server {current or '(its own lfs/objects)'}",
            hint="an existing shelf is not changed by init; `cclm-shelf serve` points it at a new server",
        )


@click.command("publish")
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--name", help="Component name (default: from cclm-publish.toml in FOLDER).")
@click.option("--version", "version", help="SemVer version, e.g. 0.1.0 (default: from cclm-publish.toml).")
@click.option("--summary", help="One line saying what the component is.")
@click.option("--license", "license_", help="Licence of the weights, e.g. MIT.")
@click.option(
    "--requires",
    "requires",
    multiple=True,
    help="A requirement, e.g. 'base_model==0.1.0' (repeatable). Default for a component: the "
    "published embedder it was trained on.",
)
@click.option(
    "--without-base",
    is_flag=True,
    help="Publish a component without requiring its base (when the base is on another shelf); "
    "installs will then not bring the embedder it needs.",
)
@click.option(
    "--sign-key",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Private key (PEM, elliptic curve) to sign the manifest and every file's digest with.",
)
@click.option(
    "--probes",
    is_flag=True,
    help="Run the items on the fixed probe set and record their outputs, for `verify --behaviour` "
    "(loads TensorFlow).",
)
@json_option
@click.pass_context
def publish_cmd(
    ctx, folder, name, version, summary, license_, requires, without_base, sign_key, probes, as_json
):
    """Publish a folder saved by the core as NAME VERSION.

    \b
    FOLDER is one saved item (preprocessor, embedder, component) or a folder of such items. Every file is
    hashed, the manifest is validated, blobs are uploaded, and one commit with the tag NAME/vVERSION is
    pushed. A published version never changes: publishing it again with other content is refused.
    A component published without --requires requires the published embedder whose fingerprint is its
    base (the newest such version); when the shelf has none, the publish is refused.

    \b
    Example:
      cclm-shelf publish ./saved/ner --name en_wiki_ner_1 --version 0.3.0 --requires 'en_wiki_clm_1==0.2.1'
      cclm-shelf publish ./saved/ner --name en_wiki_ner_1 --version 0.3.1 --sign-key team.pem
    """
    from shelf.progress import make_progress
    from shelf.publish import check_online, publish

    info = package_info(folder, name, version, summary, license_, requires)
    if probes:  # the probes build models: TensorFlow's start-up chatter stays off the terminal
        from shelf.native_logs import quiet_native_logs

        quiet_native_logs()
    shelf = open_shelf(ctx, project())
    check_online(shelf, "publishing to")  # before anything is hashed: the push needs the network anyway
    bars = make_progress(False if as_json else None)  # upload bars on a terminal, as install shows
    try:
        report = publish(
            folder,
            info,
            shelf.source,  # opened while the folder is hashed
            shelf.store,
            progress=note,
            sign_key=sign_key,
            probes=probes,
            bars=bars,
            find_base=not without_base,
        )
    finally:
        bars.close()
    data = {
        "name": report.name,
        "version": report.version,
        "manifest_digest": report.manifest_digest,
        "commit": report.commit,
        "unchanged": report.unchanged,
        "shelf": shelf.url,
        "uploaded": report.uploaded,
        "skipped": report.skipped,
        "requires_added": report.requires_added,
        "signer": report.signer,
    }
    emit(as_json, data, _report_lines(report, shelf.url, _shelf_option(ctx)))


def _report_lines(report, url: str, shelf_option: str) -> list[str]:
    if report.unchanged and report.uploaded:
        restored = f"restored {report.uploaded} object(s) it had lost or damaged"
        return [f"{report.name} {report.version} is already on {url} with identical content; {restored}"]
    if report.unchanged:
        return [f"{report.name} {report.version} is already on {url} with identical content; nothing to do"]
    added = []
    if report.requires_added:
        added = [f"  requires {report.requires_added} (added: the embedder it was trained on)"]
    if report.signer:
        added.append(f"  signed by {report.signer}")
    return [
        f"published {report.name} {report.version} to {url}",
        f"  manifest {report.manifest_digest}",
        *added,
        f"  install it: cclm-shelf {shelf_option}install {report.name}@v{report.version}",
    ]


def _shelf_option(ctx) -> str:
    """``--shelf URL `` when the command named a shelf, so printed commands work as they are."""
    import shlex

    shelf = settings(ctx).shelf
    return f"--shelf {shlex.quote(shelf)} " if shelf else ""


def package_info(folder: Path, name, version, summary, license_, requires):
    """Options from the command line win over ``cclm-publish.toml`` in the folder."""
    from registry_index.requirements import parse_requirement, validate_name
    from registry_index.versions import format_version, parse_version
    from shelf.errors import ConfigError
    from shelf.publish import PackageInfo
    from shelf.publish_folder import read_metadata_file

    meta = read_metadata_file(folder)
    name = name or meta.get("name")
    version = version or meta.get("version")
    if not name or not version:
        raise ConfigError(
            "publish needs a name and a version",
            hint="pass --name and --version, or write them in cclm-publish.toml in the folder",
        )
    reqs = tuple(requires) or tuple(meta.get("requires", ()))
    for text in reqs:
        parse_requirement(text)
    return PackageInfo(
        name=validate_name(name),
        version=format_version(parse_version(str(version))),
        summary=summary or meta.get("summary", ""),
        license=license_ or meta.get("license", "unspecified"),
        requires=reqs,
        training=meta.get("training"),
    )


@click.command("yank")
@click.argument("spec", metavar="NAME@VERSION")
@click.option("--reason", required=True, help="Why the version must not be used (shown to installers).")
@json_option
@click.pass_context
def yank_cmd(ctx, spec, reason, as_json):
    """Mark a published version as yanked.

    \b
    Ranges never pick a yanked version; an exact pin (NAME@VERSION, NAME==VERSION) or a lockfile pin
    still installs it, with a warning that names the reason. Yanking again keeps the earlier reason.
    """
    _set_yanked(ctx, spec, reason, as_json)


@click.command("unyank")
@click.argument("spec", metavar="NAME@VERSION")
@json_option
@click.pass_context
def unyank_cmd(ctx, spec, as_json):
    """Undo a yank: ranges may pick the version again."""
    _set_yanked(ctx, spec, None, as_json)


def _set_yanked(ctx, spec: str, reason: str | None, as_json: bool) -> None:
    from shelf.yanking import set_yanked

    verb = "yank" if reason is not None else "unyank"
    name, version = _name_at_version(spec, verb)
    shelf = open_shelf(ctx, project())
    outcome = set_yanked(shelf.source(), name, version, reason)
    data = {
        "name": name,
        "version": outcome.version,
        "shelf": shelf.url,
        "yanked": outcome.yanked,
        "yank_reason": outcome.reason,
        "changed": outcome.commit is not None,
        "commit": outcome.commit,
    }
    emit(as_json, data, [outcome.describe(name, shelf.url)])


def _name_at_version(spec: str, verb: str) -> tuple[str, str]:
    from shelf.errors import ConfigError

    name, sep, version = spec.partition("@")
    if not sep or not name or not version:
        example = (
            "cclm-shelf yank en_wiki_clm_1@0.2.1 --reason ..."
            if verb == "yank"
            else ("cclm-shelf unyank en_wiki_clm_1@0.2.1")
        )
        raise ConfigError(f"{spec!r} is not NAME@VERSION", hint=f"e.g. {example}")
    return name, version
