"""HTTP plumbing for the LFS client: the session, retries with backoff, statuses turned into our errors.

Retries cover 429, 5xx and network errors, back off exponentially, honour ``Retry-After``, and stop after
``RetryPolicy.attempts`` or when the next wait would pass ``RetryPolicy.total_seconds``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, BinaryIO, TypeVar

import requests
import urllib3

from shelf import constants
from shelf.errors import AuthError, NotFoundError, TransportError
from shelf.redaction import redact
from shelf.remote.lfs_protocol import RETRY_STATUSES, parse_retry_after

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry 429, 5xx and connection errors."""

    attempts: int = constants.RETRY_ATTEMPTS
    total_seconds: float = constants.RETRY_TOTAL_SECONDS
    base_delay: float = 0.5
    max_delay: float = 30.0

    def delay(self, attempt: int, retry_after: str | None) -> float:
        """Seconds to wait before attempt ``attempt + 1``; the server's Retry-After wins."""
        asked = parse_retry_after(retry_after)
        if asked is not None:
            return asked
        return min(self.max_delay, self.base_delay * 2 ** (attempt - 1))


class Retryable(Exception):
    """A failure worth another attempt (429, 5xx, a server ignoring a range)."""

    def __init__(self, reason: str, retry_after: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


NETWORK_ERRORS = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError)
STREAM_ERRORS = (urllib3.exceptions.HTTPError, ConnectionError, TimeoutError)


def with_retries(policy: RetryPolicy, what: str, attempt: Callable[[], T]) -> T:
    """Run ``attempt`` until it succeeds, retrying 429, 5xx and network errors as ``policy`` allows."""
    started = time.monotonic()
    for number in range(1, policy.attempts + 1):
        try:
            return attempt()
        except Retryable as exc:
            reason, retry_after = exc.reason, exc.retry_after
        except (*NETWORK_ERRORS, *STREAM_ERRORS) as exc:
            reason, retry_after = f"{type(exc).__name__}: {redact(str(exc))[:200]}", None
        except requests.RequestException as exc:
            # A malformed URL or similar: retrying cannot help. Not chained: the cause may hold a token.
            detail = redact(str(exc))[:200]
            raise TransportError(f"{what} failed: {type(exc).__name__}: {detail}") from None
        delay = policy.delay(number, retry_after)
        if number == policy.attempts or time.monotonic() - started + delay > policy.total_seconds:
            break
        time.sleep(delay)
    raise TransportError(
        f"{what} failed after {number} attempt(s): {reason}",
        hint="the server is unreachable or overloaded; try again later",
    )


def check_status(response: requests.Response, what: str, server: str) -> None:
    """Raise the error an HTTP status means: AuthError, Retryable, NotFoundError or TransportError."""
    code = response.status_code
    if code in (401, 403):
        raise AuthError(
            f"the LFS server at {server} refused the credentials ({code}) for {what}",
            hint=f"set {constants.ENV_TOKEN}, add the host to ~/.netrc, or configure a git credential"
            " helper for it",
        )
    if code in RETRY_STATUSES:
        raise Retryable(
            f"HTTP {code} {server_message(response)}".strip(), response.headers.get("Retry-After")
        )
    if code == 404:
        raise NotFoundError(f"{what}: the LFS server at {server} answered 404 Not Found")
    if code >= 400:
        raise TransportError(f"{what}: HTTP {code} {server_message(response)}".strip())


def server_message(response: requests.Response) -> str:
    try:
        message = str(response.json().get("message", ""))
    except (ValueError, AttributeError):
        message = response.text[:200]
    return redact(message.strip()[:200])


class CountingReader:
    """A file handle that reports bytes read to a progress reporter; ``len`` sets Content-Length."""

    def __init__(self, handle: BinaryIO, size: int, on_read: Callable[[int], None]) -> None:
        self._handle = handle
        self._size = size
        self._on_read = on_read

    def __len__(self) -> int:
        return self._size

    def read(self, amount: int = -1) -> bytes:
        chunk = self._handle.read(amount)
        self._on_read(len(chunk))
        return chunk


class LargeBlockAdapter(requests.adapters.HTTPAdapter):
    """Uploads send the body in CHUNK_SIZE blocks instead of http.client's 16 KiB (fewer syscalls)."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("blocksize", constants.CHUNK_SIZE)
        super().init_poolmanager(*args, **kwargs)


def new_session(jobs: int) -> requests.Session:
    session = requests.Session()
    # One pooled connection per worker thread, so parallel transfers do not reconnect each time.
    adapter = LargeBlockAdapter(pool_connections=4, pool_maxsize=jobs)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def timeout() -> tuple[float, float]:
    return (constants.CONNECT_TIMEOUT, constants.READ_TIMEOUT)
