"""The contract between publishers and installers: manifests, versions, requirements, layout, index."""

from registry_index.errors import (
    IndexFormatError,
    LayoutError,
    ManifestError,
    PointerError,
    Problem,
    RegistryIndexError,
    RequirementError,
    VersionError,
)
from registry_index.pointer import LfsPointer, format_pointer, looks_like_pointer, parse_pointer
from registry_index.requirements import (
    Requirement,
    Specifier,
    SpecifierSet,
    parse_requirement,
    validate_name,
)
from registry_index.versions import format_version, is_prerelease, parse_version, version_key

__all__ = [
    "IndexFormatError",
    "LayoutError",
    "LfsPointer",
    "ManifestError",
    "PointerError",
    "Problem",
    "RegistryIndexError",
    "Requirement",
    "RequirementError",
    "Specifier",
    "SpecifierSet",
    "VersionError",
    "format_pointer",
    "format_version",
    "is_prerelease",
    "looks_like_pointer",
    "parse_pointer",
    "parse_requirement",
    "parse_version",
    "validate_name",
    "version_key",
]
