"""Credentials for an LFS endpoint (scrubbing secrets out of text is ``shelf.redaction``).

Looked up in this order, first match wins:

1. ``CCLM_SHELF_TOKEN``: sent as ``Authorization: Bearer <token>``;
2. netrc (``$NETRC`` or ``~/.netrc``), by the endpoint's host: HTTP basic auth;
3. ``git credential fill`` for the endpoint URL, run so that it can never prompt (``GIT_TERMINAL_PROMPT=0``,
   no askpass helper, stdin not a terminal, a timeout): whatever credential helper git is configured with.

Secrets are never printed, logged, or put in exception messages: ``shelf.redaction.redact`` scrubs a text of
Authorization values, token-like query parameters, user info in URLs and any secret passed to it
(``shelf.redaction``).
"""

from __future__ import annotations

import os
import subprocess
from urllib.parse import urlsplit

import requests
from requests.auth import AuthBase, HTTPBasicAuth
from requests.utils import get_netrc_auth

from shelf import constants

GIT_CREDENTIAL_TIMEOUT = 10.0


class BearerAuth(AuthBase):
    """``Authorization: Bearer <token>``; its repr never shows the token."""

    def __init__(self, token: str) -> None:
        self._token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self._token}"
        return request

    def __repr__(self) -> str:
        return "BearerAuth(***)"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, BearerAuth) and other._token == self._token

    def __hash__(self) -> int:
        return hash(("bearer", self._token))


def auth_for(endpoint: str, *, use_git: bool = True) -> AuthBase | None:
    """The credentials to send to ``endpoint``, or None when none are configured."""
    token = constants.token()
    if token:
        return BearerAuth(token)
    from_netrc = get_netrc_auth(endpoint)
    if from_netrc:
        return HTTPBasicAuth(*from_netrc)
    if use_git:
        found = git_credential_fill(endpoint)
        if found:
            return HTTPBasicAuth(*found)
    return None


def _credential_request(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    lines = [f"protocol={parts.scheme}", f"host={host}"]
    if parts.path.strip("/"):
        lines.append(f"path={parts.path.strip('/')}")
    return "\n".join(lines) + "\n\n"


def _quiet_git_env() -> dict[str, str]:
    """The environment for a git run that must fail rather than ask anybody anything."""
    env = {k: v for k, v in os.environ.items() if k not in {"GIT_ASKPASS", "SSH_ASKPASS"}}
    env["GIT_TERMINAL_PROMPT"] = "0"
    env["GCM_INTERACTIVE"] = "never"  # Git Credential Manager's own switch
    return env


def git_credential_fill(url: str, timeout: float = GIT_CREDENTIAL_TIMEOUT) -> tuple[str, str] | None:
    """Ask git's credential helpers for ``url``; (username, password), or None when they have nothing."""
    if urlsplit(url).scheme not in {"http", "https"}:
        return None
    try:
        done = subprocess.run(
            ["git", "-c", "core.askPass=", "-c", "credential.interactive=false", "credential", "fill"],
            input=_credential_request(url),
            capture_output=True,
            text=True,
            timeout=timeout,
            env=_quiet_git_env(),
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0:
        return None
    fields = dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)
    username, password = fields.get("username", ""), fields.get("password", "")
    return (username, password) if password else None
