"""Headless Chromium (Debian's ``chromium`` package) for tests of the web pages: no browser download.

Each call gets its own profile folder under the test's temporary folder, so nothing of the user's browser
is read or written. Missing Chromium FAILS the test: CI installs it (scripts/setup.sh, `.ci/run`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

BROWSER = "/usr/bin/chromium"
PHONE = (412, 915)  # a common phone viewport, CSS pixels


def browser() -> str:
    found = shutil.which("chromium") or (BROWSER if Path(BROWSER).exists() else None)
    assert found, "Debian's chromium is needed (apt-get install -y chromium)"
    return found


def _run(args: list[str], profile: Path) -> subprocess.CompletedProcess:
    flags = [
        "--headless",
        "--no-sandbox",  # tests may run as root, where Chromium's sandbox refuses to start
        "--disable-gpu",
        "--no-first-run",
        "--disable-extensions",
        f"--user-data-dir={profile}",
    ]
    env = {**os.environ, "HOME": str(profile)}
    return subprocess.run(
        [browser(), *flags, *args], capture_output=True, text=True, timeout=120, env=env, check=False
    )


def dump_dom(url: str, profile: Path) -> str:
    """The page's DOM after the browser loaded it (what a person would see, as HTML)."""
    done = _run(["--dump-dom", url], profile)
    assert done.returncode == 0 and "<html" in done.stdout, done.stderr[-2000:]
    return done.stdout


def screenshot(url: str, dest: Path, profile: Path, size: tuple[int, int] = PHONE) -> Path:
    """A PNG of the page at ``size`` (a phone by default)."""
    done = _run([f"--screenshot={dest}", f"--window-size={size[0]},{size[1]}", url], profile)
    assert done.returncode == 0 and dest.is_file(), done.stderr[-2000:]
    return dest
