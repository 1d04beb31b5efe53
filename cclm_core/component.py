"""A ``Component``: a model that sits on an embedder, ``(B, L, D_emb)`` -> ``(B, L, D_out)``.

Saved as ``component.json`` (task, output_dim, the core's description of its architecture, see
``cclm_core.networks``, and the ``base`` it was trained on: embedder fingerprint, vocabulary fingerprint
or null, max_input_length, n_chars) and ``component.weights.h5``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keras

from cclm_core.errors import FormatError
from cclm_core.formats import (
    COMPONENT_CONFIG,
    COMPONENT_WEIGHTS,
    FORMAT_VERSION,
    read_config,
    require_keys,
    write_json,
)
from cclm_core.networks import describe_model, model_from_saved_config
from cclm_core.serialization import load_weights, save_weights

BASE_KEYS = ("embedder", "vocab", "max_input_length", "n_chars")


def describe_base(embedder_fp: str, embedder: Any, preprocessor: Any = None) -> dict[str, Any]:
    """The base a component is trained on: the ``Embedder``'s fingerprint and sizes, and the fingerprint
    of the ``Preprocessor``'s vocabulary (None without one)."""
    return {
        "embedder": embedder_fp,
        "vocab": preprocessor.fingerprint if preprocessor else None,
        "max_input_length": embedder.max_len,
        "n_chars": embedder.n_chars,
    }


class Component:
    """A component model with what it was trained for (``task``) and on (``base``, once known)."""

    def __init__(
        self, model: keras.Model, task: str | None = None, base: dict[str, Any] | None = None
    ) -> None:
        self.model = model
        self.task = task
        self.base = dict(base) if base is not None else None

    @property
    def input_dim(self) -> int:
        return int(self.model.input_shape[-1])

    @property
    def output_dim(self) -> int:
        return int(self.model.output_shape[-1])

    def to_config(self, base: dict[str, Any]) -> dict[str, Any]:
        """The content of ``component.json`` for a component trained on ``base``."""
        return {
            "format": FORMAT_VERSION,
            "class": "Component",
            "task": self.task,
            "input_dim": self.input_dim,
            "output_dim": self.output_dim,
            "base": {key: base.get(key) for key in BASE_KEYS},
            "architecture": describe_model(self.model),
            "meta": {"keras_version": keras.__version__},
        }

    def save(self, folder: str | Path, base: dict[str, Any] | None = None) -> Path:
        """Write the component into ``folder``; ``base`` defaults to the one it was loaded with."""
        base = base if base is not None else self.base
        if base is None:
            raise FormatError(
                "cannot save a component without its base",
                hint="save it through its Pretrainer or a ComposedModel, which know the embedder",
            )
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        write_json(folder / COMPONENT_CONFIG, self.to_config(base))
        save_weights(self.model, folder / COMPONENT_WEIGHTS)
        return folder


def load_component(folder: str | Path) -> Component:
    """Load a saved component (safe mode); ``.model`` is the Keras model, ``.base`` what it needs."""
    folder = Path(folder)
    path = folder / COMPONENT_CONFIG
    config = read_config(path, ("base", "output_dim"))
    if not isinstance(config["base"], dict):
        raise FormatError(f"{path}: 'base' must be an object")
    require_keys(config["base"], BASE_KEYS, path)
    model = model_from_saved_config(config, path)
    load_weights(model, folder / COMPONENT_WEIGHTS)
    return Component(model, task=config.get("task"), base=config["base"])
