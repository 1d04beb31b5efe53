"""Many ``cclm-shelf install`` processes at once, overlapping stacks, one store and one target.

Every process must succeed and every file must verify. A second test kills some of the processes with
``kill -9`` while they run: the locks they held die with them (no stale lock blocks the others), the
survivors succeed, and a final run completes the set.
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.reliability.conftest import record, trials
from tests.reliability.kit import (
    CraftedShelf,
    check_store,
    check_target,
    cli_env,
    sha256,
    stack_files,
    store_blobs,
)
from tests.support.giftless import GiftlessServer

pytestmark = pytest.mark.network

NAMES = ("pa", "pb", "pc", "pd")
FILES_PER_NAME = 3
SEED = 20261126


def _stacks(count: int) -> list[list[str]]:
    """Overlapping requests: each process asks for two neighbours (every component by several)."""
    return [[NAMES[i % len(NAMES)], NAMES[(i + 1) % len(NAMES)]] for i in range(count)]


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Iterator[tuple[CraftedShelf, dict[str, bytes]]]:
    root = tmp_path_factory.mktemp("concurrency")
    with GiftlessServer(root / "giftless", workers=4) as lfs:
        shelf = CraftedShelf.create(root / "shelf.git", lfs_url=lfs.endpoint(), upload_to=lfs.endpoint())
        known: dict[str, bytes] = {}
        for seed, name in enumerate(("pbase", *NAMES), start=1):
            files = stack_files(seed, count=FILES_PER_NAME, size=96 * 1024)
            shelf.publish(name, "0.1.0", files, () if name == "pbase" else ("pbase==0.1.0",))
            known.update({sha256(d): d for d in files.values()})
        yield shelf, known


def _start(shelf: CraftedShelf, stack: list[str], cache: Path, target: Path) -> subprocess.Popen:
    command = [sys.executable, "-m", "shelf.cli", "--shelf", shelf.url, "install", *stack]
    return subprocess.Popen(
        [*command, "--target", str(target)],
        env=cli_env(CCLM_SHELF_CACHE_DIR=str(cache)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def _check_all(cache: Path, target: Path, known: dict[str, bytes]) -> None:
    assert check_target(target) == FILES_PER_NAME * (1 + len(NAMES))
    check_store(cache, known)
    assert len(store_blobs(cache)) == len(known), "every blob is stored exactly once"


def test_parallel_installs_into_one_store_and_one_target(served, tmp_path: Path) -> None:
    shelf, known = served
    processes = trials(8, 16)
    cache, target = tmp_path / "cache", tmp_path / "target"
    running = [_start(shelf, stack, cache, target) for stack in _stacks(processes)]
    results = [(p.wait(timeout=300), p.stderr.read() if p.stderr else "") for p in running]
    good = sum(1 for code, _ in results if code == 0)
    rerun = "pytest tests/reliability/test_concurrency.py -k parallel"
    record("concurrency", f"{processes} parallel installs, one store + target", processes, good, rerun)
    assert good == processes, [err for code, err in results if code]
    _check_all(cache, target, known)


def test_parallel_installs_with_peers_killed(served, tmp_path: Path) -> None:
    shelf, known = served
    processes = trials(8, 16)
    rng = random.Random(SEED)
    doomed = set(rng.sample(range(processes), processes // 3))
    print(f"seed {SEED}: killing processes {sorted(doomed)}")
    cache, target = tmp_path / "cache", tmp_path / "target"
    running = [_start(shelf, stack, cache, target) for stack in _stacks(processes)]
    time.sleep(rng.uniform(0.4, 0.9))
    for index in doomed:
        running[index].send_signal(signal.SIGKILL)
    results = [(p.wait(timeout=300), p.stderr.read() if p.stderr else "") for p in running]
    survivors = [results[i] for i in range(processes) if i not in doomed]
    good = sum(1 for code, _ in survivors if code == 0)
    final = _start(shelf, list(NAMES), cache, target)
    assert final.wait(timeout=300) == 0, final.stderr.read() if final.stderr else ""
    _check_all(cache, target, known)
    rerun = "pytest tests/reliability/test_concurrency.py -k killed"
    case = f"{processes} parallel installs, {len(doomed)} killed: survivors + final run"
    record("concurrency", case, len(survivors) + 1, good + 1, rerun)
    assert good == len(survivors), [err for code, err in survivors if code]
