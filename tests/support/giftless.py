"""A real Git LFS server (giftless under gunicorn) on 127.0.0.1, for tests.

    with GiftlessServer(tmp_path) as server:              # anonymous read-write
        endpoint = server.endpoint("org", "shelf")        # http://127.0.0.1:PORT/org/shelf.git/info/lfs

    with GiftlessServer(tmp_path, auth="jwt") as server:  # every request needs a token
        token = server.mint_token("org", "shelf")         # an HS256 JWT for obj:org/shelf/*

Objects land in ``server.object_path(org, repo, oid)`` (``<storage>/<org>/<repo>/<oid>``), so a test can
damage them. To share one server between tests, wrap it in a module- or session-scoped fixture, e.g.
``giftless_server = pytest.fixture(scope="module")(giftless_fixture)``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import requests

from tests.support.git_servers import free_port
from tests.support.processes import stop_process

SIGNING_KEY = "cclm-shelf-tests-signing-key-0123456789abcdef"  # HS256 needs 32+ bytes
_START_TIMEOUT = 30.0


def _config(storage: Path, auth: str, action_lifetime: int) -> str:
    if auth == "anon":
        providers = "  - giftless.auth.allow_anon:read_write\n"
    elif auth == "jwt":
        providers = (
            "  - factory: giftless.auth.jwt:factory\n"
            f"    options: {{algorithm: HS256, private_key: '{SIGNING_KEY}'}}\n"
        )
    else:
        raise ValueError(f"auth must be 'anon' or 'jwt', not {auth!r}")
    return (
        f"AUTH_PROVIDERS:\n{providers}"
        "LEGACY_ENDPOINTS: false\n"
        "TRANSFER_ADAPTERS:\n"
        "  basic:\n"
        "    factory: giftless.transfer.basic_streaming:factory\n"
        "    options:\n"
        "      storage_class: giftless.storage.local_storage:LocalStorage\n"
        f"      storage_options: {{path: '{storage}'}}\n"
        f"      action_lifetime: {action_lifetime}\n"
        "PRE_AUTHORIZED_ACTION_PROVIDER:\n"
        "  factory: giftless.auth.jwt:factory\n"
        f"  options: {{algorithm: HS256, private_key: '{SIGNING_KEY}',"
        f" default_lifetime: {action_lifetime}}}\n"
    )


class GiftlessServer:
    """Start giftless on a free loopback port; stop it on exit."""

    def __init__(self, workdir: Path, *, auth: str = "anon", action_lifetime: int = 3600, workers: int = 2):
        self.workdir = Path(workdir)
        self.storage_path = self.workdir / "lfs-storage"
        self.auth = auth
        self.port = free_port()
        self._config = _config(self.storage_path, auth, action_lifetime)
        self._workers = workers
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def endpoint(self, org: str = "org", repo: str = "shelf") -> str:
        """The LFS endpoint of one repository on this server."""
        return f"{self.base_url}/{org}/{repo}.git/info/lfs"

    def object_path(self, org: str, repo: str, oid: str) -> Path:
        return self.storage_path / org / repo / oid

    def mint_token(
        self, org: str = "org", repo: str = "shelf", actions: str = "read,write", lifetime: int = 3600
    ) -> str:
        """A JWT the server accepts, granting ``actions`` on every object of ``org/repo``."""
        import jwt

        now = int(time.time())
        claims = {
            "sub": "tests",
            "iat": now,
            "exp": now + lifetime,
            "scopes": [f"obj:{org}/{repo}/*:{actions}"],
        }
        return str(jwt.encode(claims, SIGNING_KEY, algorithm="HS256"))

    def start(self) -> GiftlessServer:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.storage_path.mkdir(parents=True, exist_ok=True)
        config = self.workdir / "giftless.yaml"
        config.write_text(self._config, encoding="utf-8")
        gunicorn = Path(sys.executable).parent / "gunicorn"
        env = {**os.environ, "GIFTLESS_CONFIG_FILE": str(config)}
        command = [
            str(gunicorn),
            "-b",
            f"127.0.0.1:{self.port}",
            "-w",
            str(self._workers),
            "--no-control-socket",
        ]
        log = open(self.workdir / "gunicorn.log", "wb")  # noqa: SIM115 - owned by the child process
        self._process = subprocess.Popen(
            [*command, "giftless.wsgi_entrypoint:app"], env=env, stdout=log, stderr=subprocess.STDOUT
        )
        log.close()
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + _START_TIMEOUT
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                raise RuntimeError(f"giftless exited early:\n{self.log()}")
            try:
                requests.get(self.base_url + "/", timeout=5)
                return
            except requests.RequestException:  # not listening yet, or workers still booting
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"giftless did not start within {_START_TIMEOUT}s:\n{self.log()}")

    def log(self) -> str:
        path = self.workdir / "gunicorn.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        if self._process is None:
            return
        stop_process(self._process)
        self._process = None

    def __enter__(self) -> GiftlessServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def giftless_fixture(tmp_path_factory, auth: str = "anon") -> Iterator[GiftlessServer]:
    """The body of a pytest fixture: one server for the fixture's scope."""
    with GiftlessServer(tmp_path_factory.mktemp("giftless"), auth=auth) as server:
        yield server


def jwt_giftless_fixture(tmp_path_factory) -> Iterator[GiftlessServer]:
    """Like ``giftless_fixture``, with JWT authentication required."""
    yield from giftless_fixture(tmp_path_factory, auth="jwt")
