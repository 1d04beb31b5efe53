"""The package a saved folder makes: what its items say, its snapshot, its manifest; touches no shelf.

``prepare`` checks the folder, fingerprints its items (``cclm_core.fingerprint``, h5py) while it snapshots
them into the store (``shelf.publish_folder``), and builds the validated manifest; ``signed`` adds the
signature once the manifest is final. ``shelf.publish`` takes it from there to a shelf.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from registry_index.index import IndexEntry, entry_from_manifest
from registry_index.manifest import Manifest, dump_manifest, manifest_digest
from shelf.background import together
from shelf.errors import PublishError
from shelf.publish_folder import SnapshotFile, check_unchanged, find_items, folder_state, snapshot
from shelf.store import BlobStore

if TYPE_CHECKING:
    from shelf.signing import Signature

FRAMEWORK = {"cclm-core": ">=0.1", "tensorflow": ">=2.16"}


@dataclass(frozen=True)
class PackageInfo:
    """What the publisher says about a package, beside what the folder itself tells."""

    name: str
    version: str
    summary: str = ""
    license: str = "unspecified"
    requires: tuple[str, ...] = ()
    training: dict | None = None


def describe_items(items: dict[str, Path]) -> dict[str, dict]:
    from cclm_core.fingerprint import describe

    return {kind: describe(folder) for kind, folder in items.items()}


def package_kind(described: dict[str, dict]) -> str:
    kinds = set(described)
    if kinds == {"preprocessor"}:
        return "preprocessor"
    if kinds <= {"preprocessor", "embedder"}:
        return "embedder"
    if kinds == {"component"}:
        return "component"
    return "bundle"


def base_and_provides(described: dict[str, dict]) -> tuple[dict | None, dict]:
    """The base a package stands on and what it offers, checked across its own items."""
    prep = described.get("preprocessor", {}).get("provides")
    emb = described.get("embedder", {}).get("provides")
    comp = described.get("component")
    provides: dict = {}
    base = None
    if emb:
        base = {
            "embedder": emb["embedder"],
            "vocab": prep["vocab"] if prep else None,
            "max_input_length": emb["max_input_length"],
            "n_chars": emb["n_chars"],
        }
        provides.update(emb)
    if prep:
        provides["vocab"] = prep["vocab"]
        _check_same("input length", prep["max_input_length"], base and base["max_input_length"])
        _check_same("n_chars", prep["n_chars"], base and base["n_chars"])
    if comp:
        comp_base = dict(comp["base"])
        if base:
            _check_same("embedder", comp_base["embedder"], base["embedder"])
            comp_base["vocab"] = comp_base.get("vocab") or base["vocab"]
        base = comp_base
        provides = {"output_dim": comp["provides"]["output_dim"]} | (
            {k: v for k, v in provides.items() if k != "output_dim"}
        )
    return base, provides


def _check_same(what: str, item_value, package_value) -> None:
    if package_value is not None and item_value != package_value:
        raise PublishError(
            f"the items of this folder disagree on the {what}: {item_value} vs {package_value}",
            hint="save the component together with the embedder and preprocessor it was trained on",
        )


def build_manifest(
    info: PackageInfo, described: dict[str, dict], files: Sequence[SnapshotFile], probes: dict | None = None
) -> Manifest:
    base, provides = base_and_provides(described)
    items: dict[str, dict] = {}
    for f in files:
        items.setdefault(f.item, {"files": []})["files"].append(
            {"path": f.path, "sha256": f.sha256, "size": f.size}
        )
    data = {
        "schema_version": 1,
        "name": info.name,
        "version": info.version,
        "kind": package_kind(described),
        "summary": info.summary,
        "license": info.license,
        "items": items,
        "base": base,
        "provides": provides,
        "requires": list(info.requires),
        "framework": dict(FRAMEWORK),
    }
    if info.training:
        data["training"] = info.training
    if probes:
        data["probes"] = probes
    if base is None:
        data.pop("base")
    return Manifest.from_dict(data)


@dataclass(frozen=True)
class Prepared:
    """A package ready to go up: its manifest (bytes and parsed), its index entry and its snapshot."""

    manifest: Manifest
    data: bytes
    entry: IndexEntry
    files: tuple[SnapshotFile, ...]
    signature: Signature | None = None


def prepare(
    folder: Path,
    info: PackageInfo,
    store: BlobStore,
    progress: Callable[[str], None] = lambda _m: None,
    sign_key: Path | None = None,
    probes: bool = False,
) -> Prepared:
    """Check the folder, snapshot it into the store and build the validated manifest; touches no shelf.

    ``sign_key`` is only checked here (a bad key is refused before anything is hashed): the manifest is
    signed by ``signed`` once it is final. With ``probes`` the items that compute are run on the probe
    set and their outputs recorded in the manifest (TensorFlow).
    """
    if sign_key is not None:
        from shelf.signing import signer_fingerprint

        signer_fingerprint(sign_key)
    items = find_items(Path(folder))
    before = folder_state(items)
    # Fingerprints (h5py: an import, then reads) overlap the snapshot (hashing, which frees the GIL); the
    # snapshot runs here, so an interrupt still removes its unfinished copy.
    progress(f"hashing {len(items)} item(s) of {folder}")
    files, described = together(lambda: snapshot(items, store), lambda: describe_items(items), "describe")
    base_and_provides(described)  # refuse items that disagree on their base
    recorded = _probes(items, progress) if probes else None
    # The manifest's fingerprints come from the folder, the uploads from the snapshot: both must agree.
    check_unchanged(items, before)
    manifest = build_manifest(info, described, files, recorded)
    data = dump_manifest(manifest)
    entry = entry_from_manifest(manifest, manifest_digest(data))
    return Prepared(manifest, data, entry, tuple(files))


def _probes(items: dict[str, Path], progress) -> dict | None:
    from cclm_core.probes import record

    progress(f"running the behaviour probes on {', '.join(k for k in sorted(items) if k != 'preprocessor')}")
    return record(items)


def signed(prepared: Prepared, sign_key: Path | None, progress=lambda _m: None) -> Prepared:
    """``prepared`` with a signature over its final manifest and every file's digest (when given a key)."""
    if sign_key is None:
        return prepared
    from shelf.signing import sign, signed_digests

    manifest = prepared.manifest
    progress(f"signing {manifest.name} {manifest.version} with {sign_key}")
    digests = signed_digests(prepared.data, [(item, f.path, f.sha256) for item, f in manifest.files()])
    return replace(prepared, signature=sign(manifest.name, digests, Path(sign_key)))
