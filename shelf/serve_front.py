"""The HTTP front of a served shelf: one gunicorn server, one repository, three kinds of paths.

    /<repo>/info/refs, /<repo>/git-upload-pack     git smart HTTP, anyone (shelf.serve_git)
    /<repo>/git-receive-pack (+ its info/refs)      git smart HTTP, token holders only
    /<repo>/info/lfs/...                            the Git LFS API (giftless): downloads for anyone,
                                                    uploads for token holders (shelf.serve_auth); blobs in
                                                    the repository, or in S3 (shelf.s3_storage)
    <mount>/...                                     read-only static folders (``static``), if any

Everything else is a 404. giftless signs its per-object links with a key made in memory here, in the
gunicorn master before it forks its workers: the key is never written anywhere. Run as
``python -m shelf.serve_front CONFIG_JSON`` by ``shelf.serve``; imports giftless and gunicorn.
"""

from __future__ import annotations

import json
import mimetypes
import os
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from shelf.serve_auth import Caller, classify, load_tokens
from shelf.serve_git import RECEIVE_PACK, GitHttpBackend, service_of

LFS_ORG = "cclm"
ACTION_LIFETIME = 3600
CHUNK = 1 << 20
StartResponse = Callable[..., Any]


def giftless_repo(name: str) -> str:
    """giftless routes ``<org>/<repo>.git/info/lfs``: the shelf's folder name with the suffix it needs."""
    return name if name.endswith(".git") else f"{name}.git"


class Front:
    """The WSGI app: routes one repository's git and LFS paths, and static mounts; see the module doc."""

    def __init__(
        self,
        repo: Path,
        tokens: Sequence[str] = (),
        static: Mapping[str, Path] | None = None,
        s3: Mapping[str, str] | None = None,
    ) -> None:
        self.repo = Path(repo).resolve()
        self.name = self.repo.name
        self.tokens = tuple(tokens)
        self.git = GitHttpBackend(self.repo)
        self.lfs = giftless_app(self.repo, self.tokens, s3)
        self.lfs_prefixes = (f"/{self.name}/info/lfs/", f"/{LFS_ORG}/{giftless_repo(self.name)}/info/lfs/")
        mounts = {"/" + p.strip("/"): Path(f).resolve() for p, f in (static or {}).items()}
        self.static = sorted(mounts.items(), key=lambda item: -len(item[0]))

    def __call__(self, environ: dict, start_response: StartResponse) -> Any:
        path = environ.get("PATH_INFO", "") or "/"
        if path.startswith(self.lfs_prefixes[0]):
            inner = self.lfs_prefixes[1] + path[len(self.lfs_prefixes[0]) :]
            return self.lfs({**environ, "PATH_INFO": inner}, start_response)
        if path.startswith(self.lfs_prefixes[1]):
            return self.lfs(environ, start_response)
        if path.startswith(f"/{self.name}/"):
            return self._git(environ, start_response, path[len(self.name) + 1 :])
        for prefix, folder in self.static:
            if path == prefix or path.startswith(prefix.rstrip("/") + "/"):
                return serve_static(folder, path[len(prefix) :], environ, start_response)
        return _text(
            start_response, "404 Not Found", f"nothing here; this server serves the shelf {self.name}"
        )

    def _git(self, environ: dict, start_response: StartResponse, endpoint: str) -> Any:
        service = service_of(endpoint, environ.get("QUERY_STRING", ""))
        if service is None:
            return _text(
                start_response, "404 Not Found", f"not a git smart-HTTP path of the shelf {self.name}"
            )
        caller = classify(environ.get("HTTP_AUTHORIZATION"), self.tokens)
        if caller is Caller.REFUSED:
            return self._unauthorized(start_response, "the token is not one this shelf accepts")
        if service == RECEIVE_PACK and caller is not Caller.WRITER:
            reason = "publishing needs a token" if self.tokens else "it is served read-only"
            return self._unauthorized(start_response, reason)
        writer = "cclm-shelf-token" if caller is Caller.WRITER else None
        return self.git(environ, start_response, endpoint, writer)

    def _unauthorized(self, start_response: StartResponse, reason: str) -> list[bytes]:
        realm = f'Basic realm="cclm-shelf {self.name}", charset="UTF-8"'
        return _text(
            start_response,
            "401 Unauthorized",
            f"the shelf {self.name} refused the request: {reason}",
            [("WWW-Authenticate", realm)],
        )


def _text(
    start_response: StartResponse, status: str, text: str, extra: Sequence[tuple[str, str]] = ()
) -> list[bytes]:
    body = (text + "\n").encode()
    headers = [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body))), *extra]
    start_response(status, headers)
    return [body]


def serve_static(folder: Path, relative: str, environ: dict, start_response: StartResponse) -> Any:
    """A regular file under ``folder`` (``index.html`` for a folder); never anything outside it."""
    if environ.get("REQUEST_METHOD", "GET") not in ("GET", "HEAD"):
        return _text(
            start_response, "405 Method Not Allowed", "static pages are read-only", [("Allow", "GET")]
        )
    parts = [p for p in relative.split("/") if p]
    if any(p in ("..", ".") or p.startswith(".") or "\0" in p or "\\" in p for p in parts):
        return _text(start_response, "404 Not Found", "no such page")
    target = folder.joinpath(*parts).resolve() if parts else folder
    if target.is_dir():
        target = target / "index.html"
    if not target.is_relative_to(folder) or not target.is_file():  # a link may point out of the folder
        return _text(start_response, "404 Not Found", "no such page")
    stat = target.stat()
    etag = f'"{stat.st_mtime_ns:x}-{stat.st_size:x}-{stat.st_ino:x}"'  # changes whenever the file is replaced
    if etag in (t.strip() for t in environ.get("HTTP_IF_NONE_MATCH", "").split(",")):
        start_response("304 Not Modified", [("ETag", etag)])
        return []
    kind = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
    headers = [("Content-Type", kind), ("Content-Length", str(stat.st_size)), ("ETag", etag)]
    start_response("200 OK", headers)
    return [] if environ.get("REQUEST_METHOD") == "HEAD" else _file_chunks(target)


def _file_chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            yield chunk


def giftless_config(
    repo: Path, tokens: Sequence[str], key: str, s3: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """giftless settings: uploads for token holders, downloads for anyone, blobs in the shelf's lfs folder
    or, with ``s3`` (``bucket`` and ``prefix``), in that bucket (``shelf.s3_storage``)."""
    return {
        "AUTH_PROVIDERS": [
            {"factory": "shelf.serve_auth:giftless_authenticator", "options": {"tokens": tokens}}
        ],
        "LEGACY_ENDPOINTS": False,
        "TRANSFER_ADAPTERS": {"basic": _s3_adapter(s3) if s3 else _local_adapter(repo)},
        "PRE_AUTHORIZED_ACTION_PROVIDER": {
            "factory": "giftless.auth.jwt:factory",
            "options": {"algorithm": "HS256", "private_key": key, "default_lifetime": ACTION_LIFETIME},
        },
    }


def _local_adapter(repo: Path) -> dict[str, Any]:
    options = {"path": str(repo)}
    return {
        "factory": "giftless.transfer.basic_streaming:factory",
        "options": {
            "storage_class": "shelf.lfs_storage:GitLfsLayoutStorage",
            "storage_options": options,
            "action_lifetime": ACTION_LIFETIME,
        },
    }


def _s3_adapter(s3: Mapping[str, str]) -> dict[str, Any]:
    """Pre-signed transfers straight to and from the bucket (the endpoint and keys: AWS's environment)."""
    options = {"bucket_name": s3["bucket"], "path_prefix": s3.get("prefix") or None}
    return {
        "factory": "giftless.transfer.basic_external:factory",
        "options": {
            "storage_class": "shelf.s3_storage:VerifiedS3Storage",
            "storage_options": options,
            "action_lifetime": ACTION_LIFETIME,
        },
    }


def giftless_app(repo: Path, tokens: Sequence[str], s3: Mapping[str, str] | None = None) -> Callable:
    from giftless.app import init_app
    from giftless.auth import authentication

    key = os.urandom(32).hex()  # signs the short-lived per-object links giftless hands out
    app = init_app(additional_config=giftless_config(repo, tokens, key, s3))
    # giftless builds its authenticators on a first request; build them now, once, before workers fork,
    # so that concurrent first requests never see a half-built list.
    with app.app_context():
        authentication.init_authenticators()
    return app


def run(config: Mapping[str, Any]) -> None:
    """Serve ``config`` with gunicorn until stopped: threaded workers that die with the master."""
    from gunicorn.app.base import BaseApplication

    from shelf.serve_process import die_with_parent

    tokens = load_tokens(Path(config["token_file"])) if config.get("token_file") else ()
    static = {prefix: Path(folder) for prefix, folder in (config.get("static") or {}).items()}
    front = Front(Path(config["repo"]), tokens, static, s3=config.get("s3"))

    class FrontApplication(BaseApplication):
        def load_config(self) -> None:
            settings = {
                "bind": [config["bind"]],
                "workers": int(config.get("workers", 2)),
                "worker_class": "gthread",
                "threads": int(config.get("threads", 8)),
                "timeout": 120,
                "graceful_timeout": 5,
                "loglevel": "warning",
                "post_fork": lambda server, _worker: die_with_parent(server.pid),
                # gunicorn's runtime-control socket would be a file in the user's home, left behind by
                # kill -9 and shared by every gunicorn of that user: serve is controlled by its signals.
                "control_socket_disable": True,
            }
            for name, value in settings.items():
                self.cfg.set(name, value)

        def load(self) -> Front:
            return front

    FrontApplication().run()


if __name__ == "__main__":
    run(json.loads(sys.argv[1]))
