"""A bundle streams: writing and reading one with a large blob keeps the process's memory flat."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

BLOB_MIB = 160
# What the script may grow by while it writes, reads and stores the bundle (the blob is 160 MiB).
HEADROOM_MIB = 40

SCRIPT = textwrap.dedent(
    """
    import hashlib, os, resource, sys
    from pathlib import Path
    from registry_index.manifest import manifest_digest
    from shelf.bundle import open_bundle, write_bundle
    from shelf.lockfile import LockedComponent, LockedFile, Lockfile
    from shelf.store import BlobStore

    root = Path(sys.argv[1])
    big = root / "big.bin"
    digest = hashlib.sha256()
    with open(big, "wb") as out:
        for i in range(int(sys.argv[2])):
            chunk = bytes([i % 251]) * (1 << 20)
            digest.update(chunk)
            out.write(chunk)
    oid, size = digest.hexdigest(), big.stat().st_size
    store = BlobStore(root / "cache-a")
    store.add_file(big, oid, size)
    manifest = b'{"name":"big"}\\n'
    component = LockedComponent("big", "1.0.0", "component", "local shelf", manifest_digest(manifest),
                                files=(LockedFile("model", "big.bin", oid, size),))
    lock = Lockfile("sha256:" + "0" * 64, (component,))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    write_bundle(lock, {"components/big/1.0.0/cclm-manifest.json": manifest}, store, root / "big.bundle")
    other = BlobStore(root / "cache-b")
    with open_bundle(root / "big.bundle", other) as bundle:
        bundle.keep(other)
    assert other.has(oid, size)
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print((after - before) // 1024)
    """
)


@pytest.mark.slow
def test_bundle_memory_stays_flat(tmp_path):
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path), str(BLOB_MIB)],
        capture_output=True,
        text=True,
        timeout=300,
        env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"},
        check=False,
    )
    assert done.returncode == 0, done.stderr
    grew_mib = int(done.stdout.strip())
    assert grew_mib < HEADROOM_MIB, f"memory grew by {grew_mib} MiB while bundling a {BLOB_MIB} MiB blob"
