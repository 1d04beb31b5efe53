"""Injected faults while publishing: uploads, upload verification and the upload batch.

A publish under a fault ends published (and consistent: index entry, manifest, tag and every blob on the LFS
server) or in a clear error with the shelf exactly as before (no commit, no tag). Publishing again without
the fault then succeeds. Each case gets its own LFS repository so that every blob really has to travel.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from shelf.errors import ShelfError
from tests.reliability.kit import git_fsck, run_cli, sha256
from tests.support.fault_proxy import Fault, FaultProxy
from tests.support.giftless import GiftlessServer

pytestmark = pytest.mark.network

BATCH = r"/objects/batch$"
PUT = r"/objects/storage/[0-9a-f]{64}(\?|$)"
VERIFY = r"/objects/storage/verify(\?|$)"
NAME, VERSION = "pub_base", "0.1.0"


@dataclass(frozen=True)
class Case:
    name: str
    fault: Fault
    outcome: str


def _f(kind: str, method: str, path: str, times: int | None = 1, **kw) -> Fault:
    return Fault(kind, method=method, path=path, times=times, **kw)


CASES = [
    Case("upload batch 429 once", _f("throttle", "POST", BATCH, retry_after="0"), "ok"),
    Case("upload batch 403", _f("status", "POST", BATCH, None, status=403), "AuthError"),
    Case("PUT 500 once", _f("status", "PUT", PUT, status=500, retry_after="0"), "ok"),
    Case("PUT 503 always", _f("status", "PUT", PUT, None, status=503, retry_after="0"), "TransportError"),
    Case("PUT dropped once", _f("drop", "PUT", PUT), "ok"),
    Case("verify 500 once", _f("status", "POST", VERIFY, status=500, retry_after="0"), "ok"),
    Case("verify 404 always", _f("status", "POST", VERIFY, None, status=404), "IntegrityError"),
]


@pytest.fixture(scope="module")
def servers(tmp_path_factory) -> Iterator[tuple[GiftlessServer, FaultProxy]]:
    root = tmp_path_factory.mktemp("publish-faults")
    with GiftlessServer(root / "giftless") as lfs, FaultProxy(lfs.base_url) as proxy:
        yield lfs, proxy


def _refs(repo: Path) -> str:
    return subprocess.run(
        ["git", "for-each-ref"], cwd=repo, capture_output=True, text=True, check=True
    ).stdout


def _api_publish(repo: Path, folder: Path, cache: Path) -> str:
    from tests.support.shelves import publish_folder

    try:
        publish_folder(str(repo), folder, NAME, VERSION, cache_dir=cache)
    except ShelfError as exc:
        assert exc.message
        return type(exc).__name__
    return "ok"


def _cli_publish(repo: Path, folder: Path, cache: Path) -> str:
    args = ("--shelf", str(repo), "publish", str(folder), "--name", NAME, "--version", VERSION, "--json")
    done = run_cli(*args, cache=cache, timeout=180)
    if done.returncode == 0:
        assert json.loads(done.stdout)["version"] == VERSION
        return "ok"
    assert done.stderr.strip()
    return "error"


def _consistent(repo: Path, lfs: GiftlessServer, lfs_repo: str) -> None:
    """The index entry, its manifest, its tag and every blob on the server agree."""
    from registry_index import layout
    from registry_index.index import parse_index_file
    from registry_index.manifest import load_manifest, manifest_digest
    from shelf.remote.mirror import ShelfMirror

    git_fsck(repo)
    mirror = ShelfMirror.open(str(repo), cache_dir=repo.parent / f"{repo.name}-check")
    mirror.refresh()
    head, path = mirror.head(), layout.index_path(NAME)
    (entry,) = parse_index_file(mirror.read_file(head, path), path)
    data = mirror.read_file(head, layout.manifest_path(NAME, VERSION))
    assert manifest_digest(data) == entry.manifest_digest
    assert layout.release_tag(NAME, VERSION) in mirror.tags()
    for _item, f in load_manifest(data).files():
        stored = lfs.object_path("org", lfs_repo, f.sha256)
        assert stored.is_file() and sha256(stored.read_bytes()) == f.sha256


def _slug(text: str) -> str:
    return re.sub(r"\W+", "-", text)


@pytest.mark.parametrize("case", CASES, ids=[_slug(c.name) for c in CASES])
def test_publish_under_a_fault(servers, case: Case, tmp_path_factory, tmp_path: Path, tally) -> None:
    from shelf.source import create_shelf
    from tests.support.shelves import saved_stack

    rerun = f"pytest tests/reliability/test_publish_faults.py -k '{_slug(case.name)}'"
    figures = tally("faults", f"publish: {case.name}", rerun)
    lfs, proxy = servers
    folder = saved_stack(tmp_path_factory).base
    for way in ("api", "cli"):
        with figures.trial():
            lfs_repo = _slug(f"{case.name}-{way}")
            repo = Path(create_shelf(tmp_path / f"{way}.git", lfs_url=proxy.endpoint("org", lfs_repo)))
            cache = tmp_path / f"{way}-cache"
            before = _refs(repo)
            proxy.clear()
            proxy.add(Fault(**{**case.fault.__dict__, "fired": 0}))
            outcome = _api_publish(repo, folder, cache) if way == "api" else _cli_publish(repo, folder, cache)
            assert any(h.fault for h in proxy.hits), "the fault never fired"
            assert outcome == (case.outcome if way == "api" or case.outcome == "ok" else "error")
            if outcome != "ok":
                assert _refs(repo) == before, "a failed publish changed the shelf"
                proxy.clear()
                assert _api_publish(repo, folder, cache) == "ok"
            _consistent(repo, lfs, lfs_repo)
