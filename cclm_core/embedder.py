"""The ``Embedder``: the shared base that turns character ids into vectors.

By default a character embedding (id 0, the padding, masked), a Conv1D projection and a stack of
residual Conv1D blocks (the original cclm embedder was a char embedding followed by conv blocks); it may
also be built on a ``ComposedModel`` (nested composition). ``model`` maps int ids ``(B, L)`` to
``(B, L, output_dim)`` and carries the padding mask. Saved as ``embedder.json`` (the core's own
description of the architecture, see ``cclm_core.networks``) + ``embedder.weights.h5``.

``freeze()`` makes the whole embedder untrainable, so every pretrainer that shares it trains only its own
component; the fingerprint never depends on it.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import keras

from cclm_core.errors import DataError, FormatError, IncompatibleComponentError
from cclm_core.fingerprint import embedder_fingerprint
from cclm_core.formats import (
    EMBEDDER_CONFIG,
    EMBEDDER_WEIGHTS,
    FORMAT_VERSION,
    read_config,
    write_json,
)
from cclm_core.networks import EmbedderNetwork, describe_model, model_from_saved_config
from cclm_core.serialization import load_weights, save_weights


def _positive(name: str, value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise DataError(f"{name} must be a positive integer, got {value!r}")
    return value


class Embedder:
    """The base model shared by every component: ids ``(B, max_len)`` -> ``(B, max_len, output_dim)``.

    ``model`` may be given instead of the hyperparameters: a Keras model or a ``ComposedModel`` (whose
    embedder and components then form this embedder, saved and frozen as a whole).
    """

    def __init__(
        self,
        max_len: int,
        n_chars: int,
        char_emb_size: int = 32,
        n_filters: int = 64,
        n_blocks: int = 2,
        filter_len: int = 5,
        model: Any = None,
    ) -> None:
        self.max_len = _positive("max_len", max_len)
        self.n_chars = _positive("n_chars", n_chars)
        if model is None:
            model = EmbedderNetwork(
                max_len,
                n_chars,
                _positive("char_emb_size", char_emb_size),
                _positive("n_filters", n_filters),
                n_blocks if n_blocks == 0 else _positive("n_blocks", n_blocks),
                _positive("filter_len", filter_len),
            )
        self.model: keras.Model = getattr(model, "model", model)  # a ComposedModel gives its Keras model
        if not isinstance(self.model, keras.Model) or tuple(self.model.input_shape[1:]) != (max_len,):
            raise DataError(
                f"the embedder's model must be a Keras model taking ids of shape (batch, {max_len})",
                hint="pass a keras.Model or a ComposedModel built for this max_len",
            )

    def check_preprocessor(self, prep: Any) -> None:
        """Refuse a ``Preprocessor`` whose ids would not fit: another vocabulary size or input length."""
        if prep.n_chars != self.n_chars or prep.max_example_len != self.max_len:
            raise IncompatibleComponentError(
                f"the preprocessor gives n_chars {prep.n_chars} and max_example_len {prep.max_example_len}, "
                f"but the embedder expects n_chars {self.n_chars} and max_len {self.max_len}",
                hint="use the Preprocessor the embedder was built with",
            )

    @property
    def output_dim(self) -> int:
        return int(self.model.output_shape[-1])

    @property
    def hyperparameters(self) -> dict[str, Any]:
        """The core's description of the architecture (class and its hyperparameters)."""
        return describe_model(self.model)

    @property
    def frozen(self) -> bool:
        """True when no weight of the embedder is trained (by any pretrainer that shares it)."""
        return not self.model.trainable

    def freeze(self) -> Embedder:
        """Stop training the embedder: pretrainers on it train only their own component. Returns self."""
        self.model.trainable = False
        return self

    def unfreeze(self) -> Embedder:
        """Train the embedder again with the next ``fit`` of any pretrainer on it. Returns self."""
        self.model.trainable = True
        return self

    def to_config(self) -> dict[str, Any]:
        """The content of ``embedder.json``; nothing in it depends on the Keras version or on freezing."""
        return {
            "format": FORMAT_VERSION,
            "class": "Embedder",
            "max_len": self.max_len,
            "n_chars": self.n_chars,
            "output_dim": self.output_dim,
            "architecture": describe_model(self.model),
            "meta": {"keras_version": keras.__version__},
        }

    def save(self, folder: str | Path) -> Path:
        """Write ``embedder.json`` and ``embedder.weights.h5`` into ``folder``; returns the folder."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        write_json(folder / EMBEDDER_CONFIG, self.to_config())
        save_weights(self.model, folder / EMBEDDER_WEIGHTS)
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> Embedder:
        """Rebuild a saved embedder (safe mode) and load its weights; outputs match the saved one exactly."""
        folder = Path(folder)
        path = folder / EMBEDDER_CONFIG
        config = read_config(path, ("max_len", "n_chars"))
        if config.get("class") != "Embedder":
            raise FormatError(f"{path} describes a {config.get('class')!r}, not an Embedder")
        model = model_from_saved_config(config, path)
        load_weights(model, folder / EMBEDDER_WEIGHTS)
        return cls(config["max_len"], config["n_chars"], model=model)

    def fingerprint(self) -> str:
        """The fingerprint the saved form of this embedder has right now (weights change it)."""
        with tempfile.TemporaryDirectory(prefix="cclm-embedder-") as tmp:
            return embedder_fingerprint(self.save(tmp))
