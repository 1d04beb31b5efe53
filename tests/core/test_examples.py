"""How texts become pretraining examples: random windows, augmentation, seeds and the token objective."""

from __future__ import annotations

import unicodedata

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")

from cclm_core.augmentation import Augmentor, Drop  # noqa: E402
from cclm_core.errors import DataError  # noqa: E402
from cclm_core.masking import MaskingConfig, mask_batch  # noqa: E402
from cclm_core.models import Embedder  # noqa: E402
from cclm_core.preprocessing import CLS_ID, MASK_ID, N_SPECIAL, PAD_ID, Preprocessor  # noqa: E402
from cclm_core.pretraining import CharacterReconstructionPretrainer, MaskedLanguagePretrainer  # noqa: E402

LONG = [
    " ".join(f"{word}{i}" for i in range(40))
    for word in ("alpha", "beta", "gamma", "delta", "omega", "sigma")
]
NO_MASKING = MaskingConfig(rate=0.0, span_len=1, random_rate=0.0, keep_rate=0.0)


@pytest.fixture(scope="module")
def long_prep() -> Preprocessor:
    return Preprocessor(max_example_len=16).fit(LONG)


def _embedder(prep: Preprocessor) -> Embedder:
    return Embedder(prep.max_example_len, prep.n_chars, n_filters=8, n_blocks=1)


def _rec(prep: Preprocessor, **kwargs) -> CharacterReconstructionPretrainer:
    return CharacterReconstructionPretrainer(_embedder(prep), preprocessor=prep, output_dim=8, **kwargs)


def _epoch(pretrainer, texts, batch_size=4) -> list[tuple[np.ndarray, ...]]:
    return [tuple(t.numpy() for t in batch) for batch in pretrainer.dataset(texts, batch_size=batch_size)]


def test_long_texts_give_random_windows_not_their_first_characters(long_prep):
    pretrainer = _rec(long_prep, masking=NO_MASKING, seed=0)
    starts = set()
    for _ in range(4):
        for inputs, targets, weights in _epoch(pretrainer, LONG):
            assert np.array_equal(inputs, targets) and not weights.any()
            for row in targets:
                window = long_prep.array_to_string(row)
                assert len(window) == 16
                text = next(t for t in LONG if window in t)  # a contiguous piece of one text
                starts.add(text.index(window))
    assert len(starts) > 8 and max(starts) > 100
    assert len(pretrainer.get_substr(LONG[0])) == 16 and pretrainer.get_substr("short") == "short"


def test_every_text_is_seen_once_per_epoch_and_short_texts_whole(prep, texts):
    short = [t[:20] for t in texts]
    pretrainer = _rec(prep, masking=NO_MASKING, seed=1)
    rows = np.concatenate([targets for _, targets, _ in _epoch(pretrainer, short, batch_size=5)])
    assert sorted(prep.array_to_string(r) for r in rows) == sorted(short)


def test_a_seed_gives_the_same_batches_every_time(long_prep):
    first, again, other = (_epoch(_rec(long_prep, seed=s), LONG) for s in (5, 5, 6))
    assert all(
        np.array_equal(a, b) for x, y in zip(first, again, strict=True) for a, b in zip(x, y, strict=True)
    )
    assert any(not np.array_equal(x[0], y[0]) for x, y in zip(first, other, strict=True))


def test_augmented_inputs_are_scored_against_the_clean_text(prep, texts):
    shout = Augmentor({"upper": {"function": str.upper, "probability": 1.0}}, seed=0)
    pretrainer = _rec(prep, masking=NO_MASKING, augmentor=shout, seed=0)
    inputs, targets, weights = _epoch(pretrainer, texts, batch_size=len(texts))[0]
    assert all(any(prep.array_to_string(r) in t for t in texts) for r in targets)  # the text as written
    changed = inputs != targets
    assert changed.any() and np.array_equal(weights > 0, changed & (targets >= N_SPECIAL))
    dropping = Augmentor({"drop": {"function": Drop(0.3), "probability": 1.0}}, seed=0)
    pretrainer = _rec(prep, masking=NO_MASKING, augmentor=dropping, seed=0)
    inputs, targets, weights = _epoch(pretrainer, texts, batch_size=len(texts))[0]
    assert np.array_equal(inputs, targets) and not weights.any()  # nothing lines up: no denoising targets
    assert not all(any(prep.array_to_string(r) in t for t in texts) for r in inputs)


def test_every_pretrainer_trains_with_an_augmentor(prep, texts):
    noisy = Augmentor({**Augmentor.default_transformations}, seed=0)
    embedder = _embedder(prep)
    for pretrainer in (
        MaskedLanguagePretrainer(embedder, prep, output_dim=8, hidden_dim=8, augmentor=noisy, seed=0),
        CharacterReconstructionPretrainer(embedder, prep, output_dim=8, augmentor=noisy, seed=0),
    ):
        history = pretrainer.fit(texts, epochs=1, batch_size=12)
        assert np.isfinite(history.history["loss"][0])
    with pytest.raises(DataError, match="augmentor must have a transform"):
        _rec(prep, augmentor="upper")
    with pytest.raises(DataError, match="seed must be a non-negative integer"):
        _rec(prep, seed="seven")
    with pytest.raises(DataError, match="seed must be a non-negative integer"):
        Augmentor(seed=-1)


def test_token_batches_of_augmented_windows(prep, texts):
    shout = Augmentor({"upper": {"function": str.upper, "probability": 1.0}}, seed=0)
    mlm = MaskedLanguagePretrainer(
        _embedder(prep), prep, output_dim=8, hidden_dim=8, targets="tokens", augmentor=shout, seed=0
    )
    inputs, token_ids, spans = _epoch(mlm, texts, batch_size=len(texts))[0]
    visible = inputs[(spans == 0) & (inputs >= N_SPECIAL)]
    assert all(prep.char_rev[int(i)] == prep.char_rev[int(i)].upper() for i in visible)  # upper-cased
    assert (spans.sum(axis=1) > 0).all() and (token_ids > 0).all()
    history = mlm.fit(texts, epochs=1, batch_size=12)
    assert np.isfinite(history.history["loss"][0])


def test_mask_batch_with_a_seed_is_deterministic_and_scores_differences():
    ids = tf.constant(np.random.default_rng(0).integers(N_SPECIAL, 30, size=(8, 20)), tf.int32)
    seed = tf.constant([3, 4], tf.int64)
    one, two = (
        mask_batch(ids, 30, MaskingConfig(), seed=seed),
        mask_batch(ids, 30, MaskingConfig(), seed=seed),
    )
    assert all(np.array_equal(a.numpy(), b.numpy()) for a, b in zip(one, two, strict=True))
    clean = tf.tensor_scatter_nd_update(
        ids, [[0, 0]], [N_SPECIAL + 1 if ids[0, 0] == N_SPECIAL else N_SPECIAL]
    )
    _, targets, weights = mask_batch(ids, 30, NO_MASKING, targets=clean, seed=seed)
    assert np.array_equal(targets.numpy(), clean.numpy())
    assert weights.numpy().sum() == 1 and weights.numpy()[0, 0] == 1


def _normalised(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFD", text.lower()) if not unicodedata.combining(c))


def test_token_batches_mask_one_word_piece_and_name_its_id(prep, texts):
    embedder = _embedder(prep)
    mlm = MaskedLanguagePretrainer(embedder, prep, output_dim=8, hidden_dim=8, targets="tokens", seed=0)
    texts = [t[:30] for t in texts]  # whole texts in every window, so each row names its text
    inputs, token_ids, spans = _epoch(mlm, texts, batch_size=len(texts))[0]
    assert inputs.shape == spans.shape == (len(texts), 32) and token_ids.shape == (len(texts),)
    for row, token_id, span in zip(inputs, token_ids, spans, strict=True):
        where = np.flatnonzero(span)
        assert len(where) >= 3 and np.array_equal(where, np.arange(where[0], where[-1] + 1))
        assert (row[where] == MASK_ID).all() and (row[span == 0] != MASK_ID).all()
        kept = [(i, c) for i, c in enumerate(row) if span[i] == 0 and c != PAD_ID]
        text = next(t for t in texts if all(prep.char_dict.get(t[i : i + 1]) == c for i, c in kept))
        assert prep.tokenizer.id_to_token(int(token_id)) == _normalised(text[where[0] : where[-1] + 1])


def test_masked_language_pretrainer_learns_to_predict_the_masked_token(prep, texts, tmp_path):
    keras.utils.set_random_seed(0)
    embedder = Embedder(prep.max_example_len, prep.n_chars, n_filters=16, n_blocks=1)
    mlm = MaskedLanguagePretrainer(
        embedder, output_dim=16, hidden_dim=16, targets="tokens", num_sampled=32, learning_rate=1e-2, seed=0
    )
    probe = MaskedLanguagePretrainer(embedder, prep, targets="tokens", seed=9)
    inputs, token_ids, spans = next(iter(probe.dataset(texts, batch_size=len(texts))))

    def scores() -> tuple[float, float]:
        logits = mlm.head(mlm.model(embedder.model(inputs)), spans)
        loss = tf.reduce_mean(
            keras.losses.sparse_categorical_crossentropy(token_ids, logits, from_logits=True)
        )
        return float(loss), float(np.mean(np.argmax(logits.numpy(), axis=-1) == token_ids.numpy()))

    mlm.fit(texts, epochs=1, batch_size=12)  # builds the preprocessor, its tokenizer and the token head
    before, _ = scores()
    mlm.fit(texts, epochs=10, batch_size=12)
    after, accuracy = scores()
    assert after < 0.6 * before and accuracy > 0.4  # chance is 1 in the tokenizer's ~120 tokens
    component = mlm.save(tmp_path / "mlm")
    assert (component / "component.json").is_file()
    assert mlm.base()["vocab"] == mlm.preprocessor.fingerprint  # the tokenizer is part of the base


def test_token_targets_need_a_tokenizer(prep, texts):
    plain = Preprocessor(max_example_len=32).fit(texts, skip_tokenizer=True)
    mlm = MaskedLanguagePretrainer(_embedder(plain), plain, output_dim=8, hidden_dim=8, targets="tokens")
    with pytest.raises(DataError, match="needs a preprocessor with a tokenizer"):
        mlm.fit(texts)
    with pytest.raises(DataError, match="targets must be one of"):
        MaskedLanguagePretrainer(_embedder(plain), plain, targets="words")
    with pytest.raises(DataError, match="min_mask_len must be a positive integer"):
        MaskedLanguagePretrainer(_embedder(plain), plain, targets="tokens", min_mask_len=0)


def test_windows_drawn_in_tf_data_are_framed_as_the_preprocessor_frames_them():
    texts = ["short", "a text much longer than the input window", "mid length"]
    prep = Preprocessor(max_example_len=8, add_cls=True).fit(texts, skip_tokenizer=True)
    pretrainer = _rec(prep, masking=NO_MASKING, seed=3)
    epochs = [np.concatenate([t for _, t, _ in _epoch(pretrainer, texts, batch_size=2)]) for _ in range(6)]
    for rows in epochs:
        assert (rows[:, -1] == CLS_ID).all() and len(rows) == len(texts)
        windows = [prep.array_to_string(r) for r in rows]
        assert "short" in windows and all(len(w) == 7 or w in texts for w in windows)
        assert all(any(w in t for t in texts) for w in windows)
        exact = prep.strings_to_array(windows, 8)  # what the preprocessor makes of the same windows
        assert np.array_equal(np.sort(exact, axis=0), np.sort(rows, axis=0))
    assert len({prep.array_to_string(r) for rows in epochs for r in rows}) > 4  # new windows each epoch
