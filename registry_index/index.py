"""The sparse index: one file per component, one canonical JSON line per published version.

Modelled on Cargo's sparse registry index: an installer that needs ``en_wiki_ner_1`` reads
``index/en/_w/en_wiki_ner_1`` (see ``layout.index_path``) and nothing else, so the cost of a lookup does not
grow with the number of components on the shelf. A line holds what the resolver needs without opening a
manifest::

    {"base":{...}|null,"items":{"model":1234},"kind":"component","manifest_digest":"sha256:...",
     "name":"en_wiki_ner_1","provides":{...},"requires":["en_wiki_clm_1>=0.2,<0.3"],"version":"0.3.0",
     "yanked":false}

(``items`` maps each item type to the total bytes of its files; ``yank_reason`` appears only when set.)
Lines are sorted by SemVer precedence, so rebuilding the index from the same manifests gives the same bytes.

Readers implement ``IndexSource``: ``entries(name)`` returns every version of ``name`` (an EMPTY LIST when
the shelf has no such component: the caller decides whether that is an error, and says so in its own
terms), and ``names()`` lists components where the source can (``LocalIndex`` only). Both count
``files_read``. ``HttpIndex`` lives in ``http_index.py``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import semver

from registry_index.errors import IndexFormatError, RegistryIndexError
from registry_index.layout import INDEX_CONFIG_PATH, INDEX_DIR, INDEX_FORMAT, index_path
from registry_index.manifest import KINDS, Base, Manifest, canonical_json, provided_base
from registry_index.pointer import is_sha256_hex
from registry_index.requirements import parse_requirement, validate_name
from registry_index.versions import parse_version, version_key

_DIGEST_PREFIX = "sha256:"
_REQUIRED_KEYS = ("name", "version", "manifest_digest", "kind", "yanked")


@dataclass(frozen=True)
class IndexEntry:
    """One published version as the index records it."""

    name: str
    version: str
    manifest_digest: str
    kind: str
    base: Base | None = None
    provides: Mapping[str, Any] = field(default_factory=dict)
    requires: tuple[str, ...] = ()
    items: Mapping[str, int] = field(default_factory=dict)
    yanked: bool = False
    yank_reason: str | None = None

    @property
    def semver(self) -> semver.Version:
        return parse_version(self.version)

    @property
    def provided_base(self) -> Base | None:
        """For an embedder, the base components trained on it must name (see ``manifest.provided_base``)."""
        return provided_base(self.kind, self.provides, self.base)

    def __hash__(self) -> int:
        # The dataclass hash would fail on the dict fields; a version is identified by its manifest digest.
        return hash((self.name, self.version, self.manifest_digest))

    def to_dict(self) -> dict[str, Any]:
        data = {
            "name": self.name,
            "version": self.version,
            "manifest_digest": self.manifest_digest,
            "kind": self.kind,
            "base": self.base.to_dict() if self.base else None,
            "provides": dict(self.provides),
            "requires": list(self.requires),
            "items": dict(self.items),
            "yanked": self.yanked,
        }
        if self.yank_reason is not None:
            data["yank_reason"] = self.yank_reason
        return data

    def to_line(self) -> bytes:
        """The canonical JSON line, newline included."""
        return canonical_json(self.to_dict())

    @classmethod
    def from_checked_dict(cls, data: dict[str, Any]) -> IndexEntry:
        """The entry of a decoded line whose every field ``from_dict`` checked before (same content)."""
        base = data.get("base")
        return cls(
            name=data["name"],
            version=data["version"],
            manifest_digest=data["manifest_digest"],
            kind=data["kind"],
            base=Base.from_dict(base) if base is not None else None,
            provides=data.get("provides", {}),
            requires=tuple(data.get("requires", [])),
            items=data.get("items", {}),
            yanked=data["yanked"],
            yank_reason=data.get("yank_reason"),
        )

    @classmethod
    def from_dict(cls, data: Any) -> IndexEntry:
        """Build an entry from a decoded line; RegistryIndexError names the first bad field."""
        if not isinstance(data, dict):
            raise RegistryIndexError(f"an index line is a JSON object, got {type(data).__name__}")
        missing = [key for key in _REQUIRED_KEYS if key not in data]
        if missing:
            raise RegistryIndexError(f"missing field{'s' if len(missing) > 1 else ''} {', '.join(missing)}")
        return cls(
            name=_name_field(data["name"]),
            version=_version_field(data["version"]),
            manifest_digest=_digest_field(data["manifest_digest"], "manifest_digest"),
            kind=_kind_field(data["kind"]),
            base=_base_field(data.get("base")),
            provides=_mapping_field(data.get("provides", {}), "provides"),
            requires=_requires_field(data.get("requires", [])),
            items=_items_field(data.get("items", {})),
            yanked=_bool_field(data["yanked"], "yanked"),
            yank_reason=_optional_str_field(data.get("yank_reason"), "yank_reason"),
        )


def _name_field(value: Any) -> str:
    if not isinstance(value, str):
        raise RegistryIndexError(f"'name' must be a string, got {value!r}")
    return validate_name(value)


def _version_field(value: Any) -> str:
    # A valid SemVer string is canonical exactly when it has no leading v (parse_version takes one).
    if not isinstance(value, str) or value[:1] in ("v", "V"):
        raise RegistryIndexError(f"'version' must be a canonical SemVer string, got {value!r}")
    parse_version(value)  # VersionError when it is no SemVer at all
    return value


def _digest_field(value: Any, key: str) -> str:
    hexpart = value[len(_DIGEST_PREFIX) :] if isinstance(value, str) else ""
    if not (isinstance(value, str) and value.startswith(_DIGEST_PREFIX) and is_sha256_hex(hexpart)):
        raise RegistryIndexError(f"{key!r} must be 'sha256:<64 hex>', got {value!r}")
    return value


def _kind_field(value: Any) -> str:
    if value not in KINDS:
        raise RegistryIndexError(f"'kind' must be one of {', '.join(KINDS)}, got {value!r}")
    return value


def _base_field(value: Any) -> Base | None:
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) != {"embedder", "vocab", "max_input_length", "n_chars"}:
        raise RegistryIndexError(
            f"'base' must hold embedder, vocab, max_input_length, n_chars, got {value!r}"
        )
    _digest_field(value["embedder"], "base.embedder")
    if value["vocab"] is not None:
        _digest_field(value["vocab"], "base.vocab")
    for key in ("max_input_length", "n_chars"):
        _positive_int(value[key], f"base.{key}")
    return Base.from_dict(value)


def _positive_int(value: Any, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise RegistryIndexError(f"{key!r} must be a positive integer, got {value!r}")
    return value


def _mapping_field(value: Any, key: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise RegistryIndexError(f"{key!r} must be a JSON object, got {value!r}")
    return value


def _requires_field(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(text, str) for text in value):
        raise RegistryIndexError(f"'requires' must be a list of requirement strings, got {value!r}")
    for text in value:
        parse_requirement(text)
    return tuple(value)


def _items_field(value: Any) -> dict[str, int]:
    items = _mapping_field(value, "items")
    for key, size in items.items():
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise RegistryIndexError(f"'items.{key}' must be a byte count, got {size!r}")
    return items


def _bool_field(value: Any, key: str) -> bool:
    if not isinstance(value, bool):
        raise RegistryIndexError(f"{key!r} must be true or false, got {value!r}")
    return value


def _optional_str_field(value: Any, key: str) -> str | None:
    if value is not None and not isinstance(value, str):
        raise RegistryIndexError(f"{key!r} must be a string, got {value!r}")
    return value


def entry_from_manifest(manifest: Manifest, digest: str) -> IndexEntry:
    """The (not yanked) index entry of a published manifest whose canonical bytes hash to ``digest``."""
    items = {item_type: sum(f.size for f in files) for item_type, files in sorted(manifest.items.items())}
    return IndexEntry(
        name=manifest.name,
        version=manifest.version,
        manifest_digest=_digest_field(digest, "manifest_digest"),
        kind=manifest.kind,
        base=manifest.base,
        provides=dict(manifest.provides),
        requires=tuple(manifest.requires),
        items=items,
    )


def parse_index_file(data: bytes, path: str) -> list[IndexEntry]:
    """Read one index file; IndexFormatError gives ``path`` and the 1-based line of the first bad line.

    Every field of every line is checked once per content: bytes already checked at ``path`` in this
    process (known by their sha256) are only decoded, as a manifest is once its digest was validated."""
    if not data:
        return []
    data = bytes(data)
    if not data.endswith(b"\n"):
        raise IndexFormatError(
            path,
            data.count(b"\n") + 1,
            "line is truncated (the file does not end with a newline)",
            hint=_REFRESH,
        )
    key = (path, hashlib.sha256(data).digest())
    if key in _CHECKED:  # one value a line, known: all lines decode at once, as one JSON array
        lines = json.loads(b"[" + data[:-1].replace(b"\n", b",") + b"]")
        return [IndexEntry.from_checked_dict(line) for line in lines]
    entries = _checked_entries(data, path)
    _remember_checked(key)
    return entries


_REFRESH = "the index file is damaged: fetch it again or rebuild the index from the manifests"
_CHECKED: dict[tuple[str, bytes], None] = {}  # (path, sha256 of the bytes) of every index file checked here
_CHECKED_MAX = 16384


def _remember_checked(key: tuple[str, bytes]) -> None:
    """Remember ``key`` as checked, forgetting the oldest beyond the bound (safe beside other threads)."""
    _CHECKED[key] = None
    if len(_CHECKED) > _CHECKED_MAX:
        with contextlib.suppress(RuntimeError):  # another thread changed it meanwhile: forgets next time
            _CHECKED.pop(next(iter(_CHECKED)), None)


def forget_checked_index_files() -> None:
    """Check every index file again when next read (as a new process would; for benchmarks and tests)."""
    _CHECKED.clear()


def _checked_entries(data: bytes, path: str) -> list[IndexEntry]:
    expected = path.rstrip("/").rsplit("/", 1)[-1]
    entries: list[IndexEntry] = []
    seen: dict[str, int] = {}
    for number, raw in enumerate(data.split(b"\n")[:-1], start=1):
        entry = _entry(_decode_line(raw, path, number), path, number)
        if entry.name != expected:
            raise IndexFormatError(
                path, number, f"names component {entry.name!r}, but this file is {expected!r}"
            )
        if entry.version in seen:
            raise IndexFormatError(
                path, number, f"version {entry.version} already listed on line {seen[entry.version]}"
            )
        seen[entry.version] = number
        entries.append(entry)
    return entries


def _decode_line(raw: bytes, path: str, number: int) -> Any:
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise IndexFormatError(
            path, number, f"not a JSON line ({_short(e)}): {_excerpt(raw)}", hint=_REFRESH
        ) from e


def _entry(decoded: Any, path: str, number: int) -> IndexEntry:
    try:
        return IndexEntry.from_dict(decoded)
    except RegistryIndexError as e:
        raise IndexFormatError(path, number, f"invalid entry: {e.message}", hint=_REFRESH) from e


def _short(error: Exception) -> str:
    return str(error).splitlines()[0][:120] if str(error) else type(error).__name__


def _excerpt(raw: bytes) -> str:
    return repr(raw[:60]) + ("..." if len(raw) > 60 else "")


def format_index_file(entries: Iterable[IndexEntry]) -> bytes:
    """All versions of one component, sorted by SemVer precedence, one canonical line each."""
    ordered = sorted(entries, key=lambda e: version_key(parse_version(e.version)))
    names = {entry.name for entry in ordered}
    if len(names) > 1:
        raise RegistryIndexError(f"an index file holds one component, got {', '.join(sorted(names))}")
    versions = [entry.version for entry in ordered]
    duplicates = sorted({v for v in versions if versions.count(v) > 1})
    if duplicates:
        raise RegistryIndexError(f"version listed twice in one index file: {', '.join(duplicates)}")
    return b"".join(entry.to_line() for entry in ordered)


def index_config() -> bytes:
    """The bytes of ``index/config.json``."""
    return canonical_json({"format": INDEX_FORMAT})


def build_index(
    manifests: Iterable[tuple[Manifest, str]],
    yanked: Mapping[tuple[str, str], str | None] | None = None,
) -> dict[str, bytes]:
    """Every index file (repository path -> bytes) for these manifests, byte-identical on rebuild.

    ``yanked`` maps (name, version) to a reason (or None) for versions that are yanked.
    """
    yanked = dict(yanked or {})
    grouped: dict[str, list[IndexEntry]] = defaultdict(list)
    for manifest, digest in manifests:
        entry = entry_from_manifest(manifest, digest)
        key = (entry.name, entry.version)
        if key in yanked:
            entry = replace(entry, yanked=True, yank_reason=yanked.pop(key))
        grouped[entry.name].append(entry)
    if yanked:
        unknown = ", ".join(f"{name} {version}" for name, version in sorted(yanked))
        raise RegistryIndexError(f"cannot yank versions that are not published: {unknown}")
    files = {index_path(name): format_index_file(entries) for name, entries in sorted(grouped.items())}
    files[INDEX_CONFIG_PATH] = index_config()
    return dict(sorted(files.items()))


def with_yanked(
    entries: Iterable[IndexEntry], version: str, reason: str | None = None, *, yanked: bool = True
) -> list[IndexEntry]:
    """The same entries with ``version`` yanked (or un-yanked with ``yanked=False``); nothing else changes."""
    target = str(parse_version(version))
    result, found = [], False
    for entry in entries:
        if entry.version == target:
            entry, found = replace(entry, yanked=yanked, yank_reason=reason if yanked else None), True
        result.append(entry)
    if not found:
        raise RegistryIndexError(
            f"version {target} is not in the index", hint="check the version with the index"
        )
    return result


class IndexSource(Protocol):
    """What the resolver reads: every version of one component ([] when there is no such component)."""

    files_read: int

    def entries(self, name: str) -> list[IndexEntry]: ...


class LocalIndex:
    """Reads ``<root>/index/...`` in a folder (a shelf work tree or a checked-out mirror)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.files_read = 0
        self._check_config()

    def _check_config(self) -> None:
        config = self.root / INDEX_CONFIG_PATH
        if not config.is_file():
            return  # an empty shelf has no index yet
        check_index_config(config.read_bytes(), str(config))

    def entries(self, name: str) -> list[IndexEntry]:
        """Every version of ``name``; [] when the shelf has no such component."""
        relative = index_path(name)
        try:
            data = (self.root / relative).read_bytes()
        except FileNotFoundError:
            return []
        self.files_read += 1
        return parse_index_file(data, relative)

    def names(self) -> list[str]:
        """Every component with an index file, sorted."""
        folder = self.root / INDEX_DIR
        if not folder.is_dir():
            return []
        found = (p.name for p in folder.rglob("*") if p.is_file() and p.name != "config.json")
        return sorted(name for name in found if _is_index_file_name(name))


def _is_index_file_name(name: str) -> bool:
    try:
        index_path(name)
    except RegistryIndexError:
        return False
    return True


def check_index_config(data: bytes, path: str) -> int:
    """Check ``index/config.json``: IndexFormatError when garbled or written by a newer format."""
    try:
        config = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise IndexFormatError(path, 1, f"not JSON: {_short(e)}") from e
    version = config.get("format") if isinstance(config, dict) else None
    if not isinstance(version, int) or isinstance(version, bool):
        raise IndexFormatError(path, 1, 'expected {"format": <integer>}')
    if version > INDEX_FORMAT:
        raise IndexFormatError(
            path,
            1,
            f"index format {version} is newer than this client reads ({INDEX_FORMAT})",
            hint="upgrade cclm-shelf",
        )
    return version
