"""Keras model configs and weights on disk, loaded in safe mode.

A model is saved as its Keras serialised config (inside the item's JSON) and a ``.weights.h5`` file.
Before a config is turned back into layers it is walked and refused if it asks for code: ``Lambda``
layers (their function would come from the file) or any custom object that is neither a Keras
built-in nor one of this core's registered layers. Keras' own safe mode then does the rebuilding.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import h5py
import keras

import cclm_core.layers  # noqa: F401  (registers the custom layers the configs name)
from cclm_core.errors import FormatError, UnsafeModelError

_CODE_LAYERS = frozenset({"Lambda", "TFOpLambda", "SlicingOpLambda"})
_OUR_PACKAGE = "cclm_core>"


def check_safe_config(config: Any, where: str) -> None:
    """Raise ``UnsafeModelError`` if a serialised Keras config would run code or names unknown objects."""
    if isinstance(config, list):
        for item in config:
            check_safe_config(item, where)
        return
    if not isinstance(config, dict):
        return
    _check_object(config, where)
    for value in config.values():
        check_safe_config(value, where)


def _check_object(config: dict[str, Any], where: str) -> None:
    name = config.get("class_name")
    if not isinstance(name, str):
        return
    if name in _CODE_LAYERS:
        raise UnsafeModelError(
            f"{where} contains a {name} layer, which would run code stored in the file",
            hint="rebuild the model from registered cclm_core or Keras layers",
        )
    registered = config.get("registered_name")
    module = config.get("module")
    if isinstance(registered, str) and registered != name and not registered.startswith(_OUR_PACKAGE):
        raise UnsafeModelError(
            f"{where} names an unknown custom object {registered!r}", hint="refused to load it"
        )
    if (
        isinstance(module, str)
        and not (module == "keras" or module.startswith("keras."))
        and not (isinstance(registered, str) and registered.startswith(_OUR_PACKAGE))
    ):
        raise UnsafeModelError(f"{where} names an object from module {module!r}", hint="refused to load it")


def model_to_config(model: keras.Model) -> dict[str, Any]:
    """The serialised Keras config of ``model`` (JSON-compatible)."""
    return keras.saving.serialize_keras_object(model)


def model_from_config(config: Any, where: str) -> keras.Model:
    """Rebuild a model from ``config`` after the safety walk; any failure becomes a core error."""
    if not isinstance(config, dict):
        raise FormatError(f"{where}: the model config must be an object")
    check_safe_config(config, where)
    try:
        model = keras.saving.deserialize_keras_object(config, safe_mode=True)
    except (TypeError, ValueError, KeyError) as e:
        raise FormatError(f"{where}: cannot rebuild the model: {e}", hint="the config is corrupt") from e
    if not isinstance(model, keras.Model):
        raise FormatError(f"{where}: the config does not describe a Keras model")
    return model


def save_weights(model: keras.Model, path: Path) -> None:
    model.save_weights(str(path), overwrite=True)


def _layout(path: Path) -> dict[str, tuple[int, ...]]:
    """Every weight in a ``.weights.h5`` file: its path in the file and its shape."""
    found: dict[str, tuple[int, ...]] = {}
    with h5py.File(path, "r") as handle:
        handle.visititems(lambda n, o: found.__setitem__(n, o.shape) if isinstance(o, h5py.Dataset) else None)
    return found


def check_weights_layout(model: keras.Model, path: Path) -> None:
    """Refuse a weights file whose weights are not exactly the model's.

    Keras skips groups it cannot match (with only a warning) and would leave those layers with fresh
    random weights; a file for another model must be an error instead.
    """
    with tempfile.TemporaryDirectory(prefix="cclm-layout-") as tmp:
        expected = Path(tmp) / "expected.weights.h5"
        model.save_weights(str(expected))
        want = _layout(expected)
    try:
        have = _layout(path)
    except OSError as e:
        raise FormatError(f"{path} cannot be loaded: {e}", hint="the file is corrupt") from e
    if have != want:
        differ = sorted(set(have.items()) ^ set(want.items()))[0][0]
        raise FormatError(
            f"{path} cannot be loaded: its weights differ from the model's (first: {differ})",
            hint="the weights file belongs to another model",
        )


def load_weights(model: keras.Model, path: Path) -> None:
    """Load ``path`` into ``model``, naming the file in the error when it is missing or does not fit."""
    if not Path(path).is_file():
        raise FormatError(f"{path} is missing", hint="the weights file must sit beside its config")
    check_weights_layout(model, path)
    try:
        model.load_weights(str(path))
    except (OSError, ValueError, KeyError) as e:
        raise FormatError(
            f"{path} cannot be loaded: {e}", hint="the file is corrupt or from another model"
        ) from e
