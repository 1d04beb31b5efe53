"""Transfer benchmark: ``cclm-shelf install`` against git clone + ``git lfs pull`` and against curl.

One shelf (a bare git repository) is served on loopback by ``shelf.serve.start``: git daemon for the
metadata, giftless for the blobs (its storage is the shelf's own ``lfs/objects``). Every scenario talks to
these two servers. The shelf holds:

- ``big_model`` 1.0.0, one component of 8 files x 64 MiB of random bytes;
- ``small_0000`` ... ``small_0499`` 1.0.0, 500 components of two small files each, published one commit
  (and one release tag) each, exactly as ``cclm-shelf publish`` lays them out.

The shelf is written with git fast-import and the blobs straight into ``lfs/objects`` (where giftless
stores an upload), so setting it up costs seconds, not a publish per component.

Measured, median of several runs, each from a fresh cache, target or clone:

1. cold install of big_model with the CLI (no mirror, no blobs) against ``GIT_LFS_SKIP_SMUDGE=1 git clone``
   + ``git lfs pull``, and against 8 parallel ``curl`` downloads of the same objects (hrefs from one batch
   request, not timed); the rows against curl also give the CPU seconds giftless spent serving each side,
   since it shares the machine's cores with the client;
2. warm reinstall of big_model into a new target (blobs and mirror in the cache);
3. one small component: cold (no mirror yet) and with the metadata already mirrored, against clone +
   ``git lfs pull --include=<its folder>``.

    .venv/bin/python benchmarks/bench_transfer.py [--quick] [--runs N] [--workdir DIR] [--no-write]

Results go to stdout and to the generated section of ``benchmarks/TRANSFER_FIGURES.md``.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TypeVar

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from scaffold import FIGURES, base_parser, command_line, served_shelf, work_folder  # noqa: E402

from registry_index import layout  # noqa: E402
from registry_index.index import entry_from_manifest, format_index_file  # noqa: E402
from registry_index.manifest import Manifest, dump_manifest, manifest_digest  # noqa: E402
from registry_index.pointer import LfsPointer, format_pointer  # noqa: E402
from shelf.shelf_objects import mark_verified  # noqa: E402

T = TypeVar("T")
MIB = 1 << 20
VERSION = "1.0.0"
BIG = "big_model"
CHUNK = MIB
BASE = {
    "embedder": "sha256:" + hashlib.sha256(b"bench embedder").hexdigest(),
    "vocab": "sha256:" + hashlib.sha256(b"bench vocab").hexdigest(),
    "max_input_length": 256,
    "n_chars": 120,
}

# What ShelfMirror fetched until it went shallow (every branch and tag, full history), what it fetches now
# (the head of every branch, no tags), and the least an install needs.
FULL_FETCH = (("--prune",), ("+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*", "+HEAD:refs/x/HEAD"))
MIRROR_FETCH = (("--prune", "--depth=1", "--no-tags"), ("+refs/heads/*:refs/heads/*", "+HEAD:refs/x/HEAD"))
SHALLOW_FETCH = (("--depth=1", "--no-tags"), ("+HEAD:refs/heads/main",))
IMPORTS = "import shelf.api, shelf.remote.lfs_http, shelf.resolver, shelf.commands.installing, jsonschema"


@dataclass(frozen=True)
class Sizes:
    """How big the run is: the big component's files, the number of small components, the repeats."""

    big_files: int
    big_file_mib: int
    small_components: int
    small_file_bytes: int
    big_runs: int
    small_runs: int


FULL = Sizes(
    big_files=8, big_file_mib=64, small_components=500, small_file_bytes=4096, big_runs=3, small_runs=5
)
QUICK = Sizes(
    big_files=8, big_file_mib=4, small_components=40, small_file_bytes=4096, big_runs=2, small_runs=2
)


@dataclass(frozen=True)
class Publication:
    """One publish: the files of its commit and its release tag."""

    files: dict[str, bytes]
    message: str
    tag: str


@dataclass(frozen=True)
class Sample:
    """One timed run: wall seconds, and the CPU seconds spent meanwhile by this process and the children
    it reaped (their own children included). CPU time is much less disturbed by a busy machine."""

    wall: float
    cpu: float

    def __add__(self, other: Sample) -> Sample:
        return Sample(self.wall + other.wall, self.cpu + other.cpu)


class Stopwatch:
    """``with Stopwatch() as watch: ...`` then ``watch.sample``."""

    def __enter__(self) -> Stopwatch:
        self._wall, self._cpu = time.perf_counter(), cpu_seconds()
        return self

    def __exit__(self, *exc: object) -> None:
        self.sample = Sample(time.perf_counter() - self._wall, cpu_seconds() - self._cpu)


def cpu_seconds() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


@dataclass(frozen=True)
class Row:
    """One line of the results table: our median against a baseline's, and the goal."""

    scenario: str
    ours: list[Sample]
    baseline_name: str
    baseline: list[Sample]
    goal: str
    met: bool | None
    note: str = ""


@dataclass
class Bench:
    """Everything the scenarios share: paths, servers, environment, the objects of the shelf."""

    work: Path
    sizes: Sizes
    shelf: Path
    git_url: str = ""
    lfs_url: str = ""
    env: dict[str, str] = field(default_factory=dict)
    big_objects: list[LfsPointer] = field(default_factory=list)
    small_target: str = ""
    small_objects: list[LfsPointer] = field(default_factory=list)
    lfs_server_pid: int = 0  # the HTTP front (gunicorn) whose workers run giftless

    def run_dir(self, label: str) -> Path:
        """A new, empty folder for one run, inside the work folder."""
        return Path(tempfile.mkdtemp(prefix=f"{label}-", dir=self.work))


# Machine ------------------------------------------------------------------------------------------------


def machine() -> dict[str, str]:
    """CPU model, cores, RAM and tool versions, for the figures file."""
    model = "unknown"
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        model = next(
            (line.split(":", 1)[1].strip() for line in out.splitlines() if "Model name" in line), model
        )
    except (OSError, subprocess.CalledProcessError):
        pass
    mem_kib = 0
    with open("/proc/meminfo", encoding="ascii") as handle:
        for line in handle:
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
    return {
        "cpu": f"{model}, {os.cpu_count()} cores",
        "ram": f"{mem_kib / MIB:.1f} GiB",
        "python": platform.python_version(),
        "git": _first_line(["git", "--version"]),
        "git-lfs": _first_line(["git", "lfs", "version"]),
        "curl": _first_line(["curl", "--version"]).split(" (")[0],
        "load": " ".join(f"{x:.1f}" for x in os.getloadavg()),
    }


def _first_line(args: Sequence[str]) -> str:
    try:
        return subprocess.run(args, capture_output=True, text=True, check=True).stdout.splitlines()[0]
    except (OSError, subprocess.CalledProcessError, IndexError):
        return "not found"


# Building the shelf -------------------------------------------------------------------------------------


def object_path(shelf: Path, oid: str) -> Path:
    """Where git-lfs (and the served shelf's giftless storage) keeps an object."""
    return shelf / "lfs" / "objects" / oid[0:2] / oid[2:4] / oid


def store_object(shelf: Path, chunks: Iterable[bytes]) -> LfsPointer:
    """Write an object into the shelf's LFS folder, hashed while written; returns its pointer.

    The object is recorded as verified, as giftless records an upload it hashed: otherwise the first batch
    request that names it would hash it on the server (0.3 s for 512 MiB, in one run of the median only).
    """
    tmp = shelf / "lfs" / "tmp" / f"bench-{os.getpid()}-{time.monotonic_ns()}"
    tmp.parent.mkdir(parents=True, exist_ok=True)
    digest, size = hashlib.sha256(), 0
    with tmp.open("wb") as out:
        for chunk in chunks:
            digest.update(chunk)
            out.write(chunk)
            size += len(chunk)
    oid = digest.hexdigest()
    final = object_path(shelf, oid)
    final.parent.mkdir(parents=True, exist_ok=True)
    os.replace(tmp, final)
    mark_verified(shelf, oid)
    return LfsPointer(oid, size)


def random_chunks(size: int) -> Iterable[bytes]:
    """``size`` random bytes (incompressible, as trained weights are), a chunk at a time."""
    left = size
    while left:
        step = min(CHUNK, left)
        yield os.urandom(step)
        left -= step


def publication(name: str, files: dict[str, LfsPointer]) -> Publication:
    """The commit ``cclm-shelf publish`` makes for a component: manifest, pointer files, index file."""
    data = {
        "schema_version": 1,
        "name": name,
        "version": VERSION,
        "kind": "component",
        "summary": "transfer benchmark component",
        "license": "MIT",
        "items": {"model": {"files": [_file_entry(path, p) for path, p in sorted(files.items())]}},
        "base": BASE,
        "provides": {"output_dim": 64},
        "framework": {"cclm-core": ">=0.1"},
    }
    manifest = Manifest.from_dict(data)
    raw = dump_manifest(manifest)
    changes = {layout.manifest_path(name, VERSION): raw}
    for path, pointer in files.items():
        changes[layout.file_path(name, VERSION, "model", path)] = format_pointer(pointer)
    entry = entry_from_manifest(manifest, manifest_digest(raw))
    changes[layout.index_path(name)] = format_index_file([entry])
    return Publication(changes, f"Publish {name} {VERSION}", layout.release_tag(name, VERSION))


def _file_entry(path: str, pointer: LfsPointer) -> dict[str, object]:
    return {"path": path, "sha256": pointer.oid, "size": pointer.size}


def fast_import(shelf: Path, commits: Sequence[Publication], lfs_url: str) -> None:
    """Append one commit (and one lightweight release tag) per publication to ``main``, in one process.

    The first commit also points ``.lfsconfig`` at the LFS server, as ``cclm-shelf serve`` does.
    """
    stamp = int(time.time())
    parts = [b"feature done\n"]
    for number, commit in enumerate(commits, start=1):
        files = dict(commit.files)
        if number == 1:
            files[".lfsconfig"] = f"[lfs]\n\turl = {lfs_url}\n".encode()
        parts.append(_commit_record(number, commit.message, files, stamp, first=number == 1))
        parts.append(f"reset refs/tags/{commit.tag}\nfrom :{number}\n\n".encode())
    parts.append(b"done\n")
    done = subprocess.run(
        ["git", "--git-dir", str(shelf), "fast-import", "--quiet"], input=b"".join(parts), capture_output=True
    )
    if done.returncode != 0:
        raise SystemExit(f"git fast-import failed: {done.stderr.decode(errors='replace')}")


def _commit_record(mark: int, message: str, files: dict[str, bytes], stamp: int, first: bool) -> bytes:
    msg = message.encode()
    lines = [
        b"commit refs/heads/main\n",
        f"mark :{mark}\n".encode(),
        f"committer bench <bench@cclm-shelf.invalid> {stamp + mark} +0000\n".encode(),
        f"data {len(msg)}\n".encode() + msg + b"\n",
    ]
    if first:
        lines.append(b"from refs/heads/main^0\n")
    for path, data in sorted(files.items()):
        lines.append(f"M 100644 inline {path}\ndata {len(data)}\n".encode() + data + b"\n")
    lines.append(b"\n")
    return b"".join(lines)


def build_shelf(bench: Bench) -> None:
    """Write the objects and the publications of the big and the small components into the shelf."""
    sizes = bench.sizes
    started = time.perf_counter()
    big = {
        f"part-{i:02d}.weights.h5": store_object(bench.shelf, random_chunks(sizes.big_file_mib * MIB))
        for i in range(sizes.big_files)
    }
    bench.big_objects = list(big.values())
    commits = [publication(BIG, big)]
    bench.small_target = small_name(sizes.small_components // 2)
    for index in range(sizes.small_components):
        files = small_files(bench.shelf, index, sizes.small_file_bytes)
        commits.append(publication(small_name(index), files))
        if small_name(index) == bench.small_target:
            bench.small_objects = list(files.values())
    fast_import(bench.shelf, commits, bench.lfs_url)
    print(f"shelf built in {time.perf_counter() - started:.1f} s: {len(commits)} publications", flush=True)


def small_name(index: int) -> str:
    return f"small_{index:04d}"


def small_files(shelf: Path, index: int, size: int) -> dict[str, LfsPointer]:
    config = f'{{"component": {index}, "output_dim": 64}}\n'.encode()
    return {
        "component.weights.h5": store_object(shelf, [os.urandom(size)]),
        "component.json": store_object(shelf, [config]),
    }


# Running commands ---------------------------------------------------------------------------------------


def timed(args: Sequence[str | Path], env: dict[str, str], cwd: Path | None = None) -> Sample:
    """Wall and CPU seconds of one command; a failure stops the benchmark with the command's stderr."""
    with Stopwatch() as watch:
        done = subprocess.run([str(a) for a in args], env=env, cwd=cwd, capture_output=True)
    if done.returncode != 0:
        shown = " ".join(map(str, args))
        raise SystemExit(f"`{shown}` failed ({done.returncode}):\n{done.stderr.decode(errors='replace')}")
    return watch.sample


def cli() -> list[str]:
    script = Path(sys.executable).with_name("cclm-shelf")
    return [str(script)] if script.exists() else [sys.executable, "-m", "shelf.cli"]


def install_cmd(bench: Bench, name: str, cache: Path, target: Path) -> list[str]:
    return [*cli(), "--shelf", bench.git_url, "--cache-dir", str(cache), "install", f"{name}@v{VERSION}",
            "--target", str(target)]  # fmt: skip


def check_installed(folder: Path, pointers: Iterable[LfsPointer]) -> None:
    """The files of a finished download have the expected sizes (pointer files would not)."""
    sizes = sorted(
        p.stat().st_size for p in folder.rglob("*") if p.is_file() and p.name != "cclm-manifest.json"
    )
    expected = sorted(p.size for p in pointers)
    if sizes != expected:
        raise SystemExit(f"{folder} holds files of {sizes} bytes, expected {expected}")


# Scenarios ----------------------------------------------------------------------------------------------


def ours_cold_big(bench: Bench) -> tuple[Sample, Sample, Path]:
    """Cold install, then a warm reinstall into a new target with the same cache; returns both times."""
    run = bench.run_dir("ours-big")
    cold = timed(install_cmd(bench, BIG, run / "cache", run / "target"), bench.env)
    check_installed(run / "target" / BIG, bench.big_objects)
    warm = timed(install_cmd(bench, BIG, run / "cache", run / "target2"), bench.env)
    check_installed(run / "target2" / BIG, bench.big_objects)
    return cold, warm, run


def warm_api(bench: Bench, cache: Path) -> Sample:
    """A warm reinstall through the Python API in this process (no interpreter start, imports paid)."""
    from shelf import Shelf

    target = bench.run_dir("api-warm") / "target"
    with Stopwatch() as watch:
        Shelf(bench.git_url, cache_dir=cache).install(f"{BIG}@v{VERSION}", target=target)
    check_installed(target / BIG, bench.big_objects)
    shutil.rmtree(target.parent)  # its hard links would keep the blobs of this run alive on disk
    return watch.sample


def download_only(bench: Bench) -> Sample:
    """Our LFS client alone (batch + 8 parallel verified downloads into a fresh store), in process."""
    from shelf.remote.lfs_http import LfsClient
    from shelf.remote.lfs_protocol import LfsObject
    from shelf.store import BlobStore

    store = BlobStore(bench.run_dir("client"))
    objects = [LfsObject(p.oid, p.size) for p in bench.big_objects]
    with Stopwatch() as watch:
        LfsClient(bench.lfs_url, jobs=8, auth=None).download(objects, store)
    shutil.rmtree(store.root)
    return watch.sample


def git_clone_pull(bench: Bench, name: str, include: str | None = None) -> Sample:
    """GIT_LFS_SKIP_SMUDGE=1 git clone, then git lfs pull (of one folder with ``include``)."""
    run = bench.run_dir("git")
    env = dict(bench.env, GIT_LFS_SKIP_SMUDGE="1")
    pull = ["git", "lfs", "pull", *([f"--include={include}"] if include else [])]
    elapsed = timed(["git", "clone", "--quiet", bench.git_url, run / "clone"], env)
    elapsed += timed(pull, env, cwd=run / "clone")
    expected = bench.big_objects if name == BIG else bench.small_objects
    check_installed(run / "clone" / layout.component_dir(name, VERSION), expected)
    return elapsed


def curl_parallel(bench: Bench) -> Sample:
    """8 curl processes at once, one per object, hrefs and headers from one (untimed) batch request."""
    from shelf.remote.lfs_http import LfsClient
    from shelf.remote.lfs_protocol import LfsObject

    answers = LfsClient(bench.lfs_url, auth=None).batch(
        "download", [LfsObject(p.oid, p.size) for p in bench.big_objects]
    )
    run = bench.run_dir("curl")
    commands = []
    for answer in answers:
        action = answer.actions["download"]
        headers = [arg for key, value in action.header.items() for arg in ("-H", f"{key}: {value}")]
        commands.append(["curl", "-sS", "--fail", "-o", str(run / answer.oid), *headers, action.href])
    with Stopwatch() as watch:
        processes = [subprocess.Popen(c, env=bench.env, stderr=subprocess.PIPE) for c in commands]
        failed = [p.stderr.read().decode() for p in processes if p.wait() != 0 and p.stderr]
    if failed:
        raise SystemExit(f"curl failed: {failed[0]}")
    check_installed(run, bench.big_objects)
    shutil.rmtree(run)
    return watch.sample


def ours_small(bench: Bench, mirrored: Path | None) -> Sample:
    """Install one small component with a new cache; ``mirrored``: a cache whose mirrors are copied in."""
    run = bench.run_dir("ours-small")
    if mirrored is not None:
        shutil.copytree(mirrored / "mirrors", run / "cache" / "mirrors")
    elapsed = timed(install_cmd(bench, bench.small_target, run / "cache", run / "target"), bench.env)
    if not (run / "target" / bench.small_target / "model" / "component.weights.h5").is_file():
        raise SystemExit(f"{bench.small_target} was not installed")
    shutil.rmtree(run)
    return elapsed


def mirrored_cache(bench: Bench) -> Path:
    """A cache that has mirrored the shelf (by installing another small component) but lacks the target."""
    run = bench.run_dir("mirrored")
    timed(install_cmd(bench, small_name(0), run / "cache", run / "target"), bench.env)
    return run / "cache"


def warm_up(bench: Bench) -> None:
    """One install before timing: bytecode cached, servers and page cache warm for every contender."""
    run = bench.run_dir("warm-up")
    timed(install_cmd(bench, small_name(0), run / "cache", run / "target"), bench.env)
    shutil.rmtree(run)


def fetch_new_mirror(bench: Bench, options: Sequence[str], refspecs: Sequence[str]) -> Sample:
    """Seconds to fetch the shelf into a new bare repository with these options and refspecs."""
    mirror = bench.run_dir("mirror") / "mirror.git"
    subprocess.run(["git", "init", "--bare", "--quiet", str(mirror)], env=bench.env, check=True)
    args = ["git", "--git-dir", str(mirror), "fetch", "--quiet", "--no-write-fetch-head", *options]
    elapsed = timed([*args, bench.git_url, *refspecs], bench.env)
    shutil.rmtree(mirror.parent)
    return elapsed


def measure_parts(bench: Bench) -> list[tuple[str, list[Sample]]]:
    """Where a cold install's fixed costs go: interpreter, imports, the metadata mirror's first fetch."""
    parts: dict[str, Callable[[], Sample]] = {
        "python -c pass": lambda: timed([sys.executable, "-c", "pass"], bench.env),
        "python + the install path's imports": lambda: timed([sys.executable, "-c", IMPORTS], bench.env),
        "new mirror: the former fetch (all refs, full history)": lambda: fetch_new_mirror(bench, *FULL_FETCH),
        "new mirror: fetch as ShelfMirror does (branch heads, shallow, no tags)": lambda: fetch_new_mirror(
            bench, *MIRROR_FETCH
        ),
        "new mirror: git fetch --depth=1 --no-tags HEAD": lambda: fetch_new_mirror(bench, *SHALLOW_FETCH),
        "git clone (no LFS content)": lambda: _and_clean(bench, lambda: _clone(bench)),
    }
    return [(label, [work() for _ in range(bench.sizes.small_runs)]) for label, work in parts.items()]


def _clone(bench: Bench) -> Sample:
    run = bench.run_dir("clone")
    return timed(
        ["git", "clone", "--quiet", bench.git_url, run / "clone"], dict(bench.env, GIT_LFS_SKIP_SMUDGE="1")
    )


# Measuring ----------------------------------------------------------------------------------------------


def median(samples: Sequence[Sample]) -> float:
    """Median wall seconds."""
    return statistics.median(s.wall for s in samples)


def median_cpu(samples: Sequence[Sample]) -> float:
    return statistics.median(s.cpu for s in samples)


def lfs_server_cpu(bench: Bench) -> float:
    """CPU seconds the LFS server (the gunicorn front and its giftless workers) has used so far."""
    if not bench.lfs_server_pid:
        return 0.0
    pids = [bench.lfs_server_pid] + [
        int(entry.name)
        for entry in Path("/proc").iterdir()
        if entry.name.isdigit() and _proc_stat(int(entry.name))[1:2] == [str(bench.lfs_server_pid)]
    ]
    ticks = sum(int(f[11]) + int(f[12]) for f in map(_proc_stat, pids) if len(f) > 12)
    return ticks / os.sysconf("SC_CLK_TCK")


def _proc_stat(pid: int) -> list[str]:
    """The fields of /proc/PID/stat after the command name (state, ppid, ...); [] if it is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return []


def served(bench: Bench, work: Callable[[], T], spent: list[float]) -> T:
    """Run ``work``, appending the LFS server's CPU seconds meanwhile to ``spent``."""
    before = lfs_server_cpu(bench)
    try:
        return work()
    finally:
        spent.append(lfs_server_cpu(bench) - before)


def measure_big(bench: Bench) -> list[Row]:
    cold: list[Sample] = []
    warm: list[Sample] = []
    git: list[Sample] = []
    curl: list[Sample] = []
    client: list[Sample] = []
    api: list[Sample] = []
    bare: list[Sample] = []
    giftless: dict[str, list[float]] = {"cold": [], "curl": [], "client": []}
    for number in range(bench.sizes.big_runs):
        print(f"big component, run {number + 1}/{bench.sizes.big_runs}", flush=True)
        c, w, run = served(bench, lambda: ours_cold_big(bench), giftless["cold"])  # warm asks no blobs
        cold.append(c)
        warm.append(w)
        bare.append(timed([sys.executable, "-c", "pass"], bench.env))  # the warm CLI's anchor, same round
        api.append(warm_api(bench, run / "cache"))
        shutil.rmtree(run)
        git.append(_and_clean(bench, lambda: git_clone_pull(bench, BIG)))
        curl.append(served(bench, lambda: curl_parallel(bench), giftless["curl"]))
        client.append(served(bench, lambda: download_only(bench), giftless["client"]))
    rows = big_rows(bench, cold, warm, api, git, curl, client, bare)
    return [_with_server_cpu(row, giftless) for row in rows]


def _with_server_cpu(row: Row, giftless: dict[str, list[float]]) -> Row:
    """The throughput rows say what the LFS server spent too: it shares the CPUs with the client."""
    ours = "client" if row.scenario.startswith("LfsClient") else "cold"
    if "curl" not in row.baseline_name or not giftless[ours]:
        return row
    mine, theirs = statistics.median(giftless[ours]), statistics.median(giftless["curl"])
    spent = f"giftless CPU s {mine:.2f} / {theirs:.2f}"
    return replace(row, note=f"{row.note}; {spent}" if row.note else spent)


def _and_clean(bench: Bench, work: Callable[[], Sample]) -> Sample:
    """Run a scenario, then remove every run folder it left (the clones are as big as the data)."""
    before = set(bench.work.iterdir())
    try:
        return work()
    finally:
        for path in set(bench.work.iterdir()) - before:
            shutil.rmtree(path, ignore_errors=True)


def big_rows(
    bench: Bench,
    cold: list[Sample],
    warm: list[Sample],
    api: list[Sample],
    git: list[Sample],
    curl: list[Sample],
    client: list[Sample],
    bare: list[Sample],
) -> list[Row]:
    total = sum(p.size for p in bench.big_objects) / MIB
    ours_tp, curl_tp, client_tp = total / median(cold), total / median(curl), total / median(client)
    label = f"{bench.sizes.big_files} x {bench.sizes.big_file_mib} MiB"
    return [
        Row(f"cold install, {label}", cold, "git clone + git lfs pull", git, ">= 1.3x faster",
            median(git) / median(cold) >= 1.3),
        Row(f"cold install, {label} (throughput)", cold, "8 parallel curl", curl, ">= 85% of curl",
            ours_tp >= 0.85 * curl_tp,
            f"{ours_tp:.0f} MiB/s vs curl {curl_tp:.0f} MiB/s ({100 * ours_tp / curl_tp:.0f}%)"),
        Row(f"LfsClient.download alone, {label}", client, "8 parallel curl", curl, "(diagnostic)", None,
            f"{client_tp:.0f} MiB/s ({100 * client_tp / curl_tp:.0f}% of curl)"),
        Row("warm reinstall, new target (CLI)", warm, "cold install", cold, "< 2% of cold",
            median(warm) < 0.02 * median(cold), f"{100 * median(warm) / median(cold):.1f}% of cold"),
        Row("warm reinstall, new target (CLI)", warm, "python -c pass", bare, "<= 3x",
            median(warm) <= 3 * median(bare), f"{median(warm) / median(bare):.1f}x python -c pass"),
        Row("warm reinstall, new target (Python API)", api, "cold install", cold, "< 2% of cold",
            median(api) < 0.02 * median(cold), f"{100 * median(api) / median(cold):.1f}% of cold"),
    ]  # fmt: skip


def measure_small(bench: Bench) -> list[Row]:
    folder = layout.component_dir(bench.small_target, VERSION) + "/"
    template = mirrored_cache(bench)
    cold: list[Sample] = []
    warm: list[Sample] = []
    git: list[Sample] = []
    for number in range(bench.sizes.small_runs):
        print(f"one of {bench.sizes.small_components} components, run {number + 1}", flush=True)
        cold.append(ours_small(bench, None))
        warm.append(ours_small(bench, template))
        git.append(_and_clean(bench, lambda: git_clone_pull(bench, bench.small_target, folder)))
    n = bench.sizes.small_components
    return [
        Row(f"1 of {n} components, cold", cold, f"clone + lfs pull --include={folder}", git, ">= 3x faster",
            median(git) / median(cold) >= 3),
        Row(f"1 of {n} components, mirrored", warm, "the same clone + pull", git, ">= 10x faster",
            median(git) / median(warm) >= 10),
    ]  # fmt: skip


# Reporting ----------------------------------------------------------------------------------------------


def fmt_seconds(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.2f} s"


def table(rows: Sequence[Row]) -> str:
    head = "| scenario | cclm-shelf | baseline | baseline time | speed-up | goal | met"
    head += " | CPU s, ours / baseline | notes |"
    lines = [head, "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        ratio = median(r.baseline) / median(r.ours)
        met = {True: "yes", False: "**no**", None: "-"}[r.met]
        lines.append(
            f"| {r.scenario} | {fmt_seconds(median(r.ours))} | {r.baseline_name}"
            f" | {fmt_seconds(median(r.baseline))} | {ratio:.2f}x | {r.goal} | {met}"
            f" | {median_cpu(r.ours):.2f} / {median_cpu(r.baseline):.2f} | {r.note} |"
        )
    return "\n".join(lines)


def runs_detail(rows: Sequence[Row]) -> str:
    lines = []
    for r in rows:
        ours = ", ".join(f"{v.wall:.3f}" for v in r.ours)
        base = ", ".join(f"{v.wall:.3f}" for v in r.baseline)
        lines.append(f"- {r.scenario}: cclm-shelf [{ours}] s; {r.baseline_name} [{base}] s")
    return "\n".join(lines)


def machine_lines(info: dict[str, str]) -> str:
    return "\n".join(f"- {key}: {value}" for key, value in info.items())


def write_section(key: str, body: str, path: Path = FIGURES) -> None:
    """Replace the generated section ``key`` of the figures file (appended when missing)."""
    begin, end = f"<!-- BEGIN {key} (generated) -->", f"<!-- END {key} -->"
    text = path.read_text(encoding="utf-8") if path.exists() else "# Transfer and memory figures\n"
    block = f"{begin}\n{body.rstrip()}\n{end}"
    if begin in text and end in text:
        head, _, rest = text.partition(begin)
        _, _, tail = rest.partition(end)
        text = head + block + tail
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    path.write_text(text, encoding="utf-8")


def parts_table(parts: Sequence[tuple[str, list[Sample]]], bench_sizes: Sizes) -> str:
    shelf = f"{bench_sizes.small_components + 1} publications on the shelf"
    lines = [f"| fixed cost ({shelf}) | median | CPU s | runs (s) |", "|---|---|---|---|"]
    for label, samples in parts:
        runs = ", ".join(f"{v.wall:.3f}" for v in samples)
        lines.append(f"| {label} | {fmt_seconds(median(samples))} | {median_cpu(samples):.2f} | {runs} |")
    return "\n".join(lines)


def report(rows: Sequence[Row], head: str, *extra: str) -> str:
    """A figures section: ``head`` (the command), the machine, the table, ``extra`` parts, every run."""
    parts = [head, "Machine:\n" + machine_lines(machine()), table(rows), *extra]
    return "\n\n".join([*parts, "Every run:\n" + runs_detail(rows)])


# Main ---------------------------------------------------------------------------------------------------


def chosen_sizes(args: argparse.Namespace, quick: Sizes, full: Sizes) -> Sizes:
    """``quick`` or ``full`` as --quick says, with --runs for every scenario when given."""
    sizes = quick if args.quick else full
    return Sizes(**{**sizes.__dict__, "big_runs": args.runs, "small_runs": args.runs}) if args.runs else sizes


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = base_parser(
        __doc__, "small sizes, for a smoke run", "runs per scenario (default: 3 big, 5 small)"
    )
    parser.add_argument("--workdir", type=Path, help="where the shelf and the runs go (default: a temp dir)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    sizes = chosen_sizes(args, QUICK, FULL)
    started = time.perf_counter()
    with work_folder("transfer", args.workdir) as (work, env), served_shelf(work) as (shelf, servers):
        bench = Bench(work, sizes, shelf, git_url=servers.git_url, lfs_url=servers.lfs_url, env=env)
        bench.lfs_server_pid = servers.processes[-1].pid  # the HTTP front: giftless runs in its workers
        build_shelf(bench)
        warm_up(bench)
        setup_s = time.perf_counter() - started
        rows = measure_big(bench) + measure_small(bench)
        parts = parts_table(measure_parts(bench), sizes)
    head = f"Command: `{command_line(__file__, args)}` (setup {setup_s:.0f} s; every row is the median of its"
    head += " runs)."
    text = report(rows, head, parts)
    print(table(rows))
    print(parts)
    print(f"total {time.perf_counter() - started:.0f} s")
    if not (args.no_write or args.quick):  # a smoke run never replaces the figures
        write_section("transfer", text)
        print(f"wrote {FIGURES}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
