"""Content fingerprints of saved items, computed from the files alone, without TensorFlow.

A fingerprint hashes what a model *is*, not the bytes of its files: the canonical JSON of its config
(sorted keys, fixed separators, volatile fields such as ``meta`` left out), then every weight of the
``.weights.h5`` file in sorted path order as (path, dtype, shape, little-endian bytes). HDF5 attributes,
timestamps and chunk layout never enter the hash, so a fingerprint survives save/load round trips and
is the same in every process and on every machine; changing any single weight changes it.

Only json, hashlib, h5py and numpy are imported here, so the shelf can fingerprint and describe
folders without importing TensorFlow; h5py and numpy are imported where weights are hashed, so telling an
item's type or fingerprinting a vocabulary costs neither.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cclm_core.errors import FormatError
from cclm_core.formats import (
    COMPONENT_CONFIG,
    COMPONENT_WEIGHTS,
    COMPOSED_COMPONENTS_DIR,
    COMPOSED_CONFIG,
    COMPOSED_EMBEDDER_DIR,
    EMBEDDER_CONFIG,
    EMBEDDER_WEIGHTS,
    PREPROCESSOR_CONFIG,
    VOLATILE_KEYS,
    canonical_json,
    read_config,
    read_json,
    require_keys,
)

if TYPE_CHECKING:
    import h5py

PREFIX = "sha256:"
_SLICE_BYTES = 4 << 20  # how much of one weight is read at a time


def _record(digest: Any, label: str, payload: bytes) -> None:
    """Feed one length-prefixed record, so that no two different inputs hash the same."""
    digest.update(f"{label}:{len(payload)}:".encode())
    digest.update(payload)


def _hash_weights(digest: Any, path: Path) -> None:
    import h5py

    if not path.is_file():
        raise FormatError(f"{path} is missing", hint="save the item again; the weights file is required")
    try:
        with h5py.File(path, "r") as handle:
            names: list[str] = []
            handle.visititems(lambda name, obj: names.append(name) if isinstance(obj, h5py.Dataset) else None)
            for name in sorted(names):
                _hash_dataset(digest, name, handle[name])
    except OSError as e:
        raise FormatError(f"{path} is not a readable weights file: {e}", hint="the file is corrupt") from e


def _hash_dataset(digest: Any, name: str, dataset: h5py.Dataset) -> None:
    """Hash one weight as a record of its little-endian bytes, read in slices so memory stays flat.

    The bytes fed to the digest are exactly those of the whole array (the length prefix is known from the
    shape), so fingerprints do not depend on how the array is sliced.
    """
    import numpy as np

    little = dataset.dtype.newbyteorder("<")
    shape = tuple(dataset.shape)
    _record(digest, "name", name.encode("utf-8"))
    _record(digest, "dtype", little.str.encode())
    _record(digest, "shape", repr(shape).encode())
    digest.update(f"data:{int(np.prod(shape, dtype=np.int64)) * little.itemsize}:".encode())
    if not shape:  # a scalar
        digest.update(np.asarray(dataset[()]).astype(little).tobytes())
        return
    row_bytes = max(1, int(np.prod(shape[1:], dtype=np.int64)) * little.itemsize)
    step = max(1, _SLICE_BYTES // row_bytes)
    for start in range(0, shape[0], step):
        block = np.ascontiguousarray(dataset[start : start + step]).astype(little, copy=False)
        digest.update(memoryview(block).cast("B"))


def _stable_config(config: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in config.items() if k not in VOLATILE_KEYS}


def _model_fingerprint(folder: Path, config_name: str, weights_name: str) -> str:
    config = read_config(folder / config_name)
    digest = hashlib.sha256()
    _record(digest, "config", canonical_json(_stable_config(config)))
    _hash_weights(digest, folder / weights_name)
    return PREFIX + digest.hexdigest()


def embedder_fingerprint(folder: str | Path) -> str:
    """Fingerprint of a saved embedder folder (``embedder.json`` + ``embedder.weights.h5``)."""
    return _model_fingerprint(Path(folder), EMBEDDER_CONFIG, EMBEDDER_WEIGHTS)


def component_fingerprint(folder: str | Path) -> str:
    """Fingerprint of a saved component folder (``component.json`` + ``component.weights.h5``)."""
    return _model_fingerprint(Path(folder), COMPONENT_CONFIG, COMPONENT_WEIGHTS)


def _preprocessor_path(path: str | Path) -> Path:
    path = Path(path)
    return path / PREPROCESSOR_CONFIG if path.is_dir() else path


def vocab_fingerprint(path: str | Path) -> str:
    """Fingerprint of a preprocessor: a ``cclm_config.json`` (or the folder holding one).

    It covers everything that changes the ids (see ``vocab_fingerprint_of``), so this core's format and
    the original cclm format give the same value exactly when they map every text to the same ids.
    """
    path = _preprocessor_path(path)
    config = read_config(path, format_required=False)
    return vocab_fingerprint_of(config, path)


def vocab_fingerprint_of(config: dict[str, Any], where: str | Path = "the preprocessor config") -> str:
    """Fingerprint of a preprocessor config (``Preprocessor.to_config()`` or a saved file's content).

    Hashed: the character map, the input length, the reserved ids and how they are used (unknown id,
    CLS slot) and the tokenizer's JSON form (null without one). ``char_rev`` and ``n_chars`` follow from
    these; ``vocab_size`` only bounded the tokenizer's training, so neither enters the hash.
    """
    from cclm_core.preprocessing import id_scheme

    require_keys(config, ("char_dict", "max_example_len"), Path(where))
    char_dict = config["char_dict"]
    if not isinstance(char_dict, dict):
        raise FormatError(f"{where}: 'char_dict' must be an object mapping characters to ids")
    try:
        parts = {
            "chars": sorted((str(ch), int(i)) for ch, i in char_dict.items()),
            "max_example_len": int(config["max_example_len"]),
            "specials": id_scheme(config, where),
            "tokenizer": config.get("tokenizer"),
        }
    except (TypeError, ValueError) as e:
        raise FormatError(f"{where} has a malformed vocabulary: {e}") from e
    return PREFIX + hashlib.sha256(canonical_json(parts)).hexdigest()


def composed_fingerprint(folder: str | Path) -> str:
    """Fingerprint of a saved composed folder: its embedder's and its components' fingerprints in order."""
    folder = Path(folder)
    parts = {
        "embedder": embedder_fingerprint(folder / COMPOSED_EMBEDDER_DIR),
        "components": [component_fingerprint(p) for p in composed_component_dirs(folder)],
    }
    return PREFIX + hashlib.sha256(canonical_json(parts)).hexdigest()


def composed_component_dirs(folder: Path) -> list[Path]:
    """The component folders of a saved composed model, in order (from its config)."""
    config = read_config(folder / COMPOSED_CONFIG, ("n_components",))
    return [folder / COMPOSED_COMPONENTS_DIR / str(i) for i in range(int(config["n_components"]))]


def item_type(folder: str | Path) -> str:
    """Which kind of item a saved folder holds, told by its fixed config file name."""
    folder = Path(folder)
    for name, kind in (
        (COMPOSED_CONFIG, "composed"),
        (EMBEDDER_CONFIG, "embedder"),
        (COMPONENT_CONFIG, "component"),
        (PREPROCESSOR_CONFIG, "preprocessor"),
    ):
        if (folder / name).is_file():
            return kind
    raise FormatError(
        f"{folder} holds no saved cclm item",
        hint=f"expected one of {COMPOSED_CONFIG}, {EMBEDDER_CONFIG}, {COMPONENT_CONFIG} "
        f"or {PREPROCESSOR_CONFIG}",
    )


def describe(folder: str | Path) -> dict[str, Any]:
    """Describe a saved folder: item type, fingerprint, the base it needs and what it provides."""
    folder = Path(folder)
    describers = {
        "preprocessor": _describe_preprocessor,
        "embedder": _describe_embedder,
        "component": _describe_component,
        "composed": _describe_composed,
    }
    return describers[item_type(folder)](folder)


def _describe_preprocessor(folder: Path) -> dict[str, Any]:
    path = folder / PREPROCESSOR_CONFIG
    config = read_json(path)
    require_keys(config, ("char_dict", "char_rev", "max_example_len"), path)
    vocab = vocab_fingerprint(path)
    ids = [int(i) for i in config["char_rev"]] + [int(i) for i in config["char_dict"].values()]
    provides = {"vocab": vocab, "n_chars": max(ids) + 1, "max_input_length": int(config["max_example_len"])}
    return {"item_type": "preprocessor", "fingerprint": vocab, "base": None, "provides": provides}


def _describe_embedder(folder: Path) -> dict[str, Any]:
    fingerprint = embedder_fingerprint(folder)
    config = read_json(folder / EMBEDDER_CONFIG)
    require_keys(config, ("max_len", "n_chars", "output_dim"), folder / EMBEDDER_CONFIG)
    provides = {
        "embedder": fingerprint,
        "n_chars": int(config["n_chars"]),
        "max_input_length": int(config["max_len"]),
        "output_dim": int(config["output_dim"]),
    }
    return {"item_type": "embedder", "fingerprint": fingerprint, "base": None, "provides": provides}


def _describe_component(folder: Path) -> dict[str, Any]:
    fingerprint = component_fingerprint(folder)
    config = read_json(folder / COMPONENT_CONFIG)
    require_keys(config, ("base", "output_dim"), folder / COMPONENT_CONFIG)
    base = config["base"]
    if not isinstance(base, dict):
        raise FormatError(f"{folder / COMPONENT_CONFIG}: 'base' must be an object")
    require_keys(base, ("embedder", "vocab", "max_input_length", "n_chars"), folder / COMPONENT_CONFIG)
    return {
        "item_type": "component",
        "fingerprint": fingerprint,
        "base": {k: base[k] for k in ("embedder", "vocab", "max_input_length", "n_chars")},
        "provides": {"output_dim": int(config["output_dim"])},
    }


def _describe_composed(folder: Path) -> dict[str, Any]:
    embedder = _describe_embedder(folder / COMPOSED_EMBEDDER_DIR)
    components = [_describe_component(p) for p in composed_component_dirs(folder)]
    provides = {
        "embedder": embedder["fingerprint"],
        "n_chars": embedder["provides"]["n_chars"],
        "max_input_length": embedder["provides"]["max_input_length"],
        "output_dim": sum(c["provides"]["output_dim"] for c in components),
    }
    return {
        "item_type": "composed",
        "fingerprint": composed_fingerprint(folder),
        "base": None,
        "provides": provides,
    }
