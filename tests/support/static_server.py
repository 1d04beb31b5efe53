"""Static HTTP servers for a folder, on 127.0.0.1: ``python -m http.server`` (no ETags) and the ETag server
of ``tests/registry_index/etag_server.py`` (strong ETags, 304s, a request log beside the folder)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support.git_servers import free_port, wait_for_port
from tests.support.processes import stop_process

ROOT = Path(__file__).resolve().parents[2]


@contextmanager
def static_server(folder: Path, *, etag: bool = False) -> Iterator[str]:
    """Serve ``folder`` read-only; yields its base URL (``http://127.0.0.1:PORT``)."""
    if etag:
        command = [sys.executable, "-m", "tests.registry_index.etag_server", str(folder)]
        process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True)
        port = int(process.stdout.readline().split()[1])
    else:
        port = free_port()
        command = [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "-d", str(folder)]
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port, process=process)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_process(process)


def request_log(folder: Path) -> list[str]:
    """``<status> <path>`` per request the ETag server answered for ``folder``."""
    log = Path(str(Path(folder).resolve()) + ".log")
    return log.read_text(encoding="utf-8").splitlines() if log.exists() else []
