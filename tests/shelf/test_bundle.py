"""Bundles through the real CLI: made on one "machine", installed on another with no shelf and no network."""

from __future__ import annotations

import shutil
import tarfile
from pathlib import Path

import pytest

from tests.shelf.conftest import BASE, MLM, publish_folder
from tests.support.shelves import add_signature_files, assert_installed

TOKEN = "s3cr3t-token-for-bundle-tests"


@pytest.fixture
def machine_a(tmp_path, monkeypatch, cli, stocked_shelf) -> Path:
    """A project on the first machine, locked and installed from the shelf: returns the project folder."""
    home = tmp_path / "machine-a"
    project = home / "project"
    project.mkdir(parents=True)
    monkeypatch.setenv("CCLM_SHELF_CACHE_DIR", str(home / "cache"))
    monkeypatch.setenv("CCLM_SHELF_HOME", str(home / "home"))
    monkeypatch.setenv("HOME", str(home / "home"))
    monkeypatch.setenv("CCLM_SHELF_TOKEN", TOKEN)
    monkeypatch.chdir(project)
    result = cli("--shelf", stocked_shelf, "add", "mlm")
    assert result.code == 0, result.err
    return project


def move_to_machine_b(tmp_path, monkeypatch, project: Path, shelf: Path, bundle: Path) -> tuple[Path, Path]:
    """A second machine: empty cache, no shelf, offline, the project's files and the bundle copied over."""
    home = tmp_path / "machine-b"
    other = home / "project"
    other.mkdir(parents=True)
    for name in ("cclm-shelf.toml", "cclm-shelf.lock"):
        shutil.copy(project / name, other / name)
    moved = Path(shutil.copy(bundle, home / "stack.cclm-bundle"))
    shelf.rename(shelf.with_name("gone.git"))  # the shelf is out of reach
    monkeypatch.setenv("CCLM_SHELF_CACHE_DIR", str(home / "cache"))
    monkeypatch.setenv("CCLM_SHELF_HOME", str(home / "home"))
    monkeypatch.setenv("HOME", str(home / "home"))
    monkeypatch.setenv("CCLM_SHELF_OFFLINE", "1")
    monkeypatch.delenv("CCLM_SHELF_TOKEN")
    monkeypatch.chdir(other)
    return other, moved


def make_bundle(cli, project: Path, name: str = "stack.cclm-bundle") -> Path:
    result = cli("bundle", project.parent / name)
    assert result.code == 0, result.err
    assert "bundled 2 component(s)" in result.out
    return project.parent / name


def stored_blobs(cache: Path) -> list[Path]:
    return sorted(p for p in (cache / "blobs").rglob("*") if p.is_file()) if cache.exists() else []


def member_offset(bundle: Path, prefix: str) -> tuple[int, int]:
    """Where the data of the first member whose name starts with ``prefix`` lies: (offset, size)."""
    with tarfile.open(bundle) as tar:
        info = next(m for m in tar.getmembers() if m.name.startswith(prefix))
    return info.offset_data, info.size


def flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def test_bundle_installs_on_a_machine_with_no_shelf_and_no_network(
    cli, machine_a, stocked_shelf, tmp_path, monkeypatch
):
    bundle = make_bundle(cli, machine_a)
    other, moved = move_to_machine_b(tmp_path, monkeypatch, machine_a, stocked_shelf, bundle)
    result = cli("install", "--bundle", moved)
    assert result.code == 0, result.err
    assert "installed mlm 0.1.0" in result.out and "installed base 0.1.0" in result.out
    assert assert_installed(other / ".cclm", "mlm") > 0
    assert assert_installed(other / ".cclm", "base") > 0
    assert cli("verify").code == 0
    # The store now holds the blobs: a plain offline install from the lockfile needs nothing else.
    shutil.rmtree(other / ".cclm")
    assert cli("install").code == 0
    assert assert_installed(other / ".cclm", "mlm") > 0


def test_same_lockfile_gives_the_same_bytes_from_any_store(cli, machine_a, tmp_path, monkeypatch):
    first = make_bundle(cli, machine_a, "one.cclm-bundle").read_bytes()
    assert make_bundle(cli, machine_a, "two.cclm-bundle").read_bytes() == first
    monkeypatch.setenv("CCLM_SHELF_CACHE_DIR", str(tmp_path / "fresh-cache"))  # the blobs are fetched again
    result = cli("bundle", machine_a.parent / "three.cclm-bundle")
    assert result.code == 0 and "fetched" in result.out, result.err
    assert (machine_a.parent / "three.cclm-bundle").read_bytes() == first


def test_a_bundle_carries_no_token_and_no_local_path(cli, machine_a, stocked_shelf, tmp_path):
    data = make_bundle(cli, machine_a).read_bytes()
    assert str(stocked_shelf).encode() in (machine_a / "cclm-shelf.lock").read_bytes()  # the lockfile has it
    for secret in (TOKEN, str(tmp_path), str(Path.home()), "machine-a"):
        assert secret.encode() not in data, secret
    with tarfile.open(machine_a.parent / "stack.cclm-bundle") as tar:
        assert {(m.uid, m.gid, m.uname, m.gname, m.mtime) for m in tar.getmembers()} == {(0, 0, "", "", 0)}
        names = tar.getnames()
    assert names[:2] == ["cclm-bundle.json", "cclm-shelf.lock"]
    assert "components/mlm/0.1.0/cclm-manifest.json" in names


@pytest.mark.parametrize(
    "where",
    ["blobs/", "components/mlm/0.1.0/cclm-manifest.json", "cclm-shelf.lock", "cclm-bundle.json", "header"],
)
def test_a_flipped_byte_is_refused_before_anything_is_written(
    cli, machine_a, stocked_shelf, tmp_path, monkeypatch, where
):
    bundle = make_bundle(cli, machine_a)
    if where == "header":
        offset = member_offset(bundle, "blobs/")[0] - 512 + 10  # inside the name of a blob's header
    else:
        start, size = member_offset(bundle, where)
        offset = start + size // 2
    flip(bundle, offset)
    other, moved = move_to_machine_b(tmp_path, monkeypatch, machine_a, stocked_shelf, bundle)
    for args in (["install", "--bundle", moved], ["cache", "import", moved]):
        result = cli(*args)
        assert result.code == 1 and "error: refusing the bundle" in result.err, result.err
        assert "nothing was installed or stored" in result.err
    assert not (other / ".cclm").exists()
    assert stored_blobs(tmp_path / "machine-b" / "cache") == []
    staging = tmp_path / "machine-b" / "cache" / "tmp"
    assert not staging.exists() or not list(staging.iterdir())


@pytest.mark.parametrize("keep", [0.1, 0.5, 0.999])
def test_a_truncated_bundle_is_refused(cli, machine_a, stocked_shelf, tmp_path, monkeypatch, keep):
    bundle = make_bundle(cli, machine_a)
    data = bundle.read_bytes()
    bundle.write_bytes(data[: int(len(data) * keep)])
    other, moved = move_to_machine_b(tmp_path, monkeypatch, machine_a, stocked_shelf, bundle)
    result = cli("install", "--bundle", moved)
    assert result.code == 1 and "error: refusing the bundle" in result.err, result.err
    assert not (other / ".cclm").exists()
    assert stored_blobs(tmp_path / "machine-b" / "cache") == []


def test_a_bundle_of_another_lockfile_is_refused(
    cli, machine_a, stocked_shelf, saved_models, tmp_path, monkeypatch
):
    bundle = make_bundle(cli, machine_a)
    publish_folder(stocked_shelf, saved_models / MLM, "mlm", "0.2.0", ["base==0.1.0"])
    assert cli("lock", "--upgrade-package", "mlm").code == 0  # the project moved on to mlm 0.2.0
    lock_after = (machine_a / "cclm-shelf.lock").read_bytes()
    other, moved = move_to_machine_b(tmp_path, monkeypatch, machine_a, stocked_shelf, bundle)
    result = cli("install", "--bundle", moved)
    assert result.code == 1, result.err
    assert (
        "does not match" in result.err and "mlm the bundle has 0.1.0, the lockfile pins 0.2.0" in result.err
    )
    assert (other / "cclm-shelf.lock").read_bytes() == lock_after
    assert not (other / ".cclm").exists()
    assert stored_blobs(tmp_path / "machine-b" / "cache") == []


def test_cache_import_fills_the_store_for_an_offline_install(
    cli, machine_a, stocked_shelf, tmp_path, monkeypatch
):
    bundle = make_bundle(cli, machine_a)
    other, moved = move_to_machine_b(tmp_path, monkeypatch, machine_a, stocked_shelf, bundle)
    result = cli("cache", "import", moved, "--json")
    assert result.code == 0, result.err
    assert sorted(result.json()["components"]) == ["base 0.1.0", "mlm 0.1.0"]
    result = cli("install")
    assert result.code == 0, result.err
    assert (other / ".cclm" / "mlm" / "cclm-manifest.json").is_file()  # the manifest came from the bundle
    assert assert_installed(other / ".cclm", "base") > 0
    # cache prune keeps what a known lockfile pins, manifests included.
    before = stored_blobs(tmp_path / "machine-b" / "cache")
    assert cli("cache", "prune").code == 0
    assert stored_blobs(tmp_path / "machine-b" / "cache") == before


def test_install_bundle_without_a_project_installs_what_it_pins(
    cli, machine_a, stocked_shelf, tmp_path, monkeypatch
):
    bundle = make_bundle(cli, machine_a)
    other, moved = move_to_machine_b(tmp_path, monkeypatch, machine_a, stocked_shelf, bundle)
    for name in ("cclm-shelf.toml", "cclm-shelf.lock"):
        (other / name).unlink()
    result = cli("install", "--bundle", moved, "--target", other / "models")
    assert result.code == 0, result.err
    assert "no project lockfile here" in result.err
    assert assert_installed(other / "models", MLM) > 0 and assert_installed(other / "models", BASE) > 0


def test_bundle_mistakes_say_what_to_do(cli, machine_a, tmp_path):
    assert "give either REQUIREMENTS or --bundle" in cli("install", "mlm", "--bundle", "x").err
    missing = cli("install", "--bundle", tmp_path / "nope.cclm-bundle")
    assert missing.code == 1 and "error: no bundle at" in missing.err
    not_a_bundle = tmp_path / "notes.txt"
    not_a_bundle.write_text("hello\n" * 200)
    result = cli("install", "--bundle", not_a_bundle)
    assert result.code == 1 and "error: refusing the bundle" in result.err
    result = cli("bundle", tmp_path)
    assert result.code == 2 and "is a directory" in result.err
    result = cli("bundle", tmp_path / "no" / "such" / "x.bundle")
    assert result.code == 2 and "no such folder" in result.err
    for mine in (machine_a / "cclm-shelf.lock", not_a_bundle):  # a file of the user's is never written over
        before = mine.read_bytes()
        refused = cli("bundle", mine)
        assert refused.code == 2
        assert refused.err.splitlines()[0] == f"error: {mine} exists and is not a bundle; nothing was written"
        assert mine.read_bytes() == before
    bundle = make_bundle(cli, machine_a)
    make_bundle(cli, machine_a)  # an earlier bundle is replaced
    with tarfile.open(bundle) as tar:
        assert tar.getnames()[0] == "cclm-bundle.json"


def test_bundle_needs_a_fresh_lockfile(cli, tmp_path, monkeypatch, stocked_shelf):
    monkeypatch.chdir(tmp_path)
    result = cli("bundle", "x.cclm-bundle")
    assert result.code == 2 and "no project here" in result.err
    (tmp_path / "cclm-shelf.toml").write_text(f'shelves = ["{stocked_shelf}"]\nrequires = ["mlm"]\n')
    result = cli("bundle", "x.cclm-bundle")
    assert result.code == 1 and "cclm-shelf.lock is missing" in result.err
    assert not (tmp_path / "x.cclm-bundle").exists()


def test_signatures_travel_in_the_bundle(cli, machine_a, stocked_shelf, tmp_path, monkeypatch):
    files = add_signature_files(stocked_shelf, "mlm", "0.1.0", tmp_path / "signer")
    bundle = make_bundle(cli, machine_a)
    with tarfile.open(bundle) as tar:
        carried = {name: tar.extractfile(name).read() for name in files}
    assert carried == files
    other, moved = move_to_machine_b(tmp_path, monkeypatch, machine_a, stocked_shelf, bundle)
    result = cli("install", "--bundle", moved)
    assert result.code == 0, result.err
    assert assert_installed(other / ".cclm", "mlm") > 0
