"""Fixtures for the publish, project-command and cache tests: tiny saved models, shelves and the CLI.

The models are untrained (publishing does not care) and built once per test session; each test that may
damage them works on its own copy.
"""

from __future__ import annotations

import json
import shutil
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

TEXTS = ["hello world", "the shelf is tidy", "cclm is neat", "résumé of a naïve fox"] * 3
MAX_LEN = 16

# Saved folders under the models root, and what each one is.
BASE = "base"  # preprocessor + embedder: an "embedder" package
MLM = "mlm"  # a component trained on BASE
OTHER_BASE = "other_base"  # the same vocabulary, another embedder
OTHER_MLM = "other_mlm"  # a component trained on OTHER_BASE
MIXED = "mixed"  # OTHER_BASE's embedder beside a component of BASE: refused

_built: dict[str, Path] = {}


def build_models(root: Path) -> Path:
    """Save every folder named above under ``root``."""
    from cclm_core.models import Embedder
    from cclm_core.preprocessing import Preprocessor
    from cclm_core.pretraining import MaskedLanguagePretrainer

    prep = Preprocessor(max_example_len=MAX_LEN).fit(TEXTS)
    for base, component in ((BASE, MLM), (OTHER_BASE, OTHER_MLM)):
        embedder = Embedder(MAX_LEN, prep.n_chars, char_emb_size=8, n_filters=8, n_blocks=1)
        prep.save(root / base / "preprocessor")
        embedder.save(root / base / "embedder")
        mlm = MaskedLanguagePretrainer(embedder=embedder, preprocessor=prep, output_dim=8, hidden_dim=8)
        mlm.save(root / component)
    shutil.copytree(root / OTHER_BASE / "embedder", root / MIXED / "embedder")
    shutil.copytree(root / MLM, root / MIXED / "component")
    return root


@pytest.fixture(scope="session")
def saved_models(tmp_path_factory) -> Path:
    """Pristine saved folders, shared by the whole session: never modify them (use ``models``)."""
    if "root" not in _built:
        with warnings.catch_warnings():  # Keras' numpy 2 deprecation notes, once per weight
            warnings.simplefilter("ignore", DeprecationWarning)
            _built["root"] = build_models(tmp_path_factory.mktemp("saved-models"))
    return _built["root"]


@pytest.fixture
def models(saved_models, tmp_path) -> Path:
    """A private copy of the saved folders that a test may change."""
    return Path(shutil.copytree(saved_models, tmp_path / "models"))


@pytest.fixture
def shelf_path(tmp_path) -> Path:
    """An empty local shelf (a bare git repository)."""
    from shelf.source import create_shelf

    return Path(create_shelf(tmp_path / "shelf.git"))


def publish_folder(shelf_url: str | Path, folder: Path, name: str, version: str, requires=()):
    """Publish through the Python API with a fresh handle, as a separate publisher would."""
    from shelf.api import Shelf
    from shelf.publish import PackageInfo, publish

    shelf = Shelf(str(shelf_url))
    return publish(folder, PackageInfo(name, version, requires=tuple(requires)), shelf.source(), shelf.store)


def publish_args(folder: Path, name: str, version: str = "0.1.0", *extra: str | Path) -> tuple:
    """The CLI arguments ``publish FOLDER --name NAME --version VERSION EXTRA...``."""
    return ("publish", folder, "--name", name, "--version", version, *extra)


@pytest.fixture
def stocked_shelf(shelf_path, saved_models) -> Path:
    """A shelf holding base 0.1.0 and mlm 0.1.0 (which requires base==0.1.0)."""
    publish_folder(shelf_path, saved_models / BASE, "base", "0.1.0")
    publish_folder(shelf_path, saved_models / MLM, "mlm", "0.1.0", ["base==0.1.0"])
    return shelf_path


@pytest.fixture
def project_dir(tmp_path, monkeypatch) -> Path:
    """An empty project folder, the working directory for the test."""
    folder = tmp_path / "project"
    folder.mkdir()
    monkeypatch.chdir(folder)
    return folder


@dataclass(frozen=True)
class CliResult:
    code: int
    out: str
    err: str

    def json(self):
        return json.loads(self.out)


@pytest.fixture
def cli(capsys) -> Iterator[Callable[..., CliResult]]:
    """Run ``cclm-shelf ARGS`` in this process through its real entry point; unexpected errors propagate."""
    from shelf.cli import main

    def run(*args: str | Path) -> CliResult:
        capsys.readouterr()
        try:
            code = main([str(a) for a in args])
        except SystemExit as e:  # commands that report a state (lock --check, cache verify) exit 1
            code = e.code if isinstance(e.code, int) else 1
        out, err = capsys.readouterr()
        assert "Traceback" not in err
        if code:
            assert out or err, "a failing command must say why"
        return CliResult(code, out, err)

    yield run


def shelf_refs(path: Path) -> str:
    """Every ref of a bare shelf with its commit: equal refs mean the shelf did not change."""
    import subprocess

    return subprocess.run(
        ["git", f"--git-dir={path}", "for-each-ref", "--format=%(refname) %(objectname)"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def lfs_objects(path: Path) -> list[str]:
    """The object ids a local shelf holds in its git-lfs folder."""
    return sorted(p.name for p in (path / "lfs" / "objects").rglob("*") if p.is_file())


def tampering_store(root: Path, victim: str, tamper: Callable[[Path, Path], None]):
    """A real blob store that calls ``tamper(added_file, its_blob)`` right after it took in ``victim``.

    What another program (or a write through an installed link) does to a file in the middle of a publish.
    """
    from shelf.store import BlobStore

    class Tampering(BlobStore):
        def add_file(self, path: Path, oid: str | None = None, size: int | None = None) -> str:
            added = super().add_file(path, oid, size)
            if Path(path).name == victim:
                tamper(Path(path), self.path(added))
            return added

    return Tampering(root)


def append_a_byte(path: Path) -> None:
    """Write one more byte at the end of ``path`` (made writable first)."""
    path.chmod(0o644)
    with open(path, "ab") as handle:
        handle.write(b"\0")


def zero_first_byte(path: Path) -> None:
    """Overwrite the first byte of ``path`` in place, keeping its size (made writable first)."""
    path.chmod(0o644)
    with open(path, "r+b") as handle:
        handle.write(b"\0")
