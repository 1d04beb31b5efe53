"""Publishing to a real local shelf: what lands there, immutability, yanking, refusals, all-or-nothing."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from registry_index import layout
from registry_index.index import parse_index_file
from registry_index.manifest import load_manifest, manifest_digest
from registry_index.pointer import parse_pointer
from shelf.api import Shelf
from shelf.errors import AuthError, PublishError, TransportError
from shelf.publish import PackageInfo, publish
from shelf.remote.mirror import ShelfMirror
from shelf.source import ShelfSource, create_shelf
from tests.shelf.conftest import (
    BASE,
    MIXED,
    MLM,
    OTHER_BASE,
    OTHER_MLM,
    append_a_byte,
    lfs_objects,
    publish_args,
    publish_folder,
    shelf_refs,
    tampering_store,
)


def git(shelf: Path, *args: str) -> str:
    done = subprocess.run(["git", f"--git-dir={shelf}", *args], check=True, capture_output=True)
    return done.stdout.decode()


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# -- what a publish writes -------------------------------------------------------------------------------


def test_publish_commits_manifest_pointers_index_and_tag(cli, shelf_path, saved_models):
    result = cli("--shelf", shelf_path, *publish_args(saved_models / BASE, "base"), "--json")
    assert result.code == 0, result.err
    report = result.json()
    tag_commit = git(shelf_path, "rev-parse", "base/v0.1.0^{commit}").strip()
    assert report["commit"] == tag_commit == git(shelf_path, "rev-parse", "main").strip()

    data = git_bytes(shelf_path, tag_commit, layout.manifest_path("base", "0.1.0"))
    manifest = load_manifest(data)  # validates against the schema
    assert manifest_digest(data) == report["manifest_digest"]
    assert manifest.kind == "embedder" and manifest.name == "base" and manifest.version == "0.1.0"
    from cclm_core.fingerprint import describe

    assert manifest.base.embedder == describe(saved_models / BASE / "embedder")["fingerprint"]

    index = parse_index_file(
        git_bytes(shelf_path, tag_commit, layout.index_path("base")), layout.index_path("base")
    )
    assert [(e.version, e.manifest_digest) for e in index] == [("0.1.0", report["manifest_digest"])]

    originals = {
        f"{item}/{p.relative_to(saved_models / BASE / item).as_posix()}": p
        for item in ("preprocessor", "embedder")
        for p in (saved_models / BASE / item).rglob("*")
        if p.is_file()
    }
    assert {f"{item}/{f.path}" for item, f in manifest.files()} == set(originals)
    for item, entry in manifest.files():
        pointer = parse_pointer(
            git_bytes(shelf_path, tag_commit, layout.file_path("base", "0.1.0", item, entry.path))
        )
        original = originals[f"{item}/{entry.path}"]
        assert (
            (pointer.oid, pointer.size)
            == (entry.sha256, entry.size)
            == (sha256(original), original.stat().st_size)
        )
        stored = shelf_path / "lfs" / "objects" / pointer.oid[:2] / pointer.oid[2:4] / pointer.oid
        assert stored.read_bytes() == original.read_bytes()


def git_bytes(shelf: Path, commit: str, path: str) -> bytes:
    return subprocess.run(
        ["git", f"--git-dir={shelf}", "show", f"{commit}:{path}"], check=True, capture_output=True
    ).stdout


def test_component_records_its_requirement_and_base(stocked_shelf, saved_models):
    source = ShelfSource(str(stocked_shelf))
    source.refresh()
    base, mlm = source.entry("base", "0.1.0"), source.entry("mlm", "0.1.0")
    assert mlm.kind == "component" and list(mlm.requires) == ["base==0.1.0"]
    assert mlm.base.embedder == base.base.embedder
    assert set(source.mirror.tags()) >= {"base/v0.1.0", "mlm/v0.1.0"}


def test_name_and_version_from_the_publish_file(cli, shelf_path, models):
    publish_folder(shelf_path, models / BASE, "base", "0.1.0")  # the base the component needs
    (models / MLM / "cclm-publish.toml").write_text(
        'name = "from_file"\nversion = "1.2.3"\nsummary = "named in the folder"\n', encoding="utf-8"
    )
    result = cli("--shelf", shelf_path, "publish", models / MLM)
    assert result.code == 0, result.err
    assert "published from_file 1.2.3" in result.out
    assert f"install it: cclm-shelf --shelf {shelf_path} install from_file@v1.2.3" in result.out
    assert "from_file/v1.2.3" in git(shelf_path, "tag")
    files = git(shelf_path, "ls-tree", "-r", "--name-only", "main", "components/from_file/1.2.3/")
    assert "cclm-publish.toml" not in files and "component.weights.h5" in files


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name = [unclosed", "cclm-publish.toml is not valid TOML"),
        ('name = "x"\nversion = 1', "'version' must be a string"),
        ('name = "x"\nversion = "0.1.0"\nrequires = "base==0.1.0"', "'requires' must be a list"),
        ('name = "x"\nversion = "0.1.0"\nrequires = [1]', "every entry of 'requires' must be a string"),
    ],
    ids=["toml", "version-type", "requires-type", "requires-entry"],
)
def test_invalid_publish_file_is_refused(cli, shelf_path, models, text, message):
    (models / BASE / "cclm-publish.toml").write_text(text, encoding="utf-8")
    result = cli("--shelf", shelf_path, "publish", models / BASE)
    assert result.code == 1 and "error: " in result.err and message in result.err


# -- immutability and yanking ----------------------------------------------------------------------------


def test_identical_republish_is_a_no_op(cli, stocked_shelf, saved_models):
    before = shelf_refs(stocked_shelf)
    result = cli("--shelf", stocked_shelf, *publish_args(saved_models / BASE, "base"))
    assert result.code == 0
    assert "identical content; nothing to do" in result.out
    assert shelf_refs(stocked_shelf) == before


def test_same_version_with_other_content_is_refused(cli, stocked_shelf, saved_models):
    before = shelf_refs(stocked_shelf)
    result = cli("--shelf", stocked_shelf, *publish_args(saved_models / OTHER_BASE, "base"))
    assert result.code == 1
    assert "error: base 0.1.0 is already published with different content" in result.err
    assert "cclm-shelf yank base@0.1.0" in result.err
    assert shelf_refs(stocked_shelf) == before


def test_yanked_version_is_skipped_and_marked(cli, stocked_shelf, saved_models):
    publish_folder(stocked_shelf, saved_models / BASE, "base", "0.2.0")
    assert Shelf(str(stocked_shelf)).resolve(["base"]).components["base"].version == "0.2.0"
    result = cli("--shelf", stocked_shelf, "yank", "base@0.2.0", "--reason", "wrong vocabulary")
    assert result.code == 0, result.err
    assert Shelf(str(stocked_shelf)).resolve(["base"]).components["base"].version == "0.1.0"
    shown = cli("--shelf", stocked_shelf, "show", "base")
    assert "yanked: wrong vocabulary" in shown.out
    one = cli("--shelf", stocked_shelf, "show", "base@0.2.0", "--json").json()
    assert one["yanked"] is True and one["version"] == "0.2.0"


def test_yank_of_an_unknown_version_is_an_error(cli, stocked_shelf):
    result = cli("--shelf", stocked_shelf, "yank", "base@9.9.9", "--reason", "x")
    assert result.code == 1 and "error: base 9.9.9 is not published" in result.err
    bad = cli("--shelf", stocked_shelf, "yank", "base", "--reason", "x")
    assert bad.code == 2 and "is not NAME@VERSION" in bad.err


# -- refusals leave the shelf as it was ------------------------------------------------------------------


def _symlink_inside(models: Path) -> Path:
    (models / MLM / "extra.json").symlink_to(models / MLM / "component.json")
    return models / MLM


def _symlink_escaping(models: Path) -> Path:
    outside = models.parent / "secret.txt"
    outside.write_text("not part of the model", encoding="utf-8")
    (models / MLM / "secret.txt").symlink_to(outside)
    return models / MLM


def _item_folder_escaping(models: Path) -> Path:
    bundle = models / "bundle"
    bundle.mkdir()
    (bundle / "embedder").symlink_to(models / BASE / "embedder", target_is_directory=True)
    return bundle


def _fifo(models: Path) -> Path:
    os.mkfifo(models / MLM / "pipe")
    return models / MLM


def _stray_file(models: Path) -> Path:
    (models / BASE / "notes.txt").write_text("a loose file beside the items", encoding="utf-8")
    return models / BASE


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (_symlink_inside, "refusing to publish the symbolic link"),
        (_symlink_escaping, "refusing to publish the symbolic link"),
        (_item_folder_escaping, "is not a saved item folder"),
        (_fifo, "refusing to publish the special file"),
        (_stray_file, "is not a saved item folder"),
        (lambda models: models / MIXED, "disagree on the embedder"),
    ],
    ids=["symlink", "symlink-outside", "item-folder-link", "fifo", "stray-file", "mixed-bases"],
)
def test_unsafe_or_inconsistent_folders_are_refused(cli, shelf_path, models, damage, message):
    folder = damage(models)
    before = shelf_refs(shelf_path)
    result = cli("--shelf", shelf_path, "publish", folder, "--name", "thing", "--version", "0.1.0")
    assert result.code == 1
    assert "error: " in result.err and message in result.err
    assert shelf_refs(shelf_path) == before and lfs_objects(shelf_path) == []


def test_requirement_missing_from_the_shelf_is_refused(cli, shelf_path, saved_models):
    result = cli("--shelf", shelf_path, *publish_args(saved_models / MLM, "mlm"), "--requires", "base==0.1.0")
    assert result.code == 1
    assert "error: mlm 0.1.0 cannot be installed from" in result.err and "base" in result.err
    assert "mlm" not in git(shelf_path, "tag")


def test_requirement_on_another_embedder_is_refused(cli, shelf_path, saved_models):
    publish_folder(shelf_path, saved_models / OTHER_BASE, "base", "0.1.0")
    before = shelf_refs(shelf_path)
    result = cli("--shelf", shelf_path, *publish_args(saved_models / MLM, "mlm"), "--requires", "base==0.1.0")
    assert result.code == 1 and "error: mlm 0.1.0 cannot be installed" in result.err
    assert "embedder" in result.err
    assert shelf_refs(shelf_path) == before
    # The component trained on that embedder is accepted.
    ok = cli(
        "--shelf", shelf_path, *publish_args(saved_models / OTHER_MLM, "mlm"), "--requires", "base==0.1.0"
    )
    assert ok.code == 0, ok.err


@pytest.mark.parametrize(
    ("args", "message", "code"),
    [
        (["--name", "Not A Name", "--version", "0.1.0"], "Not A Name", 1),
        (["--name", "good_name", "--version", "banana"], "banana", 1),
        (["--name", "good_name", "--version", "0.1.0", "--requires", "base=>>1"], "base=>>1", 1),
        (["--version", "0.1.0"], "publish needs a name and a version", 2),
    ],
    ids=["name", "version", "requirement", "missing-name"],
)
def test_bad_name_version_or_requirement_is_refused(cli, shelf_path, saved_models, args, message, code):
    before = shelf_refs(shelf_path)
    result = cli("--shelf", shelf_path, "publish", saved_models / BASE, *args)
    assert result.code == code
    assert "error: " in result.err and message in result.err
    assert shelf_refs(shelf_path) == before


def test_offline_publish_and_yank_are_refused_before_uploading(cli, stocked_shelf, saved_models):
    before = (shelf_refs(stocked_shelf), lfs_objects(stocked_shelf))
    args = ("--offline", "--shelf", stocked_shelf)
    result = cli(*args, "publish", saved_models / OTHER_BASE, "--name", "other", "--version", "0.1.0")
    assert result.code == 1 and "error: publishing to" in result.err and "offline mode is on" in result.err
    yanked = cli(*args, "yank", "base@0.1.0", "--reason", "x")
    assert yanked.code == 1 and "error: yanking on" in yanked.err
    assert (shelf_refs(stocked_shelf), lfs_objects(stocked_shelf)) == before


def test_folder_without_saved_items_is_refused(cli, shelf_path, tmp_path):
    (tmp_path / "empty").mkdir()
    result = cli("--shelf", shelf_path, "publish", tmp_path / "empty", "--name", "x", "--version", "0.1.0")
    assert result.code == 1 and "holds no saved item" in result.err


def test_files_changed_during_publish_are_refused(shelf_path, models, tmp_path):
    source = ShelfSource(str(shelf_path))
    store = tampering_store(
        tmp_path / "store", "component.weights.h5", lambda added, _blob: append_a_byte(added)
    )
    before = shelf_refs(shelf_path)
    with pytest.raises(PublishError, match="files changed while they were being published"):
        publish(models / MLM, PackageInfo("mlm", "0.1.0"), source, store)
    assert shelf_refs(shelf_path) == before and lfs_objects(shelf_path) == []


# -- all or nothing --------------------------------------------------------------------------------------


def test_declined_push_changes_nothing_and_a_retry_succeeds(cli, shelf_path, saved_models, tmp_path):
    marker = tmp_path / "decline-once"
    marker.write_text("", encoding="utf-8")
    hook = shelf_path / "hooks" / "pre-receive"
    hook.write_text(f'#!/bin/sh\nif [ -e "{marker}" ]; then rm "{marker}"; echo "frozen" >&2; exit 1; fi\n')
    hook.chmod(0o755)
    before = shelf_refs(shelf_path)
    args = ("--shelf", shelf_path, "publish", saved_models / BASE, "--name", "base", "--version", "0.1.0")
    refused = cli(*args)
    assert refused.code == 1 and "the shelf refused the push, nothing was changed" in refused.err
    assert shelf_refs(shelf_path) == before
    retried = cli(*args, "--json")
    assert retried.code == 0, retried.err
    assert retried.json()["skipped"] == 3  # the blobs went up the first time
    assert "base/v0.1.0" in git(shelf_path, "tag")


def test_publisher_behind_the_shelf_retries_on_the_new_head(shelf_path, saved_models, tmp_path):
    late = ShelfSource(str(shelf_path), cache_dir=tmp_path / "late-publisher")
    late.refresh()  # reads the head now; someone else publishes before this publisher pushes
    publish_folder(shelf_path, saved_models / BASE, "base", "0.1.0")
    notes: list[str] = []
    report = publish(
        saved_models / OTHER_BASE,
        PackageInfo("other", "0.1.0"),
        late,
        Shelf(str(shelf_path)).store,
        notes.append,
    )
    assert any("retrying on top of it" in n for n in notes)
    assert git(shelf_path, "rev-parse", "main").strip() == report.commit
    assert set(git(shelf_path, "tag").split()) == {"base/v0.1.0", "other/v0.1.0"}
    assert (
        git(shelf_path, "rev-parse", f"{report.commit}^").strip()
        == git(shelf_path, "rev-parse", "base/v0.1.0").strip()
    )


@pytest.mark.parametrize(
    ("packages", "shared_cache"),
    [
        ([("alpha", "0.1.0"), ("beta", "0.1.0"), ("gamma", "0.1.0")], False),
        ([("alpha", "0.1.0"), ("beta", "0.1.0"), ("gamma", "0.1.0")], True),
        ([("alpha", "0.1.0"), ("alpha", "0.2.0"), ("alpha", "0.3.0")], False),
    ],
    ids=["own-caches", "one-cache", "one-name"],
)
def test_racing_publishers_all_land(shelf_path, saved_models, tmp_path, packages, shared_cache):
    barrier = threading.Barrier(len(packages))
    errors: list[BaseException] = []

    def publisher(number: int, name: str, version: str) -> None:
        shelf = Shelf(str(shelf_path), cache_dir=tmp_path / ("cache" if shared_cache else f"cache-{number}"))
        source = shelf.source()
        barrier.wait()
        try:
            publish(saved_models / BASE, PackageInfo(name, version), source, shelf.store)
        except BaseException as e:  # collected and re-raised in the test thread
            errors.append(e)

    threads = [threading.Thread(target=publisher, args=(i, *p)) for i, p in enumerate(packages)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    if errors:
        raise errors[0]
    assert set(git(shelf_path, "tag").split()) == {f"{n}/v{v}" for n, v in packages}
    source = ShelfSource(str(shelf_path), cache_dir=tmp_path / "reader")
    source.refresh()
    indexed = {(e.name, e.version) for n in source.index.names() for e in source.index.entries(n)}
    assert indexed == set(packages)
    assert len(git(shelf_path, "rev-list", "main").split()) == 1 + len(packages)  # no lost commit
    git(shelf_path, "fsck", "--strict")


@pytest.mark.network
def test_refused_upload_changes_nothing_and_a_retry_succeeds(tmp_path, saved_models, monkeypatch):
    from tests.support.giftless import GiftlessServer

    with GiftlessServer(tmp_path / "lfs", auth="jwt") as server:
        shelf_path = Path(create_shelf(tmp_path / "shelf.git", lfs_url=server.endpoint("org", "shelf")))
        before = shelf_refs(shelf_path)
        with pytest.raises(AuthError):
            publish_folder(shelf_path, saved_models / BASE, "base", "0.1.0")
        assert shelf_refs(shelf_path) == before
        monkeypatch.setenv("CCLM_SHELF_TOKEN", server.mint_token("org", "shelf"))
        report = publish_folder(shelf_path, saved_models / BASE, "base", "0.1.0")
        assert report.uploaded == 3
        assert "base/v0.1.0" in git(shelf_path, "tag")
        for f in (saved_models / BASE).rglob("*.h5"):
            assert server.object_path("org", "shelf", sha256(f)).read_bytes() == f.read_bytes()


@pytest.mark.slow
def test_unreachable_lfs_server_changes_nothing(tmp_path, saved_models):
    from tests.support.git_servers import free_port

    shelf_path = Path(
        create_shelf(tmp_path / "shelf.git", lfs_url=f"http://127.0.0.1:{free_port()}/o/r/info/lfs")
    )
    before = shelf_refs(shelf_path)
    with pytest.raises(TransportError, match="failed after"):
        publish_folder(shelf_path, saved_models / BASE, "base", "0.1.0")
    assert shelf_refs(shelf_path) == before
    assert ShelfMirror.open(str(shelf_path), cache_dir=tmp_path / "c").refresh().tags() == {}


# -- init --------------------------------------------------------------------------------------------------


def test_init_creates_a_shelf_and_refuses_other_folders(cli, tmp_path):
    result = cli("init", tmp_path / "team.git")
    assert result.code == 0 and "shelf ready at" in result.out
    assert git(tmp_path / "team.git", "show", "main:index/config.json")
    again = cli("init", tmp_path / "team.git")
    assert again.code == 0 and "shelf already there at" in again.out  # an existing shelf is fine
    moved = cli("init", tmp_path / "team.git", "--lfs-url", "http://127.0.0.1:9/o/r/info/lfs")
    assert moved.code == 2 and "already exists with LFS server (its own lfs/objects)" in moved.err
    (tmp_path / "stuff").mkdir()
    (tmp_path / "stuff" / "file.txt").write_text("mine", encoding="utf-8")
    refused = cli("init", tmp_path / "stuff")
    assert refused.code == 2 and "is a non-empty folder that is not a shelf" in refused.err
    assert sorted(p.name for p in (tmp_path / "stuff").iterdir()) == ["file.txt"]
    under_a_file = cli("init", tmp_path / "stuff" / "file.txt" / "x.git")  # one line of ours, not git's
    assert under_a_file.code == 2
    assert under_a_file.err.splitlines()[0] == (
        f"error: cannot make a shelf at {tmp_path / 'stuff' / 'file.txt' / 'x.git'}: "
        f"{tmp_path / 'stuff' / 'file.txt'} is a file, not a folder"
    )
    assert (tmp_path / "stuff" / "file.txt").read_text(encoding="utf-8") == "mine"
    a_file = cli("--shelf", tmp_path / "stuff" / "file.txt", "show", "x")
    assert a_file.code == 2 and "cclm-shelf init PATH" in a_file.err


def test_default_shelf_is_created_on_first_use(cli, saved_models):
    home = Path(os.environ["CCLM_SHELF_HOME"])
    assert not (home / "shelf.git").exists()
    result = cli("publish", saved_models / BASE, "--name", "base", "--version", "0.1.0")
    assert result.code == 0, result.err
    assert "base/v0.1.0" in git(home / "shelf.git", "tag")
    assert "base" in cli("search", "bas").out


def test_console_errors_have_no_traceback(shelf_path, models):
    os.mkfifo(models / MLM / "pipe")
    command = [sys.executable, "-m", "shelf.cli", "--shelf", str(shelf_path), "publish", str(models / MLM)]
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [*command, "--name", "mlm", "--version", "0.1.0"], capture_output=True, text=True, cwd=root
    )
    assert done.returncode == 1
    assert (
        done.stderr.startswith("error: refusing to publish the special file")
        and "Traceback" not in done.stderr
    )
    usage = subprocess.run([*command, "--name", "mlm"], capture_output=True, text=True, cwd=root)
    assert usage.returncode == 2 and "error: publish needs a name and a version" in usage.stderr
