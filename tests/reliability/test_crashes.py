"""``kill -9`` of ``cclm-shelf install`` and ``cclm-shelf publish`` at seeded random moments.

After each kill the next run completes, ``cclm-shelf cache verify`` and ``cclm-shelf verify`` find nothing
wrong, and the shelf is consistent: every index entry has its manifest, its tag and its blobs, and ``git
fsck`` is clean. The seeds are printed (``-s`` shows them) so a failing trial can be replayed.
"""

from __future__ import annotations

import json
import os
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
    git_fsck,
    sha256,
    stack_files,
)
from tests.support.fault_proxy import Fault, FaultProxy
from tests.support.giftless import GiftlessServer

pytestmark = pytest.mark.network

SEED_BASE = 20261126


def _cclm(*args: str) -> list[str]:
    return [sys.executable, "-m", "shelf.cli", *args]


def _run(args: list[str], cache: Path, timeout: float = 180) -> subprocess.CompletedProcess:
    done = subprocess.run(
        args, env=cli_env(CCLM_SHELF_CACHE_DIR=str(cache)), capture_output=True, text=True, timeout=timeout
    )
    assert "Traceback" not in done.stderr, done.stderr
    return done


def _kill_after(args: list[str], cache: Path, delay: float, *, group: bool = False) -> int | None:
    """Start a command, SIGKILL it after ``delay`` seconds; its exit code if it finished first.

    ``kill -9 <pid>`` (``group`` False) leaves the command's git children running, as it would for a user:
    they are waited for, so the state checked afterwards is the one a user would find. ``group`` kills the
    whole process group at once (git children included), as an OOM killer or a lost container does.
    """
    process = subprocess.Popen(
        args,
        env=cli_env(CCLM_SHELF_CACHE_DIR=str(cache)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        return process.wait(timeout=delay)
    except subprocess.TimeoutExpired:
        if group:
            os.killpg(process.pid, signal.SIGKILL)
        else:
            process.send_signal(signal.SIGKILL)
        process.wait()
        _wait_for_group(process.pid)
        return None


def _wait_for_group(pgid: int, timeout: float = 60) -> None:
    """Wait until no process of the group is left (orphaned git children finish what they started)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    raise AssertionError(f"processes of group {pgid} still run {timeout}s after the kill")


def _timed(args: list[str], cache: Path) -> float:
    started = time.monotonic()
    done = _run(args, cache)
    assert done.returncode == 0, done.stderr
    return time.monotonic() - started


# Install ---------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def slow_shelf(tmp_path_factory) -> Iterator[tuple[CraftedShelf, dict[str, bytes]]]:
    """A shelf behind giftless whose downloads trickle, so a kill lands mid-download as often as not."""
    root = tmp_path_factory.mktemp("crash-install")
    with GiftlessServer(root / "giftless") as lfs, FaultProxy(lfs.base_url) as proxy:
        shelf = CraftedShelf.create(root / "shelf.git", lfs_url=proxy.endpoint(), upload_to=lfs.endpoint())
        known: dict[str, bytes] = {}
        for seed, name in enumerate(("cbase", "ca", "cb"), start=1):
            files = stack_files(seed, size=256 * 1024)
            shelf.publish(name, "0.1.0", files, () if name == "cbase" else ("cbase==0.1.0",))
            known.update({sha256(d): d for d in files.values()})
        for seed, name in enumerate(("ca", "cb"), start=10):  # 0.2.0: for upgrades in place
            files = stack_files(seed, count=12, size=64 * 1024)
            shelf.publish(name, "0.2.0", files, ("cbase==0.1.0",))
            known.update({sha256(d): d for d in files.values()})
        proxy.add(
            Fault("trickle", method="GET", path="/objects/storage/", times=None, chunk=16384, delay=0.01)
        )
        yield shelf, known


def test_kill_9_during_install_then_the_next_run_completes(slow_shelf, tmp_path: Path) -> None:
    shelf, known = slow_shelf
    count = trials(4, 20)
    install = _cclm("--shelf", shelf.url, "install", "ca", "cb", "--target", "TARGET")
    span = _timed([a.replace("TARGET", str(tmp_path / "probe")) for a in install], tmp_path / "probe-cache")
    good = killed = 0
    for trial in range(count):
        seed = SEED_BASE + trial
        delay = random.Random(seed).uniform(0.3, span)
        cache, target = tmp_path / f"c{trial}", tmp_path / f"t{trial}"
        args = [a.replace("TARGET", str(target)) for a in install]
        print(f"install kill trial {trial}: seed {seed}, kill after {delay:.2f}s of {span:.2f}s")
        killed += _kill_after(args, cache, delay) is None
        check_store(cache, known)  # after the kill: only verified blobs and true prefixes
        done = _run(args, cache)
        assert done.returncode == 0, f"seed {seed}: {done.stderr}"
        assert _run(_cclm("cache", "verify"), cache).returncode == 0
        assert _run(_cclm("verify", "--target", str(target)), cache).returncode == 0
        assert check_target(target) == 3 + 2 * 12  # cbase 0.1.0, ca and cb 0.2.0
        check_store(cache, known)
        good += 1
    record(
        "crashes",
        f"kill -9 during install ({killed} killed before finishing)",
        count,
        good,
        "scripts/reliability.py --only crashes",
    )
    assert good == count


# Publish ---------------------------------------------------------------------------------------------------


def _consistent(repo: Path) -> int:
    """Every index entry has its manifest, tag and blobs; returns how many versions are published."""
    from registry_index import layout
    from registry_index.index import parse_index_file
    from registry_index.manifest import load_manifest, manifest_digest
    from shelf.remote.mirror import ShelfMirror

    git_fsck(repo)
    mirror = ShelfMirror.open(str(repo), cache_dir=repo.parent / "check-cache")
    mirror.refresh()
    head, tags = mirror.head(), mirror.tags()
    versions = 0
    for name in ("tiny_base",):
        path = layout.index_path(name)
        entries = parse_index_file(mirror.read_file(head, path), path) if mirror.exists(head, path) else []
        for entry in entries:
            data = mirror.read_file(head, layout.manifest_path(name, entry.version))
            assert manifest_digest(data) == entry.manifest_digest
            assert layout.release_tag(name, entry.version) in tags
            for _item, f in load_manifest(data).files():
                blob = repo / "lfs" / "objects" / f.sha256[:2] / f.sha256[2:4] / f.sha256
                assert blob.is_file() and sha256(blob.read_bytes()) == f.sha256
            versions += 1
    # A tag without an index entry would block a version forever: there must be none.
    assert {t for t in tags if t.startswith("tiny_base/")} == {f"tiny_base/v{v}" for v in _versions(mirror)}
    return versions


def _versions(mirror) -> list[str]:
    from registry_index import layout
    from registry_index.index import parse_index_file

    path = layout.index_path("tiny_base")
    head = mirror.head()
    return (
        [e.version for e in parse_index_file(mirror.read_file(head, path), path)]
        if mirror.exists(head, path)
        else []
    )


def test_kill_9_during_publish_then_the_next_run_completes(tmp_path_factory, tmp_path: Path) -> None:
    from shelf.source import create_shelf
    from tests.support.shelves import saved_stack

    folder = saved_stack(tmp_path_factory).base
    repo = Path(create_shelf(tmp_path / "shelf.git"))
    count = trials(4, 20)
    publish = _cclm("--shelf", str(repo), "publish", str(folder), "--name", "tiny_base", "--version", "V")
    span = _timed([a.replace("V", "0.0.1") if a == "V" else a for a in publish], tmp_path / "probe-cache")
    good = killed = 0
    for trial in range(count):
        seed = SEED_BASE + 1000 + trial
        delay = random.Random(seed).uniform(0.2, span)
        version = f"0.1.{trial}"
        args = [version if a == "V" else a for a in publish]
        cache = tmp_path / f"c{trial}"
        print(f"publish kill trial {trial}: seed {seed}, kill after {delay:.2f}s of {span:.2f}s")
        group = trial % 2 == 1
        print(f"  killing the {'process group' if group else 'command only'}")
        killed += _kill_after(args, cache, delay, group=group) is None
        _consistent(repo)  # whatever the moment, the shelf is never half-published
        done = _run([*args, "--json"], cache)
        assert done.returncode == 0, f"seed {seed}: {done.stderr}"
        assert json.loads(done.stdout)["version"] == version
        assert _run(_cclm("cache", "verify"), cache).returncode == 0
        good += 1
    assert _consistent(repo) == count + 1
    target = tmp_path / "target"
    done = _run(
        _cclm("--shelf", str(repo), "install", f"tiny_base@v0.1.{count - 1}", "--target", str(target)),
        tmp_path / "inst",
    )
    assert done.returncode == 0, done.stderr
    check_target(target)
    record(
        "crashes",
        f"kill -9 during publish ({killed} killed before finishing)",
        count,
        good,
        "scripts/reliability.py --only crashes",
    )
    assert good == count


def test_kill_9_during_an_upgrade_in_place(slow_shelf, tmp_path: Path) -> None:
    """One target and one store, switched between two versions of a stack; each switch is killed."""
    shelf, known = slow_shelf
    count = trials(4, 20)
    cache, target = tmp_path / "cache", tmp_path / "target"

    def install(version: str) -> list[str]:
        return _cclm(
            "--shelf", shelf.url, "install", f"ca@v{version}", f"cb@v{version}", "--target", str(target)
        )

    _timed(install("0.1.0"), cache)
    _timed(install("0.2.0"), cache)
    span = _timed(install("0.1.0"), cache)  # a switch with every blob in the store: linking and swapping
    good = killed = 0
    for trial in range(count):
        seed = SEED_BASE + 2000 + trial
        version = ("0.2.0", "0.1.0")[trial % 2]
        delay = random.Random(seed).uniform(0.5 * span, span)  # the second half: resolving, linking, swapping
        print(
            f"upgrade kill trial {trial}: seed {seed}, to {version}, kill after {delay:.2f}s of {span:.2f}s"
        )
        killed += _kill_after(install(version), cache, delay) is None
        check_store(cache, known)
        done = _run(install(version), cache)
        assert done.returncode == 0, f"seed {seed}: {done.stderr}"
        assert _run(_cclm("verify", "--target", str(target)), cache).returncode == 0
        record_file = json.loads((target / ".cclm-shelf-install.json").read_text())
        assert {record_file["components"][n]["version"] for n in ("ca", "cb")} == {version}
        assert check_target(target) == 3 + (24 if version == "0.2.0" else 6)
        good += 1
    assert _run(_cclm("cache", "verify"), cache).returncode == 0
    check_store(cache, known)
    rerun = "scripts/reliability.py --only crashes"
    record(
        "crashes",
        f"kill -9 during an upgrade in place ({killed} killed before finishing)",
        count,
        good,
        rerun,
    )
    assert good == count
