"""The processes and ports a test started: wait for a condition, find a command line, probe a port."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path


def eventually(check: Callable[[], bool], timeout: float = 15.0) -> bool:
    """True once ``check()`` is; False if it never is within ``timeout`` (a bound, not a measurement)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return check()


def processes_mentioning(text: str) -> list[int]:
    """Ids of the live processes whose command line contains ``text`` (read from /proc)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if text in cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace"):
                found.append(int(cmdline.parent.name))
        except OSError:  # the process ended while we looked
            continue
    return found


def port_listening(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something accepts TCP connections on ``host:port`` now."""
    with socket.socket() as sock:
        return sock.connect_ex((host, port)) == 0


def stop_process(process: subprocess.Popen, timeout: float = 10) -> None:
    """Terminate a server we started and reap it; kill it if it does not end within ``timeout``."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
