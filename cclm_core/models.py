"""The model classes of the seed README: ``Embedder`` and ``ComposedModel`` (and ``Component``)."""

from cclm_core.component import Component, load_component
from cclm_core.composed import ComposedModel
from cclm_core.embedder import Embedder

__all__ = ["Component", "ComposedModel", "Embedder", "load_component"]
