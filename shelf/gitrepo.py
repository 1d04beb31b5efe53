"""Git transport for shelves: metadata mirrors and atomic publishing commits.

A shelf is a git repository (a local path, ``file://``, ``git://``, ``ssh://`` or ``http(s)://`` URL) whose
large files are Git LFS pointer files. The package manager never works in a checkout: it keeps one bare
*mirror* per shelf remote and reads it with git plumbing, so only small metadata (manifests, index files,
pointer files) ever crosses the wire and LFS content is never fetched or smudged.

Cache layout (under :func:`shelf.constants.cache_dir`)::

    mirrors/<slug>-<sha256(url)[:16]>.git        bare repository: refs/heads/* and refs/tags/* of the remote
    mirrors/<slug>-<sha256(url)[:16]>.git.lock   file lock held while the mirror is created or fetched

``<url>`` is the normalised URL without credentials, so ``/srv/shelf`` and ``file:///srv/shelf`` share a
mirror. Publishing builds a commit inside the mirror without a work tree (a temporary index) and pushes the
branch and the release tags in one ``git push --atomic`` guarded by the expected old value of the branch:
either every ref moves or none does.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path

from filelock import FileLock, Timeout

from shelf import constants
from shelf.errors import (
    AuthError,
    ConfigError,
    GitError,
    NotFoundError,
    OfflineError,
    PushRejected,
    TransportError,
    UnsafeContentError,
)
from shelf.fsutil import atomic_write
from shelf.gitauth import token_credential_env
from shelf.redaction import redact
from shelf.remote.url import ShelfURL, is_local

__all__ = [
    "FALLBACK_EMAIL",
    "FALLBACK_NAME",
    "PushRejected",
    "ShelfMirror",
    "TreeEntry",
    "git_env",
    "init_shelf",
    "is_local_url",
    "mirror_path",
    "normalise_url",
    "redact",
    "run_git",
]

logger = logging.getLogger(__name__)

FALLBACK_NAME = "cclm-shelf"
FALLBACK_EMAIL = "cclm-shelf@localhost"
DEFAULT_BRANCH = "main"
MIRRORS_DIR = "mirrors"
LOCK_TIMEOUT = 300.0  # seconds to wait for another process fetching the same mirror
_ZERO_OID = "0" * 40
_FULL_SHA = re.compile(r"[0-9a-f]{40}")
_REMOTE_HEAD = "refs/shelf-remote/HEAD"  # where the remote's HEAD commit lands on fetch
_TAG_LISTING = "shelf-remote-tags"  # in the mirror: the remote's tags as last listed, for offline use
_RETRY_HINT = "refresh the shelf (someone else published first) and try again"


@dataclass(frozen=True)
class TreeEntry:
    """One entry of a tree listing; ``path`` is relative to the repository root."""

    path: str
    mode: str
    kind: str  # "blob", "tree" or "commit"
    oid: str


# --------------------------------------------------------------------------------------------------------
# Running git


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
    logger.debug("%s", shown)
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


# --------------------------------------------------------------------------------------------------------
# URLs


def is_local_url(url: str) -> bool:
    """True for a path on this machine or a ``file://`` URL (see ``ShelfURL``)."""
    return is_local(url)


def normalise_url(url: str | os.PathLike[str]) -> str:
    """The canonical form of a shelf URL: an absolute path for local shelves, a tidy URL otherwise.

    Refuses an empty string, an unknown scheme and a local path that is a regular file.
    """
    parsed = ShelfURL.parse(url)
    return str(_local_path(parsed)) if parsed.is_local else parsed.text


def _local_path(parsed: ShelfURL) -> Path:
    path = parsed.local_path
    if path.is_file():
        raise ConfigError(
            f"{path} is a file, not a shelf",
            hint="a shelf is a git repository folder: point at the folder (or create one with init_shelf)",
        )
    return path


def mirror_path(url: str, cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """Where the bare mirror of ``url`` lives: one folder per normalised URL, credentials left out."""
    key = ShelfURL.parse(normalise_url(url)).mirror_key
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    stem = re.split(r"[/:]", key.rstrip("/"))[-1].removesuffix(".git")
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", stem).strip(".-")[:40] or "shelf"
    root = Path(cache_dir) if cache_dir is not None else constants.cache_dir()
    return root / MIRRORS_DIR / f"{slug}-{digest}.git"


# --------------------------------------------------------------------------------------------------------
# Building trees and commits without a work tree


def _check_repo_path(path: str) -> str:
    """Refuse paths that git would store oddly or that could escape a checkout."""
    parts = path.split("/")
    bad = (
        not path
        or any(c in path for c in "\\\0\n\r")
        or any(p in ("", ".", "..") for p in parts)
        or any(p.lower() == ".git" for p in parts)
    )
    if bad:
        raise UnsafeContentError(
            f"refusing to commit the path {path!r}",
            hint="use a relative path with '/' separators and no empty, '.', '..' or '.git' parts",
        )
    return path


def _git_dir_args(git_dir: Path) -> list[str]:
    return ["--git-dir", str(git_dir)]


def _write_blobs(git_dir: Path, contents: Sequence[bytes]) -> list[str]:
    """Store every content as a blob with ONE ``hash-object`` process; filters (LFS clean) stay off."""
    if not contents:
        return []
    with tempfile.TemporaryDirectory(prefix="cclm-shelf-blobs-") as tmp:
        paths = []
        for number, data in enumerate(contents):
            path = Path(tmp) / str(number)
            path.write_bytes(data)
            paths.append(str(path))
        request = ("\n".join(paths) + "\n").encode()
        args = [*_git_dir_args(git_dir), "hash-object", "-w", "--no-filters", "--stdin-paths"]
        out = run_git(args, input=request).stdout.decode().split()
    return out


def _write_tree(git_dir: Path, base: str | None, files: Mapping[str, bytes | None]) -> str:
    """The tree of ``base`` with ``files`` written (bytes) or removed (None), built in a temporary index."""
    checked = {_check_repo_path(path): data for path, data in files.items()}
    added = sorted(path for path, data in checked.items() if data is not None)
    oids = _write_blobs(git_dir, [checked[path] for path in added])  # type: ignore[misc]
    lines = [f"0 {_ZERO_OID}\t{path}" for path, data in checked.items() if data is None]
    lines += [f"100644 {oid}\t{path}" for path, oid in zip(added, oids, strict=True)]
    with tempfile.TemporaryDirectory(prefix="cclm-shelf-index-") as tmp:
        env = git_env({"GIT_INDEX_FILE": str(Path(tmp) / "index")})
        if base is not None:
            run_git([*_git_dir_args(git_dir), "read-tree", base], env=env)
        if lines:
            # --replace: a new file may take the place of a folder of the same name and vice versa.
            request = ("\n".join(lines) + "\n").encode()
            run_git(
                [*_git_dir_args(git_dir), "update-index", "--replace", "--index-info"], env=env, input=request
            )
        return run_git([*_git_dir_args(git_dir), "write-tree"], env=env).stdout.decode().strip()


def _config_has(git_dir: Path, key: str) -> bool:
    done = run_git([*_git_dir_args(git_dir), "config", "--get", key], check=False)
    return done.returncode == 0 and bool(done.stdout.strip())


def _identity_env(git_dir: Path) -> dict[str, str]:
    """A fallback author and committer where neither the environment nor git config names one.

    CI machines often have no ~/.gitconfig; git would then guess from the host name or refuse to commit.
    """
    env: dict[str, str] = {}
    fallbacks = {"NAME": ("user.name", FALLBACK_NAME), "EMAIL": ("user.email", FALLBACK_EMAIL)}
    for field, (key, fallback) in fallbacks.items():
        names = [f"GIT_AUTHOR_{field}", f"GIT_COMMITTER_{field}"]
        if all(os.environ.get(name) for name in names):
            continue
        if _config_has(git_dir, key) or (field == "EMAIL" and os.environ.get("EMAIL")):
            continue
        env.update({name: fallback for name in names if not os.environ.get(name)})
    return env


def _commit_tree(git_dir: Path, tree: str, parents: Iterable[str], message: str) -> str:
    args = [*_git_dir_args(git_dir), "commit-tree", tree]
    for parent in parents:
        args += ["-p", parent]
    env = git_env(_identity_env(git_dir))
    done = run_git([*args, "-F", "-"], env=env, input=message.encode())
    return done.stdout.decode().strip()


def _check_tag(git_dir: Path, tag: str) -> str:
    done = run_git([*_git_dir_args(git_dir), "check-ref-format", f"refs/tags/{tag}"], check=False)
    if done.returncode != 0:
        raise ConfigError(f"{tag!r} is not a valid tag name", hint="tags look like <name>/v<version>")
    return tag


# --------------------------------------------------------------------------------------------------------
# Pushing


def _parse_rejections(porcelain: str) -> dict[str, str]:
    """Refs that ``git push --porcelain`` reports as refused, with git's reason."""
    reasons: dict[str, str] = {}
    for line in porcelain.splitlines():
        fields = line.split("\t")
        if len(fields) >= 3 and fields[0] == "!":
            ref = fields[1].rpartition(":")[2]
            # "[rejected] (stale info)" -> "stale info"; keep the whole summary when it has no reason.
            why = re.search(r"\((.*)\)", fields[2])
            reasons[ref] = why.group(1) if why else fields[2]
    return reasons


def _push_atomic(git_dir: Path, url: str, refspecs: Sequence[str], lease: str) -> None:
    # --no-verify: a pre-push hook from a git template (git-lfs installs one) must not upload anything.
    options = ["--atomic", "--porcelain", "--no-verify", f"--force-with-lease={lease}"]
    done = run_git([*_git_dir_args(git_dir), "push", *options, url, *refspecs], check=False)
    if done.returncode == 0:
        return
    reasons = _parse_rejections(done.stdout.decode(errors="replace"))
    if reasons:
        # With --atomic the innocent refs are reported "atomic push failed"; the real reasons lead.
        ordered = sorted(reasons.items(), key=lambda item: item[1] == "atomic push failed")
        summary = "; ".join(f"{ref}: {why}" for ref, why in ordered)
        raise PushRejected(f"{redact(url)} refused the update ({summary})", hint=_RETRY_HINT, reasons=reasons)
    raise _transport_error("pushing to", url, done.stderr.decode(errors="replace"))


# --------------------------------------------------------------------------------------------------------
# The mirror


class ShelfMirror:
    """A bare, metadata-only mirror of one shelf remote, and the place publishing commits are built.

    Open it with :meth:`open`; it is fetched on first use and by :meth:`refresh`, never cloned again.
    Two processes may use one mirror at once: fetches hold a file lock, and readers only read objects.
    """

    def __init__(self, url: str, path: Path, *, offline: bool = False) -> None:
        self.url = url
        self.path = path
        self.offline = offline
        self.refreshed = False  # True once this object has fetched (open() does so for a new mirror)
        self._remote_tags: dict[str, str] | None = None  # the remote's tags, listed once per fetch

    def __repr__(self) -> str:
        return f"ShelfMirror({redact(self.url)!r}, path={str(self.path)!r}, offline={self.offline})"

    @classmethod
    def open(
        cls,
        url: str | os.PathLike[str],
        cache_dir: str | os.PathLike[str] | None = None,
        offline: bool = False,
    ) -> ShelfMirror:
        """The mirror of ``url``, created and fetched if it does not exist yet.

        Offline (``offline=True`` or CCLM_SHELF_OFFLINE=1) only what is already mirrored is used.
        """
        normalised = normalise_url(str(url))
        mirror = cls(normalised, mirror_path(normalised, cache_dir), offline=offline or constants.offline())
        if mirror.offline:
            if not mirror._has_refs():
                raise OfflineError(
                    f"the shelf {redact(normalised)} has not been mirrored yet and offline mode is on",
                    hint="run once with network access (unset CCLM_SHELF_OFFLINE) to mirror it",
                )
            return mirror
        if not mirror._has_refs():
            mirror.refresh()
        return mirror

    # ---- fetching

    def _git(self, *args: str, input: bytes | None = None, check: bool = True) -> subprocess.CompletedProcess:
        return run_git([*_git_dir_args(self.path), *args], input=input, check=check)

    def _lock(self) -> FileLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        return FileLock(str(self.path) + ".lock", timeout=LOCK_TIMEOUT)

    def _has_refs(self) -> bool:
        if not (self.path / "HEAD").is_file():
            return False
        done = self._git("for-each-ref", "--count=1", "refs/heads", "refs/tags", check=False)
        return done.returncode == 0 and bool(done.stdout.strip())

    def refresh(self) -> ShelfMirror:
        """Fetch the head of every remote branch (pruning deleted ones); a no-op offline."""
        if self.offline:
            return self
        self._check_local_remote()
        self._remote_tags = None
        try:
            with self._lock():
                created = not (self.path / "HEAD").is_file()
                if created:
                    run_git(["init", "--bare", "--quiet", str(self.path)])
                try:
                    self._fetch()
                    self.refreshed = True
                except TransportError as e:
                    if created:  # leave no empty mirror behind for a URL that does not work
                        shutil.rmtree(self.path, ignore_errors=True)
                    elif e.hint == UNREACHABLE_HINT:
                        e.hint += "; or add --offline to work from what this machine has mirrored"
                    raise
        except Timeout as e:
            raise self._lock_timeout() from e
        return self

    def _lock_timeout(self) -> GitError:
        return GitError(
            f"timed out waiting for the lock on the mirror {self.path}",
            hint=f"another cclm-shelf is fetching; if none runs, delete {self.path}.lock",
        )

    def _fetch_tag(self, ref: str) -> bool:
        """Fetch the tag ``ref`` names (its commit, shallow) when the remote has it; False otherwise."""
        name = ref.removeprefix("refs/tags/")
        if name not in self.tags():
            return False
        if self.offline:
            raise OfflineError(
                f"the tag {name} of the shelf {redact(self.url)} is not mirrored and offline mode is on",
                hint="run once with network access (unset CCLM_SHELF_OFFLINE) to mirror it",
            )
        refspec = f"+refs/tags/{name}:refs/tags/{name}"
        try:
            with self._lock():
                done = self._git(
                    "fetch",
                    "--quiet",
                    "--no-write-fetch-head",
                    "--depth=1",
                    "--no-tags",
                    self.url,
                    refspec,
                    check=False,
                )
        except Timeout as e:
            raise self._lock_timeout() from e
        if done.returncode != 0:
            raise _transport_error("fetching a tag from", self.url, done.stderr.decode(errors="replace"))
        return True

    def _check_local_remote(self) -> None:
        if is_local_url(self.url) and not Path(self.url).is_dir():
            raise NotFoundError(
                f"the shelf {self.url} does not exist",
                hint="check the path, or create a shelf there first",
            )

    def _fetch(self) -> None:
        # Reading needs the tree at each branch head, not the history or the release tags: a shallow,
        # tagless fetch costs the same for 5 or 5000 publications. Tags are listed and fetched on demand.
        refspecs = ["+refs/heads/*:refs/heads/*"]
        base = ["fetch", "--prune", "--quiet", "--no-write-fetch-head", "--depth=1", "--no-tags", self.url]
        done = self._git(*base, *refspecs, f"+HEAD:{_REMOTE_HEAD}", check=False)
        if done.returncode != 0 and b"couldn't find remote ref HEAD" not in done.stderr:
            raise _transport_error("fetching", self.url, done.stderr.decode(errors="replace"))
        if done.returncode != 0:
            # A remote whose HEAD names a missing branch (or an empty remote) cannot serve HEAD.
            self._git("update-ref", "-d", _REMOTE_HEAD, check=False)
            self._git(*base, *refspecs)
        self._point_head()

    def _point_head(self) -> None:
        """Make the mirror's HEAD name the remote's default branch (main, master or whatever it uses)."""
        branches = self._branches()
        if not branches:
            return
        remote_head = self._rev(_REMOTE_HEAD)
        preferred = [DEFAULT_BRANCH, "master", *sorted(branches)]
        same = [name for name in preferred if name in branches and branches[name] == remote_head]
        chosen = same[0] if same else next(name for name in preferred if name in branches)
        self._git("symbolic-ref", "HEAD", f"refs/heads/{chosen}")

    def _branches(self) -> dict[str, str]:
        out = self._git("for-each-ref", "--format=%(refname:lstrip=2)%00%(objectname)", "refs/heads").stdout
        return dict(line.split("\0", 1) for line in out.decode().splitlines() if line)

    def _rev(self, ref: str) -> str | None:
        done = self._git("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", check=False)
        if done.returncode != 0:
            return None
        return done.stdout.decode().strip() or None

    # ---- reading

    def _commit(self, ref: str) -> str:
        """``ref`` as a commit; a full sha is taken as is, saving a process per read (callers pass shas)."""
        if _FULL_SHA.fullmatch(ref):
            return ref
        return self.head(ref)

    def _resolve(self, ref: str) -> str | None:
        """``ref`` as a commit, fetching a tag or commit of the remote that the mirror has not fetched yet."""
        commit = self._rev(ref)
        if commit is None:
            fetch = self._fetch_commit if _FULL_SHA.fullmatch(ref) else self._fetch_tag
            commit = self._rev(ref) if fetch(ref) else None
        return commit

    def _fetch_commit(self, sha: str) -> bool:
        """Fetch one commit by its id (shallow: any commit, not only a branch or tag head).

        False offline or when the remote has no such commit; the original shelf layout is read at any ref.
        """
        if self.offline:
            return False
        try:
            with self._lock():
                fetch = ("fetch", "--quiet", "--no-write-fetch-head", "--depth=1", "--no-tags")
                done = self._git(*fetch, self.url, sha, check=False)
        except Timeout as e:
            raise self._lock_timeout() from e
        stderr = done.stderr.decode(errors="replace")
        if done.returncode != 0 and not ("not our ref" in stderr or "remote ref" in stderr):
            raise _transport_error("fetching a commit from", self.url, stderr)
        return done.returncode == 0

    def head(self, ref: str = "HEAD") -> str:
        """The commit ``ref`` (a branch, tag, sha or ``HEAD`` = the remote's default branch) points at."""
        commit = self._resolve(ref)
        if commit is None:
            raise NotFoundError(
                f"no commit {ref!r} in the shelf {redact(self.url)}",
                hint="refresh the shelf, or check the branch or tag name",
            )
        return commit

    def default_branch(self) -> str:
        """The name of the remote's default branch, as mirrored."""
        done = self._git("symbolic-ref", "--short", "HEAD", check=False)
        return done.stdout.decode().strip() or DEFAULT_BRANCH

    def read_file(self, ref: str, path: str) -> bytes:
        """The bytes of the file ``path`` at ``ref``."""
        commit = self._commit(ref)
        done = self._git("cat-file", "blob", f"{commit}:{path}", check=False)
        if done.returncode != 0:
            raise NotFoundError(f"no file {path!r} at {ref!r} in the shelf {redact(self.url)}")
        return done.stdout

    def exists(self, ref: str, path: str) -> bool:
        """True when ``path`` (a file or folder) exists at ``ref``."""
        commit = ref if _FULL_SHA.fullmatch(ref) else self._resolve(ref)
        if commit is None:
            return False
        return self._git("cat-file", "-e", f"{commit}:{path}", check=False).returncode == 0

    def list_tree(self, ref: str, path: str = "", recursive: bool = False) -> list[TreeEntry]:
        """The entries of the folder ``path`` at ``ref`` (every file below it when ``recursive``)."""
        commit = self._commit(ref)
        folder = path.strip("/")
        spec = f"{commit}:{folder}" if folder else f"{commit}^{{tree}}"
        done = self._git("ls-tree", "-z", *(["-r"] if recursive else []), spec, check=False)
        if done.returncode != 0:
            raise NotFoundError(f"no folder {path!r} at {ref!r} in the shelf {redact(self.url)}")
        prefix = f"{folder}/" if folder else ""
        return [_tree_entry(record, prefix) for record in done.stdout.decode().split("\0") if record]

    def tags(self, pattern: str | None = None) -> dict[str, str]:
        """Tag name -> commit, for every tag matching the shell-style ``pattern`` (``*`` spans ``/``).

        The mirror does not fetch tags, so online the remote lists them (one ``git ls-remote``, kept until
        the next refresh); offline, the last listing and the tags this mirror fetched or pushed are known.
        """
        if self.offline:
            found = self._saved_listing() | self._local_tags()
        else:
            if self._remote_tags is None:
                self._remote_tags = self._list_remote_tags()
            found = self._remote_tags
        return {
            name: commit for name, commit in found.items() if pattern is None or fnmatchcase(name, pattern)
        }

    def _local_tags(self) -> dict[str, str]:
        fmt = "--format=%(refname:lstrip=2)%00%(objectname)%00%(*objectname)"
        out = self._git("for-each-ref", fmt, "refs/tags").stdout.decode()
        found: dict[str, str] = {}
        for line in out.splitlines():
            name, oid, peeled = line.split("\0")
            found[name] = peeled or oid  # annotated tags point at a tag object: report its commit
        return found

    def _list_remote_tags(self) -> dict[str, str]:
        self._check_local_remote()
        done = self._git("ls-remote", "--tags", self.url, check=False)
        if done.returncode != 0:
            raise _transport_error("listing the tags of", self.url, done.stderr.decode(errors="replace"))
        found = _parse_tag_listing(done.stdout.decode())
        self._save_listing(found)
        return found

    def _save_listing(self, tags: Mapping[str, str]) -> None:
        """Keep the listing in the mirror (written whole, then renamed) so offline reads know the tags."""
        with contextlib.suppress(OSError):  # a read-only cache only costs offline mode this knowledge
            atomic_write(
                self.path / _TAG_LISTING, "".join(f"{commit}\t{name}\n" for name, commit in tags.items())
            )

    def _saved_listing(self) -> dict[str, str]:
        try:
            text = (self.path / _TAG_LISTING).read_text(encoding="utf-8")
        except OSError:
            return {}
        pairs = (line.split("\t", 1) for line in text.splitlines())
        return {name: commit for commit, name in pairs}

    def lfs_url(self, ref: str = "HEAD") -> str | None:
        """``lfs.url`` from ``.lfsconfig`` at ``ref``, or None where the shelf does not set one."""
        commit = self._commit(ref)
        if not self.exists(commit, ".lfsconfig"):
            return None
        done = self._git("config", "--blob", f"{commit}:.lfsconfig", "--get", "lfs.url", check=False)
        return done.stdout.decode().strip() or None

    def read_many(self, ref: str, paths: Iterable[str], *, missing_ok: bool = False) -> dict[str, bytes]:
        """The bytes of many files at ``ref``, read by ONE ``git cat-file --batch`` process.

        A missing path raises :class:`NotFoundError` naming every missing path, or is left out of the
        result when ``missing_ok``.
        """
        commit = self._commit(ref)
        wanted = list(dict.fromkeys(paths))
        for path in wanted:
            if not path or "\n" in path or "\r" in path:
                raise NotFoundError(f"{path!r} is not a file path", hint="file paths have no line breaks")
        if not wanted:
            return {}
        request = "".join(f"{commit}:{path}\n" for path in wanted).encode()
        found = _parse_batch(self._git("cat-file", "--batch", input=request).stdout, wanted)
        missing = [path for path in wanted if path not in found]
        if missing and not missing_ok:
            named = f"file{'s' if len(missing) > 1 else ''} {', '.join(map(repr, missing))}"
            raise NotFoundError(f"no {named} at {ref!r} in the shelf {redact(self.url)}")
        return found

    # ---- publishing

    def commit_and_push(
        self,
        files: Mapping[str, bytes | None],
        message: str,
        *,
        parent: str,
        branch: str,
        tags: Sequence[str] = (),
    ) -> str:
        """Commit ``files`` (None deletes a file) on top of ``parent`` and push branch and tags atomically.

        Returns the new commit. Raises :class:`PushRejected`, leaving the remote untouched, when the
        remote branch is no longer at ``parent`` or a tag exists already; remote tags never move.
        """
        if self.offline:
            raise OfflineError(f"publishing to {redact(self.url)} needs the network and offline mode is on")
        parent_commit = self.head(parent)
        tag_names = self._new_tags(tags, branch)
        tree = _write_tree(self.path, parent_commit, files)
        commit = _commit_tree(self.path, tree, [parent_commit], message)
        refspecs = [f"{commit}:refs/heads/{branch}", *(f"{commit}:refs/tags/{tag}" for tag in tag_names)]
        # The remote branch must still be where we built on; a branch the mirror lacks must still be absent.
        expected = parent_commit if self._rev(f"refs/heads/{branch}") is not None else ""
        _push_atomic(self.path, self.url, refspecs, lease=f"refs/heads/{branch}:{expected}")
        try:
            with self._lock():  # a fetch by another process sharing this mirror moves the same refs
                self._record_push(commit, branch, tag_names)
        except Timeout as e:
            raise self._lock_timeout() from e
        return commit

    def _new_tags(self, tags: Sequence[str], branch: str) -> list[str]:
        """Check the names; refuse tags the mirror already knows (the remote would refuse them too)."""
        if self._git("check-ref-format", "--branch", branch, check=False).returncode != 0:
            raise ConfigError(f"{branch!r} is not a valid branch name")
        names = [_check_tag(self.path, tag) for tag in dict.fromkeys(tags)]
        taken = [tag for tag in names if self._rev(f"refs/tags/{tag}") is not None]
        if taken:
            raise PushRejected(
                f"the tag {', '.join(taken)} already exists on the shelf {redact(self.url)}",
                hint="released tags never move: publish a new version",
                reasons={f"refs/tags/{tag}": "already exists" for tag in taken},
            )
        return names

    def _record_push(self, commit: str, branch: str, tags: Sequence[str]) -> None:
        """Move the mirror's refs as the remote's moved, so readers see the commit before the next fetch.

        Another process sharing this mirror may have fetched or pushed meanwhile: the branch only moves
        forward (compare-and-swap from a value ``commit`` descends from), never back to an older commit.
        """
        lines = [f"update refs/tags/{tag} {commit}" for tag in tags]
        if self._remote_tags is not None:
            self._remote_tags.update(dict.fromkeys(tags, commit))
        current = self._rev(f"refs/heads/{branch}")
        if current is None:
            lines.append(f"create refs/heads/{branch} {commit}")
        elif self._git("merge-base", "--is-ancestor", current, commit, check=False).returncode == 0:
            lines.append(f"update refs/heads/{branch} {commit} {current}")
        if lines:
            # A lost race leaves the mirror behind the remote, which the next fetch mends; nothing to raise.
            self._git("update-ref", "--stdin", input=("\n".join(lines) + "\n").encode(), check=False)


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


def _transport_error(action: str, url: str, stderr: str) -> TransportError:
    """An AuthError where the remote wants credentials, one line for a server that does not answer, and a
    GitError naming git's complaint otherwise."""
    why = next((ours for marker, ours in _UNREACHABLE.items() if marker in stderr), None)
    if why is not None:
        return GitError(f"the shelf {redact(url)} did not answer ({why})", hint=UNREACHABLE_HINT)
    detail = redact(stderr.strip())
    if any(marker in stderr for marker in _AUTH_FAILURES):
        return AuthError(
            f"the shelf {redact(url)} refused access: {detail}",
            hint=f"set {constants.ENV_TOKEN} to a token the shelf accepts, or configure a credential helper",
        )
    read_only = "service not enabled" in stderr  # git daemon without receive-pack, as `serve` runs it
    hint = (
        "a served shelf's git:// URL is read-only: publish to its http:// URL with a token"
        if read_only
        else None
    )
    return GitError(f"{action} the shelf {redact(url)} failed: {detail}", hint=hint)


def _parse_tag_listing(out: str) -> dict[str, str]:
    """Tag name -> commit from ``git ls-remote --tags``; an annotated tag's peeled line (``^{}``) wins."""
    found: dict[str, str] = {}
    peeled: dict[str, str] = {}
    for line in out.splitlines():
        oid, _, ref = line.partition("\t")
        name = ref.removeprefix("refs/tags/")
        if name.endswith("^{}"):
            peeled[name[:-3]] = oid
        elif name != ref:
            found[name] = oid
    return found | {name: oid for name, oid in peeled.items() if name in found}


def _tree_entry(record: str, prefix: str) -> TreeEntry:
    meta, _, name = record.partition("\t")
    mode, kind, oid = meta.split(" ")
    return TreeEntry(path=prefix + name, mode=mode, kind=kind, oid=oid)


def _parse_batch(out: bytes, wanted: Sequence[str]) -> dict[str, bytes]:
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


# --------------------------------------------------------------------------------------------------------
# Creating a shelf


def _is_shelf(path: Path) -> bool:
    args = [*_git_dir_args(path), "cat-file", "-e", "HEAD:index/config.json"]
    return run_git(args, check=False).returncode == 0


def init_shelf(
    path: str | os.PathLike[str], *, lfs_url: str | None = None, initial_files: Mapping[str, bytes]
) -> str:
    """Create a bare shelf repository at a local ``path`` with one commit on ``main``; return its path.

    An existing shelf is returned unchanged; any other non-empty folder is refused.
    """
    parsed = ShelfURL.parse(path)
    if not parsed.is_local:
        raise ConfigError(f"{parsed.display} is not a local path", hint="shelves are created on this machine")
    target = _local_path(parsed)
    if target.is_dir() and any(target.iterdir()):
        if _is_shelf(target):
            return str(target)
        raise ConfigError(
            f"{target} is a non-empty folder that is not a shelf",
            hint="choose a new or empty folder for the shelf",
        )
    files = dict(initial_files)
    if lfs_url is not None:
        if ".lfsconfig" in files:
            raise ConfigError("both lfs_url and an .lfsconfig file were given", hint="give only one")
        files[".lfsconfig"] = f"[lfs]\n\turl = {lfs_url}\n".encode()
    existed = target.is_dir()
    try:
        _create_bare(target, files)
    except BaseException:
        # Leave the folder as it was: gone if we made it, empty if the caller handed us an empty one.
        if existed:
            _empty_folder(target)
        else:
            shutil.rmtree(target, ignore_errors=True)
        raise
    return str(target)


def _create_bare(target: Path, files: Mapping[str, bytes]) -> None:
    run_git(["init", "--bare", "--quiet", f"--initial-branch={DEFAULT_BRANCH}", str(target)])
    # A shelf's history is its registry: refuse rewrites of published versions from any client.
    for key in ("receive.denyNonFastForwards", "receive.denyDeletes"):
        run_git([*_git_dir_args(target), "config", key, "true"])
    tree = _write_tree(target, None, files)
    commit = _commit_tree(target, tree, [], "Create shelf")
    run_git([*_git_dir_args(target), "update-ref", f"refs/heads/{DEFAULT_BRANCH}", commit, _ZERO_OID])


def _empty_folder(folder: Path) -> None:
    for child in folder.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()
