"""Running git: its environment, one command at a time, and its failures turned into our errors.

Every git process of the package manager goes through ``run_git``: prompts are off (an install must never
hang on a password), LFS smudging is off (mirrors hold metadata only), the message locale is fixed (so
git's refusals can be recognised), and a stalled HTTP remote gives up. Commands are logged at DEBUG level
with credentials redacted.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from shelf import constants
from shelf.errors import AuthError, GitError, TransportError
from shelf.gitauth import token_credential_env
from shelf.redaction import redact

FALLBACK_NAME = "cclm-shelf"
FALLBACK_EMAIL = "cclm-shelf@localhost"
DEFAULT_BRANCH = "main"
ZERO_OID = "0" * 40


def git_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment every git command runs with.

    Prompts would hang a non-interactive install, smudging would download LFS content we never want in a
    mirror, and a fixed message locale lets us recognise git's refusals.
    """
    env = dict(os.environ)
    env.update(GIT_TERMINAL_PROMPT="0", GIT_LFS_SKIP_SMUDGE="1", LC_ALL="C")
    # A stalled HTTP remote would hang an install forever; git gives up below 1 kB/s for READ_TIMEOUT.
    env.setdefault("GIT_HTTP_LOW_SPEED_LIMIT", "1000")
    env.setdefault("GIT_HTTP_LOW_SPEED_TIME", str(int(constants.READ_TIMEOUT)))
    env.update(extra or {})
    env.update(token_credential_env(env))  # CCLM_SHELF_TOKEN as the password for HTTP pushes
    return env


def _log(shown: str) -> None:
    """Log a command at DEBUG level. Only a program that imported ``logging`` can have set up a handler, so
    a command line that did not is spared the import (a few milliseconds of every start)."""
    if "logging" in sys.modules:
        import logging  # waits, should another thread be importing it right now

        logging.getLogger(__name__).debug("%s", shown)


def run_git(
    args: Sequence[str],
    cwd: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    input: bytes | None = None,
    *,
    check: bool = True,
) -> subprocess.CompletedProcess[bytes]:
    """Run ``git <args>``; raise :class:`GitError` with the command and git's stderr when it fails."""
    command = ["git", *map(str, args)]
    shown = redact(" ".join(command))
    _log(shown)
    try:
        done = subprocess.run(
            command,
            cwd=cwd,
            env=dict(env) if env is not None else git_env(),
            input=input,
            capture_output=True,
        )
    except FileNotFoundError as e:
        raise GitError("git is not installed", hint="install git 2.28 or newer and put it on PATH") from e
    if check and done.returncode != 0:
        stderr = redact(done.stderr.decode(errors="replace").strip())
        raise GitError(f"`{shown}` failed (exit {done.returncode}): {stderr}")
    return done


def git_dir_args(git_dir: Path) -> list[str]:
    return ["--git-dir", str(git_dir)]


_AUTH_FAILURES = ("Authentication failed", "terminal prompts disabled", "error: 401", "error: 403")


# git's words for a server that is not there, and ours.
_UNREACHABLE = {
    "Connection refused": "connection refused",
    "Couldn't connect to server": "connection refused",
    "unable to connect": "connection refused",
    "Could not resolve host": "unknown host",
    "Name or service not known": "unknown host",
    "timed out": "timed out",
    "No route to host": "no route to host",
    "Network is unreachable": "network unreachable",
}
UNREACHABLE_HINT = "check the address and that the shelf's server is running"

# git's words for an address that answers but holds no git repository.
_NO_REPOSITORY = re.compile(
    r"does not appear to be a git repository|not a git repository|repository '.*' not found"
)
_NEEDS_CREDENTIALS = ("terminal prompts disabled", "could not read Username", "error: 401")


def transport_error(action: str, url: str, stderr: str) -> TransportError:
    """An AuthError where the remote wants credentials, one line for a server that does not answer or an
    address with no repository, and a GitError naming git's complaint otherwise."""
    why = next((ours for marker, ours in _UNREACHABLE.items() if marker in stderr), None)
    if why is not None:
        return GitError(f"the shelf {redact(url)} did not answer ({why})", hint=UNREACHABLE_HINT)
    if _NO_REPOSITORY.search(stderr):
        return GitError(
            f"there is no shelf at {redact(url)}: no git repository there",
            hint="check the path or URL; `cclm-shelf init PATH` makes a shelf on disk",
        )
    if any(marker in stderr for marker in _AUTH_FAILURES):
        asked = any(marker in stderr for marker in _NEEDS_CREDENTIALS)
        return AuthError(
            f"the shelf {redact(url)} refused access: "
            + ("it needs credentials" if asked else "the credentials given are wrong"),
            hint=f"set {constants.ENV_TOKEN} to a token the shelf accepts, or configure a credential helper",
        )
    if "service not enabled" in stderr:  # git daemon without receive-pack, as `serve` runs it
        return GitError(
            f"the shelf {redact(url)} is read-only: its server takes no pushes there",
            hint="a served shelf's git:// URL is read-only: publish to its http:// URL with a token",
        )
    return GitError(f"{action} the shelf {redact(url)} failed: {redact(stderr.strip())}")


_LOOSE_OBJECTS = re.compile(r"[0-9a-f]{2}")  # objects/ab/...: git writes no lock files there


def remove_stale_git_locks(git_dir: Path) -> list[Path]:
    """Delete git's own ``*.lock`` files inside ``git_dir`` (shallow.lock, packed-refs.lock, refs/...lock).

    Only call this while holding the mirror's file lock: every git process writing to the mirror runs
    under it, so a git lock file found then was left by a run that was killed, and would make the next
    ``git fetch`` fail. Loose object folders are not walked (git keeps no lock files there).
    """
    removed: list[Path] = []
    for folder, subfolders, files in os.walk(git_dir):
        if Path(folder) == git_dir / "objects":
            subfolders[:] = [name for name in subfolders if not _LOOSE_OBJECTS.fullmatch(name)]
        for name in files:
            if name.endswith(".lock"):
                path = Path(folder, name)
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                    removed.append(path)
    return removed


def parse_cat_file_batch(out: bytes, wanted: Sequence[str]) -> dict[str, bytes]:
    """Split ``git cat-file --batch`` output (one header line, then the content, per request line)."""
    found: dict[str, bytes] = {}
    position = 0
    for path in wanted:
        end = out.index(b"\n", position)
        header = out[position:end].split(b" ")
        position = end + 1
        if len(header) != 3 or header[1] not in (b"blob", b"tree", b"commit", b"tag"):
            continue  # "<name> missing" or "<name> ambiguous": no content follows
        size = int(header[2])
        if header[1] == b"blob":
            found[path] = out[position : position + size]
        position += size + 1  # the content is followed by a newline
    return found
