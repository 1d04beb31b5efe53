"""Embedder, components and ComposedModel: exact save/load round trips, safe loading, base checks."""

from __future__ import annotations

import json
import shutil

import h5py
import numpy as np
import pytest

keras = pytest.importorskip("keras")

from cclm_core.component import load_component  # noqa: E402
from cclm_core.errors import FormatError, IncompatibleComponentError, UnsafeModelError  # noqa: E402
from cclm_core.layers import (  # noqa: E402
    PositionEmbedding,
    ResidualConvBlock,
    SampledSoftmaxHead,
    TransformerBlock,
)
from cclm_core.models import ComposedModel, Embedder  # noqa: E402
from cclm_core.preprocessing import Preprocessor  # noqa: E402


@pytest.fixture(scope="module")
def ids(prep, texts):
    return prep.strings_to_array([*texts[:5], "unseen ✓ chars", ""], prep.max_example_len)


@pytest.mark.parametrize(
    "layer",
    [
        ResidualConvBlock(8, 3, name="block"),
        PositionEmbedding(16, name="pos"),
        TransformerBlock(2, 4, 16, name="tb"),
        SampledSoftmaxHead(11, 4, name="head"),
    ],
    ids=lambda layer: type(layer).__name__,
)
def test_custom_layers_round_trip_through_their_config(layer):
    x = np.random.default_rng(0).normal(size=(2, 16, 8)).astype("float32")
    expected = np.asarray(layer(x))
    config = keras.saving.serialize_keras_object(layer)
    assert config["registered_name"] == f"cclm_core>{type(layer).__name__}"
    clone = keras.saving.deserialize_keras_object(config, safe_mode=True)
    assert clone.built  # the config carries the build shape, so weights exist before the first call
    clone.set_weights(layer.get_weights())
    assert clone.get_config() == layer.get_config()
    assert np.array_equal(np.asarray(clone(x)), expected)


def test_embedder_shape_and_exact_round_trip(prep, ids, tmp_path):
    embedder = Embedder(prep.max_example_len, prep.n_chars, n_filters=16, n_blocks=1)
    out = np.asarray(embedder.model(ids))
    assert out.shape == (len(ids), 32, 16) and embedder.output_dim == 16
    folder = embedder.save(tmp_path)
    assert sorted(p.name for p in folder.iterdir()) == ["embedder.json", "embedder.weights.h5"]
    config = json.loads((folder / "embedder.json").read_text())
    assert {k: config[k] for k in ("class", "max_len", "n_chars", "output_dim", "format")} == {
        "class": "Embedder", "max_len": 32, "n_chars": prep.n_chars, "output_dim": 16, "format": 1,
    }  # fmt: skip
    loaded = Embedder.load(folder)
    assert np.array_equal(np.asarray(loaded.model(ids)), out)
    assert loaded.fingerprint() == embedder.fingerprint()


def test_component_and_composed_round_trip_exactly(trained, prep, ids, tmp_path):
    embedder, mlm, rec = trained
    comp = load_component(mlm.save(tmp_path / "mlm"))
    hidden = embedder.model(ids)
    assert comp.task == "mlm" and comp.base["embedder"] == embedder.fingerprint()
    assert np.array_equal(np.asarray(comp.model(hidden)), np.asarray(mlm.model(hidden)))
    composed = ComposedModel(embedder, [mlm.model, rec.model], prep)
    expected = np.asarray(composed.model(ids))
    assert expected.shape == (len(ids), 32, 24 + 16)
    folder = composed.save(tmp_path / "composed")
    assert sorted(p.name for p in (folder / "components").iterdir()) == ["0", "1"]
    again = ComposedModel.load(folder)
    assert np.array_equal(np.asarray(again.model(ids)), expected)
    assert again.preprocessor.char_dict == prep.char_dict


def test_lambda_layer_in_config_is_refused(trained, tmp_path):
    folder = trained[0].save(tmp_path / "emb")
    inputs = keras.Input((32,), dtype="int32")
    evil = keras.Model(inputs, keras.layers.Lambda(lambda t: t * 2)(inputs))
    config = json.loads((folder / "embedder.json").read_text())
    config["model"] = keras.saving.serialize_keras_object(evil)
    (folder / "embedder.json").write_text(json.dumps(config))
    with pytest.raises(UnsafeModelError, match="Lambda layer"):
        Embedder.load(folder)


def test_unknown_custom_object_is_refused(trained, tmp_path):
    folder = trained[1].save(tmp_path / "mlm")
    path = folder / "component.json"
    config = json.loads(path.read_text())
    assert config["architecture"]["class"] == "MaskedLanguageNetwork"
    path.write_text(json.dumps(config | {"architecture": {"class": "evil>Payload", "config": {}}}))
    with pytest.raises(UnsafeModelError, match="unknown architecture 'evil>Payload'"):
        load_component(folder)
    inputs = keras.Input((32, 32))
    keras_config = keras.saving.serialize_keras_object(keras.Model(inputs, keras.layers.Dense(4)(inputs)))
    keras_config["config"]["layers"][1]["registered_name"] = "evil>Payload"
    path.write_text(json.dumps(config | {"architecture": {"class": "keras", "config": keras_config}}))
    with pytest.raises(UnsafeModelError, match="evil>Payload"):
        load_component(folder)
    keras_config["config"]["layers"][1] |= {"registered_name": None, "module": "os"}
    path.write_text(json.dumps(config | {"architecture": {"class": "keras", "config": keras_config}}))
    with pytest.raises(UnsafeModelError, match="module 'os'"):
        load_component(folder)


def test_missing_corrupt_and_mismatched_weights(trained, tmp_path):
    _, mlm, rec = trained
    folder = mlm.save(tmp_path / "mlm")
    (folder / "component.weights.h5").unlink()
    with pytest.raises(FormatError, match="is missing"):
        load_component(folder)
    (folder / "component.weights.h5").write_bytes(b"\x89HDF\r\n garbage")
    with pytest.raises(FormatError, match="cannot be loaded"):
        load_component(folder)
    shutil.copy(rec.save(tmp_path / "rec") / "component.weights.h5", folder / "component.weights.h5")
    with pytest.raises(FormatError, match="differ from the model's"):
        load_component(folder)
    # one weight missing: Keras alone would keep fresh random values for it and only warn
    folder = mlm.save(tmp_path / "mlm2")
    with h5py.File(folder / "component.weights.h5", "r+") as handle:
        names: list[str] = []
        handle.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
        del handle[names[0]]
    with pytest.raises(FormatError, match="differ from the model's"):
        load_component(folder)
    (tmp_path / "emb").mkdir()
    (tmp_path / "emb" / "embedder.json").write_text(json.dumps({"format": 1, "class": "Embedder"}))
    with pytest.raises(FormatError, match="lacks the field 'max_len'"):
        Embedder.load(tmp_path / "emb")


def test_component_from_another_embedder_is_refused(trained, prep, tmp_path):
    embedder, mlm, _ = trained
    comp = load_component(mlm.save(tmp_path / "mlm"))
    stranger = Embedder(prep.max_example_len, prep.n_chars, n_filters=32)
    with pytest.raises(IncompatibleComponentError, match=r"component #0 needs embedder sha256:\w{12}… but"):
        ComposedModel(stranger, [comp])
    narrow = Embedder(prep.max_example_len, prep.n_chars, n_filters=8)
    with pytest.raises(IncompatibleComponentError, match="width 32 but the embedder gives 8"):
        ComposedModel(narrow, [mlm.model])
    with pytest.raises(IncompatibleComponentError, match="at least one component"):
        ComposedModel(embedder, [])
    other = Preprocessor(max_example_len=prep.max_example_len).fit(["only a few letters"])
    with pytest.raises(IncompatibleComponentError, match=f"but the embedder expects n_chars {prep.n_chars}"):
        ComposedModel(embedder, [mlm.model], other)


def test_composed_load_checks_bases_before_building(trained, tmp_path):
    embedder, mlm, rec = trained
    folder = ComposedModel(embedder, [mlm.model, rec.model]).save(tmp_path / "c")
    path = folder / "components" / "1" / "component.json"
    config = json.loads(path.read_text())
    config["base"]["embedder"] = "sha256:" + "ab12" * 16
    path.write_text(json.dumps(config))
    with pytest.raises(IncompatibleComponentError, match="needs embedder sha256:ab12ab12ab12…"):
        ComposedModel.load(folder)


def test_folders_written_with_a_keras_config_still_load(prep, ids, tmp_path):
    """Items saved before the core described its own networks hold Keras's config under 'model'."""
    inputs = keras.Input((32,), dtype="int32", name="char_ids")
    x = keras.layers.Embedding(prep.n_chars, 8, name="char_embedding")(inputs)
    x = keras.layers.Conv1D(16, 5, padding="same", activation="relu", name="projection")(x)
    old = keras.Model(inputs, ResidualConvBlock(16, 5, name="conv_block_0")(x), name="embedder")
    folder = tmp_path / "old"
    folder.mkdir()
    config = {"format": 1, "class": "Embedder", "max_len": 32, "n_chars": prep.n_chars, "output_dim": 16}
    config |= {"hyperparameters": {"n_filters": 16}, "model": keras.saving.serialize_keras_object(old)}
    (folder / "embedder.json").write_text(json.dumps(config))
    old.save_weights(str(folder / "embedder.weights.h5"))
    loaded = Embedder.load(folder)
    assert np.array_equal(np.asarray(loaded.model(ids)), np.asarray(old(ids)))
    from cclm_core.fingerprint import embedder_fingerprint

    assert loaded.fingerprint() != embedder_fingerprint(folder)  # re-saved in the core's own description
    assert "architecture" in json.loads((loaded.save(tmp_path / "new") / "embedder.json").read_text())


def test_a_users_own_keras_component_saves_as_a_keras_config_and_loads(trained, ids, tmp_path):
    embedder = trained[0]
    inputs = keras.Input((32, embedder.output_dim))
    mine = keras.Model(inputs, keras.layers.Dense(4, name="mine")(inputs), name="users_component")
    composed = ComposedModel(embedder, [mine])
    folder = composed.save(tmp_path / "c")
    architecture = json.loads((folder / "components" / "0" / "component.json").read_text())["architecture"]
    assert architecture["class"] == "keras" and architecture["config"]["class_name"] == "Functional"
    again = ComposedModel.load(folder)
    assert np.allclose(np.asarray(again.model(ids)), np.asarray(composed.model(ids)), atol=1e-6)
