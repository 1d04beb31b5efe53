"""cclm-shelf: the package manager for composable, character-level model components.

``Shelf`` (a set of shelves, a blob store: install, resolve, publish) and ``Project`` (a project file: lock,
add, remove) are imported on first use, so ``import shelf.cli`` (and ``cclm-shelf --help``) stays light.
"""

from typing import TYPE_CHECKING, Any

from shelf.errors import ShelfError

if TYPE_CHECKING:
    from shelf.api import Shelf
    from shelf.project import Project

__all__ = ["Project", "Shelf", "ShelfError"]


def __getattr__(name: str) -> Any:
    if name == "Shelf":
        from shelf.api import Shelf

        return Shelf
    if name == "Project":
        from shelf.project import Project

        return Project
    raise AttributeError(f"module 'shelf' has no attribute {name!r}")
