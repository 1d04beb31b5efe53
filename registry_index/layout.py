"""Where things live in a shelf repository: the one module that builds paths inside one.

Our layout (one folder per published version, pointer files for every item file, a sparse index)::

    .gitattributes                                      GITATTRIBUTES below
    index/config.json                                   {"format": 1}
    index/<prefix>/<name>                               one JSON line per version (see index.py)
    components/<name>/<version>/cclm-manifest.json
    components/<name>/<version>/cclm-manifest.sig       optional: the signature (a model-signing bundle)
    components/<name>/<version>/cclm-manifest.pub       optional: the signer's public key (PEM)
    components/<name>/<version>/<item_type>/<rel_path>  Git LFS pointer files

``<prefix>`` follows Cargo's index: ``1/`` for one-character names, ``2/`` for two, ``3/<c>/`` for three
(``c`` the first character) and ``<ab>/<cd>/`` (the first four characters) for longer ones, so no index
folder grows past a few thousand entries.

A local shelf is a bare repository whose LFS objects sit where git-lfs puts them when it pushes to a local
path: ``lfs/objects/<oid[0:2]>/<oid[2:4]>/<oid>`` (``lfs_object_path``).

A static (sparse) export of a shelf, read over plain HTTP (``sparse+http(s)://``), holds the same index and
manifest paths without git, plus::

    config.json                                         SPARSE_CONFIG_PATH: format, where blobs come from
    index/names.txt                                     NAMES_PATH: every component name, one a line
    blobs/sha256/<oid[0:2]>/<oid>                       optional: the blobs themselves (``blob_path``)

The original cclm shelf (read-only here) kept one tarball per item at a shelf-wide tag ``vX.Y.Z``:
``<item_type>/<identifier>.tar.gz``.

Every path component is validated, because names and paths come from manifests and requirement strings
that other people wrote; a component of ``.`` or ``..`` (or a name such as ``ab..c`` whose prefix would be
``..``) raises LayoutError.
"""

from __future__ import annotations

import re

import semver

from registry_index.errors import LayoutError, RegistryIndexError
from registry_index.pointer import is_sha256_hex
from registry_index.requirements import validate_name
from registry_index.versions import format_version, parse_version

MANIFEST_NAME = "cclm-manifest.json"
SIGNATURE_NAME = "cclm-manifest.sig"
PUBLIC_KEY_NAME = "cclm-manifest.pub"
GITATTRIBUTES_PATH = ".gitattributes"
LFSCONFIG_PATH = ".lfsconfig"  # optional: lfs.url, the git-lfs convention
INDEX_DIR = "index"
COMPONENTS_DIR = "components"
INDEX_CONFIG_PATH = "index/config.json"
INDEX_FORMAT = 1
SPARSE_CONFIG_PATH = "config.json"
NAMES_PATH = "index/names.txt"
BLOBS_DIR = "blobs/sha256"

_LFS = "filter=lfs diff=lfs merge=lfs -text"
GITATTRIBUTES = "\n".join(
    [
        "# Large files live in Git LFS; the repository holds pointer files only.",
        *(
            f"{pattern} {_LFS}"
            for pattern in (
                "*.h5",
                "*.weights.h5",
                "*.keras",
                "*.npy",
                "*.npz",
                "*.tar.gz",
                "*.bin",
                "*.safetensors",
                "*.ckpt",
                "*.data-*",
                "*.test",
                # Every item file of a published version is a pointer, whatever its name.
                "components/*/*/*/**",
            )
        ),
        "",
    ]
)

_ITEM_TYPE = re.compile(r"[a-z0-9][a-z0-9_-]*", re.ASCII)
_FORBIDDEN_CHARS = re.compile(r"[\x00-\x1f\x7f\\:*?\"<>|]")


def _name(name: str) -> str:
    try:
        validate_name(name)
    except RegistryIndexError as e:
        raise LayoutError(e.message, hint=e.hint) from e
    if ".." in name:
        raise LayoutError(f"component name {name!r} contains '..', which cannot be placed in a shelf")
    return name


def _version(version: str | semver.Version) -> str:
    if isinstance(version, semver.Version):
        return format_version(version)
    try:
        return format_version(parse_version(version))
    except RegistryIndexError as e:
        raise LayoutError(e.message, hint=e.hint) from e


def validate_item_type(item_type: str) -> str:
    """Item types (``model``, ``preprocessor``, ``embedder``...) are lowercase words: one path component."""
    if not isinstance(item_type, str) or not _ITEM_TYPE.fullmatch(item_type) or len(item_type) > 64:
        raise LayoutError(
            f"invalid item type {item_type!r}: use lowercase letters, digits, '_' and '-'",
            hint="e.g. model, preprocessor or embedder",
        )
    return item_type


def validate_relative_path(path: str) -> str:
    """Check that ``path`` is a normalised, relative POSIX path that stays inside its folder."""
    if not isinstance(path, str) or not path:
        raise LayoutError("a file path must be a non-empty string", hint="e.g. model.weights.h5")
    if path.startswith("/"):
        raise LayoutError(f"file path {path!r} is absolute", hint="paths are relative to the item folder")
    if "\\" in path:
        raise LayoutError(f"file path {path!r} contains a backslash", hint="use '/' between folders")
    if _FORBIDDEN_CHARS.search(path):
        raise LayoutError(f"file path {path!r} contains a control or reserved character")
    for part in path.split("/"):
        if part in ("", ".", ".."):
            raise LayoutError(
                f"file path {path!r} is not normalised (empty, '.' or '..' component)",
                hint="write it like 'assets/vocab.json'",
            )
    return path


def component_dir(name: str, version: str | semver.Version) -> str:
    """``components/<name>/<version>``: the folder of one published version."""
    return f"{COMPONENTS_DIR}/{_name(name)}/{_version(version)}"


def manifest_path(name: str, version: str | semver.Version) -> str:
    return f"{component_dir(name, version)}/{MANIFEST_NAME}"


def signature_paths(name: str, version: str | semver.Version) -> tuple[str, str]:
    """Where a signed version keeps its signature and its signer's public key (plain git files)."""
    folder = component_dir(name, version)
    return f"{folder}/{SIGNATURE_NAME}", f"{folder}/{PUBLIC_KEY_NAME}"


def file_path(name: str, version: str | semver.Version, item_type: str, rel_path: str) -> str:
    """Where the pointer file of one item file lives."""
    item = validate_item_type(item_type)
    return f"{component_dir(name, version)}/{item}/{validate_relative_path(rel_path)}"


def index_prefix(name: str) -> str:
    """Cargo's sharding of index files by name length and first characters."""
    _name(name)
    if len(name) <= 2:
        return str(len(name))
    if len(name) == 3:
        return f"3/{name[0]}"
    return f"{name[:2]}/{name[2:4]}"


def index_path(name: str) -> str:
    """``index/<prefix>/<name>``: the index file listing every version of ``name``."""
    return f"{INDEX_DIR}/{index_prefix(name)}/{name}"


def release_tag(name: str, version: str | semver.Version) -> str:
    """The git tag of one published version: ``<name>/v<version>``."""
    return f"{_name(name)}/v{_version(version)}"


def legacy_tag(version: str | semver.Version) -> str:
    """The shelf-wide tag of the original layout: ``vX.Y.Z``."""
    return f"v{_version(version)}"


def legacy_archive_path(item_type: str, identifier: str) -> str:
    """``<item_type>/<identifier>.tar.gz`` in the original cclm shelf (read at a ``legacy_tag``)."""
    return f"{validate_item_type(item_type)}/{_name(identifier)}.tar.gz"


def lfs_object_path(oid: str) -> str:
    """``lfs/objects/<aa>/<bb>/<oid>`` inside a bare shelf repository, as the git-lfs client lays it out."""
    if not is_sha256_hex(oid):
        raise LayoutError(f"invalid LFS oid {oid!r}: expected 64 lowercase hex digits")
    return f"lfs/objects/{oid[:2]}/{oid[2:4]}/{oid}"


def blob_path(oid: str) -> str:
    """``blobs/sha256/<aa>/<oid>`` in a static export (the blob store's own layout)."""
    if not is_sha256_hex(oid):
        raise LayoutError(f"invalid blob id {oid!r}: expected 64 lowercase hex digits")
    return f"{BLOBS_DIR}/{oid[:2]}/{oid}"
