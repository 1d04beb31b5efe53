"""The core's own networks, described by the core's own hyperparameters (keras-hub style).

Each network is a Keras functional model whose ``get_config`` returns only the hyperparameters it was
built from (never Keras's serialised layer graph, which changes between Keras versions, and never the
``trainable`` flag), and whose ``from_config`` builds the same layers again. ``describe_model`` turns a
model into ``{"class": ..., "config": ...}`` and ``build_model`` turns that back into a model: a saved
folder then loads under every Keras 3 version the core supports, and its fingerprint (this description
plus the weights) is the same under all of them.

A model the core did not build (a user's own Keras model used as a component) is described as
``{"class": "keras", "config": <Keras's serialised config>}`` and rebuilt in safe mode; that description
is only as portable as Keras's own format.

Every network carries the padding mask: the character embedding masks id 0 and every layer after it
passes the mask on (see ``cclm_core.layers``).
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import keras

from cclm_core.errors import FormatError, UnsafeModelError
from cclm_core.formats import require_keys
from cclm_core.layers import MaskedConv1D, PositionEmbedding, ResidualConvBlock, TransformerBlock
from cclm_core.serialization import model_from_config, model_to_config

KERAS_CLASS = "keras"
# Registered too, so that a user's Keras model built on a ComposedModel saves and loads with Keras's own
# model.save / keras.saving.load_model (they are named cclm_core>ClassName there, rebuilt in safe mode).
_register = keras.saving.register_keras_serializable(package="cclm_core")


class _Network(keras.Model):
    """A functional model that remembers its hyperparameters; subclasses build the layers."""

    def _remember(self, arguments: dict[str, Any]) -> None:
        """Keep the ``__init__`` arguments named in its signature (``name`` aside) as the hyperparameters;
        subclasses pass ``locals()``."""
        names = [n for n in inspect.signature(type(self).__init__).parameters if n not in ("self", "name")]
        self._hyperparameters = {n: arguments[n] for n in names}
        # the layers inside carry the padding mask; the network passes it on to whatever it feeds
        self.supports_masking = True

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, **self._hyperparameters}

    @classmethod
    def from_config(cls, config: dict[str, Any], custom_objects: Any = None) -> _Network:
        return cls(**config)


@_register
class EmbedderNetwork(_Network):
    """Character embedding, a masked Conv1D projection and residual conv blocks: ids -> vectors.

    Built by ``cclm_core.embedder.Embedder``, which holds the defaults and checks the values.
    """

    def __init__(
        self,
        max_len: int,
        n_chars: int,
        char_emb_size: int,
        n_filters: int,
        n_blocks: int,
        filter_len: int,
        mask_padding: bool = True,
        name: str = "embedder",
    ) -> None:
        ids = keras.Input((max_len,), dtype="int32", name="char_ids")
        x = keras.layers.Embedding(n_chars, char_emb_size, mask_zero=mask_padding, name="char_embedding")(ids)
        x = MaskedConv1D(n_filters, filter_len, padding="same", activation="relu", name="projection")(x)
        for i in range(n_blocks):
            x = ResidualConvBlock(n_filters, filter_len, name=f"conv_block_{i}")(x)
        super().__init__(ids, x, name=name)
        self._remember(locals())


@_register
class MaskedLanguageNetwork(_Network):
    """The MLM component: a projection, learned positions and transformer blocks with masked attention."""

    def __init__(
        self,
        max_len: int,
        input_dim: int,
        output_dim: int = 64,
        hidden_dim: int = 64,
        num_heads: int = 2,
        n_layers: int = 1,
        name: str = "mlm_component",
    ) -> None:
        inputs = keras.Input((max_len, input_dim), name="embedded")
        x = keras.layers.Dense(hidden_dim, name="mlm_input_projection")(inputs)
        x = PositionEmbedding(max_len, name="mlm_positions")(x)
        key_dim = max(1, hidden_dim // num_heads)
        for i in range(n_layers):
            x = TransformerBlock(num_heads, key_dim, 2 * hidden_dim, name=f"mlm_transformer_{i}")(x)
        outputs = keras.layers.Dense(output_dim, name="mlm_output_projection")(x)
        super().__init__(inputs, outputs, name=name)
        self._remember(locals())


@_register
class ReconstructionNetwork(_Network):
    """The character-reconstruction component: a projection and residual conv blocks."""

    def __init__(
        self,
        max_len: int,
        input_dim: int,
        output_dim: int = 32,
        n_layers: int = 1,
        kernel_size: int = 3,
        name: str = "reconstruction_component",
    ) -> None:
        inputs = keras.Input((max_len, input_dim), name="embedded")
        x = keras.layers.Dense(output_dim, activation="relu", name="reconstruction_input_projection")(inputs)
        for i in range(n_layers):
            x = ResidualConvBlock(output_dim, kernel_size, name=f"reconstruction_conv_block_{i}")(x)
        super().__init__(inputs, x, name=name)
        self._remember(locals())


@_register
class ComposedNetwork(_Network):
    """One embedder network feeding several component networks, outputs concatenated.

    The children are nested, not copied: training or freezing this network trains or freezes them. Its
    description nests the children's descriptions, so an ``Embedder`` built on a ``ComposedModel`` saves
    the architecture it really has.
    """

    def __init__(self, embedder: Any, components: list[Any], name: str = "composed") -> None:
        if isinstance(embedder, dict):  # from_config: the children come as descriptions
            embedder = build_model(embedder, "the composed network's embedder")
            components = [build_model(c, "a composed network's component") for c in components]
        ids = keras.Input(tuple(embedder.input_shape[1:]), dtype="int32", name="char_ids")
        hidden = embedder(ids)
        outputs = [component(hidden) for component in components]
        output = keras.layers.Concatenate(name="concat")(outputs) if len(outputs) > 1 else outputs[0]
        super().__init__(ids, output, name=name)
        self._remember(
            {"embedder": describe_model(embedder), "components": [describe_model(c) for c in components]}
        )


NETWORKS: dict[str, type[_Network]] = {
    cls.__name__: cls
    for cls in (EmbedderNetwork, MaskedLanguageNetwork, ReconstructionNetwork, ComposedNetwork)
}


def describe_model(model: keras.Model) -> dict[str, Any]:
    """The core's description of ``model``: ``{"class": ..., "config": ...}`` (JSON-compatible)."""
    if type(model).__name__ in NETWORKS and isinstance(model, _Network):
        return {"class": type(model).__name__, "config": model.get_config()}
    return {"class": KERAS_CLASS, "config": model_to_config(model)}


def build_model(description: Any, where: str) -> keras.Model:
    """A fresh model (new weights) built from a description; unknown classes are refused, never imported."""
    if not isinstance(description, dict) or not isinstance(description.get("config"), dict):
        raise FormatError(f"{where}: the architecture must be an object with 'class' and 'config'")
    name = description.get("class")
    if name == KERAS_CLASS:
        return model_from_config(description["config"], where)
    if name not in NETWORKS:
        raise UnsafeModelError(
            f"{where} names an unknown architecture {name!r}",
            hint=f"this core builds {', '.join(sorted(NETWORKS))} or a Keras config of built-in layers",
        )
    try:
        return NETWORKS[name].from_config(dict(description["config"]))
    except (TypeError, ValueError, KeyError) as e:
        raise FormatError(f"{where}: cannot build the {name}: {e}", hint="the config is corrupt") from e


def model_from_saved_config(config: dict[str, Any], path: Path) -> keras.Model:
    """The model a saved item's JSON describes under ``architecture`` (or, in files written before the
    core described its own networks, a Keras config under ``model``); weights are loaded separately."""
    if "model" in config:
        return model_from_config(config["model"], str(path))
    require_keys(config, ("architecture",), path)
    return build_model(config["architecture"], str(path))
