"""Publish and small-stack benchmark: ``cclm-shelf publish`` / ``install`` against git + git-lfs.

One shelf is served on loopback by ``shelf.serve.start`` with a token (smart HTTP for git, giftless for the
blobs), as ``cclm-shelf serve`` serves it. Every contender talks to these servers, in the same run:

1. a small stack: a base component and 3 components of 4 MiB that require it, published with the CLI;
   cold install of the 3 (which brings the base) into a fresh cache, against ``GIT_LFS_SKIP_SMUDGE=1 git
   clone`` + ``git lfs pull`` of the shelf (which holds only that stack at that moment);
2. publish of one new component of 64 MiB and of 4 MiB with the CLI, against ``git add`` + ``git commit`` +
   ``git push`` (git-lfs uploads in its pre-push hook) of a folder of the same size into a clone made
   beforehand (not timed). Each run publishes new bytes (a variant of the weights), so nothing is skipped
   as already uploaded.

The component is a real one saved by the core (tiny Keras model, in a child process) whose weights file is
grown to the size with h5py (``bench_memory.big_component``).

    .venv/bin/python benchmarks/bench_publish.py [--quick] [--runs N] [--no-write]

Results go to stdout and to the generated section ``publish`` of ``benchmarks/TRANSFER_FIGURES.md``.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_memory import big_component, save_real_component, variant  # noqa: E402
from bench_transfer import Row, Sample, cli, median, report, table, timed, write_section  # noqa: E402
from scaffold import base_parser, command_line, served_shelf, work_folder  # noqa: E402

from registry_index import layout  # noqa: E402

TOKEN = "bench-publish-token-0123456789abcdef"
VERSION = "1.0.0"
STACK = ("stack_a", "stack_b", "stack_c")
STACK_BASE = "stack_base"


def publish_cmd(url: str, cache: Path, folder: Path, name: str, requires: Sequence[str] = ()) -> list[str]:
    extra = [a for r in requires for a in ("--requires", r)] or ["--without-base"]
    return [*cli(), "--shelf", url, "--cache-dir", str(cache), "publish", str(folder), "--name", name,
            "--version", VERSION, *extra]  # fmt: skip


def fresh_folder(template: Path, dest: Path) -> Path:
    """A copy of ``template`` whose weights end in new bytes (same size, an object the server lacks)."""
    dest.mkdir(parents=True)
    shutil.copy2(template / "component.json", dest / "component.json")
    variant(template / "component.weights.h5", dest / "component.weights.h5")
    return dest


def git_env(env: dict[str, str], work: Path) -> dict[str, str]:
    """``env`` whose git configuration answers the token to git and git-lfs (as a credential helper)."""
    config = work / "gitconfig-publisher"
    text = (work / "gitconfig").read_text(encoding="utf-8")
    helper = f"!f() {{ echo username=bench; echo password={TOKEN}; }}; f"
    text += f'[credential]\n\thelper = "{helper}"\n'
    text += '[filter "lfs"]\n\tclean = git-lfs clean -- %f\n\tsmudge = git-lfs smudge -- %f\n'
    text += "\tprocess = git-lfs filter-process\n\trequired = true\n"
    config.write_text(text, encoding="utf-8")
    return dict(env, GIT_CONFIG_GLOBAL=str(config), CCLM_SHELF_TOKEN=TOKEN)


def git_publish(env: dict[str, str], url: str, run: Path, template: Path, name: str) -> Sample:
    """Clone (not timed), then time git add + commit + push of a new folder with git-lfs."""
    clone = run / "clone"
    timed(["git", "clone", "--quiet", url, clone], dict(env, GIT_LFS_SKIP_SMUDGE="1"))
    lfs_url = subprocess_out(["git", "config", "-f", ".lfsconfig", "lfs.url"], env, clone)
    # giftless answers 403, not 401, to an upload without credentials: make git-lfs send them at once.
    timed(["git", "config", f"lfs.{lfs_url}.access", "basic"], env, cwd=clone)
    fresh_folder(template, clone / layout.component_dir(name, VERSION))
    elapsed = timed(["git", "add", "-A"], env, cwd=clone)
    elapsed += timed(["git", "commit", "--quiet", "-m", f"{name} {VERSION}"], env, cwd=clone)
    elapsed += timed(["git", "push", "--quiet", "origin", "HEAD"], env, cwd=clone)
    return elapsed


def subprocess_out(args: Sequence[str], env: dict[str, str], cwd: Path) -> str:
    import subprocess

    return subprocess.run(args, env=env, cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def measure_publish(env: dict[str, str], url: str, work: Path, template: Path, key: str, runs: int) -> Row:
    label = f"{(template / 'component.weights.h5').stat().st_size >> 20} MiB"
    ours: list[Sample] = []
    git: list[Sample] = []
    for number in range(runs):
        print(f"publish {label}, run {number + 1}/{runs}", flush=True)
        run = Path(tempfile.mkdtemp(prefix="publish-", dir=work))
        folder = fresh_folder(template, run / "folder")
        ours.append(timed(publish_cmd(url, run / "cache", folder, f"pub_{key}_{number}"), env))
        git.append(git_publish(env, url, run, template, f"git_{key}_{number}"))
        shutil.rmtree(run)
    return Row(f"publish one {label} component", ours, "git add + commit + push (git-lfs)", git,
               ">= 1.5x faster", median(git) / median(ours) >= 1.5)  # fmt: skip


def publish_stack(env: dict[str, str], url: str, work: Path, real: Path, template: Path) -> None:
    cache = work / "stack-publisher"
    timed(publish_cmd(url, cache, real, STACK_BASE), env)
    for name in STACK:
        folder = fresh_folder(template, work / f"src-{name}")
        timed(publish_cmd(url, cache, folder, name, [f"{STACK_BASE}=={VERSION}"]), env)


def measure_stack(env: dict[str, str], url: str, work: Path, runs: int) -> Row:
    ours: list[Sample] = []
    git: list[Sample] = []
    for number in range(runs):
        print(f"small stack, run {number + 1}/{runs}", flush=True)
        run = Path(tempfile.mkdtemp(prefix="stack-", dir=work))
        install = [*cli(), "--shelf", url, "--cache-dir", str(run / "cache"), "install", *STACK,
                   "--target", str(run / "target")]  # fmt: skip
        ours.append(timed(install, env))
        missing = [n for n in (STACK_BASE, *STACK) if not (run / "target" / n).is_dir()]
        if missing:
            raise SystemExit(f"the stack install did not bring {missing}")
        git_run = run / "git"
        clone_env = dict(env, GIT_LFS_SKIP_SMUDGE="1")
        elapsed = timed(["git", "clone", "--quiet", url, git_run], clone_env)
        git.append(elapsed + timed(["git", "lfs", "pull"], clone_env, cwd=git_run))
        shutil.rmtree(run)
    return Row("cold install, base + 3 x 4 MiB", ours, "git clone + git lfs pull", git, ">= 1.3x faster",
               median(git) / median(ours) >= 1.3)  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    parser = base_parser(__doc__, "4 MiB instead of 64 MiB, 2 runs, for a smoke run", "runs (default 3)")
    args = parser.parse_args(argv)
    runs = args.runs or (2 if args.quick else 3)
    started = time.perf_counter()
    with work_folder("publish") as (work, env):
        env = git_env(env, work)
        real = work / "real-component"
        save_real_component(real, env)
        small = big_component(real, work / "template-4", 4)
        big = small if args.quick else big_component(real, work / "template-64", 64)
        with served_shelf(work, token=TOKEN, lfs_config=True) as (_, servers):
            url = servers.http_url
            publish_stack(env, url, work, real, small)
            rows = [measure_stack(env, url, work, runs)]
            rows.append(measure_publish(env, url, work, big, "big", runs))
            rows.append(measure_publish(env, url, work, small, "small", runs))
    print(table(rows))
    print(f"total {time.perf_counter() - started:.0f} s")
    if not (args.no_write or args.quick):
        head = f"Command: `{command_line(__file__, args)}` (every row is the median of its runs)."
        write_section("publish", report(rows, head))
    return 0


if __name__ == "__main__":
    sys.exit(main())
