"""cclm-shelf: the package manager for composable, character-level model components.

``Shelf`` is imported on first use, so ``import shelf.cli`` (and ``cclm-shelf --help``) stays light.
"""

from typing import TYPE_CHECKING, Any

from shelf.errors import ShelfError

if TYPE_CHECKING:
    from shelf.api import Shelf

__all__ = ["Shelf", "ShelfError"]


def __getattr__(name: str) -> Any:
    if name == "Shelf":
        from shelf.api import Shelf

        return Shelf
    raise AttributeError(f"module 'shelf' has no attribute {name!r}")
