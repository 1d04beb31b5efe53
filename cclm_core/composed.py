"""``ComposedModel``: one embedder feeding several components, outputs concatenated.

``model`` maps ids ``(B, L)`` to ``(B, L, sum of the components' output_dim)`` and carries the padding
mask (a ``keras.layers.GlobalAveragePooling1D`` on it pools real characters only); the embedder and the
components keep their weights (they are nested, not copied). ``Embedder(max_len, n_chars, model=composed)``
makes a composition the base of further components. Saved as ``composed.json`` + ``embedder/``
+ ``components/<i>/`` (+ ``preprocessor/`` when one is attached).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import keras

from cclm_core.compat import check_compatible, short
from cclm_core.component import Component, describe_base, load_component
from cclm_core.embedder import Embedder
from cclm_core.errors import IncompatibleComponentError
from cclm_core.fingerprint import composed_component_dirs, embedder_fingerprint
from cclm_core.formats import (
    COMPOSED_COMPONENTS_DIR,
    COMPOSED_CONFIG,
    COMPOSED_EMBEDDER_DIR,
    FORMAT_VERSION,
    PREPROCESSOR_CONFIG,
    write_json,
)
from cclm_core.networks import ComposedNetwork
from cclm_core.preprocessing import Preprocessor

PREPROCESSOR_DIR = "preprocessor"


def as_component(item: Any) -> Component:
    """Accept a ``Component``, a Keras model or a pretrainer (anything with a ``component``)."""
    if isinstance(item, Component):
        return item
    if isinstance(item, keras.Model):
        return Component(item)
    if hasattr(item, "component"):
        return item.component
    raise IncompatibleComponentError(
        f"cannot compose a {type(item).__name__}; pass Keras models or Components"
    )


class ComposedModel:
    """Concatenates the outputs of components that share one embedder."""

    def __init__(
        self,
        embedder: Embedder,
        components: Sequence[Any],
        preprocessor: Preprocessor | None = None,
        check: bool = True,
    ) -> None:
        if not components:
            raise IncompatibleComponentError("a ComposedModel needs at least one component")
        self.embedder = embedder
        self.components = [as_component(c) for c in components]
        self.preprocessor = preprocessor
        if check:
            self._check()
        self.model = self._build()

    @property
    def output_dim(self) -> int:
        return sum(c.output_dim for c in self.components)

    def _check(self) -> None:
        """Refuse components of the wrong width, or trained on another embedder (when known)."""
        self._check_preprocessor()
        problems = [
            f"component #{i} takes vectors of width {c.input_dim} "
            f"but the embedder gives {self.embedder.output_dim}"
            for i, c in enumerate(self.components)
            if c.input_dim != self.embedder.output_dim
        ]
        if problems:
            raise IncompatibleComponentError("; ".join(problems))
        known = [(i, c.base) for i, c in enumerate(self.components) if c.base is not None]
        if known:
            fingerprint = self.embedder.fingerprint()
            for i, base in known:
                if base["embedder"] != fingerprint:
                    raise IncompatibleComponentError(
                        f"component #{i} needs embedder {short(base['embedder'])} "
                        f"but the embedder is {short(fingerprint)}",
                        hint="compose components trained on this embedder",
                    )

    def _check_preprocessor(self) -> None:
        """Ids from a preprocessor with another vocabulary size or length would not fit the embedder."""
        if self.preprocessor is not None:
            self.embedder.check_preprocessor(self.preprocessor)

    def _build(self) -> keras.Model:
        return ComposedNetwork(self.embedder.model, [c.model for c in self.components])

    def _base(self, embedder_fp: str) -> dict[str, Any]:
        return describe_base(embedder_fp, self.embedder, self.preprocessor)

    def save(self, folder: str | Path) -> Path:
        """Save the embedder, every component (with its base) and the optional preprocessor."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        fingerprint = embedder_fingerprint(self.embedder.save(folder / COMPOSED_EMBEDDER_DIR))
        for i, component in enumerate(self.components):
            component.save(
                folder / COMPOSED_COMPONENTS_DIR / str(i), component.base or self._base(fingerprint)
            )
        if self.preprocessor is not None:
            self.preprocessor.save(folder / PREPROCESSOR_DIR)
        config = {
            "format": FORMAT_VERSION,
            "class": "ComposedModel",
            "n_components": len(self.components),
            "output_dim": self.output_dim,
        }
        write_json(folder / COMPOSED_CONFIG, config)
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> ComposedModel:
        """Load a saved composed model; bases are checked from the files before anything is built."""
        folder = Path(folder)
        dirs = composed_component_dirs(folder)
        prep_dir = folder / PREPROCESSOR_DIR
        prep = prep_dir if (prep_dir / PREPROCESSOR_CONFIG).is_file() else None
        check_compatible(folder / COMPOSED_EMBEDDER_DIR, dirs, prep)
        embedder = Embedder.load(folder / COMPOSED_EMBEDDER_DIR)
        preprocessor = Preprocessor(load_from=prep) if prep else None
        return cls(embedder, [load_component(d) for d in dirs], preprocessor, check=False)
