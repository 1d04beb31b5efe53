"""Installing from a local shelf (path and file://): layout, integrity, warm and offline installs, lockfiles,
uninstall/list/verify and concurrent installers, through ``Shelf`` and through the ``cclm-shelf`` command."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import pytest

from shelf.api import Shelf
from shelf.errors import ConfigError, IntegrityError, OfflineError, UnsafeContentError
from shelf.install import install_components
from shelf.lockfile import load_lockfile
from shelf.store import BlobStore
from tests.support.lfs_script import ScriptServer
from tests.support.shelves import (
    BASE,
    CHARS,
    MLM,
    VERSION,
    assert_installed,
    cli,
    corrupt,
    lfs_object,
    manifest_files,
    publish_folder,
    tree_snapshot,
)


def _cache() -> Path:
    return Path(os.environ["CCLM_SHELF_CACHE_DIR"])


def _weights_oid(target: Path, name: str) -> str:
    return next(d for rel, (d, _) in manifest_files(target, name).items() if rel.endswith(".h5"))


def _debris(*folders: Path) -> list[Path]:
    return [
        p
        for folder in folders
        if folder.exists()
        for p in folder.rglob("*")
        if p.name.startswith((".staging-", ".trash-")) or p.name.endswith((".incomplete", ".tmp"))
    ]


def test_install_from_a_path_lays_out_every_verified_file(stack_shelf: Path, tmp_path: Path) -> None:
    target = tmp_path / "target"
    report = Shelf(str(stack_shelf)).install(f"{MLM}@v{VERSION}", target=target)
    assert sorted(report.installed) == [(BASE, VERSION), (MLM, VERSION)]
    assert report.objects_fetched == assert_installed(target, BASE) + assert_installed(target, MLM)
    assert sorted(p.name for p in (target / BASE).iterdir()) == [
        "cclm-manifest.json",
        "embedder",
        "preprocessor",
    ]
    assert sorted(p.name for p in (target / MLM).iterdir()) == ["cclm-manifest.json", "component"]
    store = BlobStore(_cache())
    weights = target / MLM / "component" / "component.weights.h5"
    # Installed files are links to the verified blobs, read-only so they are not edited by accident.
    assert weights.stat().st_ino == store.path(_weights_oid(target, MLM)).stat().st_ino
    assert not weights.stat().st_mode & 0o222
    assert not _debris(target, _cache())


def test_install_from_a_file_url_through_the_command(stack_shelf: Path, tmp_path: Path) -> None:
    target = tmp_path / "target"
    url = stack_shelf.as_uri()
    done = cli("--shelf", url, "install", f"{CHARS}@v{VERSION}", "--target", str(target), "--json")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert {c["name"] for c in data["installed"]} == {BASE, CHARS}
    assert_installed(target, CHARS)
    listed = json.loads(cli("list", "--target", str(target), "--json").stdout)
    assert {(c["name"], c["version"], c["source"]) for c in listed["components"]} == {
        (BASE, VERSION, str(stack_shelf)),  # a file:// URL is recorded as the path it names
        (CHARS, VERSION, str(stack_shelf)),
    }
    verified = cli("verify", "--target", str(target))
    assert verified.returncode == 0 and "all match" in verified.stdout


def test_a_blob_with_wrong_bytes_is_refused_and_nothing_is_kept(stack_shelf: Path, tmp_path: Path) -> None:
    target, first = tmp_path / "target", tmp_path / "first"
    Shelf(str(stack_shelf), cache_dir=tmp_path / "other-cache").install(MLM, target=first)
    bad = lfs_object(stack_shelf, _weights_oid(first, MLM))
    original = corrupt(bad)
    store = BlobStore(_cache())
    with pytest.raises(IntegrityError, match=r"does not match|sha256") as info:
        Shelf(str(stack_shelf)).install(MLM, target=target)
    assert _weights_oid(first, MLM) in str(info.value)
    assert not target.exists()
    assert not store.has(_weights_oid(first, MLM))
    assert not _debris(_cache()) and store.verify() == []  # whatever the store kept is verified
    done = cli("--shelf", str(stack_shelf), "install", MLM, "--target", str(target))
    assert done.returncode == 1 and "error:" in done.stderr and not target.exists()
    bad.write_bytes(original)  # repaired: a later run trusts nothing the failed one left
    Shelf(str(stack_shelf)).install(MLM, target=target)
    assert_installed(target, MLM)


class _CountingHashlib(SimpleNamespace):
    """Stands in for ``hashlib`` in the modules that hash and counts sha256 objects made."""

    def __init__(self) -> None:
        super().__init__(calls=0)

    def sha256(self, *args):
        self.calls += 1
        return hashlib.sha256(*args)


def test_warm_install_into_a_new_target_reads_no_blob_and_hashes_nothing(
    stack_shelf: Path, tmp_path: Path, monkeypatch
) -> None:
    Shelf(str(stack_shelf)).install(MLM, CHARS, target=tmp_path / "one")
    # The shelf's blobs are gone: only metadata can still come from it.
    (stack_shelf / "lfs").rename(tmp_path / "lfs-away")
    counter = _CountingHashlib()
    for module in ("shelf.blob_writer", "shelf.fsutil"):  # every sha256 the install path could make
        monkeypatch.setattr(f"{module}.hashlib", counter)
    report = Shelf(str(stack_shelf)).install(MLM, CHARS, target=tmp_path / "two")
    assert sorted(report.installed) == [(BASE, VERSION), (CHARS, VERSION), (MLM, VERSION)]
    assert report.objects_fetched == 0 and counter.calls == 0
    for name in (BASE, MLM, CHARS):
        one, two = tree_snapshot(tmp_path / "one" / name), tree_snapshot(tmp_path / "two" / name)
        # Same blobs: every weight file of both targets is one inode in the store.
        assert {k: v for k, v in one.items() if k.endswith(".h5")} == {
            k: v for k, v in two.items() if k.endswith(".h5")
        }


def test_reinstall_into_the_same_target_changes_nothing(stack_shelf: Path, tmp_path: Path) -> None:
    target = tmp_path / "target"
    Shelf(str(stack_shelf)).install(MLM, target=target)
    before = {p: p.stat().st_mtime_ns for p in target.rglob("*") if p.is_file()}
    record = (target / ".cclm-shelf-install.json").read_bytes()
    report = Shelf(stack_shelf.as_uri()).install(MLM, target=target)  # the same shelf as a file:// URL
    assert report.installed == [] and sorted(report.unchanged) == [(BASE, VERSION), (MLM, VERSION)]
    assert {p: p.stat().st_mtime_ns for p in target.rglob("*") if p.is_file()} == before
    assert (target / ".cclm-shelf-install.json").read_bytes() == record
    done = cli("--shelf", str(stack_shelf), "install", MLM, "--target", str(target))
    assert done.returncode == 0 and f"unchanged {MLM} {VERSION}" in done.stdout


def test_offline_installs_from_the_store_and_the_mirror(stack_shelf: Path, tmp_path: Path) -> None:
    Shelf(str(stack_shelf)).install(MLM, target=tmp_path / "online")
    away = tmp_path / "shelf-away"
    stack_shelf.rename(away)  # the shelf is unreachable now
    report = Shelf(str(stack_shelf), offline=True).install(MLM, target=tmp_path / "offline")
    assert sorted(report.installed) == [(BASE, VERSION), (MLM, VERSION)]
    assert_installed(tmp_path / "offline", MLM)
    env = {"CCLM_SHELF_OFFLINE": "1"}
    done = cli("--shelf", str(stack_shelf), "install", MLM, "--target", str(tmp_path / "env"), env=env)
    assert done.returncode == 0, done.stderr
    assert_installed(tmp_path / "env", BASE)
    done = cli(
        "--offline", "--shelf", stack_shelf.as_uri(), "install", MLM, "--target", str(tmp_path / "flag")
    )
    assert done.returncode == 0, done.stderr
    assert_installed(tmp_path / "flag", MLM)


def test_offline_with_a_blob_missing_names_it_and_writes_nothing(stack_shelf: Path, tmp_path: Path) -> None:
    Shelf(str(stack_shelf)).install(f"{BASE}@v{VERSION}", target=tmp_path / "online")
    target = tmp_path / "offline"
    with pytest.raises(OfflineError) as info:
        Shelf(str(stack_shelf), offline=True).install(MLM, target=target)
    assert f"{MLM} {VERSION}: component/component.weights.h5" in str(info.value)
    assert BASE not in str(info.value)  # what the store has is not reported missing
    assert not target.exists()
    done = cli(
        "--shelf", str(stack_shelf), "install", MLM, "--target", str(target), env={"CCLM_SHELF_OFFLINE": "1"}
    )
    assert done.returncode == 1 and "offline" in done.stderr and "component.weights.h5" in done.stderr
    assert not target.exists()


def test_install_without_arguments_follows_the_lockfile_only(
    stack_shelf: Path, tmp_path: Path, tiny_stack
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "cclm-shelf.toml").write_text(f'shelves = ["{stack_shelf}"]\nrequires = ["{MLM}>=0.1"]\n')
    assert cli("lock", cwd=project).returncode == 0
    publish_folder(str(stack_shelf), tiny_stack.mlm, MLM, "0.2.0", [f"{BASE}=={VERSION}"], cache_dir=_cache())
    assert (MLM, "0.2.0") in Shelf(str(stack_shelf)).install(MLM, target=tmp_path / "fresh").installed
    done = cli("install", "--json", cwd=project)
    assert done.returncode == 0, done.stderr
    assert {(c["name"], c["version"]) for c in json.loads(done.stdout)["installed"]} == {
        (BASE, VERSION),
        (MLM, VERSION),
    }
    from shelf.yanking import yank

    yank(Shelf(str(stack_shelf)).source(), MLM, VERSION, "superseded")
    lock = load_lockfile(project / "cclm-shelf.lock")
    report = Shelf(str(stack_shelf)).install_locked(lock, target=tmp_path / "locked")
    assert sorted(report.installed) == [(BASE, VERSION), (MLM, VERSION)]
    assert_installed(tmp_path / "locked", MLM)
    done = cli("install", "--frozen", "--target", str(tmp_path / "frozen"), cwd=project)
    assert done.returncode == 0, done.stderr
    assert json.loads((tmp_path / "frozen" / MLM / "cclm-manifest.json").read_text())["version"] == VERSION


def test_uninstall_list_and_verify(stack_shelf: Path, tmp_path: Path) -> None:
    target = tmp_path / "target"
    Shelf(str(stack_shelf)).install(MLM, CHARS, target=target)
    assert cli("verify", "--target", str(target)).returncode == 0
    replaced = target / CHARS / "component" / "component.json"
    replaced.unlink()
    replaced.write_text("{}")
    edited = target / MLM / "component" / "component.weights.h5"
    os.chmod(edited, 0o644)
    with edited.open("r+b") as fh:  # in place: through the link, into the store's copy too
        fh.write(b"\0\0\0\0")
    done = cli("verify", "--target", str(target), "--json")
    assert done.returncode == 1
    problems = json.loads(done.stdout)["problems"]
    assert sorted(p.split(":")[0] for p in problems) == [
        f"{CHARS}/component/component.json",
        f"{MLM}/component/component.weights.h5",
    ]
    report = Shelf(str(stack_shelf)).install(MLM, CHARS, target=target)
    assert sorted(report.installed) == [(CHARS, VERSION), (MLM, VERSION)]
    assert report.objects_fetched == 1  # the damaged blob was dropped from the store and fetched again
    assert cli("verify", "--target", str(target)).returncode == 0
    assert_installed(target, MLM)
    done = cli("uninstall", CHARS, "--target", str(target))
    assert done.returncode == 0 and f"removed {CHARS} {VERSION}" in done.stdout
    assert not (target / CHARS).exists()
    listed = json.loads(cli("list", "--target", str(target), "--json").stdout)["components"]
    assert [c["name"] for c in listed] == [BASE, MLM]
    done = cli("uninstall", CHARS, "--target", str(target))
    assert done.returncode == 1 and "not installed" in done.stderr
    done = cli("uninstall", CHARS, "--target", str(tmp_path / "nowhere"))
    assert done.returncode == 1 and "no such folder" in done.stderr and not (tmp_path / "nowhere").exists()


@pytest.mark.slow
def test_eight_processes_install_overlapping_stacks_at_once(stack_shelf: Path, tmp_path: Path) -> None:
    target = tmp_path / "target"
    stacks = [[MLM], [CHARS], [MLM, CHARS], [BASE], [CHARS, MLM], [MLM], [BASE, CHARS], [CHARS]]
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root)}
    processes = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "shelf.cli",
                "--shelf",
                str(stack_shelf),
                "install",
                *names,
                "--target",
                str(target),
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for names in stacks
    ]
    outcomes = [(p.wait(timeout=120), p.stderr.read() if p.stderr else "") for p in processes]
    for process in processes:
        for stream in (process.stdout, process.stderr):
            if stream:
                stream.close()
    assert all(code == 0 for code, _ in outcomes), outcomes
    for name in (BASE, MLM, CHARS):
        assert_installed(target, name)
    done = cli("verify", "--target", str(target), "--json")
    assert done.returncode == 0 and json.loads(done.stdout)["files"] == 7
    assert not _debris(target, _cache())


@dataclass(frozen=True)
class _File:
    item: str
    path: str
    sha256: str
    size: int


@dataclass(frozen=True)
class _Spec:
    name: str
    version: str
    source: str
    manifest_digest: str
    files: tuple[_File, ...]


@pytest.mark.parametrize(
    "path", ["../../escaped.bin", "/etc/escaped.bin", "a/../../b.bin", "C:evil.bin", "a\\b.bin"]
)
def test_a_hostile_path_in_a_lockfile_is_refused_before_anything_moves(path: str, tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "cache")
    source = tmp_path / "blob.bin"
    source.write_bytes(b"weights")
    oid = store.add_file(source)
    spec = _Spec("evil", "1.0.0", "nowhere", "sha256:" + "0" * 64, (_File("component", path, oid, 7),))
    before = tree_snapshot(tmp_path)
    with pytest.raises(UnsafeContentError, match="unsafe path"):
        install_components([spec], target=tmp_path / "target", store=store, transports={})
    assert tree_snapshot(tmp_path) == before


def test_a_target_that_is_a_file_is_a_clear_error(stack_shelf: Path, tmp_path: Path) -> None:
    target = tmp_path / "target"
    target.write_text("not a folder")
    with pytest.raises(ConfigError, match="as an install folder"):
        Shelf(str(stack_shelf)).install(MLM, target=target)
    assert target.read_text() == "not a folder"
    done = cli("--shelf", str(stack_shelf), "install", MLM, "--target", str(target))
    assert done.returncode == 2 and "is a file" in done.stderr
    # the default folder .cclm, or a folder under a file: the file in the way is named, not errno's words
    (tmp_path / ".cclm").write_text("mine")
    default = cli("--shelf", str(stack_shelf), "install", MLM, cwd=tmp_path)
    assert default.returncode == 2
    assert (
        default.stderr.splitlines()[0]
        == "error: cannot use .cclm as an install folder: .cclm is a file, not a folder"
    )
    under = cli("--shelf", str(stack_shelf), "install", MLM, "--target", str(target / "sub"))
    assert f"{target} is a file, not a folder" in under.stderr.splitlines()[0]
    assert target.read_text() == "not a folder" and (tmp_path / ".cclm").read_text() == "mine"


def test_debris_of_an_interrupted_run_and_a_damaged_record_are_not_trusted(
    stack_shelf: Path, tmp_path: Path
) -> None:
    target = tmp_path / "target"
    Shelf(str(stack_shelf)).install(MLM, target=target)
    (target / f".staging-{MLM}-0badf00d" / "component").mkdir(parents=True)
    (target / f".trash-{BASE}-0badf00d").mkdir()
    (target / ".cclm-shelf-install.json").write_text("{ not json")
    (target / MLM / "component" / "component.json").unlink()
    report = Shelf(str(stack_shelf)).install(MLM, target=target)
    assert sorted(report.installed) == [(BASE, VERSION), (MLM, VERSION)]  # nothing taken on trust
    assert sorted(p.name for p in target.iterdir()) == [
        ".cclm-shelf-install.json",
        ".cclm-shelf-trash",
        ".install.lock",
        BASE,
        MLM,
    ]
    # Without a record nothing proves the old folders untouched: they were moved aside, not deleted.
    assert sorted(p.name.split("-")[0] for p in (target / ".cclm-shelf-trash").iterdir()) == [BASE, MLM]
    assert_installed(target, MLM)
    assert cli("verify", "--target", str(target)).returncode == 0


def _range_server(data: bytes) -> ScriptServer:
    server = ScriptServer()  # honours Range requests (206) and records each GET's Range header
    server.add(data)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _bad_partial(store: BlobStore, oid: str) -> Path:
    partial = store.path(oid).with_name(oid + ".incomplete")
    partial.parent.mkdir(parents=True)
    partial.write_bytes(b"\xff" * 20_000)  # left by a crash, and wrong
    return partial


@pytest.mark.network
def test_a_resumed_partial_that_does_not_verify_is_downloaded_again_from_byte_zero(tmp_path: Path) -> None:
    from shelf.remote.lfs_http import LfsClient

    data = os.urandom(50_000)
    oid = hashlib.sha256(data).hexdigest()
    server = _range_server(data)
    store = BlobStore(tmp_path / "cache")
    _bad_partial(store, oid)
    spec = _Spec("blob", "1.0.0", "srv", "sha256:" + "1" * 64, (_File("component", "w.bin", oid, len(data)),))
    endpoint = f"http://127.0.0.1:{server.server_port}/org/shelf.git/info/lfs"
    try:
        report = install_components(
            [spec], target=tmp_path / "target", store=store, transports={"srv": LfsClient(endpoint)}
        )
    finally:
        server.shutdown()
        server.server_close()
    assert server.ranges == ["bytes=20000-", None]  # resumed, refused, then fetched whole
    assert report.installed == [("blob", "1.0.0")]
    assert (tmp_path / "target" / "blob" / "component" / "w.bin").read_bytes() == data


@pytest.mark.network
def test_the_lfs_client_alone_recovers_from_a_wrong_partial(tmp_path: Path) -> None:
    from shelf.remote.lfs_http import LfsClient
    from shelf.remote.lfs_protocol import LfsObject

    data = os.urandom(50_000)
    server = _range_server(data)
    store = BlobStore(tmp_path / "cache")
    obj = LfsObject(hashlib.sha256(data).hexdigest(), len(data))
    _bad_partial(store, obj.oid)
    try:
        LfsClient(f"http://127.0.0.1:{server.server_port}/org/shelf.git/info/lfs").download([obj], store)
    finally:
        server.shutdown()
        server.server_close()
    assert store.path(obj.oid).read_bytes() == data
