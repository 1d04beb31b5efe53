"""At publish: find the published embedder a component was trained on, and require it.

A component's manifest records its base as fingerprints. Without a requirement on the package that
provides that embedder, an install would bring the component alone and ``compose`` would have nothing to
build it on. So a component published without ``--requires`` gets ``NAME==VERSION`` of the newest
published, not yanked embedder whose fingerprint is its base; when the shelf has none, the publish is
refused with the fingerprint and how to publish the base first.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from registry_index.index import entry_from_manifest
from registry_index.manifest import Manifest, dump_manifest, manifest_digest
from registry_index.versions import parse_version
from shelf.errors import PublishError
from shelf.redaction import redact

if TYPE_CHECKING:
    from registry_index.index import IndexEntry
    from shelf.publish_package import Prepared
    from shelf.source import ShelfSource


def with_base_requirement(prepared: Prepared, source: ShelfSource) -> tuple[Prepared, str | None]:
    """``prepared`` with a requirement on its base embedder added (and that requirement), if it needs one."""
    manifest = prepared.manifest
    if manifest.kind != "component" or manifest.base is None or manifest.requires:
        return prepared, None
    provider = newest_provider(source, manifest.base.embedder)
    if provider is None:
        raise PublishError(
            f"{manifest.name} {manifest.version} was trained on the embedder {manifest.base.embedder}, "
            f"and no published version on {redact(source.url)} provides it",
            hint=f"publish the embedder with fingerprint {manifest.base.embedder} first (cclm-shelf --shelf "
            f"{redact(source.url)} publish BASE_FOLDER --name NAME --version X, from the folder the "
            "component was trained on), name its package with --requires, or publish with --without-base",
        )
    requirement = f"{provider.name}=={provider.version}"
    rebuilt = Manifest.from_dict(manifest.to_dict() | {"requires": [requirement]})
    data = dump_manifest(rebuilt)
    entry = entry_from_manifest(rebuilt, manifest_digest(data))
    return replace(prepared, manifest=rebuilt, data=data, entry=entry), requirement


def newest_provider(source: ShelfSource, embedder: str) -> IndexEntry | None:
    """The newest not-yanked embedder package on the shelf whose fingerprint is ``embedder``."""
    found = [
        entry
        for name in source.index.names()
        for entry in source.index.entries(name)
        if entry.kind == "embedder" and entry.provides.get("embedder") == embedder and not entry.yanked
    ]
    return max(found, key=lambda e: (parse_version(e.version), e.name), default=None)
