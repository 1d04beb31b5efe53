"""Child processes of ``cclm-shelf serve`` that die with it.

``serve`` starts git daemon and the HTTP front (a gunicorn master, which forks its workers). A ``kill -9``
of ``serve`` must leave nothing listening, so every child asks the kernel to kill it when its parent dies
(Linux ``prctl(PR_SET_PDEATHSIG, SIGKILL)``): ``serve`` -> git daemon, ``serve`` -> gunicorn master ->
each worker. Each child also leads its own process group, so an orderly stop signals the whole group.
Nothing secret is written to disk: the HTTP front makes its signing key in memory (``shelf.serve_front``).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence

from shelf.errors import ConfigError, TransportError

STARTUP_SECONDS = 30.0
STOP_SECONDS = 10.0
_PR_SET_PDEATHSIG = 1


def die_with_parent(parent_pid: int | None = None) -> None:
    """Have the kernel SIGKILL this process when its parent dies; exit now if it already has.

    ``parent_pid`` is the parent expected: a parent that died before the request was made left this
    process to init, and then there is nobody to die with.
    """
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if parent_pid is not None and os.getppid() != parent_pid:
        os._exit(1)


def spawn(
    args: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
    quiet: bool = False,
) -> subprocess.Popen:
    """Start ``args`` in its own process group, bound to die with this process."""
    parent = os.getpid()
    output = subprocess.DEVNULL if quiet else None
    return subprocess.Popen(
        list(args),
        env=dict(env) if env is not None else None,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=output,
        stderr=output,
        start_new_session=True,
        preexec_fn=lambda: die_with_parent(parent),
    )


def signal_group(process: subprocess.Popen, signum: int) -> None:
    """Signal the process group a child leads, so its workers and forked children go with it."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signum)


def stop(processes: Sequence[subprocess.Popen]) -> None:
    """SIGTERM every group, then SIGKILL what is still there after ``STOP_SECONDS``."""
    for process in processes:
        signal_group(process, signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            signal_group(process, signal.SIGKILL)
            process.wait()
        # Workers may outlive a master that exited on SIGTERM: the group goes in any case.
        signal_group(process, signal.SIGKILL)


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


def wait_for_port(host: str, port: int, process: subprocess.Popen, what: str) -> None:
    """Return once ``host:port`` accepts connections; raise if ``process`` exits or time runs out."""
    probe = "127.0.0.1" if host in ("", "0.0.0.0") else ("::1" if host == "::" else host)
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise TransportError(f"{what} exited at start (code {process.returncode})")
        with socket.socket(socket.AF_INET6 if ":" in probe else socket.AF_INET) as sock:
            if sock.connect_ex((probe, port)) == 0:
                return
        time.sleep(0.1)
    raise TransportError(f"{what} did not start listening on {host}:{port}")
