"""The seed library's call, ``Shelf(url).fetch(identifier, item_type, tag=..., cache_dir=...)``, on a shelf
of our layout and on one of the original cclm layout pushed with the real git-lfs client."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cclm_core.preprocessing import Preprocessor
from shelf import Shelf
from shelf.errors import IntegrityError, NotFoundError, OfflineError, UnsafeContentError
from tests.support.shelves import (
    BASE,
    MAX_LEN,
    VERSION,
    cli,
    corrupt,
    git,
    legacy_config,
    legacy_shelf,
    lfs_object,
    pointer_oid,
    publish_folder,
    published_shelf,
    saved_stack,
    tarball,
    tree_snapshot,
)

IDENT = "en_wiki_clm_1"
ARCHIVE = f"preprocessor/{IDENT}.tar.gz"


def _legacy_archive(folder: Path, chars: str, max_len: int) -> Path:
    config = json.dumps(legacy_config(chars, max_len)).encode()
    return tarball(folder / f"{chars}-{max_len}.tar.gz", {"cclm_config.json": config})


@pytest.fixture
def legacy(tmp_path: Path) -> Path:
    releases = {
        "v0.1.1": {ARCHIVE: _legacy_archive(tmp_path / "src", "abc de", 16)},
        "v0.2.0": {ARCHIVE: _legacy_archive(tmp_path / "src", "xyz", 32)},
    }
    return legacy_shelf(tmp_path, releases)


def test_fetch_on_our_layout_takes_the_version_as_tag(tmp_path_factory, tmp_path: Path) -> None:
    shelf_path = published_shelf(tmp_path_factory, tmp_path / "shelf.git")
    cache_dir = tmp_path / ".cclm"
    found = Shelf(str(shelf_path)).fetch(BASE, "preprocessor", tag=f"v{VERSION}", cache_dir=cache_dir)
    assert found == str(cache_dir / BASE / "preprocessor")
    prep = Preprocessor(load_from=Path(found) / "cclm_config.json")
    assert prep.max_example_len == MAX_LEN
    assert Shelf(str(shelf_path)).fetch(BASE, "embedder", tag=VERSION, cache_dir=cache_dir) == str(
        cache_dir / BASE / "embedder"
    )
    publish_folder(
        str(shelf_path), saved_stack(tmp_path_factory).base, BASE, "0.2.0", cache_dir=tmp_path / "c"
    )
    Shelf(str(shelf_path)).fetch(BASE, "preprocessor", tag="v0.2.0", cache_dir=cache_dir)
    record = json.loads((cache_dir / ".cclm-shelf-install.json").read_text())
    assert record["components"][BASE]["version"] == "0.2.0"  # another tag is another install
    with pytest.raises(NotFoundError, match="no 'tokenizer' item"):
        Shelf(str(shelf_path)).fetch(BASE, "tokenizer", tag="v0.2.0", cache_dir=cache_dir)
    with pytest.raises(NotFoundError, match=r"v9\.9\.9"):
        Shelf(str(shelf_path)).fetch(BASE, "preprocessor", tag="v9.9.9", cache_dir=cache_dir)


def test_fetch_on_the_original_layout_loads_a_legacy_preprocessor(legacy: Path, tmp_path: Path) -> None:
    cache_dir = tmp_path / ".cclm"
    found = Shelf(str(legacy)).fetch(IDENT, "preprocessor", tag="v0.1.1", cache_dir=cache_dir)
    assert found == str(cache_dir / IDENT / "preprocessor")
    prep = Preprocessor(load_from=str(Path(found) / "cclm_config.json"))
    assert (prep.max_example_len, prep.char_dict["a"], prep.char_rev[4]) == (16, 4, "a")
    assert Preprocessor(load_from=found).n_chars == 10
    Shelf(str(legacy)).fetch(IDENT, "preprocessor", tag="v0.2.0", cache_dir=cache_dir)
    assert Preprocessor(load_from=found).max_example_len == 32  # a different tag is a different install
    Shelf(str(legacy), offline=True).fetch(IDENT, "preprocessor", tag="v0.1.1", cache_dir=cache_dir)
    assert Preprocessor(load_from=found).max_example_len == 16  # back again, from the store alone
    listed = json.loads(cli("list", "--target", str(cache_dir), "--json").stdout)["components"]
    assert [(c["name"], c["version"], c["source"]) for c in listed] == [
        (f"{IDENT}/preprocessor", "v0.1.1", str(legacy))
    ]
    assert cli("verify", "--target", str(cache_dir)).returncode == 0
    config = Path(found) / "cclm_config.json"
    config.write_text(config.read_text().replace("16", "17"))  # extracted files are the user's own copies
    done = cli("verify", "--target", str(cache_dir))
    assert done.returncode == 1 and f"{IDENT}/preprocessor/cclm_config.json" in done.stdout
    Shelf(str(legacy)).fetch(IDENT, "preprocessor", tag="v0.1.1", cache_dir=cache_dir)
    assert cli("verify", "--target", str(cache_dir)).returncode == 0  # fetching again repairs it
    done = cli("uninstall", IDENT, "--target", str(cache_dir))
    assert done.returncode == 0 and f"removed {IDENT} v0.1.1" in done.stdout
    assert not (cache_dir / IDENT).exists()
    assert json.loads(cli("list", "--target", str(cache_dir), "--json").stdout)["components"] == []
    with pytest.raises(NotFoundError, match=r"v7\.0\.0"):
        Shelf(str(legacy)).fetch(IDENT, "preprocessor", tag="v7.0.0", cache_dir=cache_dir)
    with pytest.raises(NotFoundError, match="embedder"):
        Shelf(str(legacy)).fetch(IDENT, "embedder", tag="v0.1.1", cache_dir=cache_dir)


def _push_branch(root: Path, branch: str, archive: Path) -> str:
    """Commit ``archive`` on a new branch of the legacy work tree and push it; returns the commit."""
    work = root / "legacy-work"
    git("checkout", "-q", "-B", branch, cwd=work)
    (work / ARCHIVE).write_bytes(archive.read_bytes())
    git("commit", "-q", "-am", f"{branch} update", cwd=work)
    git("push", "-q", "origin", branch, cwd=work)
    return git("rev-parse", "HEAD", cwd=work).strip()


def test_fetch_on_the_original_layout_accepts_a_branch_or_a_commit(legacy: Path, tmp_path: Path) -> None:
    """The original shelf's en_wiki_clm_1 lives on a branch: tag= takes any ref there."""
    cache_dir = tmp_path / ".cclm"
    Shelf(str(legacy)).fetch(IDENT, "preprocessor", tag="v0.1.1", cache_dir=cache_dir)  # mirror exists now
    first = _push_branch(tmp_path, IDENT, _legacy_archive(tmp_path / "src", "branch", 24))
    found = Shelf(str(legacy)).fetch(IDENT, "preprocessor", tag=IDENT, cache_dir=cache_dir)
    assert Preprocessor(load_from=found).max_example_len == 24  # a branch made after the mirror
    _push_branch(tmp_path, IDENT, _legacy_archive(tmp_path / "src", "branch", 40))
    Shelf(str(legacy)).fetch(IDENT, "preprocessor", tag=f"refs/heads/{IDENT}", cache_dir=cache_dir)
    assert Preprocessor(load_from=found).max_example_len == 40  # the branch moved: its new content
    Shelf(str(legacy)).fetch(IDENT, "preprocessor", tag="main", cache_dir=cache_dir)
    assert Preprocessor(load_from=found).max_example_len == 32  # main's head is the v0.2.0 release
    tagged = git("rev-parse", "v0.1.1", cwd=legacy).strip()
    Shelf(str(legacy)).fetch(IDENT, "preprocessor", tag="v0.1.1", cache_dir=cache_dir)
    Shelf(str(legacy)).fetch(IDENT, "preprocessor", tag=tagged, cache_dir=cache_dir)  # a fetched commit
    assert Preprocessor(load_from=found).max_example_len == 16
    git("commit", "-q", "--allow-empty", "-m", "after", cwd=tmp_path / "legacy-work")
    git("push", "-q", "origin", IDENT, cwd=tmp_path / "legacy-work")
    Shelf(str(legacy)).fetch(IDENT, "preprocessor", tag=first, cache_dir=cache_dir)  # an older commit
    assert Preprocessor(load_from=found).max_example_len == 24
    with pytest.raises(NotFoundError, match=f"no tag, branch or commit '{first[:12]}"):
        Shelf(str(legacy)).fetch(IDENT, "preprocessor", tag=first[:12] + "0" * 28, cache_dir=cache_dir)
    with pytest.raises(NotFoundError, match="needs tag="):
        Shelf(str(legacy)).fetch(IDENT, "preprocessor", cache_dir=cache_dir)
    with pytest.raises(NotFoundError, match="no tag, branch or commit 'nobranch'"):
        Shelf(str(legacy)).fetch(IDENT, "preprocessor", tag="nobranch", cache_dir=cache_dir)


def test_a_failed_legacy_download_leaves_nothing_behind(legacy: Path, tmp_path: Path) -> None:
    cache_dir = tmp_path / ".cclm"
    corrupt(lfs_object(legacy, pointer_oid(legacy, "v0.2.0", ARCHIVE)))
    with pytest.raises(IntegrityError):
        Shelf(str(legacy)).fetch(IDENT, "preprocessor", tag="v0.2.0", cache_dir=cache_dir)
    assert not cache_dir.exists()
    Shelf(str(legacy)).fetch(IDENT, "preprocessor", tag="v0.1.1", cache_dir=cache_dir)
    before = tree_snapshot(cache_dir)
    with pytest.raises(IntegrityError):
        Shelf(str(legacy)).fetch(IDENT, "preprocessor", tag="v0.2.0", cache_dir=cache_dir)
    assert tree_snapshot(cache_dir) == before  # the earlier tag's files are untouched
    assert Preprocessor(load_from=cache_dir / IDENT / "preprocessor").max_example_len == 16


def test_offline_legacy_fetch_without_the_blob_is_refused(legacy: Path, tmp_path: Path) -> None:
    Shelf(str(legacy)).fetch(IDENT, "preprocessor", tag="v0.1.1", cache_dir=tmp_path / "one")
    with pytest.raises(OfflineError, match=r"v0\.2\.0"):
        Shelf(str(legacy), offline=True).fetch(
            IDENT, "preprocessor", tag="v0.2.0", cache_dir=tmp_path / "two"
        )
    assert not (tmp_path / "two").exists()


def test_a_hostile_legacy_archive_on_a_shelf_is_refused(tmp_path: Path) -> None:
    import io
    import tarfile

    evil = tmp_path / "src" / "evil.tar.gz"
    evil.parent.mkdir(parents=True)
    with tarfile.open(evil, "w:gz") as tar:
        for name in ("cclm_config.json", "../escaped.txt"):
            info = tarfile.TarInfo(name)
            info.size = 2
            tar.addfile(info, io.BytesIO(b"{}"))
    shelf_path = legacy_shelf(tmp_path, {"v0.1.1": {ARCHIVE: evil}})
    cache_dir = tmp_path / "area" / ".cclm"
    with pytest.raises(UnsafeContentError, match=r"\.\."):
        Shelf(str(shelf_path)).fetch(IDENT, "preprocessor", tag="v0.1.1", cache_dir=cache_dir)
    assert not (tmp_path / "area").exists()


def test_a_trust_policy_refuses_the_unsigned_original_layout(legacy: Path, tmp_path: Path) -> None:
    from shelf.errors import TrustError
    from shelf.signing import keygen
    from shelf.trust import load_policy

    public = keygen(tmp_path / "team.pem")[1]
    cache_dir = tmp_path / "fetched"
    trusted = Shelf(str(legacy), trust=load_policy([public]))
    with pytest.raises(TrustError, match="original cclm layout, which carries no signature"):
        trusted.fetch(IDENT, "preprocessor", tag="v0.1.1", cache_dir=cache_dir)
    assert not cache_dir.exists()
