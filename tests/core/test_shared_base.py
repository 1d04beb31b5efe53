"""One base, frozen and shared: freezing, training components on a frozen base, stale pretrainers, nesting."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("tensorflow")

from cclm_core.compat import check_compatible
from cclm_core.component import load_component
from cclm_core.errors import IncompatibleComponentError
from cclm_core.fingerprint import embedder_fingerprint
from cclm_core.models import ComposedModel, Embedder
from cclm_core.pretraining import CharacterReconstructionPretrainer, MaskedLanguagePretrainer


def _weights(model) -> list[np.ndarray]:
    return [np.array(w) for w in model.get_weights()]


def _same(a: list[np.ndarray], b: list[np.ndarray]) -> bool:
    return len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


def _tiny(prep) -> Embedder:
    return Embedder(prep.max_example_len, prep.n_chars, char_emb_size=8, n_filters=16, n_blocks=1)


def _mlm(embedder, prep) -> MaskedLanguagePretrainer:
    return MaskedLanguagePretrainer(embedder, prep, output_dim=8, hidden_dim=16)


def _rec(embedder, prep) -> CharacterReconstructionPretrainer:
    return CharacterReconstructionPretrainer(embedder, prep, output_dim=8)


def test_freezing_never_changes_the_fingerprint_and_the_frozen_base_is_not_trained(prep, texts, tmp_path):
    embedder = _tiny(prep)
    before = embedder.fingerprint()
    embedder.freeze()
    assert embedder.frozen and embedder.fingerprint() == before
    assert "trainable" not in (embedder.save(tmp_path / "emb") / "embedder.json").read_text()
    weights = _weights(embedder.model)
    rec = _rec(embedder, prep)
    component_before = _weights(rec.model)
    rec.fit(texts, epochs=1, batch_size=8)
    assert _same(_weights(embedder.model), weights)
    assert not _same(_weights(rec.model), component_before)
    embedder.unfreeze()
    assert not embedder.frozen and embedder.fingerprint() == before


def test_unfreezing_after_a_first_fit_takes_effect(prep, texts):
    embedder = _tiny(prep).freeze()
    mlm = _mlm(embedder, prep)
    mlm.fit(texts, epochs=1, batch_size=8)
    frozen_weights = _weights(embedder.model)
    assert _same(_weights(embedder.model), frozen_weights)
    embedder.unfreeze()
    mlm.freeze()  # the seed's Pretrainer.freeze(): the pretrainer's own component
    component = _weights(mlm.model)
    mlm.fit(texts, epochs=1, batch_size=8)
    assert not _same(_weights(embedder.model), frozen_weights)
    assert _same(_weights(mlm.model), component)
    mlm.unfreeze()
    mlm.fit(texts, epochs=1, batch_size=8)
    assert not _same(_weights(mlm.model), component)


def test_a_pretrainer_whose_embedder_changed_refuses_to_save(prep, texts, tmp_path):
    embedder = _tiny(prep)
    first, second = _mlm(embedder, prep), _rec(embedder, prep)
    first.fit(texts, epochs=1, batch_size=8)
    second.fit(texts, epochs=1, batch_size=8)  # trains the shared, unfrozen embedder too
    with pytest.raises(IncompatibleComponentError, match="the embedder changed after this mlm pretrainer"):
        first.save(tmp_path / "first")
    assert not (tmp_path / "first").exists()
    with pytest.raises(IncompatibleComponentError, match=r"component #0 needs embedder sha256:\w{12}…"):
        ComposedModel(embedder, [first])
    assert load_component(second.save(tmp_path / "second")).base["embedder"] == embedder.fingerprint()
    first.fit(texts, epochs=1, batch_size=8)  # trained again: it fits the embedder as it is now
    assert load_component(first.save(tmp_path / "first")).base["embedder"] == embedder.fingerprint()


def test_two_pretrainers_on_one_frozen_embedder_compose(prep, texts, tmp_path):
    embedder = _tiny(prep)
    _mlm(embedder, prep).fit(texts, epochs=1, batch_size=8)  # the first task trains the base
    embedder.freeze()
    base = embedder_fingerprint(embedder.save(tmp_path / "embedder"))
    a, b = _mlm(embedder, prep), _rec(embedder, prep)
    a.fit(texts, epochs=1, batch_size=8)
    b.fit(texts, epochs=1, batch_size=8)
    folders = [a.save(tmp_path / "a"), b.save(tmp_path / "b")]
    assert [load_component(f).base["embedder"] for f in folders] == [base, base]
    check_compatible(tmp_path / "embedder", folders, prep.save(tmp_path / "prep").parent)
    composed = ComposedModel(Embedder.load(tmp_path / "embedder"), [load_component(f) for f in folders], prep)
    ids = prep.strings_to_array(texts[:4])
    live = np.concatenate([a.model(embedder.model(ids)), b.model(embedder.model(ids))], axis=-1)
    assert np.allclose(np.asarray(composed.model(ids)), live, atol=1e-6)


def test_an_embedder_built_on_a_composed_model_saves_what_it_is_and_freezes_whole(prep, texts, tmp_path):
    inner = _tiny(prep)
    first, second = _mlm(inner, prep), _rec(inner, prep)
    nested = Embedder(prep.max_example_len, prep.n_chars, model=ComposedModel(inner, [first, second]))
    assert nested.output_dim == 16
    folder = nested.save(tmp_path / "nested")
    architecture = json.loads((folder / "embedder.json").read_text())["architecture"]
    assert architecture["class"] == "ComposedNetwork"
    assert architecture["config"]["embedder"]["class"] == "EmbedderNetwork"
    assert [c["class"] for c in architecture["config"]["components"]] == [
        "MaskedLanguageNetwork",
        "ReconstructionNetwork",
    ]
    loaded = Embedder.load(folder)
    ids = prep.strings_to_array(texts[:4])
    assert np.array_equal(np.asarray(loaded.model(ids)), np.asarray(nested.model(ids)))
    assert loaded.fingerprint() == nested.fingerprint() == embedder_fingerprint(folder)

    nested.freeze()
    assert not inner.model.trainable_weights and not first.model.trainable_weights
    everything = _weights(nested.model)
    top = _rec(nested, prep)
    top.fit(texts, epochs=1, batch_size=8)
    assert _same(_weights(nested.model), everything)
    assert load_component(top.save(tmp_path / "top")).base["embedder"] == embedder_fingerprint(folder)
