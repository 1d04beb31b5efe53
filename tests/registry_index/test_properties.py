"""Property tests: valid inputs round-trip, garbage raises only RegistryIndexError subclasses.

Over 1,000 generated examples in the default run (see the ``max_examples`` of each test).
"""

from __future__ import annotations

import json
import string

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from registry_index import (
    IndexEntry,
    LfsPointer,
    Manifest,
    RegistryIndexError,
    dump_manifest,
    entry_from_manifest,
    format_index_file,
    format_pointer,
    index_path,
    load_manifest,
    manifest_digest,
    parse_index_file,
    parse_pointer,
    parse_requirement,
    parse_version,
    validate_manifest,
    version_key,
)
from tests.registry_index import factories


def examples(count: int) -> settings:
    """Fixed example counts (they add up to over 1,000) and no per-example deadline on slow machines."""
    return settings(max_examples=count, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# Built from text() and sampled_from() rather than from_regex(): several times faster to generate.
LOWER_DIGITS = string.ascii_lowercase + string.digits


def words(first: str, rest: str, max_size: int) -> st.SearchStrategy[str]:
    return st.builds(str.__add__, st.sampled_from(first), st.text(alphabet=rest, max_size=max_size))


names = words(LOWER_DIGITS, LOWER_DIGITS + "_-", 20)
numbers = st.integers(min_value=0, max_value=10_000)
identifiers = st.one_of(numbers.map(str), words(string.ascii_lowercase, LOWER_DIGITS + "-", 6))


@st.composite
def versions(draw) -> str:
    text = ".".join(str(draw(numbers)) for _ in range(3))
    if draw(st.booleans()):
        text += "-" + ".".join(draw(st.lists(identifiers, min_size=1, max_size=3)))
    if draw(st.integers(0, 4)) == 0:
        text += "+" + ".".join(draw(st.lists(words(LOWER_DIGITS, LOWER_DIGITS, 4), min_size=1, max_size=2)))
    return text


@st.composite
def partial_versions(draw) -> str:
    return ".".join(str(draw(numbers)) for _ in range(draw(st.integers(1, 3))))


@st.composite
def requirements(draw) -> str:
    name = draw(names)
    form = draw(st.sampled_from(["bare", "exact", "range", "compatible", "wildcard"]))
    space = draw(st.sampled_from(["", " "]))
    if form == "bare":
        return name
    if form == "exact":
        return f"{name}{space}@{space}{draw(st.sampled_from(['', 'v']))}{draw(versions())}"
    if form == "compatible":
        return f"{name}{space}~={space}{draw(numbers)}.{draw(numbers)}"
    if form == "wildcard":
        return f"{name}{draw(st.sampled_from(['==', '!=']))}{draw(numbers)}.*"
    operators = st.sampled_from([">=", "<=", ">", "<", "==", "!="])
    clauses = draw(
        st.lists(st.tuples(operators, st.one_of(partial_versions(), versions())), min_size=1, max_size=3)
    )
    return name + ",".join(f"{space}{op}{space}{v}" for op, v in clauses)


@examples(250)
@given(requirements(), versions())
def test_valid_requirements_round_trip(text, version):
    requirement = parse_requirement(text)
    again = parse_requirement(str(requirement))
    assert again == requirement
    parsed = parse_version(version)
    assert again.matches(parsed) == requirement.matches(parsed)


garbage_text = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=string.ascii_lowercase + string.digits + "@~=!<>,.*-+ v", max_size=30),
)


@examples(250)
@given(garbage_text)
def test_garbage_requirements_raise_only_our_errors(text):
    try:
        requirement = parse_requirement(text)
    except RegistryIndexError as e:
        assert str(e)
    else:
        assert parse_requirement(str(requirement)) == requirement


@examples(100)
@given(garbage_text)
def test_garbage_versions_raise_only_our_errors(text):
    try:
        version = parse_version(text)
    except RegistryIndexError as e:
        assert "not SemVer" in str(e)
    else:
        assert parse_version(str(version)) == version


hexes = st.binary(min_size=32, max_size=32).map(bytes.hex)
file_names = st.builds(
    str.__add__,
    words(LOWER_DIGITS + "_", LOWER_DIGITS + "_", 9),
    st.sampled_from(["", ".h5", ".json", ".npy"]),
)


@st.composite
def manifests(draw) -> dict:
    kind = draw(st.sampled_from(["component", "embedder", "preprocessor", "bundle"]))
    builder = factories.embedder if kind == "embedder" else factories.component
    data = builder(draw(names), draw(versions()), summary=draw(st.text(max_size=30)))
    data["kind"] = kind
    item_types = draw(st.lists(words(string.ascii_lowercase, LOWER_DIGITS + "_", 8), min_size=1, max_size=3))
    data["items"] = {
        item_type: {
            "files": [
                {"path": path, "sha256": draw(hexes), "size": draw(numbers)}
                for path in draw(st.lists(file_names, min_size=1, max_size=4, unique_by=str.casefold))
            ]
        }
        for item_type in item_types
    }
    data["requires"] = draw(st.lists(requirements(), min_size=kind == "bundle", max_size=3, unique=True))
    return data


@examples(150)
@given(manifests())
def test_valid_manifests_round_trip_through_canonical_bytes(data):
    assert validate_manifest(data) == []
    manifest = Manifest.from_dict(data)
    raw = dump_manifest(manifest)
    assert load_manifest(raw) == manifest
    assert dump_manifest(load_manifest(raw)) == raw


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=10,
)


def mutate(data: dict, path: list[str], value) -> None:
    """Replace the value at a path of keys (stopping early where the path leaves the structure)."""
    target = data
    for key in path[:-1]:
        if not isinstance(target, dict) or key not in target:
            return
        target = target[key]
    if isinstance(target, dict):
        target[path[-1]] = value


manifest_paths = st.sampled_from(
    [["name"], ["version"], ["kind"], ["items"], ["items", "model"], ["base"], ["base", "embedder"],
     ["provides"], ["requires"], ["framework"], ["training"], ["training", "parents"], ["license"], ["extra"]]
)  # fmt: skip


@examples(150)
@given(manifests(), manifest_paths, json_values)
def test_mutated_manifests_raise_only_manifest_errors(data, path, value):
    mutate(data, path, value)
    problems = validate_manifest(data)
    try:
        Manifest.from_dict(data)
    except RegistryIndexError as e:
        assert problems and all(p.path.startswith("$") and p.message for p in problems)
        assert str(e)
    else:
        assert problems == []


@examples(100)
@given(st.one_of(st.binary(max_size=200), json_values.map(lambda v: json.dumps(v).encode())))
def test_garbage_manifest_bytes_raise_only_our_errors(raw):
    try:
        load_manifest(raw)
    except RegistryIndexError as e:
        assert str(e)


@examples(100)
@given(st.lists(manifests(), min_size=1, max_size=3))
def test_index_lines_round_trip(datas):
    name = datas[0]["name"]
    entries = {}
    for data in datas:
        data["name"] = name
        manifest = Manifest.from_dict(data)
        entries[manifest.version] = entry_from_manifest(manifest, manifest_digest(dump_manifest(manifest)))
    raw = format_index_file(entries.values())
    parsed = parse_index_file(raw, index_path(name))
    assert sorted(parsed, key=lambda e: e.version) == sorted(entries.values(), key=lambda e: e.version)
    assert format_index_file(reversed(parsed)) == raw


@examples(150)
@given(manifests(), st.integers(min_value=0), st.binary(max_size=8))
def test_damaged_index_files_raise_only_index_errors(data, cut, noise):
    manifest = Manifest.from_dict(data)
    line = entry_from_manifest(manifest, manifest_digest(dump_manifest(manifest))).to_line()
    position = cut % len(line)
    damaged = line[:position] + noise + line[position + len(noise) :] if noise else line[:position]
    try:
        entries = parse_index_file(damaged, index_path(manifest.name))
    except RegistryIndexError as e:
        assert str(e).startswith(index_path(manifest.name) + ":")
    else:
        assert all(isinstance(entry, IndexEntry) for entry in entries)


@examples(100)
@given(
    st.one_of(
        st.binary(max_size=200), st.builds(lambda o, s: format_pointer(LfsPointer(o, s)), hexes, numbers)
    )
)
def test_pointer_parser_raises_only_pointer_errors(raw):
    try:
        pointer = parse_pointer(raw)
    except RegistryIndexError as e:
        assert str(e)
    else:
        assert format_pointer(pointer) == raw


@examples(150)
@given(versions(), versions())
def test_version_key_orders_like_semver_precedence(a, b):
    left, right = parse_version(a), parse_version(b)
    expected = left.compare(right)
    key_left, key_right = version_key(left)[:4], version_key(right)[:4]  # [:4] drops build metadata
    assert (key_left > key_right) - (key_left < key_right) == expected
