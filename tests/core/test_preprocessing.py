"""Preprocessor: vocabulary order, id arrays, saving, the original cclm format and bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cclm_core.errors import DataError, FormatError, UnsupportedFormatError
from cclm_core.fingerprint import describe, vocab_fingerprint
from cclm_core.preprocessing import CLS_ID, MASK_ID, PAD_ID, UNKNOWN_ID, Preprocessor


def test_vocabulary_is_ordered_by_frequency_then_character():
    prep = Preprocessor(max_example_len=8).fit(["bba", "cab", "c"])
    # b: 3, a: 2, c: 2 -> b first, then a before c (tie broken by the character)
    assert prep.char_dict == {"b": 4, "a": 5, "c": 6}
    assert prep.n_chars == 7
    assert prep.char_rev[4] == "b" and PAD_ID in prep.char_rev and CLS_ID in prep.char_rev


def test_fit_is_deterministic_across_input_order(texts):
    a = Preprocessor(max_example_len=32).fit(texts)
    b = Preprocessor(max_example_len=32).fit(list(reversed(texts)))
    assert a.char_dict == b.char_dict


def test_string_to_array_pads_truncates_and_maps_unknown(prep):
    x = prep.string_to_array("cclm is neat", prep.max_example_len)
    assert x.shape == (1, 32) and x.dtype == np.int32
    assert (x[0, 12:] == PAD_ID).all() and (x[0, :12] >= 4).all()
    assert prep.array_to_string(x[0]) == "cclm is neat"
    long = prep.string_to_array("cclm " * 20, 10)
    assert long.shape == (1, 10) and (long > PAD_ID).all()
    unseen = prep.string_to_array("Z€", 4)
    assert unseen[0].tolist() == [UNKNOWN_ID, UNKNOWN_ID, PAD_ID, PAD_ID]
    assert MASK_ID not in prep.char_dict.values()


def test_default_length_is_the_originals_512_not_the_longest_example():
    prep = Preprocessor().fit(["ab", "abcde"], skip_tokenizer=True)
    assert prep.max_example_len == 512
    assert prep.string_to_array("a").shape == (1, 512)


def test_add_cls_puts_the_cls_id_in_the_last_slot(tmp_path):
    prep = Preprocessor(max_example_len=6, add_cls=True).fit(["aab", "c"], skip_tokenizer=True)
    a, b, c = prep.char_dict["a"], prep.char_dict["b"], prep.char_dict["c"]
    assert prep.string_to_array("ab")[0].tolist() == [a, b, PAD_ID, PAD_ID, PAD_ID, CLS_ID]
    # a long text gives up one character to make room for CLS, as the original did
    assert prep.string_to_array("abcabcabc")[0].tolist() == [a, b, c, a, b, CLS_ID]
    assert Preprocessor(load_from=prep.save(tmp_path)).add_cls
    assert Preprocessor(max_example_len=6).fit(["ab"]).string_to_array("ab")[0, -1] == PAD_ID


def test_min_char_count_leaves_rare_characters_unknown():
    prep = Preprocessor(max_example_len=4).fit(["aab", "ac"], min_char_count=2, skip_tokenizer=True)
    assert prep.char_dict == {"a": 4}
    assert prep.string_to_array("abc")[0].tolist() == [4, UNKNOWN_ID, UNKNOWN_ID, PAD_ID]
    with pytest.raises(DataError, match="no character occurs at least 9 times"):
        Preprocessor(max_example_len=4).fit(["aab"], min_char_count=9)
    with pytest.raises(DataError, match="min_char_count must be a positive integer"):
        Preprocessor(max_example_len=4).fit(["aab"], min_char_count=0)


def test_save_and_load_round_trip(prep, tmp_path):
    path = prep.save(tmp_path)
    assert path.name == "cclm_config.json"
    saved = json.loads(path.read_text(encoding="utf-8"))
    assert saved["format"] == 1 and saved["char_rev"]["4"] == prep.char_rev[4]
    loaded = Preprocessor(load_from=path)
    assert loaded.char_dict == prep.char_dict and loaded.n_chars == prep.n_chars
    assert loaded.max_example_len == prep.max_example_len
    assert np.array_equal(loaded.string_to_array("shelf 3"), prep.string_to_array("shelf 3"))
    assert Preprocessor(load_from=tmp_path).char_dict == prep.char_dict  # a folder works too


def _legacy_config(chars: str, max_len: int) -> dict:
    """The original cclm file: char_rev with string keys 0..N-1 (specials included), char_dict from 4."""
    char_dict = {ch: i + 4 for i, ch in enumerate(chars)}
    char_rev = {"0": "", "1": "?", "2": "?", "3": ""} | {str(i): ch for ch, i in char_dict.items()}
    return {"char_rev": char_rev, "char_dict": char_dict, "max_example_len": max_len}


def test_loads_the_original_cclm_format_with_the_originals_ids(tmp_path):
    path = tmp_path / "cclm_config.json"
    path.write_text(json.dumps(_legacy_config("\t\n !é中ab", 256), ensure_ascii=False), encoding="utf-8")
    prep = Preprocessor(load_from=path)
    assert prep.n_chars == 12 and prep.max_example_len == 256 and prep.add_cls
    # the original left unknown characters at its zero fill and put [CLS] in the last slot
    assert prep.string_to_array("a中?", 5)[0].tolist() == [10, 9, PAD_ID, PAD_ID, CLS_ID]
    assert prep.string_to_array("ab ab ab", 4)[0].tolist() == [10, 11, 6, CLS_ID]
    plain = Preprocessor(load_from=path, add_cls=False)
    assert plain.string_to_array("a中?", 4)[0].tolist() == [10, 9, PAD_ID, PAD_ID]
    assert plain.fingerprint != prep.fingerprint
    ours = Preprocessor(load_from=prep.save(tmp_path / "ours"))
    assert ours.char_dict == prep.char_dict
    assert np.array_equal(ours.string_to_array("a中? b", 8), prep.string_to_array("a中? b", 8))
    assert vocab_fingerprint(path) == vocab_fingerprint(tmp_path / "ours" / "cclm_config.json")
    legacy = describe(tmp_path)
    assert legacy["item_type"] == "preprocessor" and legacy["fingerprint"] == vocab_fingerprint(path)
    assert legacy["provides"] == {"vocab": legacy["fingerprint"], "n_chars": 12, "max_input_length": 256}


def test_newer_format_is_refused(prep, tmp_path):
    config = prep.to_config() | {"format": 99}
    (tmp_path / "cclm_config.json").write_text(json.dumps(config), encoding="utf-8")
    with pytest.raises(UnsupportedFormatError, match="format 99"):
        Preprocessor(load_from=tmp_path)


@pytest.mark.parametrize(
    ("content", "message"),
    [("{not json", "not valid JSON"), ('{"char_dict": {}}', "char_rev"), ("[1, 2]", "JSON object")],
)
def test_corrupt_config_is_a_format_error(tmp_path, content, message):
    (tmp_path / "cclm_config.json").write_text(content, encoding="utf-8")
    with pytest.raises(FormatError, match=message):
        Preprocessor(load_from=tmp_path)


def test_missing_config_names_the_file(tmp_path):
    with pytest.raises(FormatError, match=r"cclm_config\.json is missing"):
        Preprocessor(load_from=tmp_path)


@pytest.mark.parametrize("data", [[], [""], ["", ""]])
def test_empty_data_is_refused(data):
    with pytest.raises(DataError, match="empty data"):
        Preprocessor(max_example_len=4).fit(data)


def test_non_string_data_is_refused():
    with pytest.raises(DataError, match="only strings"):
        Preprocessor().fit(["ok", 3])
    with pytest.raises(DataError, match="single string"):
        Preprocessor().fit("just one string")


def test_unfitted_preprocessor_says_to_fit():
    with pytest.raises(DataError, match="call fit"):
        Preprocessor(max_example_len=4).string_to_array("abc")


def test_bad_max_example_len():
    with pytest.raises(DataError, match="positive integer"):
        Preprocessor(max_example_len=0)


def test_tiny_corpus():
    prep = Preprocessor(max_example_len=3).fit(["a"])
    assert prep.n_chars == 5 and prep.string_to_array("aa")[0].tolist() == [4, 4, 0]


def test_fits_a_hugging_face_dataset(texts):
    datasets = pytest.importorskip("datasets")
    from_list = Preprocessor(max_example_len=32).fit(texts)
    auto = Preprocessor(max_example_len=32).fit(
        datasets.Dataset.from_dict({"text": texts, "label": [0] * len(texts)})
    )
    assert auto.char_dict == from_list.char_dict
    only = datasets.Dataset.from_dict({"body": texts, "label": list(range(len(texts)))})
    assert Preprocessor(max_example_len=32).fit(only).char_dict == from_list.char_dict
    two = datasets.Dataset.from_dict({"a": texts, "b": texts})
    with pytest.raises(DataError, match="text_column"):
        Preprocessor(max_example_len=32).fit(two)
    assert Preprocessor(max_example_len=32).fit(two, text_column="b").char_dict == from_list.char_dict
    with pytest.raises(DataError, match="no column 'c'"):
        Preprocessor(max_example_len=32).fit(two, text_column="c")


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.text(alphabet=st.characters(codec="utf-8"), max_size=12), min_size=1, max_size=6),
    st.lists(st.text(max_size=20), max_size=8),
    st.integers(1, 16),
)
def test_vectorised_ids_match_a_per_character_lookup(fit_on, texts, length):
    if not "".join(fit_on):
        fit_on = ["a"]
    prep = Preprocessor(max_example_len=length).fit(fit_on)
    expected = [
        [prep.char_dict.get(ch, UNKNOWN_ID) for ch in t[:length]] + [PAD_ID] * (length - len(t[:length]))
        for t in texts
    ]
    assert prep.strings_to_array(texts, length).tolist() == expected


def test_the_sample_shape_of_the_original_shelf_preprocessor(tmp_path):
    """en_wiki_clm_1's file: char_rev with the four specials, ids 4.. in sorted character order."""
    chars = sorted("\t\n !\"#$%&'()*+,-./0123456789abcdeéz中）")
    config = _legacy_config("".join(chars), 256)
    (tmp_path / "cclm_config.json").write_text(json.dumps(config), encoding="utf-8")
    prep = Preprocessor(load_from=tmp_path)
    ids = prep.string_to_array("abc ✓", 256)[0]
    assert ids[:5].tolist() == [config["char_dict"][c] for c in "abc "] + [PAD_ID]
    assert ids[-1] == CLS_ID and (ids[5:-1] == PAD_ID).all()


def test_fit_trains_a_bpe_tokenizer_saved_with_the_preprocessor(texts, tmp_path):
    prep = Preprocessor(max_example_len=32, vocab_size=200).fit(texts)
    encoding = prep.tokenize("Résumé number 3 is neat")
    assert encoding.tokens[:2] == ["resume", "number"]  # lowercased and accents stripped, as the original
    assert 0 < prep.tokenizer.get_vocab_size() <= 200
    assert encoding.offsets[0] == (0, 6)
    loaded = Preprocessor(load_from=prep.save(tmp_path))
    assert loaded.tokenize("Résumé number 3 is neat").ids == encoding.ids
    assert loaded.fingerprint == prep.fingerprint == vocab_fingerprint(tmp_path)
    again = Preprocessor(max_example_len=32, vocab_size=200).fit(texts)
    assert again.fingerprint == prep.fingerprint  # training is deterministic
    skipped = Preprocessor(max_example_len=32).fit(texts, skip_tokenizer=True)
    assert skipped.tokenizer is None and skipped.char_dict == prep.char_dict
    with pytest.raises(DataError, match="no tokenizer"):
        skipped.tokenize("abc")
    assert skipped.fingerprint != prep.fingerprint  # the tokenizer is part of the fingerprint
    kept = Preprocessor(load_from=tmp_path).fit(texts[:3], skip_tokenizer=True)
    assert kept.tokenize("number").ids == prep.tokenize("number").ids


def test_fingerprint_covers_everything_that_changes_the_ids(texts, tmp_path):
    base = Preprocessor(max_example_len=32).fit(texts, skip_tokenizer=True)
    longer = Preprocessor(max_example_len=33).fit(texts, skip_tokenizer=True)
    cls = Preprocessor(max_example_len=32, add_cls=True).fit(texts, skip_tokenizer=True)
    fewer = Preprocessor(max_example_len=32).fit(texts, min_char_count=7, skip_tokenizer=True)
    prints = {p.fingerprint for p in (base, longer, cls, fewer)}
    assert len(prints) == 4
    assert vocab_fingerprint(base.save(tmp_path / "a")) == base.fingerprint
    config = json.loads((tmp_path / "a" / "cclm_config.json").read_text(encoding="utf-8"))
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "cclm_config.json").write_text(json.dumps(config | {"unknown_id": 0}))
    assert vocab_fingerprint(tmp_path / "b") != base.fingerprint


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"unknown_id": 7}, "'unknown_id' must be 0 or 2"),
        ({"add_cls": "yes"}, "'add_cls' must be true or false"),
        ({"tokenizer": {"model": "nonsense"}}, "tokenizer that cannot be read"),
        ({"tokenizer": [1, 2]}, "'tokenizer' must be a JSON object"),
    ],
)
def test_malformed_id_scheme_or_tokenizer_is_a_format_error(prep, tmp_path, change, message):
    (tmp_path / "cclm_config.json").write_text(json.dumps(prep.to_config() | change), encoding="utf-8")
    with pytest.raises(FormatError, match=message):
        Preprocessor(load_from=tmp_path)


def test_importing_the_preprocessor_does_not_import_tokenizers():
    import subprocess
    import sys

    code = "import sys, cclm_core.preprocessing, cclm_core.fingerprint; print('tokenizers' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
