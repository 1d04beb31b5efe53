"""What an offline install may choose from: the versions whose every file is already in the store.

Offline, the newest version the mirror knows is no use if its blobs never came to this machine: a range
(or a bare name) then picks the newest version that can actually be installed. When no version of a name
is stored, every mirrored version stays in, so the error names what is missing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from registry_index.index import IndexEntry
    from shelf.source import PriorityIndex, ShelfSource
    from shelf.store import BlobStore


class StoredVersions:
    """An index (``entries``/``names``) showing only the versions the store holds whole."""

    def __init__(self, index: PriorityIndex, store: BlobStore) -> None:
        self._index = index
        self._store = store

    def entries(self, name: str) -> list[IndexEntry]:
        entries = self._index.entries(name)
        source = self._index.source_of(name)
        stored = [e for e in entries if self._whole(source, e)]
        return stored or entries

    def names(self) -> list[str]:
        return self._index.names()

    def _whole(self, source: ShelfSource, entry: IndexEntry) -> bool:
        from shelf.errors import ShelfError

        try:
            manifest, _data = source.manifest(entry)
        except ShelfError:
            return False  # its manifest is not mirrored either
        return all(self._store.has(f.sha256, f.size) for _item, f in manifest.files())
