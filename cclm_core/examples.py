"""How texts become pretraining examples: random windows, augmentation, character and token targets.

A ``Corpus`` holds the texts of one ``fit`` and their ids, encoded once into one flat array. Every epoch
it visits each non-empty text once, in a new random order, and draws a random window of each text that
is longer than the input (the original's ``get_substr``), so long texts are not always cut to their
first characters. Without an augmentor a batch of windows is gathered from the flat ids in tf.data; with one,
each window's string is augmented and encoded (one Python call per example, the cost of augmenting).

Two kinds of batches:

- character batches ``(inputs, clean)``, both ``(B, L)`` ids: the pretrainer masks ``inputs`` and
  predicts ``clean``. Without augmentation they are the same, and ``window_batches`` draws them inside
  ``tf.data`` (order, window starts and mask seeds from its seeded random ops): no Python step at all.
  With an augmentor (``character_batch``), ``inputs`` are the augmented window and ``clean`` the window
  as written where the augmentation kept its length (case changes, swaps, typos: the model learns to
  undo them, as the original's targets were the clean text); where characters were dropped or
  inserted nothing lines up, and ``clean`` is the augmented window too.
- token batches ``(inputs, token_ids, spans)``: one word piece of the preprocessor's tokenizer per
  window (of at least ``min_mask_len`` characters where there is one) is masked, character by
  character, in ``inputs``; ``token_ids`` ``(B,)`` is its id and ``spans`` ``(B, L)`` marks its
  characters. A window without any token has an all-zero span and is not scored.

All draws come from one numpy generator (``window_batches`` takes its seeds from it), so a seeded
pretrainer gives the same batches every time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import tensorflow as tf

from cclm_core.errors import DataError
from cclm_core.preprocessing import CLS_ID, MASK_ID, Preprocessor


class Corpus:
    """The non-empty texts of a fit, their ids in one flat array, and random windows over them."""

    def __init__(
        self, texts: list[str], preprocessor: Preprocessor, length: int, augmentor: Any = None
    ) -> None:
        self.texts = [t for t in texts if t]
        if not self.texts:
            raise DataError("cannot pretrain on empty data", hint="pass at least one non-empty string")
        self.preprocessor, self.length, self.augmentor = preprocessor, length, augmentor
        self.width = max(length - 1, 0) if preprocessor.add_cls else length  # characters per window
        self.lengths = np.fromiter(map(len, self.texts), dtype=np.int64, count=len(self.texts))
        self.offsets = np.cumsum(self.lengths) - self.lengths
        self.ids = preprocessor.encode("".join(self.texts)) if augmentor is None else None

    def __len__(self) -> int:
        return len(self.texts)

    def starts(self, rows: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """A random window start for each text in ``rows``: uniform over every full-width window."""
        room = np.maximum(self.lengths[rows] - self.width, 0)
        return np.floor(rng.random(len(rows)) * (room + 1)).astype(np.int64)

    def window(self, row: int, start: int) -> str:
        return self.texts[row][start : start + self.width]

    def order(self, rng: np.random.Generator, batch_size: int) -> Iterator[np.ndarray]:
        """One epoch: every text once, in a random order, ``batch_size`` at a time."""
        permutation = rng.permutation(len(self.texts))
        for first in range(0, len(permutation), batch_size):
            yield permutation[first : first + batch_size]

    def character_batch(self, rows: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """``(inputs, clean)`` ids of a random, augmented window of each text in ``rows``."""
        windows = [self.window(int(r), int(s)) for r, s in zip(rows, self.starts(rows, rng), strict=True)]
        augmented = [self.augmentor.transform(w) for w in windows]
        inputs = self.preprocessor.strings_to_array(augmented, self.length)
        clean = self.preprocessor.strings_to_array(windows, self.length)
        aligned = np.array([len(a) == len(w) for a, w in zip(augmented, windows, strict=True)])
        return inputs, np.where(aligned[:, None], clean, inputs)

    def window_batches(self, batch_size: int, seeds: np.ndarray, then: Callable[..., Any]) -> tf.data.Dataset:
        """``then(ids, seed)`` of character batches drawn inside ``tf.data``, for a corpus without augmentor.

        The same windows as ``character_batch`` (every text once an epoch in a new order, a start uniform
        over every full-width window, the ids cut from the flat array and framed as ``Preprocessor.frame``
        does), with no Python step per batch or epoch: a generator feeding ``tf.data`` costs more than the
        whole epoch's work on small corpora. Each iteration of the dataset (an epoch) reshuffles and draws
        new starts; ``seed`` is two integers for masking the batch (``then`` runs in the same traced
        step: one function call per batch). Every row carries two random integers: the first picks its
        window's start, the first row's pair seeds the batch's masking. Everything follows from ``seeds``
        (two integers), so the same seeds give the same batches, epoch after epoch.
        """
        flat, lengths, offsets = (tf.constant(a) for a in (self.ids, self.lengths, self.offsets))
        width, last, cls = self.width, len(self.ids) - 1, self.preprocessor.add_cls and self.length > 0
        columns = tf.range(width, dtype=tf.int64)[None, :]

        @tf.autograph.experimental.do_not_convert  # plain tensor ops: tracing them as written is faster
        def cut(rows: tf.Tensor, draws: tf.Tensor) -> Any:
            size = tf.gather(lengths, rows)
            # each row's own random integer picks its start (a random op per batch costs more than this)
            starts = tf.math.floormod(draws[:, 0], tf.maximum(size - width, 0) + 1)
            where = tf.minimum(tf.gather(offsets, rows)[:, None] + starts[:, None] + columns, last)
            ids = tf.where(columns < (size - starts)[:, None], tf.gather(flat, where), 0)
            if cls:
                ids = tf.concat([ids, tf.fill([tf.shape(rows)[0], 1], tf.constant(CLS_ID, ids.dtype))], 1)
            return then(ids, draws[0])

        order = tf.data.Dataset.range(len(self.texts)).shuffle(
            len(self.texts), seed=int(seeds[0]), reshuffle_each_iteration=True
        )
        draws = tf.data.Dataset.random(seed=int(seeds[1]), rerandomize_each_iteration=True).batch(2)
        batches = tf.data.Dataset.zip(order, draws).batch(batch_size)
        return batches.map(cut, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)

    def token_batch(
        self, rows: np.ndarray, rng: np.random.Generator, min_mask_len: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(inputs, token_ids, spans)``: one word piece per window masked, its id and its characters."""
        starts = self.starts(rows, rng)
        windows = [self.window(int(r), int(s)) for r, s in zip(rows, starts, strict=True)]
        if self.augmentor is not None:
            windows = [self.augmentor.transform(w) for w in windows]
        inputs = self.preprocessor.strings_to_array(windows, self.length)
        token_ids = np.zeros(len(windows), dtype=np.int32)
        spans = np.zeros(inputs.shape, dtype=np.float32)
        encodings = self.preprocessor.tokenizer.encode_batch(windows)
        for i, encoding in enumerate(encodings):
            picked = _pick_token(encoding, self.width, min_mask_len, rng)
            if picked is None:
                continue
            token_ids[i], (begin, end) = picked
            inputs[i, begin:end] = MASK_ID
            spans[i, begin:end] = 1.0
        return inputs, token_ids, spans


def _pick_token(
    encoding: Any, width: int, min_mask_len: int, rng: np.random.Generator
) -> tuple[int, tuple[int, int]] | None:
    """A random token of the window (one at least ``min_mask_len`` characters long if any), or None."""
    tokens = [
        (i, (b, min(e, width))) for i, (b, e) in zip(encoding.ids, encoding.offsets, strict=True) if b < width
    ]
    long = [t for t in tokens if t[1][1] - t[1][0] >= min_mask_len]
    choices = long or tokens
    if not choices:
        return None
    return choices[int(rng.integers(len(choices)))]


def get_substr(text: str, max_len: int, rng: np.random.Generator) -> str:
    """A random ``max_len``-character window of ``text`` (all of it when it is not longer)."""
    if len(text) <= max_len:
        return text
    start = int(rng.integers(0, len(text) - max_len + 1))
    return text[start : start + max_len]
