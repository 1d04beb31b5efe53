"""The character ``Preprocessor``: text in, integer ids out.

Ids 0..3 are reserved (0 padding, 1 mask, 2 unknown character, 3 CLS); the vocabulary starts at 4,
ordered by descending frequency in the fitted data, ties broken by the character itself, so fitting the
same data always gives the same ids. Text longer than the input length is truncated on the right;
shorter text is padded with 0. Characters never seen during ``fit`` (or seen fewer than
``min_char_count`` times) map to 2. With ``add_cls`` the last slot of every array holds the CLS id and
the text gets one slot less, as in the original cclm.

Original cclm folders (no ``format`` key) load with the ids the original gave them: unknown characters
map to 0 (the original left them at its zero fill) and the CLS id fills the last slot (its constructor's
``add_cls=True`` default, which its files did not record).

``fit`` also trains a BPE tokenizer (``cclm_core.tokenizer``) unless ``skip_tokenizer=True``; it is saved
inside ``cclm_config.json`` and is part of the preprocessor's fingerprint.

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
    read_config,
    write_json,
)

PAD_ID = 0
MASK_ID = 1
UNKNOWN_ID = 2
CLS_ID = 3
N_SPECIAL = 4
#: How the reserved ids are spelled in ``char_rev`` (the original library wrote these strings too).
SPECIAL_TOKENS = {PAD_ID: "", MASK_ID: "?", UNKNOWN_ID: "?", CLS_ID: ""}
#: The original cclm's defaults: input length and the tokenizer's vocabulary size.
DEFAULT_MAX_LEN = 512
DEFAULT_VOCAB_SIZE = 10000


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

    ``max_example_len`` is the input length (the original's default, 512). ``vocab_size`` bounds the BPE
    tokenizer ``fit`` trains. ``add_cls`` puts the CLS id in the last slot; ``None`` means no for a new
    preprocessor, the saved value for a loaded one (yes for an original cclm folder).
    ``load_from`` loads a saved ``cclm_config.json`` (or a folder holding one), in this core's format
    or the original cclm format (keys ``char_rev``, ``char_dict``, ``max_example_len`` only).
    """

    def __init__(
        self,
        max_example_len: int = DEFAULT_MAX_LEN,
        load_from: str | Path | None = None,
        *,
        vocab_size: int = DEFAULT_VOCAB_SIZE,
        add_cls: bool | None = None,
    ) -> None:
        if not _positive_int(max_example_len):
            raise DataError(f"max_example_len must be a positive integer, got {max_example_len!r}")
        if not _positive_int(vocab_size):
            raise DataError(f"vocab_size must be a positive integer, got {vocab_size!r}")
        if add_cls is not None and not isinstance(add_cls, bool):
            raise DataError(f"add_cls must be True, False or None, got {add_cls!r}")
        self.max_example_len: int = max_example_len
        self.vocab_size = vocab_size
        self.add_cls = bool(add_cls)
        self.unknown_id = UNKNOWN_ID
        self.char_dict: dict[str, int] = {}
        self.char_rev: dict[int, str] = {}
        self.tokenizer_config: dict[str, Any] | None = None
        self._tokenizer: Any = None
        self._lookup_table: tuple[np.ndarray, np.ndarray] | None = None
        if load_from is not None:
            self._load(Path(load_from))
            if add_cls is not None:
                self.add_cls = add_cls

    @property
    def n_chars(self) -> int:
        """Size of the id space: the reserved ids plus the vocabulary."""
        return max([N_SPECIAL - 1, *self.char_rev, *self.char_dict.values()]) + 1

    @property
    def is_fitted(self) -> bool:
        return bool(self.char_dict)

    @property
    def tokenizer(self) -> Any:
        """The ``tokenizers.Tokenizer`` fitted with the vocabulary, or None (``skip_tokenizer=True``)."""
        if self._tokenizer is None and self.tokenizer_config is not None:
            from cclm_core.tokenizer import tokenizer_from_config

            self._tokenizer = tokenizer_from_config(self.tokenizer_config, "the preprocessor")
        return self._tokenizer

    @property
    def fingerprint(self) -> str:
        """What ``cclm_core.fingerprint.vocab_fingerprint`` gives for this preprocessor once saved."""
        from cclm_core.fingerprint import vocab_fingerprint_of

        return vocab_fingerprint_of(self.to_config())

    def fit(
        self,
        data: Any,
        text_column: str | None = None,
        min_char_count: int = 1,
        skip_tokenizer: bool = False,
    ) -> Preprocessor:
        """Build the vocabulary (and the tokenizer) from ``data`` (List[str] or ``datasets.Dataset``).

        Characters seen fewer than ``min_char_count`` times are left out (they map to the unknown id).
        ``skip_tokenizer=True`` keeps the tokenizer as it is (none, for a new preprocessor). Returns ``self``.
        """
        if not _positive_int(min_char_count):
            raise DataError(f"min_char_count must be a positive integer, got {min_char_count!r}")
        texts = extract_texts(data, text_column)
        counts = Counter(ch for text in texts for ch in text)
        if not counts:
            raise DataError(
                "cannot fit a Preprocessor on empty data", hint="pass at least one non-empty string"
            )
        kept = [ch for ch, n in counts.items() if n >= min_char_count]
        if not kept:
            raise DataError(
                f"no character occurs at least {min_char_count} times in the data",
                hint="lower min_char_count or pass more text",
            )
        if not skip_tokenizer:
            from cclm_core.tokenizer import train_tokenizer

            self.tokenizer_config, self._tokenizer = train_tokenizer(texts, self.vocab_size), None
        ordered = sorted(kept, key=lambda ch: (-counts[ch], ch))
        self._set_vocab({ch: i + N_SPECIAL for i, ch in enumerate(ordered)})
        self.char_rev = {**SPECIAL_TOKENS, **{i: ch for ch, i in self.char_dict.items()}}
        return self

    def tokenize(self, text: str) -> Any:
        """The tokenizer's ``Encoding`` of ``text`` (``.ids``, ``.tokens``, ``.offsets``), as the original."""
        if self.tokenizer is None:
            raise DataError(
                "the Preprocessor has no tokenizer",
                hint="fit it without skip_tokenizer=True, or load one that was saved with a tokenizer",
            )
        return self.tokenizer.encode(text)

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
        width = max(length - 1, 0) if self.add_cls else length
        clipped = [text[:width] for text in texts]
        ids = np.zeros((len(clipped), width), dtype=np.int32)
        lengths = np.fromiter(map(len, clipped), dtype=np.int64, count=len(clipped))
        if lengths.sum():
            rows = np.repeat(np.arange(len(clipped)), lengths)
            cols = np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths)
            ids[rows, cols] = self.encode("".join(clipped))
        return self.frame(ids, length)

    def frame(self, ids: np.ndarray, length: int) -> np.ndarray:
        """Lay rows of character ids (0 after the text) out as ``(n, length)`` inputs.

        Rows are cut to the text's room (``length``, or ``length - 1`` with ``add_cls``, whose CLS id
        then fills the last slot), so every array the core feeds a model has one layout.
        """
        width = max(length - 1, 0) if self.add_cls else length
        out = np.zeros((len(ids), length), dtype=np.int32)
        kept = min(width, ids.shape[1])
        out[:, :kept] = ids[:, :kept]
        if self.add_cls and length:
            out[:, -1] = CLS_ID
        return out

    def encode(self, text: str) -> np.ndarray:
        """The id of every character of ``text`` (no truncation, padding or CLS), as int32."""
        self._require_fitted()
        points = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype="<u4")
        codes, ids = self._table()
        where = np.minimum(np.searchsorted(codes, points), len(codes) - 1)
        return np.where(codes[where] == points, ids[where], self.unknown_id).astype(np.int32)

    def _table(self) -> tuple[np.ndarray, np.ndarray]:
        """Sorted code points and their ids, built once per vocabulary."""
        if self._lookup_table is None:
            singles = sorted((ord(ch), i) for ch, i in self.char_dict.items() if len(ch) == 1)
            self._lookup_table = (
                np.array([c for c, _ in singles], dtype=np.uint32),
                np.array([i for _, i in singles], dtype=np.int32),
            )
        return self._lookup_table

    def _set_vocab(self, char_dict: dict[str, int]) -> None:
        self.char_dict, self._lookup_table = char_dict, None

    def array_to_string(self, ids: Iterable[int]) -> str:
        """Inverse of ``string_to_array`` for vocabulary ids; padding is dropped, other reserved ids kept."""
        return "".join(self.char_rev.get(int(i), "?") for i in ids if int(i) != PAD_ID)

    def to_config(self) -> dict[str, Any]:
        """The saved form: the original cclm keys plus ``format``, ``n_chars``, id scheme and tokenizer."""
        self._require_fitted()
        return {
            "format": FORMAT_VERSION,
            "char_dict": dict(self.char_dict),
            "char_rev": {str(i): ch for i, ch in sorted(self.char_rev.items())},
            "max_example_len": self.max_example_len,
            "n_chars": self.n_chars,
            "add_cls": self.add_cls,
            "unknown_id": self.unknown_id,
            "vocab_size": self.vocab_size,
            "tokenizer": self.tokenizer_config,
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
        config = read_config(path, ("char_dict", "char_rev", "max_example_len"), format_required=False)
        scheme = id_scheme(config, path)
        try:
            char_dict = {str(ch): int(i) for ch, i in config["char_dict"].items()}
            self.char_rev = {int(i): str(ch) for i, ch in config["char_rev"].items()}
            self.max_example_len = int(config["max_example_len"])
            self.vocab_size = int(config.get("vocab_size", self.vocab_size))
        except (AttributeError, TypeError, ValueError) as e:
            raise FormatError(f"{path} has a malformed vocabulary: {e}") from e
        _validate_vocab(char_dict, path)
        self._set_vocab(char_dict)
        self.add_cls, self.unknown_id = scheme["add_cls"], scheme["unknown"]
        self.tokenizer_config = config.get("tokenizer")
        self._tokenizer = None
        if self.tokenizer_config is not None:
            from cclm_core.tokenizer import tokenizer_from_config

            self._tokenizer = tokenizer_from_config(self.tokenizer_config, str(path))


def id_scheme(config: dict[str, Any], where: Path | str = "the preprocessor config") -> dict[str, Any]:
    """The reserved ids a saved preprocessor config maps text with (hashed into its fingerprint).

    A file without ``format`` is the original cclm's: unknown characters map to 0 and CLS fills the last
    slot. A file of this core records ``unknown_id`` and ``add_cls`` (older ones lack them: 2 and no CLS).
    """
    legacy = "format" not in config
    unknown = config.get("unknown_id", PAD_ID if legacy else UNKNOWN_ID)
    add_cls = config.get("add_cls", legacy)
    if unknown not in (PAD_ID, UNKNOWN_ID) or isinstance(unknown, bool):
        raise FormatError(f"{where}: 'unknown_id' must be {PAD_ID} or {UNKNOWN_ID}, found {unknown!r}")
    if not isinstance(add_cls, bool):
        raise FormatError(f"{where}: 'add_cls' must be true or false, found {add_cls!r}")
    return {"pad": PAD_ID, "mask": MASK_ID, "unknown": unknown, "cls": CLS_ID, "add_cls": add_cls}


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _validate_vocab(char_dict: dict[str, int], path: Path) -> None:
    """Vocabulary ids must start after the reserved ids and be unique, or lookups would collide."""
    ids = list(char_dict.values())
    if not ids:
        raise FormatError(f"{path} has an empty vocabulary")
    if min(ids) < N_SPECIAL or len(set(ids)) != len(ids):
        raise FormatError(f"{path} has vocabulary ids below {N_SPECIAL} or repeated ids")
