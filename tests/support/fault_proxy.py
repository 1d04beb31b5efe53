"""A fault-injecting HTTP proxy on 127.0.0.1, in front of a real LFS server (giftless), for tests.

Every request is forwarded to the upstream server unless a rule matches it. Rules match by method and by a
regular expression searched in the path, and fire for the first ``times`` matching requests only (None:
always), so a test can make the first two downloads fail and the third succeed::

    with FaultProxy(giftless.base_url) as proxy:
        endpoint = proxy.endpoint("org", "shelf")      # what the shelf's .lfsconfig names
        proxy.add(Fault("reset", method="GET", path="/objects/storage/", times=1))

Batch answers always have their action hrefs rewritten to go through the proxy, so downloads and uploads
pass through it too. The faults (``Fault.kind``):

    status       answer ``status`` (500, 502, 503, 404, ...) with ``Retry-After: retry_after`` if set
    throttle     answer 429 with ``Retry-After: retry_after``
    drop         read the request, then reset the connection without forwarding it or answering
    reset        send the headers and half the body, then reset the connection (RST)
    truncate     send the headers (full Content-Length) and half the body, then close cleanly (FIN)
    corrupt      send different bytes of the right length
    append       send the body plus extra bytes (Content-Length says the longer length)
    trickle      send the body ``chunk`` bytes at a time, ``delay`` seconds apart
    garbage      answer 200 with a body that is not JSON
    expire       (batch) mark every action as already expired (``expires_in: -1``)
    expire_zero  (batch) set ``expires_in: 0`` on every action
    href_403     (batch) point every action at a URL of the proxy that answers 403
"""

from __future__ import annotations

import contextlib
import http.client
import json
import re
import socket
import struct
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

__all__ = ["Fault", "FaultProxy", "Hit"]

GONE_PREFIX = "/__gone__"
_HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "content-length", "host", "te", "upgrade"}
_BATCH_KINDS = {"expire", "expire_zero", "href_403"}


@dataclass
class Fault:
    """One rule: which requests it hits and what it does to them."""

    kind: str
    method: str = "*"
    path: str = ""
    times: int | None = 1
    status: int = 503
    retry_after: str | None = None
    chunk: int = 512
    delay: float = 0.002
    fired: int = 0

    def matches(self, method: str, path: str) -> bool:
        if self.times is not None and self.fired >= self.times:
            return False
        return self.method in ("*", method) and re.search(self.path, path) is not None


@dataclass(frozen=True)
class Hit:
    """A request the proxy saw, and the fault it applied (None: passed through)."""

    method: str
    path: str
    fault: str | None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class _Upstream:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


class FaultProxy:
    """The proxy server: start it with ``with`` or ``start()``; rules can change while it runs."""

    def __init__(self, upstream: str) -> None:
        self.upstream = urlsplit(upstream.rstrip("/"))
        self._rules: list[Fault] = []
        self._lock = threading.Lock()
        self.hits: list[Hit] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def endpoint(self, org: str = "org", repo: str = "shelf") -> str:
        return f"{self.base_url}/{org}/{repo}.git/info/lfs"

    # Rules -----------------------------------------------------------------------------------------------

    def add(self, *faults: Fault) -> None:
        with self._lock:
            self._rules.extend(faults)

    def clear(self) -> None:
        """Drop every rule and forget the requests seen."""
        with self._lock:
            self._rules.clear()
            self.hits.clear()

    def take(self, method: str, path: str) -> Fault | None:
        """The first rule that matches, counted as fired."""
        with self._lock:
            for rule in self._rules:
                if rule.matches(method, path):
                    rule.fired += 1
                    return rule
        return None

    def record(self, hit: Hit) -> None:
        with self._lock:
            self.hits.append(hit)

    def count(self, method: str, path: str = "") -> int:
        with self._lock:
            return sum(1 for h in self.hits if h.method == method and re.search(path, h.path))

    # Upstream --------------------------------------------------------------------------------------------

    def forward(self, method: str, path: str, headers: dict[str, str], body: bytes) -> _Upstream:
        connection = http.client.HTTPConnection(self.upstream.hostname, self.upstream.port, timeout=60)
        try:
            sent = {k: v for k, v in headers.items() if k.lower() not in _HOP_HEADERS}
            sent["Host"] = self.upstream.netloc
            connection.request(method, path, body=body or None, headers=sent)
            response = connection.getresponse()
            data = response.read()
            kept = [(k, v) for k, v in response.getheaders() if k.lower() not in _HOP_HEADERS]
            return _Upstream(response.status, kept, data)
        finally:
            connection.close()

    def rewrite_batch(self, body: bytes, fault: Fault | None) -> bytes:
        """Point every href at the proxy, and apply a batch fault to the actions."""
        data = json.loads(body)
        for obj in data.get("objects", []):
            for name, action in (obj.get("actions") or {}).items():
                action["href"] = self._through_proxy(action["href"])
                if fault is not None:
                    _spoil_action(action, fault.kind, self.base_url, name)
        return json.dumps(data).encode()

    def _through_proxy(self, href: str) -> str:
        parts = urlsplit(href)
        rest = parts.path + (f"?{parts.query}" if parts.query else "")
        return self.base_url + rest

    # Life cycle ------------------------------------------------------------------------------------------

    def start(self) -> FaultProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _spoil_action(action: dict, kind: str, base_url: str, name: str) -> None:
    if kind == "expire":
        action["expires_in"] = -1
    elif kind == "expire_zero":
        action["expires_in"] = 0
    elif kind == "href_403":
        action["href"] = f"{base_url}{GONE_PREFIX}/{name}"


def _handler_for(proxy: FaultProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(_FaultHandler):
        pass

    Handler.proxy = proxy
    return Handler


class _FaultHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    proxy: FaultProxy

    def log_message(self, format: str, *args: object) -> None:
        pass  # quiet: tests read ``proxy.hits`` instead

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def _serve(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = dict(self.headers.items())
        if self.path.startswith(GONE_PREFIX):
            self.proxy.record(Hit(method, self.path, "gone", headers))
            self._answer(403, [("Content-Type", "application/json")], b'{"message": "link expired"}')
            return
        fault = self.proxy.take(method, self.path)
        self.proxy.record(Hit(method, self.path, fault.kind if fault else None, headers))
        if fault is not None and fault.kind == "drop":
            self._hang_up(reset=True)
            return
        if fault is not None and fault.kind in {"status", "throttle", "garbage"}:
            self._answer_fault(fault)
            return
        upstream = self.proxy.forward(method, self.path, headers, body)
        payload = upstream.body
        if self.path.endswith("/objects/batch") and upstream.status == 200:
            payload = self.proxy.rewrite_batch(
                payload, fault if fault and fault.kind in _BATCH_KINDS else None
            )
        self._send(upstream.status, upstream.headers, payload, fault)

    def _answer_fault(self, fault: Fault) -> None:
        if fault.kind == "garbage":
            self._answer(200, [("Content-Type", "application/vnd.git-lfs+json")], b"<html>not json</html>")
            return
        status = 429 if fault.kind == "throttle" else fault.status
        headers = [("Content-Type", "application/json")]
        if fault.retry_after is not None:
            headers.append(("Retry-After", fault.retry_after))
        self._answer(status, headers, json.dumps({"message": f"injected {status}"}).encode())

    def _answer(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.send_response(status)
        for key, value in headers:
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _send(self, status: int, headers: list[tuple[str, str]], body: bytes, fault: Fault | None) -> None:
        kind = fault.kind if fault is not None else None
        if kind == "corrupt" and body:
            body = bytes(b ^ 0x5A for b in body[:64]) + body[64:]
        if kind == "append":
            body += b"\0" * 4096
        if kind not in {"reset", "truncate", "trickle"}:
            self._answer(status, headers, body)
            return
        self.send_response(status)
        for key, value in headers:
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if kind == "trickle":
            for piece in _pieces(body, fault.chunk):
                self.wfile.write(piece)
                self.wfile.flush()
                time.sleep(fault.delay)
            return
        self.wfile.write(body[: len(body) // 2])
        self.wfile.flush()
        self._hang_up(reset=kind == "reset")

    def _hang_up(self, *, reset: bool) -> None:
        """Close the client connection mid-body: with an RST (linger 0) or a plain FIN."""
        self.close_connection = True
        if reset:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        else:
            self.connection.shutdown(socket.SHUT_WR)
        self.connection.close()

    def finish(self) -> None:
        with contextlib.suppress(OSError):  # the connection may have been closed on purpose
            super().finish()


def _pieces(body: bytes, size: int) -> Iterator[bytes]:
    for start in range(0, len(body), max(1, size)):
        yield body[start : start + size]
