"""What every benchmark script does around its measurements (this module measures nothing itself).

The options they share (``--quick``, ``--runs``, ``--no-write``), a temporary work folder with a private
environment (removed afterwards, whatever happens), a new shelf served on loopback by ``shelf.serve.start``
(git daemon, smart HTTP, giftless), and the command line a figures file quotes.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIGURES = ROOT / "benchmarks" / "TRANSFER_FIGURES.md"


def base_parser(doc: str, quick_help: str, runs_help: str) -> argparse.ArgumentParser:
    """The options every transfer benchmark takes: --quick, --runs, --no-write."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help=quick_help)
    parser.add_argument("--runs", type=int, help=runs_help)
    parser.add_argument("--no-write", action="store_true", help=f"do not update {FIGURES.name}")
    return parser


def base_env(work: Path) -> dict[str, str]:
    """A private git configuration (identity, git-lfs filters) and no cclm-shelf settings from outside."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CCLM_SHELF_")}
    gitconfig = work / "gitconfig"
    gitconfig.write_text("[user]\n\tname = bench\n\temail = bench@cclm-shelf.invalid\n", encoding="utf-8")
    env.update(GIT_CONFIG_GLOBAL=str(gitconfig), GIT_TERMINAL_PROMPT="0", HOME=str(work / "home"))
    # An installed package has its bytecode cached; without this, every CLI start recompiles the project.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
    (work / "home").mkdir(exist_ok=True)
    subprocess.run(["git", "lfs", "install", "--skip-repo"], env=env, check=True, capture_output=True)
    return env


@contextmanager
def work_folder(name: str, parent: Path | None = None) -> Iterator[tuple[Path, dict[str, str]]]:
    """A new temporary folder ``cclm-bench-NAME-*`` (in ``parent`` when given) and its ``base_env``."""
    work = Path(tempfile.mkdtemp(prefix=f"cclm-bench-{name}-", dir=parent))
    try:
        yield work, base_env(work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


@contextmanager
def served_shelf(work: Path, token: str | None = None, lfs_config: bool = False) -> Iterator:
    """A new shelf ``WORK/shelf.git`` served on loopback; yields ``(shelf, servers)``.

    With ``token``, the servers accept writes from it (``CCLM_SHELF_TOKEN`` for the clients; pushes go to
    ``servers.http_url``). With ``lfs_config`` the shelf's ``.lfsconfig`` names the LFS server, as
    ``cclm-shelf serve`` writes it, so that clients of the git URL find the blobs."""
    from shelf import serve
    from shelf.source import ShelfSource, create_shelf

    shelf = Path(create_shelf(work / "shelf.git"))
    tokens = None
    if token:
        tokens = work / "tokens"
        tokens.write_text(f"{token}\n", encoding="utf-8")
    with serve.start(shelf, token_file=tokens) as servers:
        if lfs_config:
            serve.point_lfs_url(ShelfSource(str(shelf), cache_dir=work / "serve-cache"), servers.lfs_url)
        yield shelf, servers


def command_line(script: str, args: argparse.Namespace) -> str:
    """How ``script`` (its ``__file__``) was run, as its figures quote it, with the --quick / --runs given."""
    command = f".venv/bin/python benchmarks/{Path(script).name}"
    command += " --quick" if getattr(args, "quick", False) else ""
    return command + (f" --runs {args.runs}" if getattr(args, "runs", None) else "")
