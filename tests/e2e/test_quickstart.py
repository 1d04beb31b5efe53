"""``cclm-shelf quickstart --small`` end to end in its own process, then the install command it prints."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.shelf.conftest import BASE, publish_folder, saved_models  # noqa: F401 - shared fixture

ROOT = Path(__file__).resolve().parents[2]


def cclm_shelf(*args: str, cwd: Path, timeout: float = 240) -> subprocess.CompletedProcess:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "shelf.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.slow
def test_quickstart_small_then_the_printed_install(tmp_path):
    workdir = tmp_path / "qs"
    done = cclm_shelf("quickstart", "--small", "--workdir", str(workdir), cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    shape = re.search(r"composed output\s+\((\d+), (\d+), (\d+)\)", done.stdout)
    assert shape is not None, done.stdout
    assert (int(shape[1]), int(shape[2])) == (1, 32) and int(shape[3]) > 0
    assert re.search(r"verified\s+7 file\(s\)", done.stdout)
    home = Path(os.environ["CCLM_SHELF_HOME"])
    assert {"stdlib_docs_base/v0.1.0", "stdlib_docs_mlm/v0.1.0"} <= set(
        subprocess.run(
            ["git", f"--git-dir={home / 'shelf.git'}", "tag"], capture_output=True, text=True, check=True
        ).stdout.split()
    )

    printed = next(line.strip() for line in done.stdout.splitlines() if " install stdlib_docs_" in line)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    words = shlex.split(printed)
    installed = cclm_shelf(*words[words.index("install") :], cwd=elsewhere)
    assert installed.returncode == 0, installed.stderr
    for name in ("stdlib_docs_base", "stdlib_docs_mlm", "stdlib_docs_chars"):
        assert (elsewhere / ".cclm" / name).is_dir()
    verified = cclm_shelf("verify", cwd=elsewhere)
    assert verified.returncode == 0, verified.stderr


def test_a_second_run_publishes_the_next_version(tmp_path, saved_models):  # noqa: F811
    from shelf.api import Shelf
    from shelf.quickstart import BASE_NAME, FIRST_VERSION, next_version
    from shelf.source import create_shelf

    shelf = create_shelf(tmp_path / "shelf.git")
    assert next_version(Shelf(shelf)) == FIRST_VERSION
    publish_folder(shelf, saved_models / BASE, BASE_NAME, "0.1.0")
    publish_folder(shelf, saved_models / BASE, BASE_NAME, "0.1.4")
    assert next_version(Shelf(shelf)) == "0.1.5"


@pytest.mark.slow
def test_quickstart_works_in_its_own_folder_quietly_and_prints_commands_that_run(tmp_path):
    here = tmp_path / "where-the-user-is"
    here.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env["PYTHONPATH"] = str(ROOT)
    env["PATH"] = "/usr/bin:/bin"  # cclm-shelf is not on PATH: the printed commands must still run
    done = subprocess.run(
        [sys.executable, "-m", "shelf.cli", "quickstart", "--small"],
        cwd=here, env=env, capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert list(here.iterdir()) == []  # nothing written where the user stands
    folder = Path(os.environ["CCLM_SHELF_HOME"]) / "quickstart"
    assert f"working in {folder}" in done.stderr and (folder / ".cclm" / "stdlib_docs_mlm").is_dir()
    for noise in ("cuda", "cuInit", "I0000", "absl"):
        assert noise not in done.stderr, done.stderr
    printed = [line.strip() for line in done.stdout.splitlines() if " install stdlib_docs_" in line]
    assert printed and not printed[0].startswith("cclm-shelf ")  # the path it runs from, not a bare name
    ran = subprocess.run(
        printed[0], shell=True, cwd=here, env=env, capture_output=True, text=True, timeout=120
    )
    assert ran.returncode == 0, ran.stderr
    assert (here / ".cclm" / "stdlib_docs_chars").is_dir()


def test_a_workdir_whose_saved_or_cclm_folder_is_the_users_is_refused(tmp_path):
    """quickstart replaces saved/ and .cclm/ in its folder: never ones it did not make."""
    from shelf.quickstart import WORKDIR_MARKER

    for taken in ("saved", ".cclm"):
        workdir = tmp_path / taken.strip(".")
        (workdir / taken).mkdir(parents=True)
        (workdir / taken / "mine.txt").write_text("mine")
        done = cclm_shelf("quickstart", "--small", "--workdir", str(workdir), cwd=tmp_path)
        assert done.returncode == 2 and "Traceback" not in done.stderr
        assert f"error: {workdir} already holds {taken}, which quickstart did not make" in done.stderr
        assert (workdir / taken / "mine.txt").read_text() == "mine"
        assert sorted(p.name for p in workdir.iterdir()) == [taken]  # no marker, nothing trained
    assert not (tmp_path / "cclm").joinpath(WORKDIR_MARKER).exists()
