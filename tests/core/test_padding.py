"""Padding is invisible: outputs at real characters depend neither on the padding row nor on the length."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("tensorflow")

from cclm_core.models import ComposedModel, Embedder
from cclm_core.networks import ComposedNetwork
from cclm_core.pretraining import CharacterReconstructionPretrainer, MaskedLanguagePretrainer

SHORT = ["cclm is neat", "a", "said the fox.", "kernel number 5 is fast"]


def _stack(prep, max_len: int):
    embedder = Embedder(max_len, prep.n_chars, char_emb_size=8, n_filters=16, n_blocks=2)
    mlm = MaskedLanguagePretrainer(embedder, output_dim=8, hidden_dim=16, n_layers=2)
    rec = CharacterReconstructionPretrainer(embedder, output_dim=8)
    return embedder, mlm, rec


def _real(ids: np.ndarray) -> np.ndarray:
    return (ids != 0)[..., np.newaxis]


def test_the_padding_row_does_not_move_outputs_at_real_characters(prep):
    embedder, mlm, rec = _stack(prep, 32)
    composed = ComposedModel(embedder, [mlm, rec])
    ids = prep.strings_to_array(SHORT, 32)
    assert (ids == 0).any()

    def outputs() -> list[np.ndarray]:
        hidden = embedder.model(ids)
        parts = [hidden, mlm.model(hidden), rec.model(hidden), composed.model(ids)]
        return [np.asarray(part) for part in parts]

    before = outputs()
    table = embedder.model.get_layer("char_embedding").embeddings
    row = np.asarray(table).copy()
    row[0] = np.random.default_rng(0).normal(scale=50.0, size=row.shape[1])
    table.assign(row)
    after = outputs()
    for old, new in zip(before, after, strict=True):
        assert np.allclose(np.where(_real(ids), old, 0), np.where(_real(ids), new, 0), atol=1e-5)
    # the check has teeth: the same change to a real character's row does move them
    row[prep.char_dict["c"]] += 1.0
    table.assign(row)
    assert not np.allclose(np.asarray(composed.model(ids))[0, 0], after[-1][0, 0], atol=1e-3)


def test_outputs_at_real_characters_do_not_depend_on_the_padded_length(prep):
    def network(max_len: int) -> ComposedNetwork:
        embedder, mlm, rec = _stack(prep, max_len)
        return ComposedNetwork(embedder.model, [mlm.model, rec.model])

    short, long = network(32), network(48)
    weights = []
    for small, big in zip(short.get_weights(), long.get_weights(), strict=True):
        big = np.array(big)
        big[tuple(slice(0, n) for n in small.shape)] = small  # learned positions: the first 32 are shared
        weights.append(big)
    long.set_weights(weights)
    ids_32, ids_48 = prep.strings_to_array(SHORT, 32), prep.strings_to_array(SHORT, 48)
    out_32, out_48 = np.asarray(short(ids_32)), np.asarray(long(ids_48))[:, :32]
    assert np.allclose(np.where(_real(ids_32), out_32, 0), np.where(_real(ids_32), out_48, 0), atol=1e-5)


def test_the_composed_model_carries_the_mask_to_what_is_built_on_it(prep):
    import keras

    embedder, mlm, rec = _stack(prep, 32)
    composed = ComposedModel(embedder, [mlm, rec])
    pooled = keras.Model(composed.model.input, keras.layers.GlobalAveragePooling1D()(composed.model.output))
    ids = prep.strings_to_array(["cclm is neat"], 32)
    full = np.asarray(composed.model(ids))[0]
    assert np.allclose(np.asarray(pooled(ids))[0], full[: len("cclm is neat")].mean(axis=0), atol=1e-5)


def test_max_pooling_over_real_characters_only(prep, tmp_path):
    import keras

    from cclm_core.layers import MaskedGlobalMaxPooling1D

    embedder, mlm, rec = _stack(prep, 32)
    composed = ComposedModel(embedder, [mlm, rec])
    pooled = keras.Model(composed.model.input, MaskedGlobalMaxPooling1D()(composed.model.output))
    ids = prep.strings_to_array(["cclm is neat", ""], 32)
    full = np.asarray(composed.model(ids))
    out = np.asarray(pooled(ids))
    assert np.allclose(out[0], full[0, : len("cclm is neat")].max(axis=0), atol=1e-6)
    assert np.array_equal(out[1], np.zeros(out.shape[1]))  # nothing real to pool
    # a user's model on a ComposedModel round-trips through Keras's own saving (safe mode)
    path = tmp_path / "user.keras"
    pooled.save(path)
    assert np.allclose(np.asarray(keras.saving.load_model(path, safe_mode=True)(ids)), out, atol=1e-6)
