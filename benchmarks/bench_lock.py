"""Lock benchmark: ``cclm-shelf lock`` of the resolver benchmark's 30-component stack, end to end.

The shelf (a bare git repository written with git fast-import, served read-only by ``shelf.serve.start``)
holds the index of ``bench_resolve``: 5,000 components of 20 versions, the 30 of the stack backtracking
(their newest versions sit on different embedders). The stack's 600 versions have real manifests and
release tags; the other components only their index files. A project requiring the stack's first
component is locked once to fill the metadata mirror, then, each run, its lockfile is removed and
``cclm-shelf lock`` runs again as a new process (mirror present). Anchor in the same run: ``python -c
pass`` with the same interpreter; the goal (0.5 s) is absolute.

    .venv/bin/python benchmarks/bench_lock.py [--runs N] [--no-write]
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_resolve import STACK, base, embedder_of, entries, name  # noqa: E402
from bench_transfer import Publication, Row, cli, fast_import, median, report, table, timed, write_section  # noqa: E402
from scaffold import base_parser, served_shelf, work_folder  # noqa: E402

from registry_index import layout  # noqa: E402
from registry_index.index import entry_from_manifest, format_index_file, index_config  # noqa: E402
from registry_index.manifest import Manifest, dump_manifest, manifest_digest  # noqa: E402

COMPONENTS, VERSIONS = 5000, 20
GOAL_S = 0.5
FILE = {"path": "component.weights.h5", "sha256": "0" * 64, "size": 1}


def stack_version(component: int, v: int) -> tuple[dict[str, bytes], object]:
    """The manifest file of one stack version and its index entry."""
    b = base(embedder_of(component, v, VERSIONS))
    version = f"1.{v}.0"
    data = {
        "schema_version": 1,
        "name": name(component),
        "version": version,
        "kind": "component",
        "items": {"model": {"files": [FILE]}},
        "base": {"embedder": b.embedder, "vocab": b.vocab, "max_input_length": 256, "n_chars": 100},
        "requires": [f"{name(component + 1)}>=1.0"] if component < STACK - 1 else [],
    }
    raw = dump_manifest(Manifest.from_dict(data))
    entry = entry_from_manifest(Manifest.from_dict(data), manifest_digest(raw))
    return {layout.manifest_path(name(component), version): raw}, entry


def build_shelf(shelf: Path, lfs_url: str) -> None:
    files: dict[str, bytes] = {layout.INDEX_CONFIG_PATH: index_config()}
    tags = []
    for component in range(COMPONENTS):
        if component < STACK:
            found = [stack_version(component, v) for v in range(VERSIONS)]
            for manifest, _ in found:
                files.update(manifest)
            index = format_index_file([entry for _, entry in found])  # type: ignore[misc]
            tags += [layout.release_tag(name(component), f"1.{v}.0") for v in range(VERSIONS)]
        else:
            index = format_index_file(entries(component, VERSIONS))
        files[layout.index_path(name(component))] = index
    commits = [Publication(files, "bench: the resolver benchmark's index", tags[0])]
    commits += [Publication({}, f"tag {tag}", tag) for tag in tags[1:]]
    fast_import(shelf, commits, lfs_url)


def main(argv: Sequence[str] | None = None) -> int:
    parser = base_parser(__doc__, "3 runs, writes nothing", "runs (default 7)")
    args = parser.parse_args(argv)
    runs = args.runs or (3 if args.quick else 7)
    started = time.perf_counter()
    with work_folder("lock") as (work, env), served_shelf(work) as (shelf, servers):
        project = work / "project"
        project.mkdir()
        (project / "cclm-shelf.toml").write_text(f'requires = ["{name(0)}"]\n', encoding="utf-8")
        build_shelf(shelf, servers.lfs_url)
        print(f"shelf built in {time.perf_counter() - started:.0f} s", flush=True)
        lock = [*cli(), "--shelf", servers.git_url, "--cache-dir", str(work / "cache"), "lock"]
        timed(lock, env, cwd=project)  # fills the mirror
        ours, bare = [], []
        for _ in range(runs):
            (project / "cclm-shelf.lock").unlink()
            ours.append(timed(lock, env, cwd=project))
            bare.append(timed([sys.executable, "-c", "pass"], env))
        pinned = (project / "cclm-shelf.lock").read_text(encoding="utf-8")
    if pinned.count('"1.16.0"') != STACK:  # the newest versions on the shared embedder, after backtracking
        raise SystemExit(f"the lockfile does not pin the {STACK} components at 1.16.0:\n{pinned}")
    rows = [Row(f"cclm-shelf lock, {STACK}-component stack, {COMPONENTS} x {VERSIONS} index, mirror present",
                ours, "python -c pass", bare, f"<= {GOAL_S} s", median(ours) <= GOAL_S)]  # fmt: skip
    print(table(rows))
    if not (args.no_write or args.quick):
        write_section(
            "lock", report(rows, f"Command: `.venv/bin/python benchmarks/bench_lock.py` ({runs} runs).")
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
