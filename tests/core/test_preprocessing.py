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


def test_default_length_is_the_longest_example():
    prep = Preprocessor().fit(["ab", "abcde"])
    assert prep.max_example_len == 5
    assert prep.string_to_array("a").shape == (1, 5)


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


def test_loads_the_original_cclm_format(tmp_path):
    path = tmp_path / "cclm_config.json"
    path.write_text(json.dumps(_legacy_config("\t\n !é中ab", 256), ensure_ascii=False), encoding="utf-8")
    prep = Preprocessor(load_from=path)
    assert prep.n_chars == 12 and prep.max_example_len == 256
    assert prep.string_to_array("a中?", 4)[0].tolist() == [10, 9, UNKNOWN_ID, PAD_ID]
    ours = Preprocessor(load_from=prep.save(tmp_path / "ours"))
    assert ours.char_dict == prep.char_dict
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
