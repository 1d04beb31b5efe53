"""Real git servers on 127.0.0.1 for tests: ``git daemon`` (git://) and smart HTTP (``git http-backend``).

Both serve every repository under a base folder and accept pushes::

    with GitDaemon(tmp_path) as daemon:
        url = daemon.url("shelf.git")        # git://127.0.0.1:<port>/shelf.git

    with GitHttpServer(tmp_path) as server:
        url = server.url("shelf.git")        # http://127.0.0.1:<port>/shelf.git
"""

from __future__ import annotations

import base64
import os
import socket
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType

from tests.support.processes import stop_process

__all__ = ["GitDaemon", "GitHttpServer", "free_port", "wait_for_port"]

START_TIMEOUT = 15.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout: float = START_TIMEOUT, process: subprocess.Popen | None = None) -> None:
    """Return once 127.0.0.1:``port`` accepts connections; fail if the server died or never came up."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server exited early with code {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


class GitDaemon:
    """``git daemon`` exporting every repository under ``base_path``, pushes enabled."""

    def __init__(self, base_path: str | os.PathLike[str]) -> None:
        self.base_path = Path(base_path).resolve()
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None

    def url(self, repo_name: str) -> str:
        return f"git://127.0.0.1:{self.port}/{repo_name}"

    def __enter__(self) -> GitDaemon:
        self.port = free_port()
        command = [
            "git",
            "daemon",
            f"--base-path={self.base_path}",
            "--export-all",
            "--enable=receive-pack",
            "--reuseaddr",
            f"--port={self.port}",
            "--listen=127.0.0.1",
            "--informative-errors",
            str(self.base_path),
        ]
        self._process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_for_port(self.port, process=self._process)
        except BaseException:
            self._stop()
            raise
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop()

    def _stop(self) -> None:
        if self._process is not None:
            stop_process(self._process, timeout=5)
        self._process = None


def _read_body(handler: BaseHTTPRequestHandler) -> bytes:
    """The request body, whether sent with Content-Length or chunked (git chunks large pushes)."""
    if handler.headers.get("Transfer-Encoding", "").lower() == "chunked":
        parts = []
        while True:
            size = int(handler.rfile.readline().split(b";")[0].strip(), 16)
            if size == 0:
                handler.rfile.readline()
                return b"".join(parts)
            parts.append(handler.rfile.read(size))
            handler.rfile.readline()
    length = int(handler.headers.get("Content-Length") or 0)
    return handler.rfile.read(length) if length else b""


class _BackendHandler(BaseHTTPRequestHandler):
    """Runs ``git http-backend`` as a CGI program for each request."""

    project_root: Path  # set on a subclass per server
    authorization: str | None = None  # the expected Authorization header, when credentials are required

    def do_GET(self) -> None:
        if self._authorised():
            self._run_backend(b"")

    def do_POST(self) -> None:
        body = _read_body(self)
        if self._authorised():
            self._run_backend(body)

    def _authorised(self) -> bool:
        if self.authorization is None or self.headers.get("Authorization") == self.authorization:
            return True
        self.send_response(401)
        self.send_header("WWW-Authenticate", 'Basic realm="shelf"')
        self.send_header("Content-Length", "0")
        self.end_headers()
        return False

    def log_message(self, format: str, *args: object) -> None:  # quiet test output
        pass

    def _cgi_env(self, body: bytes) -> dict[str, str]:
        path, _, query = self.path.partition("?")
        env = dict(os.environ)
        env.update(
            GIT_PROJECT_ROOT=str(self.project_root),
            GIT_HTTP_EXPORT_ALL="1",
            REQUEST_METHOD=self.command,
            PATH_INFO=path,
            QUERY_STRING=query,
            CONTENT_TYPE=self.headers.get("Content-Type", ""),
            CONTENT_LENGTH=str(len(body)),
            REMOTE_ADDR=self.client_address[0],
            SERVER_PROTOCOL=self.request_version,
        )
        for name, value in self.headers.items():
            # Git-Protocol (v2) and Content-Encoding (gzip) reach http-backend as HTTP_* variables.
            env["HTTP_" + name.upper().replace("-", "_")] = value
        return env

    def _run_backend(self, body: bytes) -> None:
        done = subprocess.run(
            ["git", "http-backend"], input=body, env=self._cgi_env(body), capture_output=True, check=False
        )
        head, _, payload = done.stdout.partition(b"\r\n\r\n")
        if not _:
            head, _, payload = done.stdout.partition(b"\n\n")
        status, headers = 200, []
        for line in head.decode("latin-1").splitlines():
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = int(value.strip().split()[0])
            elif name:
                headers.append((name, value.strip()))
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


class GitHttpServer:
    """Smart-HTTP git server for every repository under ``base_path``, pushes enabled.

    With ``credentials`` every request must carry them (HTTP Basic), as a private shelf would require.
    Pushing over HTTP needs ``http.receivepack true`` in each served repository (http-backend refuses
    anonymous pushes otherwise); :meth:`__enter__` sets it on every repository already there and
    :meth:`allow_push` on ones created later.
    """

    def __init__(
        self, base_path: str | os.PathLike[str], *, credentials: tuple[str, str] | None = None
    ) -> None:
        self.base_path = Path(base_path).resolve()
        self.port = 0
        self.credentials = credentials  # (user, password) required by HTTP Basic auth, when given
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def url(self, repo_name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{repo_name}"

    def allow_push(self, repo_name: str) -> None:
        repo = self.base_path / repo_name
        subprocess.run(["git", "--git-dir", str(repo), "config", "http.receivepack", "true"], check=True)

    def _authorization(self) -> str | None:
        if self.credentials is None:
            return None
        token = base64.b64encode(":".join(self.credentials).encode()).decode()
        return f"Basic {token}"

    def __enter__(self) -> GitHttpServer:
        for repo in self.base_path.glob("*.git"):
            self.allow_push(repo.name)
        handler = type(
            "Handler",
            (_BackendHandler,),
            {"project_root": self.base_path, "authorization": self._authorization()},
        )
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        wait_for_port(self.port)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None
