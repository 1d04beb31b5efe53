"""cclm_core: the slim character-level model library (Preprocessor, Embedder, pretrainers, composition).

Re-exports are lazy (PEP 562) so that ``import cclm_core.fingerprint`` and the shelf's describe/check
paths never import TensorFlow; touching a model class imports it on first use.
"""

from importlib import import_module
from typing import Any

_EXPORTS = {
    "CoreError": "cclm_core.errors",
    "DataError": "cclm_core.errors",
    "FormatError": "cclm_core.errors",
    "UnsupportedFormatError": "cclm_core.errors",
    "UnsafeModelError": "cclm_core.errors",
    "IncompatibleComponentError": "cclm_core.errors",
    "Preprocessor": "cclm_core.preprocessing",
    "describe": "cclm_core.fingerprint",
    "embedder_fingerprint": "cclm_core.fingerprint",
    "component_fingerprint": "cclm_core.fingerprint",
    "vocab_fingerprint": "cclm_core.fingerprint",
    "check_compatible": "cclm_core.compat",
    "Embedder": "cclm_core.embedder",
    "Component": "cclm_core.component",
    "load_component": "cclm_core.component",
    "ComposedModel": "cclm_core.composed",
    "Pretrainer": "cclm_core.pretraining",
    "MaskedLanguagePretrainer": "cclm_core.pretraining",
    "CharacterReconstructionPretrainer": "cclm_core.pretraining",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'cclm_core' has no attribute {name!r}")
    return getattr(import_module(_EXPORTS[name]), name)
