"""The store's lock files are bounded: one per object id prefix, never one per object."""

from __future__ import annotations

import re

from shelf.store import LOCK_PREFIX, BlobStore


def test_lock_files_do_not_pile_up(tmp_path):
    store = BlobStore(tmp_path / "cache")
    oids = set()
    for n in range(200):
        source = tmp_path / f"blob-{n}"
        source.write_bytes(f"blob number {n}".encode())
        oids.add(store.add_file(source))
    locks = sorted(p.relative_to(store.root / "locks").as_posix() for p in (store.root / "locks").rglob("*"))
    assert all(re.fullmatch(rf"[0-9a-f]{{{LOCK_PREFIX}}}\.lock", name) for name in locks), locks[:5]
    assert len(locks) == len({oid[:LOCK_PREFIX] for oid in oids}) < len(oids)
    assert 16**LOCK_PREFIX == 4096  # the most there can ever be
