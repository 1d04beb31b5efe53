"""The read-only metadata mirror of a shelf: a bare, shallow, tagless git repository in the cache.

The package manager never works in a checkout: it keeps one bare *mirror* per shelf remote and reads it
with git plumbing, so only small metadata (manifests, index files, pointer files) ever crosses the wire and
LFS content is never fetched or smudged.

Cache layout (under :func:`shelf.constants.cache_dir`)::

    mirrors/<slug>-<sha256(key)[:16]>.git        bare repository: refs/heads/* and refs/tags/* of the remote
    mirrors/<slug>-<sha256(key)[:16]>.git.lock   file lock held while git writes to the mirror (git's own
                                                 *.lock files found inside then are stale: removed)

``<key>`` is ``ShelfURL.mirror_key`` (the normalised URL without credentials), so ``/srv/shelf`` and
``file:///srv/shelf`` share a mirror. Publishing (``shelf.remote.commits``) builds its commits here.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import subprocess
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from shelf import constants
from shelf.errors import GitError, NotFoundError, OfflineError, TransportError
from shelf.filelocks import FileLock, Timeout
from shelf.fsutil import atomic_write
from shelf.redaction import redact
from shelf.remote.git import (
    DEFAULT_BRANCH,
    UNREACHABLE_HINT,
    git_dir_args,
    parse_cat_file_batch,
    remove_stale_git_locks,
    run_git,
    transport_error,
)
from shelf.remote.url import ShelfURL, is_local_url, normalise_url

MIRRORS_DIR = "mirrors"
LOCK_TIMEOUT = 300.0  # seconds to wait for another process fetching the same mirror
_FULL_SHA = re.compile(r"[0-9a-f]{40}")
_NO_DETACHED_GC = ("-c", "gc.autoDetach=false", "-c", "maintenance.autoDetach=false")
_REMOTE_HEAD = "refs/shelf-remote/HEAD"  # where the remote's HEAD commit lands on fetch
_TAG_LISTING = "shelf-remote-tags"  # in the mirror: the remote's tags as last listed, for offline use


@dataclass(frozen=True)
class TreeEntry:
    """One entry of a tree listing; ``path`` is relative to the repository root."""

    path: str
    mode: str
    kind: str  # "blob", "tree" or "commit"
    oid: str


def mirror_path(url: str, cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """Where the bare mirror of ``url`` lives: one folder per normalised URL, credentials left out."""
    key = ShelfURL.parse(normalise_url(url)).mirror_key
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    stem = re.split(r"[/:]", key.rstrip("/"))[-1].removesuffix(".git")
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", stem).strip(".-")[:40] or "shelf"
    root = Path(cache_dir) if cache_dir is not None else constants.cache_dir()
    return root / MIRRORS_DIR / f"{slug}-{digest}.git"


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
        # HEAD's commit as open() or the last fetch saw it, for opened_head (no git process to ask again);
        # any other write to the mirror by this object (always under _lock) drops it.
        self._seen_head: str | None = None

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
        # An automatic gc after a fetch runs before git returns, inside our lock, never detached past it
        # (the lock's holder removes git lock files it finds, see remove_stale_git_locks).
        return run_git([*git_dir_args(self.path), *_NO_DETACHED_GC, *args], input=input, check=check)

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        """Hold the mirror's file lock; git lock files left inside by a killed run are removed first."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._seen_head = None
        with FileLock(str(self.path) + ".lock", timeout=LOCK_TIMEOUT):
            remove_stale_git_locks(self.path)
            yield

    def _has_refs(self) -> bool:
        if not (self.path / "HEAD").is_file():
            return False
        self._seen_head = self._rev("HEAD")
        if self._seen_head is not None:  # HEAD names a branch that has a commit
            return True
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
                    # HEAD names the usual default branch at once (_point_head then rarely moves it); no
                    # template: a metadata mirror wants no sample hooks to copy (nor a template's own hooks).
                    branch = f"--initial-branch={DEFAULT_BRANCH}"
                    run_git(["init", "--bare", "--quiet", "--template=", branch, str(self.path)])
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
            raise transport_error("fetching a tag from", self.url, done.stderr.decode(errors="replace"))
        return True

    def _check_local_remote(self) -> None:
        if is_local_url(self.url) and not Path(self.url).is_dir():
            raise NotFoundError(
                f"the shelf {self.url} does not exist",
                hint=f"check the path, or make a shelf there: cclm-shelf init {self.url}",
            )

    def _fetch(self) -> None:
        # Reading needs the tree at each branch head, not the history or the release tags: a shallow,
        # tagless fetch costs the same for 5 or 5000 publications. Tags are listed and fetched on demand.
        refspecs = ["+refs/heads/*:refs/heads/*"]
        base = ["fetch", "--prune", "--quiet", "--no-write-fetch-head", "--depth=1", "--no-tags", self.url]
        done = self._git(*base, *refspecs, f"+HEAD:{_REMOTE_HEAD}", check=False)
        if done.returncode != 0 and b"couldn't find remote ref HEAD" not in done.stderr:
            raise transport_error("fetching", self.url, done.stderr.decode(errors="replace"))
        if done.returncode != 0:
            # A remote whose HEAD names a missing branch (or an empty remote) cannot serve HEAD.
            self._git("update-ref", "-d", _REMOTE_HEAD, check=False)
            self._git(*base, *refspecs)
        self._point_head()

    def _point_head(self) -> None:
        """Make the mirror's HEAD name the remote's default branch (main, master or whatever it uses)."""
        refs = self._refs("refs/heads", _REMOTE_HEAD)
        remote_head = refs.pop(_REMOTE_HEAD, None)
        branches = {ref.removeprefix("refs/heads/"): oid for ref, oid in refs.items()}
        if not branches:
            return
        preferred = [DEFAULT_BRANCH, "master", *sorted(branches)]
        same = [name for name in preferred if name in branches and branches[name] == remote_head]
        chosen = same[0] if same else next(name for name in preferred if name in branches)
        if self._head_ref() != f"refs/heads/{chosen}":
            self._git("symbolic-ref", "HEAD", f"refs/heads/{chosen}")
        self._seen_head = branches[chosen]  # HEAD's commit, as just fetched: opened_head needs no process

    def _head_ref(self) -> str | None:
        """The ref the mirror's HEAD names, read from its HEAD file (no git process)."""
        try:
            return (self.path / "HEAD").read_text(encoding="utf-8").strip().removeprefix("ref: ")
        except (OSError, UnicodeDecodeError):
            return None

    def _refs(self, *patterns: str) -> dict[str, str]:
        """Full ref name -> commit of the refs under ``patterns``."""
        out = self._git("for-each-ref", "--format=%(refname)%00%(objectname)", *patterns).stdout
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
            raise transport_error("fetching a commit from", self.url, stderr)
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

    def opened_head(self) -> str:
        """``head()`` as ``open`` or this object's fetch found it (no git process), when nothing was written
        since.

        For readers that take the mirror as it was opened; a publisher's parent is read with ``head``.
        """
        seen, self._seen_head = self._seen_head, None
        return seen or self.head()

    def default_branch(self) -> str:
        """The name of the remote's default branch, as mirrored."""
        ref = self._head_ref() or ""
        return ref.removeprefix("refs/heads/") if ref.startswith("refs/heads/") else DEFAULT_BRANCH

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
            raise transport_error("listing the tags of", self.url, done.stderr.decode(errors="replace"))
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
        # One process: without the file git fails just as without the key (exit 1, nothing on stdout).
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
        found = parse_cat_file_batch(self._git("cat-file", "--batch", input=request).stdout, wanted)
        missing = [path for path in wanted if path not in found]
        if missing and not missing_ok:
            named = f"file{'s' if len(missing) > 1 else ''} {', '.join(map(repr, missing))}"
            raise NotFoundError(f"no {named} at {ref!r} in the shelf {redact(self.url)}")
        return found

    # ---- publishing

    def commit_and_push(self, files: Mapping[str, bytes | None], message: str, **refs: Any) -> str:
        """Commit ``files`` (None deletes a file) and push it with its tags in one atomic push.

        ``refs`` are ``parent``, ``branch`` and ``tags``; see ``shelf.remote.commits.commit_and_push``.
        """
        from shelf.remote.commits import commit_and_push

        return commit_and_push(self, files, message, **refs)


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
