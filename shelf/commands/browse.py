"""``show`` and ``search``: reading a shelf's index and manifests."""

from __future__ import annotations

import click

from shelf.commands._common import emit, json_option, open_shelf, project, settings, source_of


def _entry_dict(entry) -> dict:
    base = entry.base
    return {
        "name": entry.name,
        "version": entry.version,
        "kind": entry.kind,
        "yanked": entry.yanked,
        "yank_reason": entry.yank_reason,
        "requires": list(entry.requires),
        "provides": dict(entry.provides),
        "manifest_digest": entry.manifest_digest,
        "base": None
        if base is None
        else {
            "embedder": base.embedder,
            "vocab": base.vocab,
            "max_input_length": base.max_input_length,
            "n_chars": base.n_chars,
        },
    }


@click.command("show")
@click.argument("spec", metavar="NAME[@VERSION]")
@json_option
@click.pass_context
def show_cmd(ctx, spec, as_json):
    """Show a component's versions, or one version's manifest (files, base, requires)."""
    from registry_index.versions import format_version, parse_version
    from shelf.errors import NotFoundError

    name, _, version = spec.partition("@")
    proj = project()
    shelf = open_shelf(ctx, proj)
    source = source_of(shelf, proj, name)
    entries = source.index.entries(name)
    if not entries:
        where = ", ".join(shelf.urls)
        raise NotFoundError(f"no component named {name!r} on {where}", hint=_search_hint(settings(ctx).shelf))
    if not version:
        rows = [_entry_dict(e) for e in entries]
        lines = [f"{name} on {source.url}"] + [
            f"  {e.version:<14} {e.kind:<12}" + (f" yanked: {e.yank_reason}" if e.yanked else "")
            for e in entries
        ]
        emit(as_json, {"name": name, "shelf": source.url, "versions": rows}, lines)
        return
    entry = source.entry(name, format_version(parse_version(version)))
    manifest, raw, signature = source.signed_manifest(entry)
    signed = _signature(ctx, entry, manifest, raw, signature, source.url)
    data = manifest.to_dict() | {"manifest_digest": entry.manifest_digest, "yanked": entry.yanked}
    emit(as_json, data | {"signature": signed}, _manifest_lines(entry, manifest, signed))


def _signature(ctx, entry, manifest, raw: bytes, signature, url: str) -> dict:
    """Who signed the version, checked against the key stored with it and the trusted keys."""
    from shelf.commands._common import trust_policy
    from shelf.lockfile import LockedComponent
    from shelf.trust import signature_status

    component = LockedComponent.from_manifest(entry, manifest, url)
    return signature_status(component, raw, signature, trust_policy(ctx, project()))


def _manifest_lines(entry, manifest, signed: dict) -> list[str]:
    signer = f"signed by {signed['signer']} ({signed['status']})" if signed["signer"] else signed["status"]
    lines = [
        f"{manifest.name} {manifest.version} [{manifest.kind}]  {manifest.summary}".rstrip(),
        f"  licence   {manifest.license}",
        f"  manifest  {entry.manifest_digest}",
        f"  signature {signer}",
    ]
    if entry.yanked:
        lines.append(f"  YANKED    {entry.yank_reason}")
    if manifest.base is not None:
        lines.append(f"  base      embedder {manifest.base.embedder}  vocab {manifest.base.vocab}")
        lines.append(
            f"            max_input_length {manifest.base.max_input_length}  n_chars {manifest.base.n_chars}"
        )
    lines += [f"  requires  {r}" for r in manifest.requires]
    lines += [
        f"  file      {item}/{f.path}  {f.size} bytes  sha256:{f.sha256[:16]}…"
        for item, f in manifest.files()
    ]
    return lines


@click.command("search")
@click.argument("text")
@json_option
@click.pass_context
def search_cmd(ctx, text, as_json):
    """List the components whose name contains TEXT on every shelf in use, with their newest version.

    With several shelves, each name is shown from the first shelf that publishes it (as installs read it).
    """
    shelf = open_shelf(ctx, project())
    index = shelf.index
    needle = text.lower()
    rows = []
    for name in index.names():
        if needle in name.lower():
            newest = _newest(index.entries(name))
            url = index.source_of(name).url
            rows.append({"name": name, "version": newest.version, "kind": newest.kind, "shelf": url})
    several = len(shelf.urls) > 1
    lines = [
        f"{r['name']:<32} {r['version']:<14} {r['kind']}" + (f"  {r['shelf']}" if several else "")
        for r in rows
    ]
    data = {"query": text, "shelf": shelf.url, "shelves": shelf.urls, "results": rows}
    emit(as_json, data, lines or [f"nothing matches {text!r}"])


def _newest(entries):
    """The version an install would pick by default: the newest release that is not yanked, if any."""
    from registry_index.versions import parse_version

    for pool in (
        [e for e in entries if not e.yanked and not parse_version(e.version).prerelease],
        [e for e in entries if not e.yanked],
        entries,
    ):
        if pool:
            return pool[-1]  # index files list versions in ascending SemVer order
    raise ValueError("an index file lists at least one version")


def _search_hint(shelf_option: str | None) -> str:
    """``cclm-shelf search TEXT``, naming the shelf given with --shelf so that it runs as printed."""
    import shlex

    from shelf.redaction import redact

    return (
        f"cclm-shelf --shelf {shlex.quote(redact(shelf_option))} search TEXT"
        if shelf_option
        else ("cclm-shelf search TEXT")
    )
