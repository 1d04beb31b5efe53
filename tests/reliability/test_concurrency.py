"""Many ``cclm-shelf install`` processes at once, overlapping stacks, one store and one target."""

from __future__ import annotations

import subprocess
import sys
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


def _stacks(count: int) -> list[list[str]]:
    """Overlapping requests: each process asks for two neighbours (every component by several)."""
    return [[NAMES[i % len(NAMES)], NAMES[(i + 1) % len(NAMES)]] for i in range(count)]


def test_parallel_installs_into_one_store_and_one_target(tmp_path: Path) -> None:
    processes = trials(8, 16)
    with GiftlessServer(tmp_path / "giftless", workers=4) as lfs:
        shelf = CraftedShelf.create(tmp_path / "shelf.git", lfs_url=lfs.endpoint())
        shelf.lfs_endpoint = lfs.endpoint()
        known: dict[str, bytes] = {}
        for seed, name in enumerate(("pbase", *NAMES), start=1):
            files = stack_files(seed, size=96 * 1024)
            shelf.publish(name, "0.1.0", files, () if name == "pbase" else ("pbase==0.1.0",))
            known.update({sha256(d): d for d in files.values()})
        cache, target = tmp_path / "cache", tmp_path / "target"
        env = cli_env(CCLM_SHELF_CACHE_DIR=str(cache))
        running = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "shelf.cli",
                    "--shelf",
                    shelf.url,
                    "install",
                    *stack,
                    "--target",
                    str(target),
                ],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for stack in _stacks(processes)
        ]
        results = [(p.wait(timeout=300), p.stderr.read() if p.stderr else "") for p in running]
    good = sum(1 for code, _ in results if code == 0)
    record(
        "concurrency",
        f"{processes} parallel installs, one store + target",
        processes,
        good,
        "pytest tests/reliability/test_concurrency.py",
    )
    assert good == processes, [err for code, err in results if code]
    assert check_target(target) == 3 * (1 + len(NAMES))
    check_store(cache, known)
    assert len(store_blobs(cache)) == len(known), "every blob is stored exactly once"
