"""Serving one local shelf to a team: git daemon (read-only) and one HTTP front (git + LFS).

``start`` serves exactly the bare repository it is given, nothing beside it:

- ``git://host:git_port/<repo>``: git daemon, read-only, this one repository (a whitelist with strict
  paths; pushes refused even if the repository's config enables them);
- ``http://host:http_port/<repo>``: git smart HTTP (clone by anyone, push with a token) and the Git LFS API
  at ``<that>/info/lfs`` (giftless; downloads by anyone, uploads with a token), see ``shelf.serve_front``.

Tokens come from ``token_file`` (``shelf.serve_auth``); without one the shelf is served read-only. giftless
stores objects in the repository's own ``lfs/objects`` (``shelf.lfs_storage``), so the shelf stays usable as
a local path. Children die with this process (``shelf.serve_process``). The shelf's ``.lfsconfig`` is pointed
at the LFS URL (one commit, only when it changes) so that clients of the git:// URL find the blobs.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from shelf import serve_process
from shelf.errors import ConfigError
from shelf.serve_auth import load_tokens
from shelf.serve_git import git_program
from shelf.serve_process import check_port_free, free_port

__all__ = ["HTTP_WORKERS", "Servers", "check_port_free", "free_port", "point_lfs_url", "start"]

HTTP_WORKERS = 2  # gunicorn worker processes, each with HTTP_THREADS threads
HTTP_THREADS = 8
_ANY_ADDRESS = ("", "0.0.0.0", "::")


@dataclass
class Servers:
    """The URLs of a served shelf and the processes serving it."""

    git_url: str  # git://, read-only
    http_url: str  # git smart HTTP: read, and publish with a token
    lfs_url: str  # the Git LFS API
    writable: bool = False  # whether any token may publish
    processes: list[subprocess.Popen] = field(default_factory=list)

    @property
    def sparse_url(self) -> str:
        """The shelf's static sparse index at the HTTP root, as clients name it (``sparse+http://...``)."""
        return "sparse+" + self.http_url.rsplit("/", 1)[0] + "/"

    def roles(self) -> list[tuple[str, str]]:
        """``(role, url)`` for each URL, in the order ``serve`` prints them."""
        return [
            ("git", self.git_url),
            ("http", self.http_url),
            ("lfs", self.lfs_url),
            ("sparse", self.sparse_url),
        ]

    def stop(self) -> None:
        """Stop both servers and everything they started (each runs in its own process group)."""
        serve_process.stop(self.processes)

    def __enter__(self) -> Servers:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _python_with_gunicorn() -> str:
    try:
        import giftless  # noqa: F401
        import gunicorn  # noqa: F401
    except ImportError:
        raise ConfigError(
            "serving a shelf needs giftless and gunicorn", hint="pip install 'cclm-shelf[serve]'"
        ) from None
    return sys.executable


def start(
    shelf: Path,
    host: str = "127.0.0.1",
    git_port: int = 0,
    http_port: int = 0,
    url_host: str | None = None,
    *,
    token_file: Path | None = None,
    static: Mapping[str, Path] | None = None,
    s3: Mapping[str, str] | None = None,
) -> Servers:
    """Start git daemon and the HTTP front for the bare repository ``shelf``; returns once both listen.

    ``url_host`` is the name clients use in the URLs (default: ``host``, or this machine's name when
    listening on every address, which no client can connect to by name). ``static`` maps URL prefixes to
    folders served read-only beside the shelf. ``s3`` (``bucket``, optional ``prefix``) keeps the LFS objects
    in that S3 bucket instead of the repository (the endpoint and keys come from AWS's environment).
    """
    shelf = Path(shelf).resolve()
    if token_file is not None:
        load_tokens(Path(token_file))  # a bad token file is refused here, in one line, not in the server
    named = url_host or (socket.gethostname() if host in _ANY_ADDRESS else host)
    for port, option in ((git_port, "--git-port"), (http_port, "--http-port")):
        if port:
            check_port_free(host, port, option)
    python = _python_with_gunicorn()
    git_port = git_port or free_port(host)
    http_port = http_port or free_port(host)
    http_url = f"http://{named}:{http_port}/{shelf.name}"
    servers = Servers(f"git://{named}:{git_port}/{shelf.name}", http_url, f"{http_url}/info/lfs")
    servers.writable = token_file is not None
    try:
        servers.processes.append(_start_git_daemon(shelf, host, git_port))
        serve_process.wait_for_port(host, git_port, servers.processes[-1], "git daemon")
        front = {"repo": str(shelf), "bind": _bind(host, http_port), "workers": HTTP_WORKERS}
        front.update(threads=HTTP_THREADS, token_file=str(Path(token_file).resolve()) if token_file else None)
        front["static"] = {prefix: str(Path(folder).resolve()) for prefix, folder in (static or {}).items()}
        front["s3"] = dict(s3) if s3 else None
        servers.processes.append(_start_front(python, front))
        serve_process.wait_for_port(host, http_port, servers.processes[-1], "the HTTP server (gunicorn)")
    except BaseException:
        servers.stop()
        raise
    return servers


def _bind(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _start_git_daemon(shelf: Path, host: str, port: int) -> subprocess.Popen:
    args = [
        git_program("git-daemon"),
        f"--base-path={shelf.parent}",
        "--strict-paths",  # with the whitelist below: this repository and nothing else
        "--export-all",
        "--forbid-override=receive-pack",  # read-only, whatever the repository's config says
        "--reuseaddr",
        f"--listen={host}",
        f"--port={port}",
        "--informative-errors",
        str(shelf),
    ]
    # Readiness probes connect and hang up, which git daemon reports on stderr: keep that out of sight.
    return serve_process.spawn(args, quiet=True)


def _start_front(python: str, config: dict) -> subprocess.Popen:
    env = dict(os.environ)
    project_root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (project_root, env.get("PYTHONPATH")) if p)
    return serve_process.spawn([python, "-m", "shelf.serve_front", json.dumps(config)], env=env)


def point_lfs_url(source, lfs_url: str) -> bool:
    """Make the shelf's ``.lfsconfig`` name ``lfs_url``; True when a commit was needed."""
    current = source.mirror.lfs_url(source.head)
    if current == lfs_url:
        return False
    text = f"[lfs]\n\turl = {lfs_url}\n".encode()
    source.mirror.commit_and_push(
        {".lfsconfig": text}, f"Serve blobs from {lfs_url}", parent=source.head, branch=source.branch
    )
    source.reread()
    return True
