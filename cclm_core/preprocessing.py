"""The character ``Preprocessor``: text in, integer ids out.

Ids 0..3 are reserved (0 padding, 1 mask, 2 unknown character, 3 CLS); the vocabulary starts at 4,
ordered by descending frequency in the fitted data, ties broken by the character itself, so fitting the
same data always gives the same ids. Text longer than the input length is truncated on the right;
shorter text is padded with 0. Characters never seen during ``fit`` map to 2.

This module imports no TensorFlow: it works on numpy arrays only.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from cclm_core.errors import DataError, FormatError
from cclm_core.formats import (
    FORMAT_VERSION,
    PREPROCESSOR_CONFIG,
    check_format,
    read_json,
    require_keys,
    write_json,
)

PAD_ID = 0
MASK_ID = 1
UNKNOWN_ID = 2
CLS_ID = 3
N_SPECIAL = 4
#: How the reserved ids are spelled in ``char_rev`` (the original library wrote these strings too).
SPECIAL_TOKENS = {PAD_ID: "", MASK_ID: "?", UNKNOWN_ID: "?", CLS_ID: ""}


def extract_texts(data: Any, text_column: str | None = None) -> list[str]:
    """Return the strings of ``data``: a list of str or a HF ``datasets.Dataset`` with a text column.

    For a dataset the column is ``text_column`` if given, else ``"text"`` if present, else the only
    string column; anything ambiguous raises ``DataError`` naming the columns.
    """
    if hasattr(data, "column_names") and hasattr(data, "features"):
        return [str(t) for t in data[_text_column(data, text_column)]]
    if isinstance(data, str):
        raise DataError("expected a list of strings, got a single string", hint="wrap it in a list")
    try:
        texts = list(data)
    except TypeError as e:
        raise DataError(f"cannot read text from a {type(data).__name__}") from e
    bad = [type(t).__name__ for t in texts if not isinstance(t, str)]
    if bad:
        raise DataError(f"expected only strings, found {bad[0]}", hint="pass a List[str] or a Dataset")
    return texts


def _text_column(dataset: Any, text_column: str | None) -> str:
    columns = list(dataset.column_names)
    if text_column is not None:
        if text_column not in columns:
            raise DataError(f"the dataset has no column {text_column!r}; its columns are {columns}")
        return text_column
    if "text" in columns:
        return "text"
    strings = [
        c for c in columns if getattr(dataset.features[c], "dtype", None) in ("string", "large_string")
    ]
    if len(strings) != 1:
        raise DataError(
            f"cannot tell which column holds the text among {columns}", hint="pass text_column='...'"
        )
    return strings[0]


class Preprocessor:
    """Maps characters to integer ids, and strings to fixed-length id arrays.

    ``max_example_len=None`` takes the length of the longest example seen by ``fit``.
    ``load_from`` loads a saved ``cclm_config.json`` (or a folder holding one), in this core's format
    or the original cclm format (keys ``char_rev``, ``char_dict``, ``max_example_len`` only).
    """

    def __init__(self, max_example_len: int | None = None, load_from: str | Path | None = None) -> None:
        if max_example_len is not None and (not isinstance(max_example_len, int) or max_example_len < 1):
            raise DataError(f"max_example_len must be a positive integer, got {max_example_len!r}")
        self.max_example_len: int | None = max_example_len
        self.char_dict: dict[str, int] = {}
        self.char_rev: dict[int, str] = {}
        if load_from is not None:
            self._load(Path(load_from))

    @property
    def n_chars(self) -> int:
        """Size of the id space: the reserved ids plus the vocabulary."""
        return max([N_SPECIAL - 1, *self.char_rev, *self.char_dict.values()]) + 1

    @property
    def is_fitted(self) -> bool:
        return bool(self.char_dict)

    def fit(self, data: Any, text_column: str | None = None) -> Preprocessor:
        """Build the vocabulary from ``data`` (List[str] or ``datasets.Dataset``); returns ``self``."""
        texts = extract_texts(data, text_column)
        counts = Counter(ch for text in texts for ch in text)
        if not counts:
            raise DataError(
                "cannot fit a Preprocessor on empty data", hint="pass at least one non-empty string"
            )
        ordered = sorted(counts, key=lambda ch: (-counts[ch], ch))
        self.char_dict = {ch: i + N_SPECIAL for i, ch in enumerate(ordered)}
        self.char_rev = {**SPECIAL_TOKENS, **{i: ch for ch, i in self.char_dict.items()}}
        if self.max_example_len is None:
            self.max_example_len = max(1, max(len(t) for t in texts))
        return self

    def string_to_array(self, text: str, length: int | None = None) -> np.ndarray:
        """Return the ids of ``text`` as an int32 array of shape ``(1, length)``, truncated or padded."""
        return self.strings_to_array([text], length)

    def strings_to_array(self, texts: Iterable[str], length: int | None = None) -> np.ndarray:
        """Return the ids of every text as an int32 array of shape ``(n, length)``.

        Vectorised: all texts are encoded to code points at once and looked up with one
        ``searchsorted``, so the cost per character is numpy's, not the interpreter's.
        """
        self._require_fitted()
        length = self.max_example_len if length is None else length
        clipped = [text[:length] for text in texts]
        out = np.zeros((len(clipped), length), dtype=np.int32)
        lengths = np.fromiter(map(len, clipped), dtype=np.int64, count=len(clipped))
        if not lengths.sum():
            return out
        points = np.frombuffer("".join(clipped).encode("utf-32-le", "surrogatepass"), dtype="<u4")
        rows = np.repeat(np.arange(len(clipped)), lengths)
        cols = np.arange(len(points)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        out[rows, cols] = self._lookup(points)
        return out

    def _lookup(self, points: np.ndarray) -> np.ndarray:
        """Ids of an array of code points; unseen characters get ``UNKNOWN_ID``."""
        singles = sorted((ord(ch), i) for ch, i in self.char_dict.items() if len(ch) == 1)
        codes = np.array([c for c, _ in singles], dtype=np.uint32)
        ids = np.array([i for _, i in singles], dtype=np.int32)
        where = np.minimum(np.searchsorted(codes, points), len(codes) - 1)
        return np.where(codes[where] == points, ids[where], UNKNOWN_ID)

    def array_to_string(self, ids: Iterable[int]) -> str:
        """Inverse of ``string_to_array`` for vocabulary ids; padding is dropped, other reserved ids kept."""
        return "".join(self.char_rev.get(int(i), "?") for i in ids if int(i) != PAD_ID)

    def to_config(self) -> dict[str, Any]:
        """The saved form: the original cclm keys plus ``format`` and ``n_chars``."""
        self._require_fitted()
        return {
            "format": FORMAT_VERSION,
            "char_dict": dict(self.char_dict),
            "char_rev": {str(i): ch for i, ch in sorted(self.char_rev.items())},
            "max_example_len": self.max_example_len,
            "n_chars": self.n_chars,
        }

    def save(self, folder: str | Path) -> Path:
        """Write ``cclm_config.json`` into ``folder`` (created if needed); returns the file path."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / PREPROCESSOR_CONFIG
        write_json(path, self.to_config())
        return path

    def _require_fitted(self) -> None:
        if not self.is_fitted:
            raise DataError("the Preprocessor has no vocabulary yet", hint="call fit(data) or load one first")

    def _load(self, path: Path) -> None:
        if path.is_dir():
            path = path / PREPROCESSOR_CONFIG
        config = read_json(path)
        check_format(config, path, required=False)
        require_keys(config, ("char_dict", "char_rev", "max_example_len"), path)
        try:
            self.char_dict = {str(ch): int(i) for ch, i in config["char_dict"].items()}
            self.char_rev = {int(i): str(ch) for i, ch in config["char_rev"].items()}
            self.max_example_len = int(config["max_example_len"])
        except (AttributeError, TypeError, ValueError) as e:
            raise FormatError(f"{path} has a malformed vocabulary: {e}") from e
        _validate_vocab(self.char_dict, path)


def _validate_vocab(char_dict: dict[str, int], path: Path) -> None:
    """Vocabulary ids must start after the reserved ids and be unique, or lookups would collide."""
    ids = list(char_dict.values())
    if not ids:
        raise FormatError(f"{path} has an empty vocabulary")
    if min(ids) < N_SPECIAL or len(set(ids)) != len(ids):
        raise FormatError(f"{path} has vocabulary ids below {N_SPECIAL} or repeated ids")
