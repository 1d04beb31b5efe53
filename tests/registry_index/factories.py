"""Valid manifest dictionaries for tests, built fresh each call so tests can mutate them."""

from __future__ import annotations

import hashlib
from typing import Any

EMBEDDER = "sha256:" + hashlib.sha256(b"embedder weights").hexdigest()
VOCAB = "sha256:" + hashlib.sha256(b"vocabulary").hexdigest()


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def base() -> dict[str, Any]:
    return {"embedder": EMBEDDER, "vocab": VOCAB, "max_input_length": 256, "n_chars": 335}


def component(name: str = "en_wiki_ner_1", version: str = "0.3.0", **changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "schema_version": 1,
        "name": name,
        "version": version,
        "kind": "component",
        "summary": "Named entities on top of the en_wiki_clm_1 embedder",
        "license": "MIT",
        "items": {
            "model": {"files": [{"path": "model.weights.h5", "sha256": sha(name + version), "size": 123}]}
        },
        "base": base(),
        "provides": {"output_dim": 128},
        "requires": ["en_wiki_clm_1>=0.2,<0.3"],
        "framework": {"cclm-core": ">=0.1", "tensorflow": ">=2.16"},
        "training": {"task": "ner", "data": "wikiner", "parents": ["en_wiki_clm_1@0.2.1"]},
    }
    data.update(changes)
    return data


def embedder(name: str = "en_wiki_clm_1", version: str = "0.2.1", **changes: Any) -> dict[str, Any]:
    provides = {"embedder": EMBEDDER, "max_input_length": 256, "n_chars": 335, "output_dim": 256}
    data = component(name, version, kind="embedder", provides=provides, requires=[], training=None)
    data["items"] = {
        "embedder": {"files": [{"path": "embedder.weights.h5", "sha256": sha(name), "size": 4096}]},
        "preprocessor": {"files": [{"path": "cclm_config.json", "sha256": sha(name + "p"), "size": 14599}]},
    }
    del data["training"]
    data.update(changes)
    return data
