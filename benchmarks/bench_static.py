"""Static shelf benchmark: install from a static export against the same install from the git shelf, and
sparse index lookups over HTTP at 500, 5,000 and 50,000 components.

The shelf is the transfer benchmark's (``bench_transfer.build_shelf``: one big component and small ones,
written with git fast-import), served by ``shelf.serve.start`` (git daemon + giftless). It is exported
with ``cclm-shelf export DEST --with-blobs`` and DEST is served by ``python -m http.server``. Measured, each
run from a fresh cache and target (median of the runs):

1. cold install of the big component: ``--shelf git://...`` against ``--shelf sparse+http://...``;
2. cold install of one small component, both ways;
3. the export itself (first, and again with nothing changed);
4. index lookups through ``registry_index.HttpIndex`` against flat sparse indexes of 500, 5,000 and 50,000
   components (one file each) served by ``python -m http.server``: 200 random names, cold cache.

    .venv/bin/python benchmarks/bench_static.py [--quick] [--runs N] [--no-write]

Results go to stdout and to the generated section ``static`` of ``benchmarks/TRANSFER_FIGURES.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import bench_transfer as bt
from scaffold import base_parser, served_shelf, work_folder

from registry_index import layout
from registry_index.http_index import HttpIndex

SIZES = bt.Sizes(
    big_files=4, big_file_mib=16, small_components=100, small_file_bytes=4096, big_runs=3, small_runs=3
)
QUICK = bt.Sizes(
    big_files=2, big_file_mib=2, small_components=20, small_file_bytes=4096, big_runs=1, small_runs=1
)
INDEX_SIZES = (500, 5_000, 50_000)
LOOKUPS = 200


@contextmanager
def http_server(folder: Path) -> Iterator[str]:
    """``python -m http.server`` on a free loopback port serving ``folder``; yields its URL."""
    from shelf.serve_process import free_port, wait_for_port

    port = free_port("127.0.0.1")
    command = [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "-d", str(folder)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port("127.0.0.1", port, process, "python -m http.server")
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


def install_runs(bench: bt.Bench, shelf_url: str, name: str, runs: int) -> list[bt.Sample]:
    samples = []
    for _ in range(runs):
        run = bench.run_dir("install")
        args = [*bt.cli(), "--shelf", shelf_url, "--cache-dir", run / "cache", "install",
                f"{name}@v{bt.VERSION}", "--target", run / "target"]  # fmt: skip
        samples.append(bt.timed(args, bench.env))
        shutil.rmtree(run, ignore_errors=True)
    return samples


def export_runs(bench: bt.Bench, dest: Path) -> list[tuple[str, bt.Sample]]:
    args = [*bt.cli(), "--shelf", bench.git_url, "--cache-dir", bench.work / "export-cache", "export", dest,
            "--with-blobs"]  # fmt: skip
    return [
        ("export --with-blobs (first)", bt.timed(args, bench.env)),
        ("export again, unchanged", bt.timed(args, bench.env)),
    ]


def flat_index(folder: Path, count: int, template: dict) -> list[str]:
    """``count`` components of one version each, one index file per component, as an export lays them out."""
    names = [f"comp_{i:06d}" for i in range(count)]
    for name in names:
        path = folder / layout.index_path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({**template, "name": name}, sort_keys=True, separators=(",", ":")) + "\n")
    return names


def lookups(url: str, names: Sequence[str], cache: Path) -> tuple[float, int]:
    """Seconds for ``LOOKUPS`` random names through a cold HttpIndex, and the entries read."""
    chosen = random.Random(0).sample(list(names), min(LOOKUPS, len(names)))
    index = HttpIndex(url, cache)
    started = time.perf_counter()
    found = sum(len(index.entries(name)) for name in chosen)
    return time.perf_counter() - started, found


def measure_index(work: Path, template: dict) -> list[tuple[int, float, float]]:
    rows = []
    for count in INDEX_SIZES:
        folder = work / f"index-{count}"
        started = time.perf_counter()
        names = flat_index(folder, count, template)
        built = time.perf_counter() - started
        with http_server(folder) as url:
            seconds, found = lookups(url, names, work / f"index-cache-{count}")
        if found != min(LOOKUPS, count):
            raise SystemExit(f"read {found} entries from the {count}-component index")
        rows.append((count, built, seconds))
        shutil.rmtree(folder, ignore_errors=True)
    return rows


def report(rows: list[tuple[str, list[bt.Sample]]], exports, index_rows, command: str, load: str) -> str:
    lines = ["| cold install | median | CPU s | runs (s) |", "|---|---|---|---|"]
    for label, samples in rows:
        runs = ", ".join(f"{s.wall:.2f}" for s in samples)
        lines.append(
            f"| {label} | {bt.fmt_seconds(bt.median(samples))} | {bt.median_cpu(samples):.2f} | {runs} |"
        )
    lines += ["", "| export | wall | CPU s |", "|---|---|---|"]
    lines += [f"| {label} | {bt.fmt_seconds(s.wall)} | {s.cpu:.2f} |" for label, s in exports]
    lines += ["", f"| flat sparse index over HTTP | write the index | {LOOKUPS} lookups, cold | per lookup |",
              "|---|---|---|---|"]  # fmt: skip
    for count, built, seconds in index_rows:
        per = seconds / min(LOOKUPS, count)
        lines.append(
            f"| {count:,} components | {built:.1f} s | {bt.fmt_seconds(seconds)} | {per * 1000:.1f} ms |"
        )
    head = f"Command: `{command}`; load average at the start: {load}.\n\nMachine:\n" + bt.machine_lines(
        bt.machine()
    )
    return head + "\n\n" + "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    quick_help = "small sizes, for a smoke run (writes nothing)"
    return base_parser(__doc__, quick_help, "runs per install scenario (default 3)").parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    sizes = bt.chosen_sizes(args, QUICK, SIZES)
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    with work_folder("static") as (work, env):
        with served_shelf(work) as (shelf, servers):
            bench = bt.Bench(work, sizes, shelf, git_url=servers.git_url, lfs_url=servers.lfs_url, env=env)
            bt.build_shelf(bench)
            dest = work / "public"
            exports = export_runs(bench, dest)
            template = json.loads((dest / layout.index_path(bench.small_target)).read_text().splitlines()[0])
            with http_server(dest) as url:
                rows = []
                for label, name, runs in (
                    (bt.BIG, bt.BIG, sizes.big_runs),
                    ("one small", bench.small_target, sizes.small_runs),
                ):
                    rows.append(
                        (
                            f"{label}, git shelf (git:// + giftless)",
                            install_runs(bench, bench.git_url, name, runs),
                        )
                    )
                    rows.append(
                        (
                            f"{label}, static shelf (http.server)",
                            install_runs(bench, f"sparse+{url}/", name, runs),
                        )
                    )
        index_rows = measure_index(work, template)
    command = ".venv/bin/python benchmarks/bench_static.py" + (" --quick" if args.quick else "")
    text = report(rows, exports, index_rows, command, load)
    print(text)
    if not (args.no_write or args.quick):
        bt.write_section("static", text)
        print(f"wrote {bt.FIGURES}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
