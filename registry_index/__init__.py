"""The contract between publishers and installers: manifests, versions, requirements, layout, index.

``HttpIndex`` is imported on first use (it brings the HTTP stack, which most commands never need).
"""

from typing import TYPE_CHECKING, Any

from registry_index.errors import (
    IndexFetchError,
    IndexFormatError,
    LayoutError,
    ManifestError,
    PointerError,
    Problem,
    RegistryIndexError,
    RequirementError,
    VersionError,
)
from registry_index.index import (
    IndexEntry,
    IndexSource,
    LocalIndex,
    build_index,
    entry_from_manifest,
    format_index_file,
    parse_index_file,
    with_yanked,
)
from registry_index.layout import (
    GITATTRIBUTES,
    GITATTRIBUTES_PATH,
    INDEX_CONFIG_PATH,
    LFSCONFIG_PATH,
    MANIFEST_NAME,
    component_dir,
    file_path,
    index_path,
    legacy_archive_path,
    legacy_tag,
    lfs_object_path,
    manifest_path,
    release_tag,
)
from registry_index.manifest import (
    Base,
    FileEntry,
    Manifest,
    dump_manifest,
    load_manifest,
    manifest_digest,
    validate_manifest,
)
from registry_index.pointer import (
    LfsPointer,
    format_pointer,
    is_sha256_hex,
    looks_like_pointer,
    parse_pointer,
)
from registry_index.requirements import (
    Requirement,
    Specifier,
    SpecifierSet,
    parse_requirement,
    validate_name,
)
from registry_index.versions import format_version, is_prerelease, parse_version, version_key

__all__ = [
    "GITATTRIBUTES",
    "GITATTRIBUTES_PATH",
    "INDEX_CONFIG_PATH",
    "LFSCONFIG_PATH",
    "MANIFEST_NAME",
    "Base",
    "FileEntry",
    "HttpIndex",
    "IndexEntry",
    "IndexFetchError",
    "IndexFormatError",
    "IndexSource",
    "LayoutError",
    "LfsPointer",
    "LocalIndex",
    "Manifest",
    "ManifestError",
    "PointerError",
    "Problem",
    "RegistryIndexError",
    "Requirement",
    "RequirementError",
    "Specifier",
    "SpecifierSet",
    "VersionError",
    "build_index",
    "component_dir",
    "dump_manifest",
    "entry_from_manifest",
    "file_path",
    "format_index_file",
    "format_pointer",
    "format_version",
    "index_path",
    "is_prerelease",
    "is_sha256_hex",
    "legacy_archive_path",
    "legacy_tag",
    "lfs_object_path",
    "load_manifest",
    "looks_like_pointer",
    "manifest_digest",
    "manifest_path",
    "parse_index_file",
    "parse_pointer",
    "parse_requirement",
    "parse_version",
    "release_tag",
    "validate_manifest",
    "validate_name",
    "version_key",
    "with_yanked",
]


if TYPE_CHECKING:
    from registry_index.http_index import HttpIndex


def __getattr__(name: str) -> Any:
    if name == "HttpIndex":
        from registry_index.http_index import HttpIndex

        return HttpIndex
    raise AttributeError(f"module 'registry_index' has no attribute {name!r}")
