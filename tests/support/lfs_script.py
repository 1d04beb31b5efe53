"""A scripted LFS server for download tests: batch answers point at /obj/<oid>; each GET honours Range
(206 from an offset) and answers in the next way of ``server.script`` (plain, gzip, chunked, chunked-cut,
chunked-long), recording every Range header and counting connections."""

from __future__ import annotations

import gzip
import hashlib
import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from shelf.remote.lfs_protocol import LfsObject


class ScriptHandler(BaseHTTPRequestHandler):
    """Batch answers point at /obj/<oid>; each GET answers in the next way of ``server.script``."""

    server: ScriptServer
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        self.server.connections += 1

    def log_message(self, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        base = f"http://127.0.0.1:{self.server.server_port}"
        objects = [
            {**o, "actions": {"download": {"href": f"{base}/obj/{o['oid']}"}}} for o in body["objects"]
        ]
        self._plain(200, json.dumps({"transfer": "basic", "objects": objects}).encode(), {})

    def do_GET(self) -> None:
        self.server.ranges.append(self.headers.get("Range"))
        way = self.server.script.pop(0) if self.server.script else "plain"
        data = self.server.blobs[self.path.rsplit("/", 1)[-1]]
        start = int((self.headers.get("Range") or "bytes=0-")[6:].rstrip("-"))
        headers = {"Content-Range": f"bytes {start}-{len(data) - 1}/{len(data)}"} if start else {}
        status, data = (206 if start else 200), data[start:]
        if way == "gzip":
            self._plain(status, gzip.compress(data), {**headers, "Content-Encoding": "gzip"})
        elif way == "chunked":
            self._chunked(status, [data[:1000], data[1000:50_000], data[50_000:]], headers)
        elif way == "chunked-cut":  # two whole chunks, then the connection closes mid-body
            self._chunked(status, [data[:30_000], data[30_000:60_000]], headers, end=False)
        elif way == "chunked-long":
            self._chunked(status, [data, b"extra bytes"], headers)
        else:
            self._plain(status, data, headers)

    def _plain(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in {"Content-Length": str(len(body)), **headers}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _chunked(self, status: int, parts: list[bytes], headers: dict[str, str], end: bool = True) -> None:
        self.send_response(status)
        for name, value in {"Transfer-Encoding": "chunked", **headers}.items():
            self.send_header(name, value)
        self.end_headers()
        for part in parts:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
        if end:
            self.wfile.write(b"0\r\n\r\n")
        else:
            self.wfile.flush()
            self.close_connection = True


class ScriptServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), ScriptHandler)
        self.blobs: dict[str, bytes] = {}
        self.script: list[str] = []
        self.ranges: list[str | None] = []
        self.connections = 0

    def add(self, data: bytes) -> LfsObject:
        oid = hashlib.sha256(data).hexdigest()
        self.blobs[oid] = data
        return LfsObject(oid, len(data))

    def url(self, obj: LfsObject) -> str:
        return f"http://127.0.0.1:{self.server_port}/obj/{obj.oid}"

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server_port}/org/shelf.git/info/lfs"
