"""git's smart HTTP protocol for one repository, served by ``git http-backend`` as a CGI program.

Only the three smart-protocol endpoints are served (``info/refs?service=...``, ``git-upload-pack``,
``git-receive-pack``); the path handed to git is built here from a fixed list, never from the request, so
no request reaches another repository or a file of this one. Whether a caller may push is decided by the
HTTP front: git is told ``REMOTE_USER`` only for writers, and receive-pack is refused to everybody else
before git runs.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

CHUNK = 1 << 16
# A fetch negotiation (wants and haves) is small; only writers may send more (their packs).
READER_BODY_LIMIT = 64 << 20
UPLOAD_PACK, RECEIVE_PACK = "git-upload-pack", "git-receive-pack"
# request path below the repository -> the service it belongs to (None: named by ?service=)
ENDPOINTS = {"/info/refs": None, f"/{UPLOAD_PACK}": UPLOAD_PACK, f"/{RECEIVE_PACK}": RECEIVE_PACK}
_PASSED = {
    "REQUEST_METHOD": "REQUEST_METHOD",
    "QUERY_STRING": "QUERY_STRING",
    "CONTENT_TYPE": "CONTENT_TYPE",
    "HTTP_CONTENT_ENCODING": "HTTP_CONTENT_ENCODING",
    "HTTP_GIT_PROTOCOL": "GIT_PROTOCOL",
    "REMOTE_ADDR": "REMOTE_ADDR",
}
StartResponse = Callable[..., Any]


def service_of(endpoint: str, query: str) -> str | None:
    """The git service a smart-HTTP request asks for; None for anything that is not one."""
    if endpoint not in ENDPOINTS:
        return None
    named = ENDPOINTS[endpoint]
    if named is not None:
        return named
    for part in query.split("&"):
        if part in (f"service={UPLOAD_PACK}", f"service={RECEIVE_PACK}"):
            return part.partition("=")[2]
    return None


class GitHttpBackend:
    """A WSGI app serving the bare repository ``repo`` at the endpoints in ``ENDPOINTS``."""

    def __init__(self, repo: Path) -> None:
        self.repo = Path(repo).resolve()
        self.program = git_program("git-http-backend")

    def __call__(self, environ: dict, start_response: StartResponse, endpoint: str, writer: str | None):
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "GIT_HTTP_EXPORT_ALL": "1"}
        env.update({cgi: str(environ[key]) for key, cgi in _PASSED.items() if environ.get(key)})
        env["GIT_PROJECT_ROOT"] = str(self.repo.parent)
        env["PATH_INFO"] = f"/{self.repo.name}{endpoint}"
        if writer:
            env["REMOTE_USER"] = writer
        body = _spool(environ["wsgi.input"], None if writer else READER_BODY_LIMIT)
        if body is None:
            start_response("413 Content Too Large", [("Content-Type", "text/plain; charset=utf-8")])
            return [b"a fetch request this large is not one\n"]
        try:
            process = subprocess.Popen(
                [self.program], stdin=body, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env
            )
        finally:
            body.close()
        status, headers = _read_cgi_headers(process.stdout)
        start_response(status, headers)
        return _stream(process)


def git_program(name: str) -> str:
    """The path of one of git's own programs (``git-daemon``): run directly, it is the process we start,
    not a child of a ``git`` wrapper that would outlive the wrapper."""
    exec_path = subprocess.run(["git", "--exec-path"], capture_output=True, text=True, check=True).stdout
    program = Path(exec_path.strip()) / name
    return str(program) if program.exists() else shutil.which(name) or str(program)


def _spool(stream, limit: int | None) -> Any:
    """The request body in a temporary file, so git reads it all without us feeding a pipe both ways;
    None when it is longer than ``limit``."""
    spooled = tempfile.TemporaryFile()  # noqa: SIM115 - closed by the caller once git has it
    size = 0
    while chunk := stream.read(CHUNK):
        size += len(chunk)
        if limit is not None and size > limit:
            spooled.close()
            return None
        spooled.write(chunk)
    spooled.seek(0)
    return spooled


def _read_cgi_headers(stdout) -> tuple[str, list[tuple[str, str]]]:
    status, headers = "200 OK", []
    while line := stdout.readline():
        text = line.decode("latin-1").rstrip("\r\n")
        if not text:
            break
        name, _, value = text.partition(":")
        if name.lower() == "status":
            status = value.strip()
        else:
            headers.append((name.strip(), value.strip()))
    return status, headers


def _stream(process: subprocess.Popen) -> Iterator[bytes]:
    stdout = process.stdout
    assert stdout is not None  # started with stdout=PIPE
    try:
        while chunk := stdout.read1(CHUNK):  # type: ignore[attr-defined]  # a BufferedReader
            yield chunk
    finally:
        stdout.close()
        process.wait()
