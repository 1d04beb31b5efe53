"""A server that accepts a request and then never answers: the client gives up in bounded time."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import pytest

from shelf import constants
from shelf.errors import TransportError
from shelf.remote.lfs_http import LfsClient, RetryPolicy
from shelf.remote.lfs_protocol import LfsObject
from shelf.store import BlobStore

pytestmark = pytest.mark.network


class _SilentServer:
    """Accepts connections, reads what is sent, and answers nothing until stopped."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self._stop = threading.Event()
        self._held: list[socket.socket] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        self.sock.settimeout(0.2)
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.accepted += 1
            self._held.append(conn)

    def close(self) -> None:
        self._stop.set()
        for conn in self._held:
            conn.close()
        self.sock.close()


def test_a_stalled_server_ends_in_a_clear_error_in_bounded_time(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(constants, "READ_TIMEOUT", 0.5)
    server = _SilentServer()
    store = BlobStore(tmp_path / "cache")
    client = LfsClient(
        f"http://127.0.0.1:{server.port}/org/shelf.git/info/lfs",
        retry=RetryPolicy(attempts=3, total_seconds=10.0, base_delay=0.1),
    )
    try:
        with pytest.raises(TransportError, match="failed after 3 attempt"):
            client.download([LfsObject("a" * 64, 10)], store)
    finally:
        server.close()
    assert server.accepted == 3  # bounded by attempts, not by a clock
    assert list(store.iter_blobs()) == []
