"""``cclm-manifest.json``: what one published version of a component is.

The JSON Schema in ``schemas/manifest-v1.schema.json`` (shipped with the package) is the truth for shapes
and types. ``validate_manifest`` adds the rules a schema cannot express and reports ALL problems at once,
each with a JSON path (``$.items.model.files[0].path``) and a plain message:

- file paths are relative, normalised POSIX paths (no ``..``, no absolute, no backslash), without
  duplicates, case-only clashes or a file that is also a folder, inside each item;
- the name can be placed in a shelf, the version is SemVer 2.0 (no leading ``v``), requirements parse;
- kind rules: an embedder defines the base it provides (``provides`` names embedder, max_input_length,
  n_chars and output_dim, and agrees with ``base`` when given); a component names its base; a bundle
  requires something; everything but a bundle ships at least one item.

``dump_manifest`` writes the canonical bytes (sorted keys, no spaces, UTF-8, trailing newline) whose
sha256 is the manifest digest recorded in the index and in lockfiles.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import semver

from registry_index.errors import ManifestError, Problem, RegistryIndexError
from registry_index.layout import validate_item_type, validate_relative_path
from registry_index.requirements import Requirement, parse_requirement, validate_name
from registry_index.versions import parse_version

if TYPE_CHECKING:  # jsonschema is imported on first validation: importing registry_index stays fast
    import jsonschema

SCHEMA_VERSION = 1
KINDS = ("preprocessor", "embedder", "component", "bundle")
BASE_KEYS = ("embedder", "max_input_length", "n_chars")


@dataclass(frozen=True)
class FileEntry:
    """One file of an item: its path relative to the item folder, sha256 (hex) and size in bytes."""

    path: str
    sha256: str
    size: int

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "sha256": self.sha256, "size": self.size}


@dataclass(frozen=True)
class Base:
    """What a component was trained on top of; two components compose only when their bases are equal."""

    embedder: str
    vocab: str | None
    max_input_length: int
    n_chars: int

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Base:
        return cls(data["embedder"], data.get("vocab"), int(data["max_input_length"]), int(data["n_chars"]))

    def to_dict(self) -> dict[str, Any]:
        return {
            "embedder": self.embedder,
            "vocab": self.vocab,
            "max_input_length": self.max_input_length,
            "n_chars": self.n_chars,
        }


@dataclass(frozen=True)
class Manifest:
    """A validated manifest. Build one with ``Manifest.from_dict`` or ``load_manifest``."""

    name: str
    version: str
    kind: str
    items: Mapping[str, tuple[FileEntry, ...]]
    summary: str = ""
    license: str | None = None
    base: Base | None = None
    provides: Mapping[str, Any] = field(default_factory=dict)
    requires: tuple[str, ...] = ()
    framework: Mapping[str, str] = field(default_factory=dict)
    training: Mapping[str, Any] | None = None
    probes: Mapping[str, Any] | None = None  # behaviour probes recorded at publish (cclm_core.probes)
    schema_version: int = SCHEMA_VERSION

    @classmethod
    def from_dict(cls, data: Any, source: str = "<manifest>") -> Manifest:
        """Validate ``data`` (ManifestError listing every problem) and build the manifest."""
        problems = validate_manifest(data)
        if problems:
            raise ManifestError(problems, source=source, hint="fix every listed field and publish again")
        return cls._build(data)

    @classmethod
    def from_validated_bytes(cls, data: bytes) -> Manifest:
        """Build a manifest from bytes that passed ``load_manifest`` before (known by their digest).

        Validation is the costly part of reading a manifest (the JSON Schema machinery); a caller that has
        recorded the digest of bytes it validated may skip it for those exact bytes.
        """
        return cls._build(json.loads(bytes(data).decode("utf-8")))

    @classmethod
    def _build(cls, data: Mapping[str, Any]) -> Manifest:
        items = {
            item_type: tuple(FileEntry(f["path"], f["sha256"], int(f["size"])) for f in item["files"])
            for item_type, item in sorted(data["items"].items())
        }
        base = data.get("base")
        return cls(
            name=data["name"],
            version=data["version"],
            kind=data["kind"],
            items=items,
            summary=data.get("summary", ""),
            license=data.get("license"),
            base=Base.from_dict(base) if base is not None else None,
            provides=dict(data.get("provides", {})),
            requires=tuple(data.get("requires", ())),
            framework=dict(data.get("framework", {})),
            training=dict(data["training"]) if data.get("training") is not None else None,
            probes=dict(data["probes"]) if data.get("probes") is not None else None,
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON form; optional fields left at their empty default are omitted."""
        data: dict[str, Any] = {
            "schema_version": self.schema_version,
            "name": self.name,
            "version": self.version,
            "kind": self.kind,
            "summary": self.summary,
            "items": {t: {"files": [f.to_dict() for f in files]} for t, files in self.items.items()},
            "provides": dict(self.provides),
            "requires": list(self.requires),
            "framework": dict(self.framework),
        }
        optional = {"license": self.license, "base": self.base and self.base.to_dict()}
        optional["training"] = dict(self.training) if self.training is not None else None
        optional["probes"] = dict(self.probes) if self.probes is not None else None
        data.update({key: value for key, value in optional.items() if value is not None})
        return data

    def __hash__(self) -> int:
        # The dataclass hash would fail on the dict fields; equal manifests share name and version.
        return hash((self.name, self.version, self.kind))

    @property
    def provided_base(self) -> Base | None:
        """The base this version offers to components: see ``provided_base``."""
        return provided_base(self.kind, self.provides, self.base)

    def files(self) -> Iterator[tuple[str, FileEntry]]:
        """Every (item_type, FileEntry), item types in sorted order, files in manifest order."""
        for item_type in sorted(self.items):
            for entry in self.items[item_type]:
                yield item_type, entry

    def requirements(self) -> list[Requirement]:
        return [parse_requirement(text) for text in self.requires]

    @property
    def semver(self) -> semver.Version:
        """The version as a ``semver.Version`` (the text form is canonical already)."""
        return parse_version(self.version)


def provided_base(kind: str, provides: Mapping[str, Any], base: Base | None) -> Base | None:
    """For an embedder, the base that components trained on it must name; None for other kinds.

    The vocabulary comes from ``provides`` when given there, else from the embedder's own ``base``.
    """
    if kind != "embedder" or not all(key in provides for key in BASE_KEYS):
        return None
    vocab = provides.get("vocab", base.vocab if base else None)
    return Base(provides["embedder"], vocab, int(provides["max_input_length"]), int(provides["n_chars"]))


@lru_cache(maxsize=1)
def schema() -> dict[str, Any]:
    """The manifest JSON Schema (2020-12) shipped with the package."""
    from importlib import resources  # here: only validating a new manifest reads the schema

    text = resources.files("registry_index").joinpath("schemas/manifest-v1.schema.json").read_text("utf-8")
    return json.loads(text)


@lru_cache(maxsize=1)
def _validator() -> jsonschema.Draft202012Validator:
    import jsonschema

    return jsonschema.Draft202012Validator(schema())


def validate_manifest(data: Any) -> list[Problem]:
    """Every problem with ``data`` as a manifest; an empty list means it is valid."""
    if not isinstance(data, Mapping):
        return [Problem("$", f"a manifest is a JSON object, got {type(data).__name__}")]
    problems = [Problem(error.json_path, error.message) for error in _validator().iter_errors(data)]
    seen = {problem.path for problem in problems}
    # Rules a schema cannot express; a field that already failed the schema is not reported twice.
    extra = [p for p in _semantic_problems(data) if p.path not in seen]
    return sorted(problems + extra, key=lambda p: (p.path, p.message))


def _semantic_problems(data: Mapping[str, Any]) -> list[Problem]:
    problems = _identity_problems(data) + _requires_problems(data.get("requires"))
    items = data.get("items")
    if isinstance(items, Mapping):
        for item_type, item in items.items():
            problems += _item_problems(item_type, item)
    problems += _kind_problems(data)
    problems += _parents_problems(data.get("training"))
    return problems


def _identity_problems(data: Mapping[str, Any]) -> list[Problem]:
    problems: list[Problem] = []
    name, version = data.get("name"), data.get("version")
    if isinstance(name, str):
        problems += _check("$.name", lambda: _placeable_name(name))
    if isinstance(version, str):
        problems += _check("$.version", lambda: _canonical_version(version))
    return problems


def _placeable_name(name: str) -> None:
    validate_name(name)
    if ".." in name:
        raise RegistryIndexError(f"name {name!r} contains '..', which cannot be placed in a shelf")


def _canonical_version(version: str) -> None:
    if version != str(parse_version(version)):
        raise RegistryIndexError(f"version {version!r} must be written without a leading 'v'")


def _check(path: str, action) -> list[Problem]:
    try:
        action()
    except RegistryIndexError as e:
        return [Problem(path, e.message)]
    return []


def _requires_problems(requires: Any) -> list[Problem]:
    if not isinstance(requires, list):
        return []
    return [
        problem
        for i, text in enumerate(requires)
        if isinstance(text, str)
        for problem in _check(f"$.requires[{i}]", lambda text=text: parse_requirement(text))
    ]


def _item_problems(item_type: Any, item: Any) -> list[Problem]:
    problems = _check(f"$.items.{item_type}", lambda: validate_item_type(item_type))
    files = item.get("files") if isinstance(item, Mapping) else None
    if not isinstance(files, list):
        return problems
    folded: dict[str, int] = {}
    for i, entry in enumerate(files):
        path = entry.get("path") if isinstance(entry, Mapping) else None
        if not isinstance(path, str):
            continue
        where = f"$.items.{item_type}.files[{i}].path"
        problems += _check(where, lambda path=path: validate_relative_path(path))
        problems += _clash_problems(where, path, i, folded)
        folded[path.casefold()] = i
    return problems


def _clash_problems(where: str, path: str, index: int, folded: Mapping[str, int]) -> list[Problem]:
    """Duplicates, case-only clashes (break on macOS/Windows) and a file that is also a folder."""
    key = path.casefold()
    if key in folded:
        return [Problem(where, f"{path!r} clashes with files[{folded[key]}] (same path up to case)")]
    parts = key.split("/")
    for depth in range(1, len(parts)):
        parent = "/".join(parts[:depth])
        if parent in folded:
            return [
                Problem(
                    where, f"{path!r} needs {parent!r} to be a folder, but files[{folded[parent]}] is a file"
                )
            ]
    prefix = key + "/"
    for other, other_index in folded.items():
        if other.startswith(prefix):
            return [Problem(where, f"{path!r} is a file, but files[{other_index}] puts {other!r} inside it")]
    return []


def _kind_problems(data: Mapping[str, Any]) -> list[Problem]:
    kind = data.get("kind")
    problems: list[Problem] = []
    items = data.get("items")
    if kind in ("preprocessor", "embedder", "component") and isinstance(items, Mapping) and not items:
        problems.append(Problem("$.items", f"a {kind} ships at least one item with files"))
    if kind == "embedder":
        problems += _embedder_problems(data.get("provides"), data.get("base"))
    elif kind == "component" and data.get("base") is None:
        problems.append(Problem("$.base", "a component must name its base (embedder, vocab, input length)"))
    elif kind == "bundle" and not data.get("requires"):
        problems.append(Problem("$.requires", "a bundle must require at least one component"))
    return problems


def _embedder_problems(provides: Any, base: Any) -> list[Problem]:
    if not isinstance(provides, Mapping):
        return [
            Problem("$.provides", "an embedder must provide embedder, max_input_length, n_chars, output_dim")
        ]
    missing = [key for key in (*BASE_KEYS, "output_dim") if key not in provides]
    if missing:
        return [Problem("$.provides", f"an embedder must provide {', '.join(missing)}")]
    if not isinstance(base, Mapping):
        return []
    return [
        Problem(f"$.base.{key}", f"an embedder's base must match what it provides: {provides[key]!r}")
        for key in BASE_KEYS
        if base.get(key) != provides.get(key)
    ]


def _parents_problems(training: Any) -> list[Problem]:
    parents = training.get("parents") if isinstance(training, Mapping) else None
    if not isinstance(parents, list):
        return []
    problems: list[Problem] = []
    for i, text in enumerate(parents):
        if isinstance(text, str) and not _is_pin(text):
            problems.append(Problem(f"$.training.parents[{i}]", f"{text!r} is not a pin like name@1.2.3"))
    return problems


def _is_pin(text: str) -> bool:
    try:
        return parse_requirement(text).exact is not None
    except RegistryIndexError:
        return False


def load_manifest(data: bytes, source: str = "<manifest>") -> Manifest:
    """Parse and validate manifest bytes; bad UTF-8 or JSON is a ManifestError too."""
    return Manifest.from_dict(_parse_json(data, source), source=source)


def _parse_json(data: bytes, source: str) -> Any:
    try:
        text = bytes(data).decode("utf-8")
    except (UnicodeDecodeError, TypeError) as e:
        raise ManifestError([Problem("$", f"not UTF-8 text: {e}")], source=source) from e
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constants)
    except (json.JSONDecodeError, _JsonProblem) as e:
        raise ManifestError([Problem("$", f"not valid JSON: {e}")], source=source) from e
    except RecursionError as e:
        raise ManifestError([Problem("$", "not valid JSON: nested too deeply")], source=source) from e


class _JsonProblem(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key for key, _ in pairs]
    duplicates = sorted({key for key in keys if keys.count(key) > 1})
    if duplicates:
        raise _JsonProblem(f"duplicate keys {duplicates}")
    return dict(pairs)


def _no_constants(name: str) -> Any:
    raise _JsonProblem(f"{name} is not a JSON number")


def dump_manifest(manifest: Manifest) -> bytes:
    """Canonical bytes: sorted keys, separators (',', ':'), UTF-8, one trailing newline."""
    return canonical_json(manifest.to_dict())


def canonical_json(value: Any) -> bytes:
    """The canonical JSON encoding used for manifests and index lines (with a trailing newline)."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return text.encode("utf-8") + b"\n"


def manifest_digest(data: bytes) -> str:
    """``sha256:<hex>`` of the manifest bytes exactly as stored in the shelf."""
    return "sha256:" + hashlib.sha256(data).hexdigest()
