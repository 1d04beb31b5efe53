"""Commits built without a work tree, the atomic push, and creating a shelf.

Publishing builds a commit inside the mirror with a temporary index (``hash-object``, ``update-index``,
``write-tree``, ``commit-tree``: LFS filters stay off) and pushes the branch and the release tags in one
``git push --atomic`` guarded by the expected old value of the branch: either every ref moves or none does.
``build_commit`` and ``push`` are its two halves, for a caller with other work to do between them.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from shelf.errors import ConfigError, OfflineError, PushRejected, UnsafeContentError
from shelf.filelocks import Timeout
from shelf.fsutil import file_in_the_way
from shelf.redaction import redact
from shelf.remote.git import (
    DEFAULT_BRANCH,
    FALLBACK_EMAIL,
    FALLBACK_NAME,
    ZERO_OID,
    git_dir_args,
    git_env,
    run_git,
    transport_error,
)
from shelf.remote.url import ShelfURL, shelf_folder

if TYPE_CHECKING:
    from shelf.remote.mirror import ShelfMirror

_RETRY_HINT = "refresh the shelf (someone else published first) and try again"


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
        args = [*git_dir_args(git_dir), "hash-object", "-w", "--no-filters", "--stdin-paths"]
        out = run_git(args, input=request).stdout.decode().split()
    return out


def _write_tree(git_dir: Path, base: str | None, files: Mapping[str, bytes | None]) -> str:
    """The tree of ``base`` with ``files`` written (bytes) or removed (None), built in a temporary index."""
    checked = {_check_repo_path(path): data for path, data in files.items()}
    added = sorted(path for path, data in checked.items() if data is not None)
    oids = _write_blobs(git_dir, [checked[path] for path in added])  # type: ignore[misc]
    lines = [f"0 {ZERO_OID}\t{path}" for path, data in checked.items() if data is None]
    lines += [f"100644 {oid}\t{path}" for path, oid in zip(added, oids, strict=True)]
    with tempfile.TemporaryDirectory(prefix="cclm-shelf-index-") as tmp:
        env = git_env({"GIT_INDEX_FILE": str(Path(tmp) / "index")})
        if base is not None:
            run_git([*git_dir_args(git_dir), "read-tree", base], env=env)
        if lines:
            # --replace: a new file may take the place of a folder of the same name and vice versa.
            request = ("\n".join(lines) + "\n").encode()
            run_git(
                [*git_dir_args(git_dir), "update-index", "--replace", "--index-info"], env=env, input=request
            )
        return run_git([*git_dir_args(git_dir), "write-tree"], env=env).stdout.decode().strip()


def _configured_identity(git_dir: Path) -> set[str]:
    """Which of user.name and user.email git config sets to a non-empty value (one git process)."""
    args = [*git_dir_args(git_dir), "config", "--get-regexp", r"^user\.(name|email)$"]
    lines = run_git(args, check=False).stdout.decode(errors="replace").splitlines()
    return {key.lower() for key, _, value in (line.partition(" ") for line in lines) if value.strip()}


def _identity_env(git_dir: Path) -> dict[str, str]:
    """A fallback author and committer where neither the environment nor git config names one.

    CI machines often have no ~/.gitconfig; git would then guess from the host name or refuse to commit.
    """
    env: dict[str, str] = {}
    configured: set[str] | None = None
    fallbacks = {"NAME": ("user.name", FALLBACK_NAME), "EMAIL": ("user.email", FALLBACK_EMAIL)}
    for field, (key, fallback) in fallbacks.items():
        names = [f"GIT_AUTHOR_{field}", f"GIT_COMMITTER_{field}"]
        if all(os.environ.get(name) for name in names):
            continue
        if configured is None:
            configured = _configured_identity(git_dir)
        if key in configured or (field == "EMAIL" and os.environ.get("EMAIL")):
            continue
        env.update({name: fallback for name in names if not os.environ.get(name)})
    return env


def _commit_tree(git_dir: Path, tree: str, parents: Iterable[str], message: str) -> str:
    """Commit ``tree``: as git config says who commits, else (no identity configured) as ``_identity_env``.

    The first try forbids git's guesses (``user.useConfigOnly``), so a configured identity costs one
    process; where none is configured it fails and the second try names ours.
    """
    args = [*git_dir_args(git_dir), "commit-tree", tree]
    for parent in parents:
        args += ["-p", parent]
    args += ["-F", "-"]
    done = run_git(["-c", "user.useConfigOnly=true", *args], input=message.encode(), check=False)
    if done.returncode != 0:
        done = run_git(args, env=git_env(_identity_env(git_dir)), input=message.encode())
    return done.stdout.decode().strip()


def _check_tag(git_dir: Path, tag: str) -> str:
    done = run_git([*git_dir_args(git_dir), "check-ref-format", f"refs/tags/{tag}"], check=False)
    if done.returncode != 0:
        raise ConfigError(f"{tag!r} is not a valid tag name", hint="tags look like <name>/v<version>")
    return tag


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
    done = run_git([*git_dir_args(git_dir), "push", *options, url, *refspecs], check=False)
    if done.returncode == 0:
        return
    reasons = _parse_rejections(done.stdout.decode(errors="replace"))
    if reasons:
        # With --atomic the innocent refs are reported "atomic push failed"; the real reasons lead.
        ordered = sorted(reasons.items(), key=lambda item: item[1] == "atomic push failed")
        summary = "; ".join(f"{ref}: {why}" for ref, why in ordered)
        raise PushRejected(f"{redact(url)} refused the update ({summary})", hint=_RETRY_HINT, reasons=reasons)
    raise transport_error("pushing to", url, done.stderr.decode(errors="replace"))


@dataclass(frozen=True)
class PendingPush:
    """A commit built in the mirror, not pushed yet: what ``push`` sends, and the lease that guards it."""

    commit: str
    parent: str
    branch: str
    tags: tuple[str, ...]
    branch_known: bool  # whether the mirror has the branch (else the remote must not have it either)


def commit_and_push(
    mirror: ShelfMirror,
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
    return push(mirror, build_commit(mirror, files, message, parent=parent, branch=branch, tags=tags))


def build_commit(
    mirror: ShelfMirror,
    files: Mapping[str, bytes | None],
    message: str,
    *,
    parent: str,
    branch: str,
    tags: Sequence[str] = (),
) -> PendingPush:
    """The first half of ``commit_and_push``: check the names and build the commit; nothing is sent.

    Publishing builds it while its blobs upload, and pushes once they are up.
    """
    if mirror.offline:
        raise OfflineError(f"publishing to {redact(mirror.url)} needs the network and offline mode is on")
    parent_commit = mirror._commit(parent)  # a full sha as is (commit-tree refuses one the mirror lacks)
    branch_known, tag_names = _check_refs(mirror, tags, branch)
    tree = _write_tree(mirror.path, parent_commit, files)
    commit = _commit_tree(mirror.path, tree, [parent_commit], message)
    return PendingPush(commit, parent_commit, branch, tuple(tag_names), branch_known)


def push(mirror: ShelfMirror, pending: PendingPush) -> str:
    """Push a built commit: the branch and the tags in one atomic push; return the commit."""
    commit, branch = pending.commit, pending.branch
    refspecs = [f"{commit}:refs/heads/{branch}", *(f"{commit}:refs/tags/{tag}" for tag in pending.tags)]
    # The remote branch must still be where we built on; a branch the mirror lacks must still be absent.
    expected = pending.parent if pending.branch_known else ""
    _push_atomic(mirror.path, mirror.url, refspecs, lease=f"refs/heads/{branch}:{expected}")
    try:
        with mirror._lock():  # a fetch by another process sharing this mirror moves the same refs
            record_push(mirror, commit, branch, pending.tags, pending.parent)
    except Timeout as e:
        raise mirror._lock_timeout() from e
    return commit


def _check_refs(mirror: ShelfMirror, tags: Sequence[str], branch: str) -> tuple[bool, list[str]]:
    """Whether the mirror has the branch, and the tags, checked; refuse tags the mirror already knows.

    One ``for-each-ref`` finds the branch and any of the tags (the remote would refuse those too); a branch
    the mirror has is a valid name, so only a new one costs a ``check-ref-format``.
    """
    names = [_check_tag(mirror.path, tag) for tag in dict.fromkeys(tags)]
    found = mirror._refs(f"refs/heads/{branch}", *(f"refs/tags/{tag}" for tag in names))
    branch_known = f"refs/heads/{branch}" in found
    if not branch_known and mirror._git("check-ref-format", "--branch", branch, check=False).returncode != 0:
        raise ConfigError(f"{branch!r} is not a valid branch name")
    taken = [tag for tag in names if f"refs/tags/{tag}" in found]
    if taken:
        raise PushRejected(
            f"the tag {', '.join(taken)} already exists on the shelf {redact(mirror.url)}",
            hint="released tags never move: publish a new version",
            reasons={f"refs/tags/{tag}": "already exists" for tag in taken},
        )
    return branch_known, names


def record_push(
    mirror: ShelfMirror, commit: str, branch: str, tags: Sequence[str], parent: str | None = None
) -> None:
    """Move the mirror's refs as the remote's moved, so readers see the commit before the next fetch.

    Another process sharing this mirror may have fetched or pushed meanwhile: the branch only moves
    forward (compare-and-swap from a value ``commit`` descends from), never back to an older commit.
    With ``parent`` (the commit was built on it), the usual case costs one git process: the branch moves
    from ``parent`` to ``commit`` in one transaction with the tags; if it is elsewhere by then, the slow
    path below decides.
    """
    if mirror._remote_tags is not None:
        mirror._remote_tags.update(dict.fromkeys(tags, commit))
    lines = [f"update refs/tags/{tag} {commit}" for tag in tags]
    if parent is not None:
        fast = [*lines, f"update refs/heads/{branch} {commit} {parent}"]
        if mirror._git("update-ref", "--stdin", input=_stdin(fast), check=False).returncode == 0:
            return
    current = mirror._rev(f"refs/heads/{branch}")
    if current is None:
        lines.append(f"create refs/heads/{branch} {commit}")
    elif mirror._git("merge-base", "--is-ancestor", current, commit, check=False).returncode == 0:
        lines.append(f"update refs/heads/{branch} {commit} {current}")
    if lines:
        # A lost race leaves the mirror behind the remote, which the next fetch mends; nothing to raise.
        mirror._git("update-ref", "--stdin", input=_stdin(lines), check=False)


def _stdin(lines: Sequence[str]) -> bytes:
    return ("\n".join(lines) + "\n").encode()


def _is_shelf(path: Path) -> bool:
    args = [*git_dir_args(path), "cat-file", "-e", "HEAD:index/config.json"]
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
    target = shelf_folder(parsed)
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
    _make_folder(target)
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


def _make_folder(target: Path) -> None:
    """The shelf's folder, or one line naming why it cannot be made (a file in the way, no permission)."""
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        blocker = file_in_the_way(target)
        why = f"{blocker} is a file, not a folder" if blocker is not None else e.strerror
        raise ConfigError(
            f"cannot make a shelf at {target}: {why}", hint="choose a path in a folder you can write to"
        ) from e


def _create_bare(target: Path, files: Mapping[str, bytes]) -> None:
    run_git(["init", "--bare", "--quiet", f"--initial-branch={DEFAULT_BRANCH}", str(target)])
    # A shelf's history is its registry: refuse rewrites of published versions from any client.
    for key in ("receive.denyNonFastForwards", "receive.denyDeletes"):
        run_git([*git_dir_args(target), "config", key, "true"])
    tree = _write_tree(target, None, files)
    commit = _commit_tree(target, tree, [], "Create shelf")
    run_git([*git_dir_args(target), "update-ref", f"refs/heads/{DEFAULT_BRANCH}", commit, ZERO_OID])


def _empty_folder(folder: Path) -> None:
    for child in folder.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()
