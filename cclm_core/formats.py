"""Fixed file names, format versions and JSON helpers shared by every saved item.

This module imports no TensorFlow: the shelf reads saved folders through it (via ``fingerprint``)
without paying for a TensorFlow import.

Saved folders (names are fixed because the shelf relies on them)::

    preprocessor   cclm_config.json
    embedder       embedder.json   + embedder.weights.h5
    component      component.json  + component.weights.h5
    composed       composed.json   + embedder/ + components/<i>/
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cclm_core.errors import FormatError, UnsupportedFormatError

#: The format version written by this core into every JSON config it saves.
FORMAT_VERSION = 1

PREPROCESSOR_CONFIG = "cclm_config.json"
EMBEDDER_CONFIG = "embedder.json"
EMBEDDER_WEIGHTS = "embedder.weights.h5"
COMPONENT_CONFIG = "component.json"
COMPONENT_WEIGHTS = "component.weights.h5"
COMPOSED_CONFIG = "composed.json"
COMPOSED_EMBEDDER_DIR = "embedder"
COMPOSED_COMPONENTS_DIR = "components"

#: Keys of a config that describe how or when it was written, not what the model is; they are left
#: out of fingerprints so that re-saving with another library version keeps the fingerprint.
VOLATILE_KEYS = frozenset({"meta"})


def read_json(path: Path) -> dict[str, Any]:
    """Read a JSON object from ``path``, turning every failure into a ``FormatError``."""
    path = Path(path)
    if not path.is_file():
        raise FormatError(f"{path} is missing", hint="save the item again or point at the right folder")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise FormatError(f"{path} is not valid JSON: {e}", hint="the file is corrupt; save it again") from e
    if not isinstance(data, dict):
        raise FormatError(f"{path} must hold a JSON object, found {type(data).__name__}")
    return data


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` as stable, human-readable JSON (sorted keys, so equal configs give equal files)."""
    text = json.dumps(data, sort_keys=True, indent=2, ensure_ascii=False)
    Path(path).write_text(text + "\n", encoding="utf-8")


def check_format(config: dict[str, Any], path: Path, *, required: bool = True) -> int:
    """Return the config's format version; refuse one newer than ``FORMAT_VERSION``.

    ``required=False`` accepts a missing field as version 0 (the original cclm files had none).
    """
    version = config.get("format")
    if version is None and not required:
        return 0
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise FormatError(f"{path} has no valid 'format' field (found {version!r})")
    if version > FORMAT_VERSION:
        raise UnsupportedFormatError(
            f"{path} uses format {version}, but this cclm_core reads format {FORMAT_VERSION} at most",
            hint="upgrade cclm-shelf to load it",
        )
    return version


def require_keys(config: dict[str, Any], keys: tuple[str, ...], path: Path) -> None:
    """Raise ``FormatError`` naming the first key of ``keys`` that ``config`` lacks."""
    for key in keys:
        if key not in config:
            raise FormatError(f"{path} lacks the field {key!r}", hint="the file is incomplete; save it again")


def read_config(path: Path, keys: tuple[str, ...] = (), *, format_required: bool = True) -> dict[str, Any]:
    """A saved item's JSON config: read, its format version checked and ``keys`` required.

    ``format_required=False`` accepts a file without a format version (see ``check_format``).
    """
    config = read_json(path)
    check_format(config, path, required=format_required)
    require_keys(config, keys, path)
    return config


def canonical_json(data: Any) -> bytes:
    """Serialise ``data`` the one way fingerprints use: sorted keys, fixed separators, UTF-8."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
