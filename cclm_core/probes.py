"""Behaviour probes: a fixed, versioned set of inputs and compact records of what a model makes of them.

Fingerprints say the weights are the same; probes say the model built from them still *computes* the same
under the TensorFlow and Keras at hand. At publish, each item that computes is run on probe set
``PROBE_SET``:

- an embedder on the probe strings turned into ids (each character's code point, folded into the
  embedder's vocabulary range past the reserved ids, padded with 0): no preprocessor is needed;
- a component on fixed embeddings of the probe strings (deterministic values in [-1, 1) derived with
  sha256, independent of numpy's random generators), so it is probed without its embedder;
- the composed model (embedder and component saved together) on the probe ids.

Each probe's output is recorded compactly: its shape, mean, standard deviation, minimum, maximum, a fixed
sample of values and a digest of the values rounded to 3 decimals. ``compare`` rebuilds nothing: it takes
two such records and returns the largest deviation, relative for values above 1 in magnitude. Outputs are
computed through the public model API (``Embedder.model``, ``Component.model``, ``ComposedModel.model``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

PROBE_SET = 1
PROBE_STRINGS = (
    "hello world",
    "The quick brown fox jumps over the lazy dog.",
    "résumé of a naïve café owner",
    "0123456789 +-*/= ()[]{}",
    "aaaaaaaaaaaaaaaaaaaaaaaa",
    "",
)
TOLERANCE = 1e-4  # largest deviation accepted, absolute (relative above 1)
SAMPLES = 8
RESERVED_IDS = 4  # padding, mask, unknown, CLS: see cclm_core.preprocessing


def probe_ids(max_len: int, n_chars: int) -> np.ndarray:
    """The probe strings as ids ``(n_probes, max_len)``, int32, padded with 0."""
    span = max(n_chars - RESERVED_IDS, 1)
    ids = np.zeros((len(PROBE_STRINGS), max_len), dtype="int32")
    for row, text in enumerate(PROBE_STRINGS):
        for col, char in enumerate(text[:max_len]):
            ids[row, col] = min(RESERVED_IDS + ord(char) % span, n_chars - 1)
    return ids


def probe_embeddings(max_len: int, dim: int) -> np.ndarray:
    """Fixed embeddings ``(n_probes, max_len, dim)`` in [-1, 1), float32, the same on every machine."""
    rows = []
    for text in PROBE_STRINGS:
        needed = max_len * dim * 4
        stream = b"".join(
            hashlib.sha256(f"{PROBE_SET}:{text}:{block}".encode()).digest()
            for block in range(-(-needed // 32))
        )
        values = np.frombuffer(stream[:needed], dtype="<u4").astype("float64") / 2.0**32
        rows.append((values * 2.0 - 1.0).reshape(max_len, dim))
    return np.stack(rows).astype("float32")


def summarize(outputs: Any) -> list[dict[str, Any]]:
    """One compact record per probe (the first axis of ``outputs``)."""
    array = np.asarray(outputs, dtype="float64")
    return [_summary(row) for row in array]


def _summary(row: np.ndarray) -> dict[str, Any]:
    flat = row.reshape(-1)
    picks = (
        np.linspace(0, flat.size - 1, min(SAMPLES, flat.size)).astype(int) if flat.size else np.array([], int)
    )
    rounded = np.round(flat, 3).astype("<f4") + np.float32(0.0)  # + 0.0 turns -0.0 into 0.0
    return {
        "shape": [int(n) for n in row.shape],
        "mean": _num(flat.mean() if flat.size else 0.0),
        "std": _num(flat.std() if flat.size else 0.0),
        "min": _num(flat.min() if flat.size else 0.0),
        "max": _num(flat.max() if flat.size else 0.0),
        "sample": [_num(flat[i]) for i in picks],
        "digest": hashlib.sha256(rounded.tobytes()).hexdigest()[:16],
    }


def _num(value: float) -> float:
    return float(f"{float(value):.7g}")


def compare(recorded: Sequence[Mapping[str, Any]], actual: Sequence[Mapping[str, Any]]) -> tuple[int, float]:
    """``(probe index, deviation)`` of the probe that deviates most; a shape change deviates infinitely."""
    worst = (0, 0.0)
    for index, (want, got) in enumerate(zip(recorded, actual, strict=False)):
        deviation = _deviation(want, got)
        if deviation > worst[1]:
            worst = (index, deviation)
    if len(recorded) != len(actual):
        return (min(len(recorded), len(actual)), float("inf"))
    return worst


def _deviation(want: Mapping[str, Any], got: Mapping[str, Any]) -> float:
    if list(want["shape"]) != list(got["shape"]) or len(want["sample"]) != len(got["sample"]):
        return float("inf")
    pairs = [(want[k], got[k]) for k in ("mean", "std", "min", "max")]
    pairs += list(zip(want["sample"], got["sample"], strict=True))
    return max(abs(a - b) / max(1.0, abs(a)) for a, b in pairs)


# --- running models (TensorFlow) -----------------------------------------------------------------------


def record(items: Mapping[str, Path]) -> dict[str, Any] | None:
    """The manifest's ``probes`` section for a saved package, or None when no item computes."""
    import keras

    outputs = record_items(items)
    if not outputs:
        return None
    return {"set": PROBE_SET, "tolerance": TOLERANCE, "keras": keras.__version__, "outputs": outputs}


def record_items(items: Mapping[str, Path]) -> dict[str, list[dict[str, Any]]]:
    """Probe outputs of every item that computes in a saved package: ``{"embedder": [...], ...}``."""
    return {kind: summarize(outputs) for kind, outputs in run_items(items).items()}


def run_items(items: Mapping[str, Path]) -> dict[str, np.ndarray]:
    """Rebuild the saved items (safe mode) and run each on its probe inputs."""
    from cclm_core.component import load_component
    from cclm_core.embedder import Embedder

    outputs: dict[str, np.ndarray] = {}
    embedder = Embedder.load(items["embedder"]) if "embedder" in items else None
    component = load_component(items["component"]) if "component" in items else None
    if embedder is not None:
        ids = probe_ids(embedder.max_len, embedder.n_chars)
        outputs["embedder"] = _run(embedder.model, ids)
    if component is not None:
        length = int(component.model.input_shape[1] or (component.base or {}).get("max_input_length") or 16)
        outputs["component"] = _run(component.model, probe_embeddings(length, component.input_dim))
    if embedder is not None and component is not None:
        from cclm_core.composed import ComposedModel

        composed = ComposedModel(embedder, [component])
        outputs["composed"] = _run(composed.model, probe_ids(embedder.max_len, embedder.n_chars))
    return outputs


def _run(model: Any, inputs: np.ndarray) -> np.ndarray:
    return np.asarray(model(inputs, training=False))
