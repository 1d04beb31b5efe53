"""Memory budget: peak RSS of ``cclm-shelf publish`` and ``cclm-shelf install`` with small and large blobs.

A real component is saved once by the core (a tiny Keras model, in a child process so this one never
imports TensorFlow). For each size, its ``component.json`` is copied next to a ``component.weights.h5``
written with h5py that holds one dataset of that size, named like the real file's first Keras weight. Each
folder is published to a shelf served on loopback with a token by ``shelf.serve.start`` (pushed over smart
HTTP, blobs to giftless) and then installed from it over git daemon into a fresh cache, each as its own
``cclm-shelf`` process.

Peak RSS is the ``ru_maxrss`` that ``os.wait4`` reports for the child, which covers the largest process of
its tree (the git commands it runs included). Also measured: ``cclm_core.fingerprint.describe`` of the folder
alone (what publish does to fingerprint the weights), the interpreter with the CLI's imports, and the
giftless workers' high-water mark (VmHWM) after each size.

    .venv/bin/python benchmarks/bench_memory.py [--quick] [--sizes 16,512] [--no-write]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_transfer import BASE, cli, machine, machine_lines, write_section  # noqa: E402
from scaffold import served_shelf, work_folder  # noqa: E402

TOKEN = "bench-memory-token-0123456789abcdef"
BUDGET_MB = 200
FULL_SIZES = (16, 512)
QUICK_SIZES = (4, 32)
ROW_FLOATS = 256 * 1024  # one dataset row: 1 MiB of float32

SAVE_REAL_COMPONENT = """
import sys
import keras
from cclm_core.component import Component

model = keras.Sequential([keras.Input((None, 16)), keras.layers.Dense(8, name="dense")])
Component(model, task="bench", base={base!r}).save(sys.argv[1])
"""

DESCRIBE = "import sys; from cclm_core.fingerprint import describe; describe(sys.argv[1])"
IMPORTS = (
    "import shelf.api, shelf.remote.lfs_http, shelf.publish, shelf.commands.installing, cclm_core.fingerprint"
)

# What publish does besides fingerprinting: snapshot the file into a store, then upload it from there.
SNAPSHOT_AND_UPLOAD = """
import sys
from pathlib import Path
from shelf.credentials import auth_for
from shelf.remote.lfs_http import LfsClient
from shelf.remote.lfs_protocol import LfsObject
from shelf.store import BlobStore

store = BlobStore(Path(sys.argv[2]))
oid = store.add_file(Path(sys.argv[1]))
size = store.path(oid).stat().st_size
report = LfsClient(sys.argv[3], auth=auth_for(sys.argv[3])).upload([(LfsObject(oid, size), store.path(oid))])
sys.exit(0 if report.uploaded else "nothing was uploaded: the server had the object already")
"""


@dataclass(frozen=True)
class Peak:
    """One measured process: what it did, its peak RSS and how long it ran."""

    what: str
    size_mib: int
    peak_mb: float
    seconds: float


def peak_rss(args: Sequence[str], env: dict[str, str], cwd: Path | None = None) -> tuple[float, float]:
    """Run a command to its end; return (peak RSS of its process tree in MB, wall seconds)."""
    with tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        process = subprocess.Popen(list(args), env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(process.pid, 0)
        elapsed = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)  # reaped here; keep Popen from waiting again
        if process.returncode != 0:
            err.seek(0)
            raise SystemExit(f"`{' '.join(args)}` failed: {err.read().decode(errors='replace')}")
    return usage.ru_maxrss * 1024 / 1e6, elapsed  # ru_maxrss is in KiB on Linux


def save_real_component(folder: Path, env: dict[str, str]) -> None:
    """A tiny component saved by the core, for a genuine ``component.json``."""
    script = SAVE_REAL_COMPONENT.format(base=BASE)
    done = subprocess.run([sys.executable, "-c", script, str(folder)], env=env, capture_output=True, cwd=ROOT)
    if done.returncode != 0:
        raise SystemExit(f"saving a component with the core failed: {done.stderr.decode(errors='replace')}")


def first_weight_name(weights: Path) -> str:
    import h5py

    names: list[str] = []
    with h5py.File(weights, "r") as handle:
        handle.visititems(lambda name, obj: names.append(name) if isinstance(obj, h5py.Dataset) else None)
    return sorted(names)[0]


def big_component(real: Path, folder: Path, size_mib: int) -> Path:
    """``real``'s config next to a weights file holding one ``size_mib`` MiB float32 dataset."""
    import h5py
    import numpy as np

    folder.mkdir(parents=True)
    shutil.copy2(real / "component.json", folder / "component.json")
    rng = np.random.default_rng(size_mib)
    with h5py.File(folder / "component.weights.h5", "w") as handle:
        data = handle.create_dataset(
            first_weight_name(real / "component.weights.h5"), (size_mib, ROW_FLOATS), "<f4"
        )
        for row in range(size_mib):  # one MiB at a time, so this process stays small too
            data[row] = rng.standard_normal(ROW_FLOATS, dtype=np.float32)
    return folder


def variant(source: Path, dest: Path) -> Path:
    """A copy with its last bytes changed: same size, an object the server does not have yet."""
    shutil.copyfile(source, dest)
    with dest.open("r+b") as handle:
        handle.seek(-8, os.SEEK_END)
        handle.write(os.urandom(8))
    return dest


def giftless_hwm_mb(master_pid: int) -> float:
    """The largest VmHWM among the gunicorn workers (children of the master), in MB."""
    peak = 0.0
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":", 1) for line in status.read_text().splitlines() if ":" in line)
        except OSError:
            continue
        if fields.get("PPid", "").strip() == str(master_pid) and "VmHWM" in fields:
            peak = max(peak, int(fields["VmHWM"].split()[0]) * 1024 / 1e6)
    return peak


def measure_size(size: int, real: Path, work: Path, servers, env: dict[str, str]) -> list[Peak]:
    """Peaks at one size: publish (pushed over smart HTTP with the token), install (over git://)."""
    http_url, git_url, lfs_url = servers.http_url, servers.git_url, servers.lfs_url
    folder = big_component(real, work / f"component-{size}", size)
    name = f"mem_{size}mib"
    publish = [*cli(), "--shelf", http_url, "--cache-dir", str(work / f"pub-cache-{size}"), "publish",
               str(folder), "--name", name, "--version", "1.0.0", "--without-base"]  # fmt: skip
    install = [*cli(), "--shelf", git_url, "--cache-dir", str(work / f"inst-cache-{size}"), "install",
               f"{name}@v1.0.0", "--target", str(work / f"target-{size}")]  # fmt: skip
    peaks = [
        Peak(
            "describe (fingerprint) alone",
            size,
            *peak_rss([sys.executable, "-c", DESCRIBE, str(folder)], env),
        )
    ]
    peaks.append(Peak("cclm-shelf publish", size, *peak_rss(publish, env)))
    weights = variant(folder / "component.weights.h5", work / f"variant-{size}.bin")
    upload = [sys.executable, "-c", SNAPSHOT_AND_UPLOAD, str(weights), str(work / f"snap-{size}"), lfs_url]
    peaks.append(Peak("publish's snapshot + upload alone (no fingerprint)", size, *peak_rss(upload, env)))
    peaks.append(Peak("cclm-shelf install", size, *peak_rss(install, env)))
    installed = work / f"target-{size}" / name / "component" / "component.weights.h5"
    if installed.stat().st_size != (folder / "component.weights.h5").stat().st_size:
        raise SystemExit(f"{installed} does not have the published size")
    return peaks


def table(peaks: Sequence[Peak], giftless: dict[int, float], floor: float) -> str:
    sizes = sorted({p.size_mib for p in peaks})
    lines = [
        "| process | " + " | ".join(f"{s} MiB blob" for s in sizes) + f" | flat and < {BUDGET_MB} MB? |",
        "|---|" + "---|" * (len(sizes) + 1),
        f"| python + the CLI's imports | {' | '.join(f'{floor:.0f} MB' for _ in sizes)} | (floor) |",
    ]
    for what in dict.fromkeys(p.what for p in peaks):
        row = {p.size_mib: p for p in peaks if p.what == what}
        cells = [f"{row[s].peak_mb:.0f} MB ({row[s].seconds:.1f} s)" for s in sizes]
        values = [row[s].peak_mb for s in sizes]
        ok = max(values) < BUDGET_MB and max(values) - min(values) < 0.1 * BUDGET_MB
        lines.append(f"| {what} | {' | '.join(cells)} | {'yes' if ok else '**no**'} |")
    cells = [f"{giftless[s]:.0f} MB" for s in sizes]
    lines.append(
        f"| giftless worker VmHWM after publish + install | {' | '.join(cells)} | (server, cumulative) |"
    )
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help=f"sizes {QUICK_SIZES} MiB, for a smoke run")
    parser.add_argument("--sizes", help="comma-separated blob sizes in MiB (default 16,512)")
    parser.add_argument("--workdir", type=Path, help="where the shelf and folders go (default: a temp dir)")
    parser.add_argument("--no-write", action="store_true", help="only print")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    sizes = (
        [int(s) for s in args.sizes.split(",")]
        if args.sizes
        else list(QUICK_SIZES if args.quick else FULL_SIZES)
    )
    with work_folder("memory", args.workdir) as (work, env):
        env["CCLM_SHELF_TOKEN"] = TOKEN
        real = work / "real-component"
        save_real_component(real, env)
        floor, _ = peak_rss([sys.executable, "-c", IMPORTS], env)
        peaks: list[Peak] = []
        giftless: dict[int, float] = {}
        with served_shelf(work, token=TOKEN, lfs_config=True) as (_, servers):
            for size in sizes:
                print(f"{size} MiB ...", flush=True)
                peaks += measure_size(size, real, work, servers, env)
                giftless[size] = giftless_hwm_mb(servers.processes[1].pid)
    text = table(peaks, giftless, floor)
    print(text)
    if not (args.no_write or args.quick):  # a smoke run never replaces the figures
        command = ".venv/bin/python benchmarks/bench_memory.py" + (" --quick" if args.quick else "")
        body = f"Command: `{command}`; peak RSS in MB (10^6 bytes), wall time in brackets.\n\n"
        body += f"Machine:\n{machine_lines(machine())}\n\n{text}"
        write_section("memory", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
