"""Text augmentation: the original cclm's ``Augmentor``, plus the character noise of real typing.

An ``Augmentor`` holds named transformations, ``{name: {"function": f, "probability": p}}``, and
``transform(text)`` applies each one with its probability, in the order of their names, as the original
did. Its defaults are the original's (``lower``, ``upper``, ``title_first``). All draws come from the
augmentor's own generator, so ``Augmentor(..., seed=0)`` gives the same output for the same inputs
every time.

Character noise (``Swap``, ``Drop``, ``Insert``, ``KeyboardTypo``; ``character_noise`` builds all four)
edits each character independently with probability ``rate``. A transformation that needs randomness
is an object with ``uses_rng = True`` whose ``__call__(text, rng)`` takes the augmentor's generator;
plain ``str -> str`` functions are called with the text alone.

Pretrainers take ``augmentor=`` and augment each training window before it is turned into ids.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from cclm_core.errors import DataError

CONST_FUNCTION = "function"
CONST_PROBABILITY = "probability"

#: A QWERTY keyboard, one string per row; neighbours are the keys around a key, rows staggered.
KEYBOARD_ROWS = ("1234567890-=", "qwertyuiop[]", "asdfghjkl;'", "zxcvbnm,./")


def lower(text: str) -> str:
    return text.lower()


def upper(text: str) -> str:
    return text.upper()


def title_first(text: str) -> str:
    return text[:1].upper() + text[1:]


def _keyboard_neighbours() -> dict[str, str]:
    position = {ch: (r, c) for r, row in enumerate(KEYBOARD_ROWS) for c, ch in enumerate(row)}
    around = ((0, -1), (0, 1), (-1, 0), (-1, 1), (1, -1), (1, 0))  # each row sits half a key right
    found: dict[str, str] = {}
    for ch, (r, c) in position.items():
        keys = [
            KEYBOARD_ROWS[r + dr][c + dc]
            for dr, dc in around
            if 0 <= r + dr < len(KEYBOARD_ROWS) and 0 <= c + dc < len(KEYBOARD_ROWS[r + dr])
        ]
        found[ch] = "".join(keys)
    return found


NEIGHBOURS = _keyboard_neighbours()


def neighbour_of(ch: str, rng: np.random.Generator) -> str:
    """A key next to ``ch`` on a QWERTY keyboard, in ``ch``'s case; ``ch`` itself if it has none."""
    keys = NEIGHBOURS.get(ch.lower())
    if not keys:
        return ch
    pick = keys[int(rng.integers(len(keys)))]
    return pick.upper() if ch.isupper() else pick


@dataclass(frozen=True)
class CharacterNoise:
    """Base of the noise transformations: each character is edited with probability ``rate``."""

    rate: float = 0.02
    uses_rng: ClassVar[bool] = True

    def __post_init__(self) -> None:
        if not 0.0 <= self.rate <= 1.0:
            raise DataError(f"a noise rate must lie in [0, 1], got {self.rate!r}")

    def __call__(self, text: str, rng: np.random.Generator | None = None) -> str:
        rng = rng if rng is not None else np.random.default_rng()
        positions = np.flatnonzero(rng.random(len(text)) < self.rate)
        if not len(positions):
            return text
        chars = list(text)
        for i in positions[::-1]:  # right to left, so earlier positions stay valid after an edit
            self.edit(chars, int(i), rng)
        return "".join(chars)

    def edit(self, chars: list[str], i: int, rng: np.random.Generator) -> None:
        raise NotImplementedError


class Swap(CharacterNoise):
    """Swap a character with the next one ("teh")."""

    def edit(self, chars: list[str], i: int, rng: np.random.Generator) -> None:
        if i + 1 < len(chars):
            chars[i], chars[i + 1] = chars[i + 1], chars[i]


class Drop(CharacterNoise):
    """Leave a character out ("te")."""

    def edit(self, chars: list[str], i: int, rng: np.random.Generator) -> None:
        del chars[i]


class Insert(CharacterNoise):
    """Type a neighbouring key as well, after the character ("thre")."""

    def edit(self, chars: list[str], i: int, rng: np.random.Generator) -> None:
        chars.insert(i + 1, neighbour_of(chars[i], rng))


class KeyboardTypo(CharacterNoise):
    """Hit a neighbouring key instead of the character ("tge")."""

    def edit(self, chars: list[str], i: int, rng: np.random.Generator) -> None:
        chars[i] = neighbour_of(chars[i], rng)


def character_noise(rate: float = 0.02, probability: float = 1.0) -> dict[str, dict[str, Any]]:
    """The four noise transformations, each applied to a text with ``probability`` at ``rate``."""
    return {
        name: {CONST_FUNCTION: noise(rate), CONST_PROBABILITY: probability}
        for name, noise in (
            ("swap", Swap),
            ("drop", Drop),
            ("insert", Insert),
            ("keyboard_typo", KeyboardTypo),
        )
    }


class Augmentor:
    """Apply a set of named transformations to texts, each with its own probability."""

    default_transformations: ClassVar[dict[str, dict[str, Any]]] = {
        "lower": {CONST_FUNCTION: lower, CONST_PROBABILITY: 0.02},
        "upper": {CONST_FUNCTION: upper, CONST_PROBABILITY: 0.005},
        "title_first": {CONST_FUNCTION: title_first, CONST_PROBABILITY: 0.01},
    }

    def __init__(
        self, transformations: Mapping[str, Mapping[str, Any]] | None = None, seed: int | None = None
    ) -> None:
        source = self.default_transformations if transformations is None else transformations
        # a copy, so that changing the dict given (or the class defaults) later changes nothing here
        self.transformation_dict = {name: dict(spec) for name, spec in _checked(source).items()}
        self.seed = seed
        self.rng = seeded_rng(seed)
        self.transformations = self.compile()

    def compile(self) -> list[tuple[Callable[..., str], float]]:
        """The transformations as ``(function, probability)`` pairs, in the order of their names."""
        return [
            (spec[CONST_FUNCTION], float(spec[CONST_PROBABILITY]))
            for _, spec in sorted(self.transformation_dict.items())
        ]

    def transform(self, text: str) -> str:
        """``text`` after each transformation, applied with its probability."""
        for function, probability in self.transformations:
            if self.rng.random() < probability:
                text = function(text, self.rng) if getattr(function, "uses_rng", False) else function(text)
        return text


def seeded_rng(seed: Any) -> np.random.Generator:
    """A numpy generator for ``seed`` (None: fresh entropy); anything but a non-negative int is refused."""
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool) or seed < 0):
        raise DataError(f"seed must be a non-negative integer or None, got {seed!r}")
    return np.random.default_rng(seed)


def _checked(transformations: Any) -> dict[str, Mapping[str, Any]]:
    """Refuse anything but ``{name: {"function": callable, "probability": p in [0, 1]}}``, naming it."""
    if not isinstance(transformations, Mapping):
        raise DataError(
            f"transformations must be a dict of name -> spec, got {type(transformations).__name__}",
            hint='e.g. {"lower": {"function": str.lower, "probability": 0.1}}',
        )
    for name, spec in transformations.items():
        if not isinstance(spec, Mapping) or not callable(spec.get(CONST_FUNCTION)):
            raise DataError(
                f"transformation {name!r} needs a callable under {CONST_FUNCTION!r}",
                hint='e.g. {"function": str.lower, "probability": 0.1}',
            )
        probability = spec.get(CONST_PROBABILITY)
        if (
            isinstance(probability, bool)
            or not isinstance(probability, int | float)
            or not 0 <= probability <= 1
        ):
            raise DataError(
                f"transformation {name!r} needs a {CONST_PROBABILITY!r} in [0, 1], got {probability!r}"
            )
    return dict(transformations)
