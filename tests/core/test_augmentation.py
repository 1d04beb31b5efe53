"""Augmentor: the original's constructor and defaults, character noise, seeding and bad specs."""

from __future__ import annotations

import numpy as np
import pytest

from cclm_core.augmentation import (
    NEIGHBOURS,
    Augmentor,
    Drop,
    Insert,
    KeyboardTypo,
    Swap,
    character_noise,
    title_first,
)
from cclm_core.errors import DataError

TEXT = "the quick brown fox jumps over the lazy dog " * 20


def test_the_originals_defaults_and_constructor():
    assert set(Augmentor().transformation_dict) == {"lower", "upper", "title_first"}
    config = {"title_first": dict(Augmentor.default_transformations["title_first"])}
    config["title_first"]["probability"] = 1.0
    assert Augmentor(config).transform("a strinG") == "A strinG"
    assert Augmentor.default_transformations["title_first"]["probability"] == 0.01  # not changed
    assert title_first("") == ""


def test_transformations_apply_in_name_order_with_their_probability():
    config = {
        "b_exclaim": {"function": lambda s: s + "!", "probability": 1.0},
        "a_upper": {"function": str.upper, "probability": 1.0},
        "never": {"function": lambda s: "lost", "probability": 0.0},
    }
    assert Augmentor(config).transform("hi") == "HI!"
    sometimes = Augmentor({"up": {"function": str.upper, "probability": 0.3}}, seed=1)
    share = sum(sometimes.transform("x") == "X" for _ in range(2000)) / 2000
    assert 0.25 < share < 0.35


def test_a_seed_makes_augmentation_reproducible():
    config = {**Augmentor.default_transformations, **character_noise(0.05)}
    first = [Augmentor(config, seed=7).transform(TEXT) for _ in range(2)]
    assert first[0] == first[1] != TEXT
    assert Augmentor(config, seed=8).transform(TEXT) != first[0]


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def test_swap_keeps_the_characters_and_the_length():
    out = Swap(0.1)(TEXT, _rng())
    assert out != TEXT and len(out) == len(TEXT) and sorted(out) == sorted(TEXT)


def test_drop_removes_characters_at_about_the_rate():
    out = Drop(0.1)(TEXT, _rng())
    assert 0.05 < 1 - len(out) / len(TEXT) < 0.15
    # what is left is a subsequence of the text
    it = iter(TEXT)
    assert all(ch in it for ch in out)


def test_insert_adds_keyboard_neighbours_after_characters():
    out = Insert(0.1)("a" * 400, _rng())
    assert 0.05 < len(out) / 400 - 1 < 0.15
    assert set(out) - {"a"} and set(out) <= {"a", *NEIGHBOURS["a"]}


def test_keyboard_typos_hit_neighbouring_keys_in_the_same_case():
    out = KeyboardTypo(1.0)("Gg?", _rng())
    assert out[0].isupper() and out[0].lower() in NEIGHBOURS["g"]
    assert out[1] in NEIGHBOURS["g"] and out[2] == "?"  # a key not on the layout stays
    assert set(NEIGHBOURS["g"]) == set("fhtybv")


def test_rate_zero_changes_nothing_and_empty_text_is_fine():
    for noise in (Swap(0.0), Drop(0.0), Insert(0.0), KeyboardTypo(0.0)):
        assert noise(TEXT, _rng()) == TEXT
    for noise in (Swap(1.0), Drop(1.0), Insert(1.0), KeyboardTypo(1.0)):
        assert noise("", _rng()) == ""
    assert Drop(1.0)("abc", _rng()) == ""


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (["lower"], "must be a dict"),
        ({"x": {"probability": 0.5}}, "needs a callable"),
        ({"x": {"function": str.lower}}, r"needs a 'probability' in \[0, 1\]"),
        ({"x": {"function": str.lower, "probability": 1.5}}, r"in \[0, 1\], got 1\.5"),
    ],
)
def test_bad_transformations_are_refused_with_a_clear_error(spec, message):
    with pytest.raises(DataError, match=message):
        Augmentor(spec)


def test_bad_noise_rate_is_refused():
    with pytest.raises(DataError, match="noise rate"):
        Swap(2.0)
