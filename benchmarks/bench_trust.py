"""Trust benchmark: a cold install of the transfer benchmark's big stack with and without a trust policy.

The shelf is the one ``bench_transfer.py`` builds (served by ``shelf.serve``: git daemon + giftless), with
``big_model`` signed as ``publish --sign-key`` signs it. Each run installs it from a fresh cache into a
fresh target twice, alternating which goes first: once with no trusted key (the signature is still
checked) and once with ``CCLM_SHELF_TRUSTED_KEYS`` naming the signer, and once unsigned for reference.
Wall and CPU seconds (this process and its children) are reported: on a busy machine CPU time is the
steadier figure. The goal: a trust policy adds no more than 10% to the install.

    .venv/bin/python benchmarks/bench_trust.py [--runs N] [--mib M] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import bench_transfer as bt  # noqa: E402
from scaffold import served_shelf, work_folder  # noqa: E402

from registry_index import layout  # noqa: E402
from registry_index.manifest import Manifest  # noqa: E402


def signed(publication: bt.Publication, name: str, key: Path) -> bt.Publication:
    """The same publication with the signature files ``publish --sign-key`` adds."""
    from shelf.signing import sign, signed_digests

    raw = publication.files[layout.manifest_path(name, bt.VERSION)]
    manifest = Manifest.from_validated_bytes(raw)
    digests = signed_digests(raw, [(item, f.path, f.sha256) for item, f in manifest.files()])
    signature = sign(name, digests, key)
    sig, pub = layout.signature_paths(name, bt.VERSION)
    files = {**publication.files, sig: signature.bundle, pub: signature.public_key}
    return bt.Publication(files, publication.message, publication.tag)


def build(bench: bt.Bench, key: Path, mib: int) -> None:
    big = {
        f"part-{i:02d}.weights.h5": bt.store_object(bench.shelf, bt.random_chunks(mib * bt.MIB))
        for i in range(bench.sizes.big_files)
    }
    bench.big_objects = list(big.values())
    unsigned = bt.publication("big_unsigned", big)
    bt.fast_import(bench.shelf, [signed(bt.publication(bt.BIG, big), bt.BIG, key), unsigned], bench.lfs_url)


def cold(bench: bt.Bench, name: str, env: dict[str, str]) -> bt.Sample:
    run = bench.run_dir(f"trust-{name}")
    try:
        sample = bt.timed(bt.install_cmd(bench, name, run / "cache", run / "target"), env)
        bt.check_installed(run / "target" / name, bench.big_objects)
    finally:
        shutil.rmtree(run, ignore_errors=True)
    return sample


def measure(bench: bt.Bench, public: Path, runs: int) -> dict[str, list[bt.Sample]]:
    policy = {**bench.env, "CCLM_SHELF_TRUSTED_KEYS": str(public)}
    cases = {
        "unsigned, no policy": ("big_unsigned", bench.env),
        "signed, no policy": (bt.BIG, bench.env),
        "signed, trust policy": (bt.BIG, policy),
    }
    times: dict[str, list[bt.Sample]] = {label: [] for label in cases}
    for number in range(runs):
        order = list(cases) if number % 2 == 0 else list(reversed(cases))
        for label in order:
            name, env = cases[label]
            times[label].append(cold(bench, name, env))
        print(
            f"run {number + 1}/{runs}: " + ", ".join(f"{k} {v[-1].wall:.2f} s" for k, v in times.items()),
            flush=True,
        )
    return times


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="runs per case (default 3)")
    parser.add_argument("--mib", type=int, default=64, help="size of each of the 8 files (default 64)")
    parser.add_argument("--workdir", type=Path, help="where the shelf and the runs go (default: a temp dir)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    from shelf.signing import keygen

    args = parse_args(argv)
    sizes = bt.Sizes(**{**bt.FULL.__dict__, "big_file_mib": args.mib})
    started = time.perf_counter()
    with work_folder("trust", args.workdir) as (work, env), served_shelf(work) as (shelf, servers):
        bench = bt.Bench(work, sizes, shelf, git_url=servers.git_url, lfs_url=servers.lfs_url, env=env)
        private, public, _fp = keygen(work / "team.pem")
        build(bench, private, args.mib)
        times = measure(bench, public, args.runs)
    print(f"\ncold install, {sizes.big_files} x {args.mib} MiB, median of {args.runs} (every run listed):")
    for what in ("wall", "cpu"):
        base = statistics.median(getattr(t, what) for t in times["unsigned, no policy"])
        for label, samples in times.items():
            values = [getattr(t, what) for t in samples]
            median = statistics.median(values)
            listed = ", ".join(f"{v:.2f}" for v in values)
            change = f"{median / base - 1:+.1%} vs unsigned"
            print(f"  {what:<4} {label:<22} {median:6.2f} s  ({change})  [{listed}]")
    print(f"total {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
