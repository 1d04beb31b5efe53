"""Sparse index benchmark: build a synthetic index, then time one component's lookup at two shelf sizes.

    python benchmarks/bench_index.py           # 5,000 components x 20 versions (lookups at 500 and 5,000)
    python benchmarks/bench_index.py --quick   # 2,000 components x 5 versions (lookups at 200 and 2,000)

A sparse index reads one file per component, so the lookup time must not grow with the shelf: the script
fails (exit 1) when the lookup at the large size is more than 1.5x the lookup at the small one.
"""

from __future__ import annotations

import argparse
import hashlib
import platform
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from registry_index import LocalIndex, Manifest, build_index
from registry_index.manifest import Base, FileEntry

EMBEDDER = "sha256:" + hashlib.sha256(b"bench embedder").hexdigest()
MAX_RATIO = 1.5


def synthetic(components: int, versions: int) -> list[tuple[Manifest, str]]:
    """``components`` x ``versions`` manifests (built directly: validation is not what is measured)."""
    base = Base(EMBEDDER, None, 256, 335)
    pairs = []
    for c in range(components):
        name = f"bench_component_{c:05d}"
        for v in range(versions):
            version = f"{v // 10}.{v % 10}.{c % 3}"
            files = (
                FileEntry("model.weights.h5", hashlib.sha256(f"{name}{version}".encode()).hexdigest(), 1000),
            )
            manifest = Manifest(
                name=name,
                version=version,
                kind="component",
                items={"model": files},
                base=base,
                provides={"output_dim": 128},
                requires=(f"bench_component_{(c + 1) % components:05d}>=0.1,<2",),
            )
            pairs.append((manifest, "sha256:" + hashlib.sha256(f"m{name}{version}".encode()).hexdigest()))
    return pairs


def write_tree(root: Path, files: dict[str, bytes]) -> None:
    for relative, data in files.items():
        target = root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)


def time_build(pairs: list[tuple[Manifest, str]]) -> tuple[float, dict[str, bytes]]:
    start = time.perf_counter()
    files = build_index(pairs)
    seconds = time.perf_counter() - start
    if build_index(reversed(pairs)) != files:
        raise SystemExit("rebuild is not byte-identical")
    return seconds, files


def time_lookup(root: Path, names: list[str], rounds: int) -> float:
    """Median seconds of one ``LocalIndex.entries(name)`` on a fresh reader (no in-process memo)."""
    samples = []
    for _ in range(rounds):
        for name in names:
            index = LocalIndex(root)
            start = time.perf_counter()
            entries = index.entries(name)
            samples.append(time.perf_counter() - start)
            assert entries and index.files_read == 1
    return statistics.median(samples)


def measure(components: int, versions: int, small: int, rounds: int) -> dict[str, float]:
    pairs = synthetic(components, versions)
    build_seconds, files = time_build(pairs)
    small_files = build_index(p for p in pairs if int(p[0].name.rsplit("_", 1)[1]) < small)
    names = [f"bench_component_{c:05d}" for c in random.Random(7).sample(range(small), 50)]
    with tempfile.TemporaryDirectory() as big_dir, tempfile.TemporaryDirectory() as small_dir:
        write_tree(Path(big_dir), files)
        write_tree(Path(small_dir), small_files)
        time_lookup(Path(small_dir), names, 1)  # warm the page cache for both trees alike
        time_lookup(Path(big_dir), names, 1)
        small_lookup = time_lookup(Path(small_dir), names, rounds)
        big_lookup = time_lookup(Path(big_dir), names, rounds)
    return {"entries": len(pairs), "build": build_seconds, "small": small_lookup, "big": big_lookup}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2,000 x 5 instead of 5,000 x 20")
    args = parser.parse_args()
    components, versions, small = (2000, 5, 200) if args.quick else (5000, 20, 500)
    result = measure(components, versions, small, rounds=5)
    ratio = result["big"] / result["small"]
    print(
        f"machine: {platform.machine()}, {platform.processor() or 'cpu'}, Python {platform.python_version()}"
    )
    print(f"| components x versions | {components} x {versions} ({result['entries']} entries) |")
    print("|---|---|")
    print(f"| build_index (all files, in memory) | {result['build']:.2f} s |")
    print(f"| LocalIndex lookup at {small} components (median) | {result['small'] * 1e3:.3f} ms |")
    print(f"| LocalIndex lookup at {components} components (median) | {result['big'] * 1e3:.3f} ms |")
    print(f"| ratio large / small (limit {MAX_RATIO}) | {ratio:.2f} |")
    return 0 if ratio <= MAX_RATIO else 1


if __name__ == "__main__":
    sys.exit(main())
