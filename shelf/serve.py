"""Serving a local shelf to a team: git over ``git daemon`` and blobs over giftless, a real Git LFS server.

Both serve the same bare repository: git daemon exports its folder, and giftless stores objects in the
repository's own ``lfs/objects`` (``shelf.lfs_storage``), so the shelf stays usable as a local path too. The
shelf's ``.lfsconfig`` is pointed at the LFS URL (one commit, only when it changes) so that cclm-shelf and
git-lfs clients of the git URL find the blobs.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from shelf.errors import ConfigError, TransportError

LFS_ORG = "cclm"
STARTUP_SECONDS = 30.0
# Sync workers, one request each: giftless sets up its authenticators lazily on a worker's first request,
# and with threads a concurrent first request can see the list before the pre-authorized action provider
# is added, then fail a per-object upload or download with 403.
LFS_WORKERS = 4
_ANY_ADDRESS = ("", "0.0.0.0", "::")


@dataclass
class Servers:
    git_url: str
    lfs_url: str
    processes: list[subprocess.Popen] = field(default_factory=list)
    workdir: Path | None = None

    def stop(self) -> None:
        """Stop both servers and everything they started (each runs in its own process group)."""
        for process in self.processes:
            _signal_group(process, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                _signal_group(process, signal.SIGKILL)
                process.wait()
        if self.workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> Servers:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _signal_group(process: subprocess.Popen, signum: int) -> None:
    """Signal the process group a server leads, so workers and forked children go with it."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signum)


def free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def check_port_free(host: str, port: int, option: str) -> None:
    """Refuse a busy port up front: a readiness probe would otherwise find the other program listening."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as e:
            raise ConfigError(
                f"cannot listen on {host}:{port}: {e.strerror or e}",
                hint=f"choose another port with {option}",
            ) from e


def giftless_config(shelf: Path) -> str:
    """giftless settings: anonymous read-write, blobs in the shelf's own git-lfs folder."""
    key = os.urandom(32).hex()  # signs the short-lived per-object links giftless hands out
    return f"""AUTH_PROVIDERS:
  - giftless.auth.allow_anon:read_write
LEGACY_ENDPOINTS: false
TRANSFER_ADAPTERS:
  basic:
    factory: giftless.transfer.basic_streaming:factory
    options:
      storage_class: shelf.lfs_storage:GitLfsLayoutStorage
      storage_options:
        path: "{shelf}"
      action_lifetime: 3600
PRE_AUTHORIZED_ACTION_PROVIDER:
  factory: giftless.auth.jwt:factory
  options:
    algorithm: HS256
    private_key: "{key}"
    default_lifetime: 3600
"""


def _wait_for_port(host: str, port: int, process: subprocess.Popen, what: str) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise TransportError(f"{what} exited at start (code {process.returncode})")
        with socket.socket() as sock:
            if sock.connect_ex((host, port)) == 0:
                return
        time.sleep(0.1)
    raise TransportError(f"{what} did not start listening on {host}:{port}")


def _gunicorn() -> str:
    candidate = Path(sys.executable).with_name("gunicorn")
    found = str(candidate) if candidate.exists() else shutil.which("gunicorn")
    try:
        import giftless  # noqa: F401
    except ImportError:
        found = None
    if not found:
        raise ConfigError("serving blobs needs giftless and gunicorn", hint="pip install 'cclm-shelf[serve]'")
    return found


def start(
    shelf: Path, host: str = "127.0.0.1", git_port: int = 0, lfs_port: int = 0, url_host: str | None = None
) -> Servers:
    """Start git daemon and giftless for the bare repository ``shelf``; returns once both listen.

    ``url_host`` is the name clients use in the URLs (default: ``host``, or this machine's name when
    listening on every address, which no client can connect to by name).
    """
    shelf = shelf.resolve()
    named = url_host or (socket.gethostname() if host in _ANY_ADDRESS else host)
    for port, option in ((git_port, "--git-port"), (lfs_port, "--lfs-port")):
        if port:
            check_port_free(host, port, option)
    git_port = git_port or free_port(host)
    lfs_port = lfs_port or free_port(host)
    workdir = Path(tempfile.mkdtemp(prefix="cclm-shelf-serve-"))
    servers = Servers(
        f"git://{named}:{git_port}/{shelf.name}",
        f"http://{named}:{lfs_port}/{LFS_ORG}/{shelf.name}/info/lfs",
        workdir=workdir,
    )
    try:
        servers.processes.append(_start_git_daemon(shelf, host, git_port))
        _wait_for_port(host, git_port, servers.processes[-1], "git daemon")
        servers.processes.append(_start_giftless(shelf, host, lfs_port, workdir))
        _wait_for_port(host, lfs_port, servers.processes[-1], "the LFS server (giftless)")
    except BaseException:
        servers.stop()
        raise
    return servers


def _start_git_daemon(shelf: Path, host: str, port: int) -> subprocess.Popen:
    args = [
        "git",
        "daemon",
        f"--base-path={shelf.parent}",
        "--export-all",
        "--enable=receive-pack",
        "--reuseaddr",
        f"--listen={host}",
        f"--port={port}",
        "--informative-errors",
        str(shelf.parent),
    ]
    # Readiness probes connect and hang up, which git daemon reports on stderr: keep that out of sight.
    return subprocess.Popen(
        args,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def _start_giftless(shelf: Path, host: str, port: int, workdir: Path) -> subprocess.Popen:
    config = workdir / "giftless.yaml"
    config.write_text(giftless_config(shelf), encoding="utf-8")
    env = dict(os.environ, GIFTLESS_CONFIG_FILE=str(config))
    project_root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (project_root, env.get("PYTHONPATH")) if p)
    args = [
        _gunicorn(),
        "--bind",
        f"{host}:{port}",
        "--workers",
        str(LFS_WORKERS),
        "--log-level",
        "warning",
        "giftless.wsgi_entrypoint:app",
    ]
    return subprocess.Popen(args, env=env, stdin=subprocess.DEVNULL, cwd=workdir, start_new_session=True)


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
