"""Corruption of character ids for pretraining.

``mask_batch`` is the vectorised form used by the ``tf.data`` pipelines: it corrupts a whole batch
with a handful of tensor ops. ``mask_example_python`` does the same to one example with a Python
loop, the way the original library's generators did; it is kept as the baseline the benchmark
compares against and as a readable statement of what ``mask_batch`` computes.

Of the characters chosen for corruption, ``1 - random_rate - keep_rate`` become the mask id, a
``random_rate`` share become a random vocabulary character (a typo) and the rest are kept; every chosen
position is a training target. Padding and reserved ids are never chosen.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from cclm_core.preprocessing import MASK_ID, N_SPECIAL


@dataclass(frozen=True)
class MaskingConfig:
    """How to corrupt inputs: ``rate`` of the characters, in spans of ``span_len`` on average."""

    rate: float = 0.15
    span_len: int = 3
    random_rate: float = 0.1
    keep_rate: float = 0.1


def mask_batch(
    ids: tf.Tensor,
    n_chars: int,
    config: MaskingConfig,
    targets: tf.Tensor | None = None,
    seed: tf.Tensor | None = None,
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Return ``(inputs, targets, weights)`` for a batch of ids ``(B, L)``; weights mark chosen positions.

    ``targets`` (default: ``ids``) are what the model should predict: an augmented batch passes the
    clean text here, and every position where input and target differ is scored too. ``seed`` (two
    integers) makes the draws deterministic (stateless random ops); without it they are not.
    """
    ids = tf.cast(ids, tf.int32)
    targets = ids if targets is None else tf.cast(targets, tf.int32)
    uniform = _uniform(seed)
    real = ids >= N_SPECIAL
    starts = tf.cast(uniform(tf.shape(ids), 0) < config.rate / config.span_len, tf.float32)
    if config.span_len > 1:
        # a max-pool over the start marks widens each start into a span of span_len characters
        starts = tf.nn.max_pool1d(starts[..., tf.newaxis], config.span_len, 1, "SAME")[..., 0]
    chosen = (starts > 0) & real
    draw = uniform(tf.shape(ids), 1)
    to_mask = chosen & (draw < 1.0 - config.random_rate - config.keep_rate)
    to_random = (
        chosen & (draw >= 1.0 - config.random_rate - config.keep_rate) & (draw < 1.0 - config.keep_rate)
    )
    high = max(n_chars, N_SPECIAL + 1)
    noise = N_SPECIAL + tf.cast(uniform(tf.shape(ids), 2) * (high - N_SPECIAL), tf.int32)
    inputs = tf.where(to_mask, MASK_ID, tf.where(to_random, tf.minimum(noise, high - 1), ids))
    scored = (chosen | (ids != targets)) & (targets >= N_SPECIAL)
    return inputs, targets, tf.cast(scored, tf.float32)


def _uniform(seed: tf.Tensor | None):
    """Uniform [0, 1) draws, the ``k``-th of a batch from its own stream of ``seed`` when one is given."""
    if seed is None:
        return lambda shape, k: tf.random.uniform(shape)
    seed = tf.cast(seed, tf.int64)
    return lambda shape, k: tf.random.stateless_uniform(shape, seed + tf.constant([0, k], tf.int64))


def mask_example_python(
    ids: list[int], n_chars: int, config: MaskingConfig, rng: random.Random
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Corrupt one example position by position in Python (the original, per-example approach)."""
    inputs, weights = list(ids), [0.0] * len(ids)
    position = 0
    while position < len(ids):
        if ids[position] >= N_SPECIAL and rng.random() < config.rate / config.span_len:
            for j in range(position, min(position + config.span_len, len(ids))):
                if ids[j] >= N_SPECIAL:
                    inputs[j] = _corrupt(ids[j], n_chars, config, rng)
                    weights[j] = 1.0
            position += config.span_len
        else:
            position += 1
    return np.array(inputs, np.int32), np.array(ids, np.int32), np.array(weights, np.float32)


def _corrupt(char_id: int, n_chars: int, config: MaskingConfig, rng: random.Random) -> int:
    draw = rng.random()
    if draw < 1.0 - config.random_rate - config.keep_rate:
        return MASK_ID
    if draw < 1.0 - config.keep_rate:
        return rng.randrange(N_SPECIAL, max(n_chars, N_SPECIAL + 1))
    return char_id
