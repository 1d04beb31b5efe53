"""Resolver benchmark: a 30-component stack on a 5,000 x 20 sparse index whose newest versions disagree.

The index is written to disk as a real sparse index (``registry_index.index.LocalIndex``): 5,000 components
of 20 versions each. The stack is 30 of them, each requiring the next; the three newest versions of
stack component i are built on embedder 1 + i % 3, older ones on embedder 0, so neighbours' newest
versions never agree and the resolver must backtrack to the versions that share embedder 0.

Reported: the median resolve time (wall, and CPU of this process) over fresh readers (each run reads and
parses the index files it reads; what the index files hold was checked once, in an earlier run), the same
as a new process would do it (every line checked again), the algorithm alone (entries already parsed), and
the number of index files read (the stack's 30, not the shelf's 5,000).

    .venv/bin/python benchmarks/bench_resolve.py [--runs 7] [--components 5000] [--versions 20]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_transfer import Sample, Stopwatch, median, median_cpu

from registry_index.index import (
    IndexEntry,
    LocalIndex,
    forget_checked_index_files,
    format_index_file,
    index_config,
)
from registry_index.layout import INDEX_CONFIG_PATH, index_path
from registry_index.manifest import Base
from registry_index.requirements import _parse_requirement
from registry_index.versions import _parse_version
from shelf.resolver import resolve

STACK = 30
NEWEST_SPLIT = 3  # the newest versions of a stack component, each on a different embedder


def digest(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def base(embedder: int) -> Base:
    return Base(digest(f"embedder-{embedder}"), digest("vocab"), 256, 100)


def name(index: int) -> str:
    return f"comp_{index:05d}"


def embedder_of(component: int, version: int, versions: int) -> int:
    """Embedder 0 for old versions; the three newest of component i are on embedder 1 + i % 3."""
    if version < versions - NEWEST_SPLIT:
        return 0
    return 1 + component % NEWEST_SPLIT


def entries(component: int, versions: int) -> list[IndexEntry]:
    requires = (f"{name(component + 1)}>=1.0",) if component < STACK - 1 else ()
    return [
        IndexEntry(
            name=name(component),
            version=f"1.{v}.0",
            manifest_digest=digest(f"{component}-{v}"),
            kind="component",
            base=base(embedder_of(component, v, versions)),
            requires=requires,
        )
        for v in range(versions)
    ]


def write_index(root: Path, components: int, versions: int) -> None:
    (root / INDEX_CONFIG_PATH).parent.mkdir(parents=True, exist_ok=True)
    (root / INDEX_CONFIG_PATH).write_bytes(index_config())
    for component in range(components):
        path = root / index_path(name(component))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(format_index_file(entries(component, versions)))


class ParsedSource:
    """The same entries already read and parsed: isolates the resolver from index reading."""

    def __init__(self, root: Path, names: list[str]) -> None:
        reader = LocalIndex(root)
        self._entries = {n: reader.entries(n) for n in names}
        self.files_read = 0

    def entries(self, name: str) -> list[IndexEntry]:
        return self._entries.get(name, [])


def measure_parsed(root: Path, runs: int) -> list[Sample]:
    stack = [name(i) for i in range(STACK)]
    source = ParsedSource(root, stack)
    timings = []
    for _ in range(runs):
        with Stopwatch() as clock:
            resolve(stack, source)
        timings.append(clock.sample)
    return timings


def measure(
    root: Path, runs: int, new_process: bool
) -> tuple[list[Sample], int, dict[str, str], dict[str, int]]:
    """Fresh readers. ``new_process``: nothing read before counts, as in a new process (the index files'
    contents checked once, then only decoded, are forgotten too)."""
    stack = [name(i) for i in range(STACK)]
    timings, files_read, versions, stats = [], 0, {}, {}
    for _ in range(runs):
        source = LocalIndex(root)  # fresh reader: every run reads and parses its files again
        _parse_requirement.cache_clear()  # and parses requirements and versions as a new process would
        _parse_version.cache_clear()
        if new_process:
            forget_checked_index_files()
        with Stopwatch() as clock:
            result = resolve(stack, source)
        timings.append(clock.sample)
        files_read, versions, stats = source.files_read, result.versions(), dict(result.stats)
    return timings, files_read, versions, stats


def summary(samples: list[Sample]) -> str:
    wall = sorted(s.wall * 1000 for s in samples)
    return (
        f"median {median(samples) * 1000:.1f} ms (CPU {median_cpu(samples) * 1000:.1f} ms), "
        f"min {wall[0]:.1f} ms, max {wall[-1]:.1f} ms over {len(samples)} runs"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--components", type=int, default=5000)
    parser.add_argument("--versions", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        start = time.perf_counter()
        write_index(root, args.components, args.versions)
        built = time.perf_counter() - start
        new = measure(root, args.runs, new_process=True)[0]
        timings, files_read, versions, stats = measure(root, args.runs, new_process=False)
        parsed = measure_parsed(root, args.runs)
    agreed = {embedder_of(int(n[5:]), int(v.split(".")[1]), args.versions) for n, v in versions.items()}
    print(f"machine: {platform.processor() or platform.machine()}, Python {platform.python_version()}")
    print(f"index: {args.components} components x {args.versions} versions, written in {built:.1f} s")
    print(f"stack: {STACK} components, resolved {len(versions)}, on embedder(s) {sorted(agreed)}")
    print(f"resolver: {stats}")
    print(f"resolve time, fresh reader (index contents checked before): {summary(timings)}")
    print(f"  as a new process (every line checked): {summary(new)}")
    print(f"  the algorithm alone (entries already parsed): {summary(parsed)}")
    print(f"index files read per resolve: {files_read} of {args.components}")
    print(f"load average during the run: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
