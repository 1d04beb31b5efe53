"""Pretrainers: the seed README walkthrough end to end, vectorised masking, and bad training input."""

from __future__ import annotations

import random

import numpy as np
import pytest
import tensorflow as tf

from cclm_core.errors import DataError, IncompatibleComponentError
from cclm_core.masking import MaskingConfig, mask_batch, mask_example_python
from cclm_core.models import ComposedModel, Embedder
from cclm_core.preprocessing import MASK_ID, N_SPECIAL, Preprocessor
from cclm_core.pretraining import CharacterReconstructionPretrainer, MaskedLanguagePretrainer


@pytest.mark.slow
def test_seed_readme_walkthrough(texts):
    prep = Preprocessor(max_example_len=32)
    prep.fit(texts)
    embedder = Embedder(prep.max_example_len, prep.n_chars)
    before = [w.copy() for w in embedder.model.get_weights()]
    pretrainer_a = MaskedLanguagePretrainer(embedder=embedder)
    history = pretrainer_a.fit(texts, epochs=1)
    assert np.isfinite(history.history["loss"][0])
    # no preprocessor was given: fit built the same vocabulary Preprocessor.fit gives on this data
    assert pretrainer_a.preprocessor.char_dict == prep.char_dict
    assert any(not np.array_equal(a, b) for a, b in zip(before, embedder.model.get_weights(), strict=True))
    pretrainer_b = CharacterReconstructionPretrainer(embedder=embedder)
    pretrainer_b.fit(texts, epochs=1)
    composed = ComposedModel(embedder, [pretrainer_a.model, pretrainer_b.model])
    x = prep.string_to_array("cclm is neat", prep.max_example_len)
    emb = composed.model(x)
    assert tuple(emb.shape) == (
        1,
        32,
        pretrainer_a.model.output_shape[-1] + pretrainer_b.model.output_shape[-1],
    )
    gmp = tf.keras.layers.GlobalMaxPool1D()
    d = tf.keras.layers.Dense(1, activation="sigmoid")
    keras_model = tf.keras.Model(composed.model.input, d(gmp(composed.model.output)))
    keras_model.compile(optimizer="adam", loss="binary_crossentropy")
    labels = np.array([i % 2 for i in range(len(texts))])
    fitted = keras_model.fit(prep.strings_to_array(texts, 32), labels, epochs=1, batch_size=12, verbose=0)
    assert np.isfinite(fitted.history["loss"][0])


def test_fit_accepts_a_hugging_face_dataset(prep, texts):
    datasets = pytest.importorskip("datasets")
    embedder = Embedder(prep.max_example_len, prep.n_chars, n_filters=16, n_blocks=1)
    pretrainer = CharacterReconstructionPretrainer(embedder=embedder, output_dim=8)
    data = datasets.Dataset.from_dict({"sentence": texts, "label": list(range(len(texts)))})
    history = pretrainer.fit(data, epochs=2, batch_size=16)
    assert len(history.history["loss"]) == 2 and np.isfinite(history.history["loss"]).all()
    assert pretrainer.preprocessor.char_dict == prep.char_dict


def test_dataset_is_batched_tensors_with_targets_and_weights(prep, texts):
    embedder = Embedder(prep.max_example_len, prep.n_chars, n_filters=8, n_blocks=1)
    pretrainer = MaskedLanguagePretrainer(embedder=embedder, preprocessor=prep, output_dim=8, hidden_dim=8)
    inputs, targets, weights = next(iter(pretrainer.dataset(texts, batch_size=10)))
    assert inputs.shape == targets.shape == weights.shape == (10, 32)
    assert inputs.dtype == targets.dtype == tf.int32 and weights.dtype == tf.float32
    changed = inputs.numpy() != targets.numpy()
    assert not (changed & (weights.numpy() == 0)).any()  # only chosen positions are corrupted


def test_vocabulary_that_does_not_fit_the_embedder_is_refused(prep, texts):
    embedder = Embedder(prep.max_example_len, prep.n_chars, n_filters=8, n_blocks=1)
    pretrainer = MaskedLanguagePretrainer(embedder=embedder, output_dim=8, hidden_dim=8)
    with pytest.raises(IncompatibleComponentError, match=f"but the embedder expects n_chars {prep.n_chars}"):
        pretrainer.fit(["entirely different text: QXZ 0123456789 ~~~"], epochs=1)
    other = Preprocessor(max_example_len=32).fit(["abc"])
    with pytest.raises(IncompatibleComponentError, match="use the Preprocessor the embedder was built with"):
        CharacterReconstructionPretrainer(embedder=embedder, preprocessor=other)


@pytest.mark.parametrize("data", [[], ["", ""]])
def test_empty_training_data_is_refused(prep, data):
    embedder = Embedder(prep.max_example_len, prep.n_chars, n_filters=8, n_blocks=1)
    pretrainer = CharacterReconstructionPretrainer(embedder=embedder, preprocessor=prep, output_dim=8)
    with pytest.raises(DataError, match="empty data"):
        pretrainer.fit(data)
    with pytest.raises(DataError, match="positive integers"):
        pretrainer.fit(["abc"], epochs=0)


def _example_ids(n_rows: int, length: int, n_chars: int) -> np.ndarray:
    rng = np.random.default_rng(7)
    ids = rng.integers(N_SPECIAL, n_chars, size=(n_rows, length), dtype=np.int32)
    lengths = rng.integers(0, length + 1, size=n_rows)
    ids[np.arange(length)[None, :] >= lengths[:, None]] = 0  # right padding, as string_to_array gives
    return ids


def test_vectorised_masking_statistics():
    ids = _example_ids(400, 64, 40)
    config = MaskingConfig(rate=0.15, span_len=3, random_rate=0.1, keep_rate=0.1)
    inputs, targets, weights = (t.numpy() for t in mask_batch(tf.constant(ids), 40, config))
    chosen = weights > 0
    assert np.array_equal(targets, ids)
    assert not chosen[ids < N_SPECIAL].any()  # padding and reserved ids are never targets
    share = chosen.sum() / (ids >= N_SPECIAL).sum()
    assert 0.08 < share < 0.30
    masked = (inputs == MASK_ID) & chosen
    assert 0.7 < masked.sum() / chosen.sum() < 0.9
    assert ((inputs[chosen] >= N_SPECIAL) | (inputs[chosen] == MASK_ID)).all()
    assert np.array_equal(inputs[~chosen], ids[~chosen])


def test_python_masking_matches_the_same_contract():
    ids = _example_ids(200, 64, 40)
    rng = random.Random(3)
    config = MaskingConfig()
    rows = [mask_example_python(row.tolist(), 40, config, rng) for row in ids]
    inputs, targets, weights = (np.stack(parts) for parts in zip(*rows, strict=True))
    chosen = weights > 0
    assert np.array_equal(targets, ids) and not chosen[ids < N_SPECIAL].any()
    assert 0.08 < chosen.sum() / (ids >= N_SPECIAL).sum() < 0.30
    assert np.array_equal(inputs[~chosen], ids[~chosen])
