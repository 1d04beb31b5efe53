"""The ``Embedder``: the shared base that turns character ids into vectors.

A character embedding, a Conv1D projection and a stack of residual Conv1D blocks (the original cclm
embedder was a char embedding followed by conv blocks). ``model`` maps int ids ``(B, L)`` to
``(B, L, n_filters)``. Saved as ``embedder.json`` + ``embedder.weights.h5``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import keras

from cclm_core.errors import DataError, FormatError
from cclm_core.fingerprint import embedder_fingerprint
from cclm_core.formats import (
    EMBEDDER_CONFIG,
    EMBEDDER_WEIGHTS,
    FORMAT_VERSION,
    check_format,
    read_json,
    require_keys,
    write_json,
)
from cclm_core.layers import ResidualConvBlock
from cclm_core.serialization import load_weights, model_from_config, model_to_config, save_weights


def _positive(name: str, value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise DataError(f"{name} must be a positive integer, got {value!r}")
    return value


def build_embedder_model(
    max_len: int, n_chars: int, char_emb_size: int, n_filters: int, n_blocks: int, filter_len: int
) -> keras.Model:
    """The embedder's layers; names are fixed so configs (and fingerprints) do not depend on call order."""
    ids = keras.Input((max_len,), dtype="int32", name="char_ids")
    x = keras.layers.Embedding(n_chars, char_emb_size, name="char_embedding")(ids)
    x = keras.layers.Conv1D(n_filters, filter_len, padding="same", activation="relu", name="projection")(x)
    for i in range(n_blocks):
        x = ResidualConvBlock(n_filters, filter_len, name=f"conv_block_{i}")(x)
    return keras.Model(ids, x, name="embedder")


class Embedder:
    """The base model shared by every component: ids ``(B, max_len)`` -> ``(B, max_len, output_dim)``."""

    def __init__(
        self,
        max_len: int,
        n_chars: int,
        char_emb_size: int = 32,
        n_filters: int = 64,
        n_blocks: int = 2,
        filter_len: int = 5,
        model: keras.Model | None = None,
    ) -> None:
        self.max_len = _positive("max_len", max_len)
        self.n_chars = _positive("n_chars", n_chars)
        self.hyperparameters = {
            "char_emb_size": _positive("char_emb_size", char_emb_size),
            "n_filters": _positive("n_filters", n_filters),
            "n_blocks": _positive("n_blocks", n_blocks) if n_blocks else 0,
            "filter_len": _positive("filter_len", filter_len),
        }
        self.model = model or build_embedder_model(max_len, n_chars, **self.hyperparameters)

    @property
    def output_dim(self) -> int:
        return int(self.model.output_shape[-1])

    def to_config(self) -> dict[str, Any]:
        """The content of ``embedder.json``."""
        return {
            "format": FORMAT_VERSION,
            "class": "Embedder",
            "max_len": self.max_len,
            "n_chars": self.n_chars,
            "output_dim": self.output_dim,
            "hyperparameters": dict(self.hyperparameters),
            "model": model_to_config(self.model),
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
        config = read_json(path)
        check_format(config, path)
        require_keys(config, ("max_len", "n_chars", "hyperparameters", "model"), path)
        if config.get("class") != "Embedder":
            raise FormatError(f"{path} describes a {config.get('class')!r}, not an Embedder")
        model = model_from_config(config["model"], str(path))
        load_weights(model, folder / EMBEDDER_WEIGHTS)
        return cls(config["max_len"], config["n_chars"], model=model, **config["hyperparameters"])

    def fingerprint(self) -> str:
        """The fingerprint the saved form of this embedder has right now (weights change it)."""
        with tempfile.TemporaryDirectory(prefix="cclm-embedder-") as tmp:
            return embedder_fingerprint(self.save(tmp))
