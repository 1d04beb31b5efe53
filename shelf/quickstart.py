"""The quickstart: the whole life of a component stack on one machine, with no network and no server.

It trains a tiny preprocessor, embedder and two components on documentation text that ships with Python,
publishes them to a shelf (by default the local shelf on disk), installs them by ``name@vX.Y.Z`` into a fresh
folder through the same code path as any remote install, verifies every installed file, and composes them.
"""

from __future__ import annotations

import importlib
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shelf.publish import PackageInfo

BASE_NAME = "stdlib_docs_base"
MLM_NAME = "stdlib_docs_mlm"
CHARS_NAME = "stdlib_docs_chars"
FIRST_VERSION = "0.1.0"
DOCS = "Python's documentation"

# Modules whose docstrings make the corpus: always there, never downloaded.
CORPUS_MODULES = (
    "argparse",
    "asyncio",
    "base64",
    "bisect",
    "calendar",
    "collections",
    "contextlib",
    "csv",
    "dataclasses",
    "datetime",
    "decimal",
    "difflib",
    "email",
    "enum",
    "fractions",
    "functools",
    "glob",
    "gzip",
    "hashlib",
    "heapq",
    "html",
    "http",
    "inspect",
    "io",
    "itertools",
    "json",
    "logging",
    "math",
    "operator",
    "os",
    "pathlib",
    "pickle",
    "pprint",
    "queue",
    "random",
    "re",
    "shlex",
    "shutil",
    "socket",
    "sqlite3",
    "statistics",
    "string",
    "struct",
    "subprocess",
    "tarfile",
    "tempfile",
    "textwrap",
    "threading",
    "timeit",
    "tokenize",
    "typing",
    "unittest",
    "urllib",
    "uuid",
    "warnings",
    "weakref",
    "zipfile",
)


@dataclass(frozen=True)
class QuickstartConfig:
    max_len: int = 64
    max_texts: int = 1500
    epochs: int = 1
    hidden: int = 32
    filters: int = 64  # the embedder's convolution width
    blocks: int = 2  # the embedder's residual blocks


# Smaller graphs trace and compile faster, which is most of the time a one-epoch run takes.
SMALL = QuickstartConfig(max_len=32, max_texts=200, epochs=1, hidden=16, filters=16, blocks=1)


@dataclass
class QuickstartResult:
    shelf: str
    version: str
    target: Path
    saved: Path
    installed: list[tuple[str, str]] = field(default_factory=list)
    verified_files: int = 0
    output_shape: tuple[int, ...] = ()
    seconds: float = 0.0


def corpus(max_len: int, max_texts: int) -> list[str]:
    """Lines of standard-library docstrings, cut to the input length."""
    texts: list[str] = []
    for name in CORPUS_MODULES:
        try:
            doc = importlib.import_module(name).__doc__ or ""
        except ImportError:  # a Python built without a module (sqlite3, say) still has plenty of text
            continue
        for line in doc.splitlines():
            line = " ".join(line.split())
            for start in range(0, len(line), max_len):
                if len(piece := line[start : start + max_len]) >= 8:
                    texts.append(piece)
    return texts[:max_texts]


def train_and_save(config: QuickstartConfig, saved: Path, say: Callable[[str], None]) -> None:
    """Train the preprocessor, embedder and two components; save them as three publishable folders."""
    from cclm_core.models import Embedder
    from cclm_core.preprocessing import Preprocessor
    from cclm_core.pretraining import CharacterReconstructionPretrainer, MaskedLanguagePretrainer

    texts = corpus(config.max_len, config.max_texts)
    say(f"corpus: {len(texts)} lines of Python's own documentation")
    prep = Preprocessor(max_example_len=config.max_len).fit(texts)
    assert prep.max_example_len is not None  # fit() sets it
    embedder = Embedder(prep.max_example_len, prep.n_chars, n_filters=config.filters, n_blocks=config.blocks)
    say(f"training a masked-language component ({config.epochs} epoch(s))")
    mlm = MaskedLanguagePretrainer(
        embedder=embedder, preprocessor=prep, output_dim=config.hidden * 2, hidden_dim=config.hidden * 2
    )
    mlm.fit(texts, epochs=config.epochs)
    # The first task trained the base with its component; frozen now, the base is shared unchanged, so
    # both components record the same embedder fingerprint (a base trained further would not fit mlm).
    embedder.freeze()
    say(f"training a character-reconstruction component on the frozen base ({config.epochs} epoch(s))")
    chars = CharacterReconstructionPretrainer(embedder=embedder, preprocessor=prep, output_dim=config.hidden)
    chars.fit(texts, epochs=config.epochs)
    prep.save(saved / "base" / "preprocessor")
    embedder.save(saved / "base" / "embedder")
    mlm.save(saved / "mlm")
    chars.save(saved / "chars")


def next_version(shelf) -> str:
    """The first version not yet used by any of the quickstart's packages on this shelf."""
    from registry_index.versions import parse_version

    source = shelf.source()
    used = [
        parse_version(e.version) for n in (BASE_NAME, MLM_NAME, CHARS_NAME) for e in source.index.entries(n)
    ]
    if not used:
        return FIRST_VERSION
    return str(max(used).bump_patch())


def packages(saved: Path, version: str) -> list[tuple[Path, PackageInfo]]:
    """The three packages the quickstart publishes: the base, then two components that require it."""
    from shelf.publish import PackageInfo

    pin = (f"{BASE_NAME}=={version}",)
    licence = "PSF-2.0"  # trained on Python's documentation
    return [
        (
            saved / "base",
            PackageInfo(BASE_NAME, version, f"Character vocabulary and embedder trained on {DOCS}", licence),
        ),
        (
            saved / "mlm",
            PackageInfo(MLM_NAME, version, f"Masked-language component on {BASE_NAME}", licence, pin),
        ),
        (
            saved / "chars",
            PackageInfo(
                CHARS_NAME, version, f"Character-reconstruction component on {BASE_NAME}", licence, pin
            ),
        ),
    ]


def publish_all(shelf, saved: Path, version: str, say: Callable[[str], None]) -> None:
    from shelf.publish import publish

    source = shelf.source()
    for folder, info in packages(saved, version):
        report = publish(folder, info, source, shelf.store)
        say(f"published {info.name} {info.version}  ({report.manifest_digest[:19]}…)")


WORKDIR_MARKER = ".cclm-shelf-quickstart"


def run(
    workdir: Path,
    shelf_url: str | None,
    config: QuickstartConfig,
    say: Callable[[str], None],
    cache_dir: Path | None = None,
) -> QuickstartResult:
    """Train, publish, install by name@version, verify and compose; see the module docstring."""
    from shelf.api import Shelf

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's start-up notes would bury the progress
    started = time.monotonic()
    workdir = Path(workdir).absolute()
    saved, target = workdir / "saved", workdir / ".cclm"
    _check_workdir(workdir, (saved, target))
    for folder in (saved, target):
        shutil.rmtree(folder, ignore_errors=True)
    claim_workdir(workdir)
    say("[1/5] training")
    train_and_save(config, saved, say)
    shelf = Shelf(shelf_url, cache_dir=cache_dir)
    version = next_version(shelf)
    say(f"[2/5] publishing version {version} to {shelf.url}")
    publish_all(shelf, saved, version, say)
    result = QuickstartResult(shelf.url, version, target, saved)
    install_and_compose(Shelf(shelf.url, cache_dir=cache_dir), result, say)  # a fresh handle, as elsewhere
    result.seconds = time.monotonic() - started
    return result


def claim_workdir(workdir: Path) -> None:
    """Mark ``workdir`` as quickstart's: later runs may replace its saved/ and .cclm/."""
    workdir.mkdir(parents=True, exist_ok=True)
    marker = workdir / WORKDIR_MARKER
    if not marker.is_file():
        marker.write_text("made by cclm-shelf quickstart: each run replaces saved/ and .cclm/ here\n")


def _check_workdir(workdir: Path, replaced: tuple[Path, ...]) -> None:
    """Refuse a folder whose saved/ or .cclm/ quickstart did not make: they would be replaced."""
    from shelf.errors import ConfigError

    if (workdir / WORKDIR_MARKER).is_file():
        return
    taken = [folder for folder in replaced if folder.exists() or folder.is_symlink()]
    if taken:
        raise ConfigError(
            f"{workdir} already holds {taken[0].name}, which quickstart did not make; nothing was changed",
            hint="give --workdir a new or empty folder (quickstart replaces saved/ and .cclm/ in it)",
        )


def install_and_compose(installer, result: QuickstartResult, say: Callable[[str], None]) -> None:
    """Install the components by name@vX.Y.Z, verify every file, compose them; fill in ``result``."""
    from shelf.compose import compose_installed
    from shelf.errors import IntegrityError
    from shelf.install import InstallTarget, verify_installed

    wanted = [f"{MLM_NAME}@v{result.version}", f"{CHARS_NAME}@v{result.version}"]
    say(f"[3/5] installing {' '.join(wanted)} into {result.target}")
    result.installed = list(installer.install(*wanted, target=result.target).installed)
    say("[4/5] verifying every installed file")
    problems = verify_installed(result.target)
    if problems:
        raise IntegrityError("installed files do not match their manifests:\n  " + "\n  ".join(problems))
    record = InstallTarget(result.target).read_record()["components"]
    result.verified_files = sum(len(entry.get("sha256", {})) for entry in record.values())
    say("[5/5] composing the installed components")
    composed = compose_installed(target=result.target)
    x = composed.preprocessor.string_to_array("cclm is neat", composed.preprocessor.max_example_len)
    result.output_shape = tuple(int(d) for d in composed.model(x).shape)
