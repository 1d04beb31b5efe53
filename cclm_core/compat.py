"""Checks that an embedder, its components and a preprocessor share one base.

Works on ``describe()`` dicts or saved folders, so the shelf can check a set of installed items
before building anything; no TensorFlow is imported.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from cclm_core.errors import IncompatibleComponentError
from cclm_core.fingerprint import describe

Info = dict[str, Any]


def short(fingerprint: str | None) -> str:
    """A fingerprint shortened for messages: ``sha256:ab12cd34ef56…``."""
    if not fingerprint:
        return "unknown"
    algo, _, digest = fingerprint.partition(":")
    return f"{algo}:{digest[:12]}…" if digest else fingerprint[:19]


def _info(item: str | Path | Info, expected: str) -> Info:
    info = item if isinstance(item, dict) else describe(item)
    if info.get("item_type") not in (expected, "composed" if expected == "embedder" else expected):
        raise IncompatibleComponentError(f"expected a saved {expected}, got a {info.get('item_type')}")
    return info


def _label(info: Info, index: int) -> str:
    return str(info.get("name") or info.get("path") or f"#{index}")


def check_compatible(
    embedder: str | Path | Info,
    components: Iterable[str | Path | Info],
    preprocessor: str | Path | Info | None = None,
) -> None:
    """Raise ``IncompatibleComponentError`` unless every component was built on ``embedder``.

    A component matches when its base names the embedder's fingerprint and the same n_chars and
    max_input_length; with ``preprocessor`` given, its vocabulary, n_chars and input length must match
    too. An info dict may carry a ``name`` used in messages.
    """
    emb = _info(embedder, "embedder")["provides"]
    problems = []
    prep = _info(preprocessor, "preprocessor")["provides"] if preprocessor is not None else None
    if prep is not None:
        problems += _preprocessor_problems(prep, emb)
    for index, item in enumerate(components):
        info = _info(item, "component")
        problems += _component_problems(_label(info, index), info["base"], emb, prep)
    if problems:
        raise IncompatibleComponentError("; ".join(problems), hint="use pieces trained on the same base")


def _preprocessor_problems(prep: Info, emb: Info) -> list[str]:
    problems = []
    for key in ("n_chars", "max_input_length"):
        if prep[key] != emb[key]:
            problems.append(f"the preprocessor has {key} {prep[key]} but the embedder expects {emb[key]}")
    return problems


def _component_problems(label: str, base: Info, emb: Info, prep: Info | None) -> list[str]:
    problems = []
    if base["embedder"] != emb["embedder"]:
        problems.append(
            f"component {label} needs embedder {short(base['embedder'])} "
            f"but the embedder is {short(emb['embedder'])}"
        )
    for key in ("n_chars", "max_input_length"):
        if base[key] != emb[key]:
            problems.append(f"component {label} needs {key} {base[key]} but the embedder has {emb[key]}")
    if prep is not None and base.get("vocab") and base["vocab"] != prep["vocab"]:
        problems.append(
            f"component {label} needs vocabulary {short(base['vocab'])} "
            f"but the preprocessor is {short(prep['vocab'])}"
        )
    return problems
