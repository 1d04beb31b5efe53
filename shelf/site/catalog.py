"""What a shelf's web pages show, read from its mirror: every component, version, file and base.

The catalog holds only what the shelf publishes (index lines, manifests, signature files), never where the
shelf lives on this machine: a shelf given as a path is shown by no URL at all unless one is given.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from registry_index import layout
from registry_index.index import IndexEntry
from registry_index.manifest import Base, Manifest
from registry_index.versions import parse_version


@dataclass(frozen=True)
class FileRow:
    item: str
    path: str
    size: int
    sha256: str


@dataclass(frozen=True)
class VersionPage:
    """One published version as its component page shows it."""

    entry: IndexEntry
    manifest: Manifest
    files: tuple[FileRow, ...]
    signatures: tuple[str, ...]  # file names of signatures beside the manifest
    signer: str | None  # who signed, where the signature says

    @property
    def version(self) -> str:
        return self.entry.version

    @property
    def total_size(self) -> int:
        return sum(f.size for f in self.files)


@dataclass(frozen=True)
class Component:
    name: str
    versions: tuple[VersionPage, ...]  # newest first

    @property
    def latest(self) -> VersionPage:
        """The version an install picks by default: the newest release that is not yanked, if any."""
        for pool in (
            [v for v in self.versions if not v.entry.yanked and not parse_version(v.version).prerelease],
            [v for v in self.versions if not v.entry.yanked],
            list(self.versions),
        ):
            if pool:
                return pool[0]
        raise ValueError("a component has at least one version")


@dataclass(frozen=True)
class BaseRow:
    """One base (an embedder's weights, vocabulary and input length) and what uses it."""

    base: Base
    providers: tuple[tuple[str, str], ...] = ()  # (name, version) of embedders offering it
    users: tuple[tuple[str, str], ...] = ()  # (name, version) of components trained on it

    @property
    def key(self) -> str:
        return base_key(self.base)


@dataclass
class Catalog:
    components: list[Component] = field(default_factory=list)
    bases: list[BaseRow] = field(default_factory=list)


def base_key(base: Base) -> str:
    """The page name of a base: its embedder fingerprint's hex digits."""
    return base.embedder.removeprefix("sha256:")


def read_catalog(source) -> Catalog:
    """Everything the pages show, from a ``ShelfSource`` (a few git processes whatever the shelf's size)."""
    names = source.index.names()
    source.index.preload(names)
    entries = {name: source.index.entries(name) for name in names}
    paths = [layout.manifest_path(e.name, e.version) for found in entries.values() for e in found]
    blobs = source.mirror.read_many(source.head, paths) if paths else {}
    beside = _metadata_files(source) if paths else {}
    signatures = source.mirror.read_many(source.head, [p for ps in beside.values() for p in ps])
    components = [
        Component(name, tuple(_version(source, e, blobs, beside, signatures) for e in reversed(found)))
        for name, found in sorted(entries.items())
        if found
    ]
    return Catalog(components, _bases(components))


def _metadata_files(source) -> dict[str, list[str]]:
    """Files directly in each version's folder other than the manifest (signatures), by folder."""
    found: dict[str, list[str]] = {}
    for entry in source.mirror.list_tree(source.head, layout.COMPONENTS_DIR, recursive=True):
        path = PurePosixPath(entry.path)
        if len(path.parts) == 4 and path.name != layout.MANIFEST_NAME:
            found.setdefault(str(path.parent), []).append(entry.path)
    return found


def _version(
    source,
    entry: IndexEntry,
    blobs: Mapping[str, bytes],
    beside: Mapping[str, Sequence[str]],
    signatures: Mapping[str, bytes],
) -> VersionPage:
    manifest = source.check_manifest(entry, blobs[layout.manifest_path(entry.name, entry.version)])
    files = tuple(FileRow(item, f.path, f.size, f.sha256) for item, f in manifest.files())
    sig_paths = sorted(beside.get(layout.component_dir(entry.name, entry.version), []))
    signer = next((s for s in (signer_of(signatures[p]) for p in sig_paths) if s), None)
    return VersionPage(entry, manifest, files, tuple(PurePosixPath(p).name for p in sig_paths), signer)


def signer_of(signature: bytes) -> str | None:
    """Who signed, as a model-signing (Sigstore) bundle names it: a certificate identity or a key hint."""
    try:
        data = json.loads(signature)
    except (ValueError, UnicodeDecodeError):
        return None
    material = data.get("verificationMaterial", {}) if isinstance(data, dict) else {}
    key = material.get("publicKey", {}) if isinstance(material, dict) else {}
    hint = key.get("hint") if isinstance(key, dict) else None
    if isinstance(hint, str) and hint:
        return f"key {hint}"
    return _certificate_identity(material)


def _certificate_identity(material) -> str | None:
    """The subject (e-mail or URI) of a signing certificate, where one is embedded."""
    import base64

    cert = material.get("certificate", {}) if isinstance(material, dict) else {}
    raw = cert.get("rawBytes") if isinstance(cert, dict) else None
    if not isinstance(raw, str):
        return None
    try:
        from cryptography import x509

        parsed = x509.load_der_x509_certificate(base64.b64decode(raw))
        names = parsed.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        found = names.get_values_for_type(x509.RFC822Name) or names.get_values_for_type(
            x509.UniformResourceIdentifier
        )
    except Exception:  # a signature we cannot read names nobody; verification is the installer's job
        return None
    return found[0] if found else None


def _bases(components: Sequence[Component]) -> list[BaseRow]:
    """Each base once: the embedders that provide it and the components trained on it."""
    bases: dict[str, Base] = {}
    providers: dict[str, list[tuple[str, str]]] = {}
    users: dict[str, list[tuple[str, str]]] = {}
    for component in components:
        for version in component.versions:
            offered, used = version.entry.provided_base, version.entry.base
            base, found = (offered, providers) if offered is not None else (used, users)
            if base is not None:
                bases.setdefault(base_key(base), base)
                found.setdefault(base_key(base), []).append((component.name, version.version))
    return [
        BaseRow(bases[key], tuple(providers.get(key, ())), tuple(users.get(key, ()))) for key in sorted(bases)
    ]
