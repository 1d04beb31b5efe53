"""Index entries and files: canonical lines, SemVer order, yanking, damage reports, LocalIndex."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from registry_index import (
    INDEX_CONFIG_PATH,
    IndexEntry,
    IndexFormatError,
    LocalIndex,
    Manifest,
    RegistryIndexError,
    build_index,
    dump_manifest,
    entry_from_manifest,
    format_index_file,
    index_path,
    manifest_digest,
    parse_index_file,
    with_yanked,
)
from registry_index.index import forget_checked_index_files
from tests.registry_index import factories


def published(data: dict) -> tuple[Manifest, str]:
    manifest = Manifest.from_dict(data)
    return manifest, manifest_digest(dump_manifest(manifest))


def shelf_manifests() -> list[tuple[Manifest, str]]:
    versions = ["0.10.0", "0.2.0", "0.9.0", "1.0.0-rc.1", "0.2.1"]
    return [published(factories.component("en_wiki_ner_1", v)) for v in versions] + [
        published(factories.embedder("en_wiki_clm_1", "0.2.1")),
        published(factories.embedder("abc", "1.0.0")),
    ]


def write_tree(root: Path, files: dict[str, bytes]) -> None:
    for relative, data in files.items():
        target = root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)


def test_entry_from_manifest_records_what_the_resolver_needs():
    manifest, digest = published(factories.embedder())
    entry = entry_from_manifest(manifest, digest)
    assert entry.manifest_digest == digest
    assert entry.items == {"embedder": 4096, "preprocessor": 14599}
    assert entry.provides["embedder"] == factories.EMBEDDER
    assert not entry.yanked and entry.yank_reason is None
    line = entry.to_line()
    assert line.endswith(b"\n") and b" " not in line
    assert IndexEntry.from_dict(json.loads(line)) == entry


def test_format_sorts_by_semver_precedence():
    entries = [entry_from_manifest(*pair) for pair in shelf_manifests()[:5]]
    raw = format_index_file(entries)
    parsed = parse_index_file(raw, index_path("en_wiki_ner_1"))
    assert [e.version for e in parsed] == ["0.2.0", "0.2.1", "0.9.0", "0.10.0", "1.0.0-rc.1"]
    assert format_index_file(reversed(entries)) == raw


def test_build_index_is_byte_identical_on_rebuild_and_includes_config():
    manifests = shelf_manifests()
    first = build_index(manifests, {("en_wiki_ner_1", "0.9.0"): "wrong labels"})
    second = build_index(list(reversed(manifests)), {("en_wiki_ner_1", "0.9.0"): "wrong labels"})
    assert first == second
    assert first[INDEX_CONFIG_PATH] == b'{"format":1}\n'
    assert set(first) == {
        INDEX_CONFIG_PATH,
        "index/en/_w/en_wiki_ner_1",
        "index/en/_w/en_wiki_clm_1",
        "index/3/a/abc",
    }
    entries = parse_index_file(first["index/en/_w/en_wiki_ner_1"], "index/en/_w/en_wiki_ner_1")
    yanked = [(e.version, e.yank_reason) for e in entries if e.yanked]
    assert yanked == [("0.9.0", "wrong labels")]


def test_build_index_refuses_to_yank_unpublished_versions():
    with pytest.raises(RegistryIndexError, match=r"not published: nope 1\.0\.0"):
        build_index(shelf_manifests(), {("nope", "1.0.0"): None})


def test_with_yanked_changes_only_the_yanked_fields():
    entries = [entry_from_manifest(*pair) for pair in shelf_manifests()[:3]]
    changed = with_yanked(entries, "v0.2.0", "broken weights")
    assert changed[1] == replace(entries[1], yanked=True, yank_reason="broken weights")
    assert [changed[0], changed[2]] == [entries[0], entries[2]]
    assert with_yanked(changed, "0.2.0", yanked=False) == entries
    with pytest.raises(RegistryIndexError, match=r"0\.5\.0 is not in the index"):
        with_yanked(entries, "0.5.0")


def test_format_refuses_mixed_names_and_duplicates():
    a = entry_from_manifest(*published(factories.component("aaaa", "1.0.0")))
    b = entry_from_manifest(*published(factories.component("bbbb", "1.0.0")))
    with pytest.raises(RegistryIndexError, match="one component"):
        format_index_file([a, b])
    with pytest.raises(RegistryIndexError, match="listed twice"):
        format_index_file([a, a])


def good_file() -> bytes:
    return build_index(shelf_manifests())["index/en/_w/en_wiki_ner_1"]


def test_truncated_file_is_reported_with_path_and_line():
    raw = good_file()
    with pytest.raises(IndexFormatError) as info:
        parse_index_file(raw[:-40], "index/en/_w/en_wiki_ner_1")
    assert info.value.path == "index/en/_w/en_wiki_ner_1"
    assert info.value.line == 5
    assert "truncated" in str(info.value)


def test_garbled_line_is_reported_with_path_and_line():
    lines = good_file().split(b"\n")
    lines[2] = lines[2][:30] + b"\x00garbage" + lines[2][30:]
    with pytest.raises(IndexFormatError) as info:
        parse_index_file(b"\n".join(lines), "index/en/_w/en_wiki_ner_1")
    assert (info.value.line, info.value.path) == (3, "index/en/_w/en_wiki_ner_1")
    assert str(info.value).startswith("index/en/_w/en_wiki_ner_1:3: not a JSON line")


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"name": "other_name"}, "names component 'other_name'"),
        ({"version": "v1.0.0"}, "canonical SemVer"),
        ({"manifest_digest": "sha256:xyz"}, "'manifest_digest' must be 'sha256:<64 hex>'"),
        ({"kind": "model"}, "'kind' must be one of"),
        ({"yanked": "no"}, "'yanked' must be true or false"),
        ({"requires": ["x>>1"]}, "cannot read '>>1'"),
        ({"base": {"embedder": "sha256:" + "0" * 64}}, "'base' must hold"),
        ({"items": {"model": -1}}, "'items.model' must be a byte count"),
    ],
)
def test_invalid_fields_are_reported_with_line(change, fragment):
    lines = good_file().split(b"\n")
    record = json.loads(lines[1])
    record.update(change)
    lines[1] = json.dumps(record).encode()
    with pytest.raises(IndexFormatError) as info:
        parse_index_file(b"\n".join(lines), "index/en/_w/en_wiki_ner_1")
    assert info.value.line == 2
    assert fragment in str(info.value)


def test_duplicate_version_lines_are_rejected():
    lines = good_file().split(b"\n")
    raw = b"\n".join([lines[0], lines[0], b""])
    with pytest.raises(IndexFormatError, match="already listed on line 1"):
        parse_index_file(raw, "index/en/_w/en_wiki_ner_1")


def yanked_file() -> bytes:
    """A file whose lines use every field: yanked with a reason, provides, items, no base."""
    files = build_index(shelf_manifests(), yanked={("en_wiki_ner_1", "0.9.0"): "broken"})
    return files["index/en/_w/en_wiki_ner_1"] + b""  # a new bytes object, same content


def test_a_file_is_checked_once_per_content_then_only_decoded(monkeypatch):
    path = "index/en/_w/en_wiki_ner_1"
    raw = yanked_file()
    forget_checked_index_files()
    checked = parse_index_file(raw, path)
    calls = []
    real = IndexEntry.from_dict.__func__
    monkeypatch.setattr(
        IndexEntry, "from_dict", classmethod(lambda cls, data: calls.append(1) or real(cls, data))
    )
    again = parse_index_file(bytes(raw), path)
    assert again == checked and [e.to_line() for e in again] == [e.to_line() for e in checked]
    assert [e.yank_reason for e in again if e.yanked] == ["broken"]
    assert calls == []  # the same bytes at the same path: no field checked twice
    forget_checked_index_files()
    assert parse_index_file(raw, path) == checked
    assert len(calls) == len(checked)  # forgotten: every line checked again


def test_checked_content_does_not_pass_under_another_name_or_once_damaged():
    raw = yanked_file()
    parse_index_file(raw, "index/en/_w/en_wiki_ner_1")
    with pytest.raises(IndexFormatError, match="names component 'en_wiki_ner_1', but this file is 'other'"):
        parse_index_file(raw, "index/ot/he/other")
    damaged = raw.replace(b'"yanked":true', b'"yanked":"yes"')
    for _ in range(2):  # a damaged file is never remembered as checked
        with pytest.raises(IndexFormatError, match="'yanked' must be true or false"):
            parse_index_file(damaged, "index/en/_w/en_wiki_ner_1")


def test_empty_file_has_no_entries():
    assert parse_index_file(b"", "index/1/a") == []


def test_local_index_reads_one_file_per_lookup(tmp_path):
    write_tree(tmp_path, build_index(shelf_manifests()))
    index = LocalIndex(tmp_path)
    assert [e.version for e in index.entries("en_wiki_clm_1")] == ["0.2.1"]
    assert index.files_read == 1
    assert index.entries("missing_component") == []
    assert index.files_read == 1
    assert index.names() == ["abc", "en_wiki_clm_1", "en_wiki_ner_1"]


def test_local_index_on_an_empty_folder(tmp_path):
    index = LocalIndex(tmp_path)
    assert index.names() == [] and index.entries("abc") == []


def test_local_index_refuses_a_newer_format(tmp_path):
    write_tree(tmp_path, {INDEX_CONFIG_PATH: b'{"format": 2}\n'})
    with pytest.raises(IndexFormatError, match="newer than this client"):
        LocalIndex(tmp_path)
    write_tree(tmp_path, {INDEX_CONFIG_PATH: b"{oops"})
    with pytest.raises(IndexFormatError, match=r"config\.json:1: not JSON"):
        LocalIndex(tmp_path)


def test_local_index_reports_damaged_file(tmp_path):
    files = build_index(shelf_manifests())
    files["index/3/a/abc"] = files["index/3/a/abc"][:-5]
    write_tree(tmp_path, files)
    with pytest.raises(IndexFormatError) as info:
        LocalIndex(tmp_path).entries("abc")
    assert (info.value.path, info.value.line) == ("index/3/a/abc", 1)


def test_entries_and_manifests_are_hashable_and_embedders_expose_their_base():
    manifest, digest = published(factories.embedder())
    entry = entry_from_manifest(manifest, digest)
    assert len({entry, replace(entry)}) == 1 and len({manifest, manifest}) == 1
    expected = factories.base()
    assert entry.provided_base is not None and entry.provided_base.to_dict() == expected
    assert manifest.provided_base == entry.provided_base
    component = entry_from_manifest(*published(factories.component()))
    assert component.provided_base is None
    assert component.base == entry.provided_base
