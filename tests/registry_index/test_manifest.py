"""Manifest validation (schema + rules a schema cannot make), canonical bytes and digests."""

from __future__ import annotations

import hashlib
import json

import pytest

from registry_index import (
    Base,
    FileEntry,
    Manifest,
    ManifestError,
    dump_manifest,
    load_manifest,
    manifest_digest,
    validate_manifest,
)
from registry_index.manifest import schema
from tests.registry_index import factories


def problems_of(data) -> dict[str, str]:
    return {problem.path: problem.message for problem in validate_manifest(data)}


def test_valid_component_and_embedder_have_no_problems():
    assert validate_manifest(factories.component()) == []
    assert validate_manifest(factories.embedder()) == []


def test_from_dict_builds_values():
    manifest = Manifest.from_dict(factories.component())
    assert manifest.name == "en_wiki_ner_1"
    assert manifest.base == Base(factories.EMBEDDER, factories.VOCAB, 256, 335)
    assert [str(r) for r in manifest.requirements()] == ["en_wiki_clm_1>=0.2,<0.3"]
    assert str(manifest.semver) == "0.3.0"
    assert list(manifest.files()) == [
        ("model", FileEntry("model.weights.h5", factories.sha("en_wiki_ner_10.3.0"), 123))
    ]


def test_files_iterates_item_types_in_sorted_order():
    manifest = Manifest.from_dict(factories.embedder())
    assert [item_type for item_type, _ in manifest.files()] == ["embedder", "preprocessor"]


def test_to_dict_round_trips_and_dump_is_canonical():
    data = factories.component()
    manifest = Manifest.from_dict(data)
    assert manifest.to_dict() == data
    raw = dump_manifest(manifest)
    assert raw.endswith(b"}\n") and raw.count(b"\n") == 1
    assert raw == json.dumps(data, sort_keys=True, separators=(",", ":")).encode() + b"\n"
    assert load_manifest(raw) == manifest
    assert manifest_digest(raw) == "sha256:" + hashlib.sha256(raw).hexdigest()


def test_non_ascii_summary_is_written_as_utf8():
    manifest = Manifest.from_dict(factories.component(summary="Entités nommées — ü"))
    assert "Entités nommées — ü".encode() in dump_manifest(manifest)


def test_all_problems_are_reported_at_once_with_json_paths():
    data = factories.component(name="Bad Name", version="v0.3.0", requires=["x>>1"])
    data["items"]["model"]["files"][0]["size"] = -1
    data["items"]["model"]["files"].append({"path": "../escape.h5", "sha256": "0" * 64, "size": 1})
    del data["kind"]
    with pytest.raises(ManifestError) as info:
        Manifest.from_dict(data, source="components/x/cclm-manifest.json")
    paths = {problem.path for problem in info.value.problems}
    assert paths == {
        "$",
        "$.name",
        "$.version",
        "$.requires[0]",
        "$.items.model.files[0].size",
        "$.items.model.files[1].path",
    }
    assert str(info.value).startswith("components/x/cclm-manifest.json: 6 problems in manifest")


@pytest.mark.parametrize(
    ("paths", "bad_index", "fragment"),
    [
        (["a.h5", "/abs.h5"], 1, "absolute"),
        (["a.h5", "dir\\b.h5"], 1, "backslash"),
        (["a.h5", "a/./b.h5"], 1, "not normalised"),
        (["a.h5", "a.h5"], 1, "clashes with files[0]"),
        (["Model.h5", "model.h5"], 1, "same path up to case"),
        (["assets", "assets/vocab.json"], 1, "to be a folder"),
        (["assets/vocab.json", "assets"], 1, "is a file, but files[0]"),
    ],
)
def test_file_path_rules(paths, bad_index, fragment):
    data = factories.component()
    data["items"]["model"]["files"] = [{"path": p, "sha256": "0" * 64, "size": 1} for p in paths]
    problems = problems_of(data)
    assert list(problems) == [f"$.items.model.files[{bad_index}].path"]
    assert fragment in problems[f"$.items.model.files[{bad_index}].path"]


def test_same_path_in_two_items_is_fine():
    data = factories.component()
    data["items"]["extra"] = {"files": [{"path": "model.weights.h5", "sha256": "0" * 64, "size": 1}]}
    assert validate_manifest(data) == []


def test_component_must_name_its_base():
    data = factories.component()
    del data["base"]
    assert "must name its base" in problems_of(data)["$.base"]


def test_embedder_must_provide_its_base_and_agree_with_it():
    data = factories.embedder()
    del data["provides"]["n_chars"]
    assert "must provide n_chars" in problems_of(data)["$.provides"]
    data = factories.embedder()
    data["base"]["max_input_length"] = 128
    assert "must match what it provides" in problems_of(data)["$.base.max_input_length"]
    data = factories.embedder()
    del data["base"]
    assert validate_manifest(data) == []


def test_bundle_requires_something_and_may_ship_no_items():
    data = factories.component(kind="bundle", items={}, requires=[])
    assert "must require at least one" in problems_of(data)["$.requires"]
    assert validate_manifest(factories.component(kind="bundle", items={})) == []
    assert "at least one item" in problems_of(factories.component(items={}))["$.items"]


def test_training_parents_must_be_pins():
    data = factories.component(training={"parents": ["en_wiki_clm_1>=0.2"]})
    assert "not a pin" in problems_of(data)["$.training.parents[0]"]


def test_schema_catches_types_and_unknown_fields():
    data = factories.component(extra_field=1, kind="model", schema_version=2)
    data["base"]["embedder"] = "md5:abc"
    problems = problems_of(data)
    assert "extra_field" in problems["$"]
    assert "$.kind" in problems and "$.schema_version" in problems and "$.base.embedder" in problems


def test_name_with_dot_dot_cannot_be_placed():
    assert "cannot be placed" in problems_of(factories.component(name="ab..c"))["$.name"]


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (b"\xff\xfe", "not UTF-8"),
        (b"{", "not valid JSON"),
        (b'{"a": 1, "a": 2}', "duplicate keys ['a']"),
        (b'{"a": NaN}', "NaN is not a JSON number"),
        (b"[1, 2]", "a manifest is a JSON object"),
        (b"[" * 100_000 + b"]" * 100_000, "not valid JSON"),
    ],
)
def test_load_manifest_reports_bad_bytes_as_manifest_error(raw, fragment):
    with pytest.raises(ManifestError) as info:
        load_manifest(raw, source="shelf:x")
    assert fragment in str(info.value)
    assert str(info.value).startswith("shelf:x:")


def test_schema_is_shipped_as_package_data():
    loaded = schema()
    assert loaded["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert set(loaded["properties"]["kind"]["enum"]) == {"preprocessor", "embedder", "component", "bundle"}
