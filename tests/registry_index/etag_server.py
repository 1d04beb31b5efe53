"""A static file server that sends strong ETags and honours If-None-Match (answers 304).

``python -m http.server`` sends Last-Modified but no ETag, so revalidation is tested against this one.
Run as ``python -m tests.registry_index.etag_server <folder>``: it binds 127.0.0.1 on a free port and
prints ``port <n>`` on its first line of output. Every request is appended to ``<folder>.log`` as
``<status> <path>`` so tests can see what the server really answered.
"""

from __future__ import annotations

import hashlib
import sys
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class EtagHandler(BaseHTTPRequestHandler):
    def __init__(self, *args, root: Path, **kwargs) -> None:
        self.root = root
        super().__init__(*args, **kwargs)

    def do_GET(self) -> None:
        target = (self.root / self.path.lstrip("/").split("?")[0]).resolve()
        if not target.is_relative_to(self.root) or not target.is_file():
            self._answer(404, b"not found\n")
            return
        body = target.read_bytes()
        etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        wanted = [tag.strip() for tag in self.headers.get("If-None-Match", "").split(",")]
        if etag in wanted:
            self._answer(304, b"", etag)
        else:
            self._answer(200, body, etag)

    def _answer(self, status: int, body: bytes, etag: str | None = None) -> None:
        # Logged before answering, so the log is complete by the time the client has its response.
        with open(str(self.root) + ".log", "a", encoding="utf-8") as log:
            log.write(f"{status} {self.path}\n")
        self.send_response(status)
        if etag:
            self.send_header("ETag", etag)
        if status != 304:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if status != 304:
            self.wfile.write(body)

    def log_message(self, format: str, *args) -> None:  # keep test output quiet
        pass


def main(folder: str) -> None:
    root = Path(folder).resolve()
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(EtagHandler, root=root))
    print(f"port {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main(sys.argv[1])
