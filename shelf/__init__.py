"""cclm-shelf: the package manager for composable, character-level model components."""

from shelf.api import Shelf
from shelf.errors import ShelfError

__all__ = ["Shelf", "ShelfError"]
