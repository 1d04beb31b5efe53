"""HTTP plumbing for the LFS client: the session and its retries, statuses turned into our errors.

Retries are urllib3's, on the session's adapter (as pip does): 429, 5xx, connection errors and read
timeouts are retried with exponential backoff, ``Retry-After`` is honoured, and retrying stops after
``RetryPolicy.attempts`` or when the next wait would pass ``RetryPolicy.total_seconds``. What the adapter
cannot retry (a body that breaks off half-way, a refused download link, an expired action) is the LFS
client's own loop (``shelf.remote.lfs_http``), which resumes from the bytes already verified.
"""

from __future__ import annotations

import http.client
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, BinaryIO

import requests
import urllib3

from shelf import constants
from shelf.errors import AuthError, NotFoundError, TransportError
from shelf.redaction import redact
from shelf.remote.lfs_protocol import RETRY_STATUSES, parse_retry_after

_OVERLOADED = "the server is unreachable or overloaded; try again later"


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
    """A download worth another go from where it stopped: the body broke off, or the range was refused."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


NETWORK_ERRORS = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError)
# What reading a body may raise when the connection breaks: urllib3's errors, or http.client's and the
# socket's where the body is read underneath urllib3 (``plain_body``).
STREAM_ERRORS = (urllib3.exceptions.HTTPError, http.client.HTTPException, ConnectionError, TimeoutError)


class BoundedRetry(urllib3.Retry):
    """urllib3's ``Retry`` that also gives up when the next wait would pass a total time ``budget``."""

    def __init__(
        self,
        *args: Any,
        budget: float = constants.RETRY_TOTAL_SECONDS,
        started: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.budget = budget
        self.started = started

    def new(self, **kwargs: Any) -> BoundedRetry:
        kwargs.setdefault("budget", self.budget)
        kwargs.setdefault("started", self.started if self.started is not None else time.monotonic())
        return super().new(**kwargs)

    def increment(self, *args: Any, **kwargs: Any) -> BoundedRetry:
        retry = super().increment(*args, **kwargs)  # MaxRetryError when exhausted
        response = kwargs.get("response")
        wait = (response is not None and retry.get_retry_after(response)) or retry.get_backoff_time()
        if retry.started is not None and time.monotonic() - retry.started + wait > retry.budget:
            reason = urllib3.exceptions.ResponseError(f"a wait of {wait:.0f} s would pass the retry budget")
            url = kwargs.get("url", args[1] if len(args) > 1 else None)
            raise urllib3.exceptions.MaxRetryError(kwargs["_pool"], url, reason)
        return retry


def network_failure(exc: BaseException) -> str:
    """What went wrong on the wire, in our words (a library's exception text is not for users)."""
    text = str(exc)
    if isinstance(exc, requests.Timeout | TimeoutError) or "timed out" in text:
        return "the server stopped answering (timed out)"
    if "Connection refused" in text or "Failed to establish a new connection" in text:
        return "the server refused the connection (it is down or moved)"
    if isinstance(exc, requests.exceptions.ChunkedEncodingError | urllib3.exceptions.ProtocolError) or (
        "IncompleteRead" in text or "Connection broken" in text or "reset by peer" in text
    ):
        return "the connection broke in the middle of the transfer"
    if "Name or service not known" in text or "getaddrinfo" in text:
        return "the server's name does not resolve"
    return "the connection failed"


def adapter_retry(policy: RetryPolicy) -> BoundedRetry:
    """The adapter's retries for ``policy``: every method (LFS batch and upload requests are idempotent)."""
    counts = dict.fromkeys(("total", "connect", "read", "status", "other"), policy.attempts - 1)
    return BoundedRetry(
        **counts,
        allowed_methods=None,
        status_forcelist=RETRY_STATUSES,
        backoff_factor=policy.base_delay,
        backoff_max=policy.max_delay,
        raise_on_status=False,  # the last answer comes back, and check_status names it
        budget=policy.total_seconds,
    )


def gave_up(what: str, exc: requests.RequestException, policy: RetryPolicy) -> TransportError:
    """The error for a request that failed after the adapter's retries (or could not be made at all)."""
    if isinstance(exc, NETWORK_ERRORS):
        reason = network_failure(exc)
        return TransportError(f"{what} failed after {policy.attempts} attempt(s): {reason}", hint=_OVERLOADED)
    detail = f"{type(exc).__name__}: {redact(str(exc))[:200]}"
    # A malformed URL or similar: retrying cannot help. Never chained: the cause may hold a token.
    return TransportError(f"{what} failed: {detail}")


def check_status(response: requests.Response, what: str, server: str, *, authed: bool = True) -> None:
    """Raise the error an HTTP status means: AuthError, NotFoundError or TransportError."""
    code = response.status_code
    if code in (401, 403):
        refused = "refused the credentials" if authed else "needs credentials"
        if server in what:  # name the server once
            message = f"{what}: the server {refused} ({code})"
        else:
            message = f"the LFS server at {server} {refused} ({code}) for {what}"
        raise AuthError(
            message,
            hint=f"set {constants.ENV_TOKEN}, add the host to ~/.netrc, or configure a git credential"
            " helper for it",
        )
    if code in RETRY_STATUSES:  # the adapter retried as long as the policy allows
        retries = getattr(response.raw, "retries", None)
        tried = len(retries.history) + 1 if retries is not None else 1
        detail = f"HTTP {code} {server_message(response)}".strip()
        raise TransportError(f"{what} failed after {tried} attempt(s): {detail}", hint=_OVERLOADED)
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
    """A file handle that reports bytes read to a progress reporter; ``len`` sets Content-Length.

    ``tell`` and ``seek`` let urllib3 rewind the body when it retries an upload (progress goes back too).
    """

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

    def tell(self) -> int:
        return self._handle.tell()

    def seek(self, offset: int, whence: int = 0) -> int:
        before = self._handle.tell()
        after = self._handle.seek(offset, whence)
        self._on_read(after - before)
        return after


class LargeBlockAdapter(requests.adapters.HTTPAdapter):
    """Uploads send the body in CHUNK_SIZE blocks instead of http.client's 16 KiB (fewer syscalls)."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("blocksize", constants.CHUNK_SIZE)
        super().init_poolmanager(*args, **kwargs)


def plain_body(response: requests.Response) -> http.client.HTTPResponse | None:
    """The http.client response under ``response``, to read its body directly; None when its body
    must go through urllib3 (a ``Content-Encoding`` to undo, urllib3 has read part of it, another stack).

    http.client undoes the chunked framing, stops at the Content-Length and raises ``IncompleteRead`` for a
    broken chunked body; a body cut short of its Content-Length shows as ``length`` left over at the end
    (see ``BodyReader.finish``).
    """
    raw = response.raw
    body = getattr(raw, "_fp", None)
    encoding = response.headers.get("Content-Encoding", "").strip().lower()
    if not isinstance(body, http.client.HTTPResponse) or encoding not in ("", "identity"):
        return None
    if getattr(raw, "_fp_bytes_read", None) != 0:
        return None
    return body


class BodyReader:
    """Reads a response body straight from http.client: what has arrived, up to a limit, per call.

    ``read(limit)`` returns the next bytes (at most ``size``); empty bytes are the end of the body. Errors
    of a broken connection (``STREAM_ERRORS``) propagate to the caller after the bytes that came before
    them: a resumed download starts where they end. Reading into one reused buffer instead was measured
    and dropped: on this project's build machine it doubled a download's system time in most runs.
    """

    def __init__(self, response: requests.Response, size: int = constants.CHUNK_SIZE) -> None:
        self._response = response
        self._size = size
        self._body = plain_body(response)

    def read(self, limit: int) -> bytes:
        limit = min(limit, self._size)
        if self._body is None:  # through urllib3, which decodes
            # read1 hands over what has arrived, so bytes before a broken connection are kept for resume.
            return self._response.raw.read1(limit, decode_content=True)
        return self._body.read1(limit)  # http.client undoes chunked framing; no urllib3 layers per chunk

    def finish(self) -> None:
        """At the end of the body: a Content-Length not reached is a broken connection; else the
        connection goes back to the pool, as urllib3 does once it has read a whole body."""
        body = self._body
        if body is None:
            return
        if body.length:  # http.client leaves what the Content-Length promised and never came
            raise http.client.IncompleteRead(b"", body.length)
        if body.length == 0 and not body.isclosed():
            body.close()  # read1 leaves a body read to its Content-Length open; the socket stays urllib3's
        if body.isclosed():
            self._response.raw.release_conn()


def new_session(jobs: int, policy: RetryPolicy) -> requests.Session:
    """A session whose adapter retries as ``policy`` says and pools one connection per worker thread."""
    session = requests.Session()
    adapter = LargeBlockAdapter(pool_connections=4, pool_maxsize=jobs, max_retries=adapter_retry(policy))
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def timeout() -> tuple[float, float]:
    return (constants.CONNECT_TIMEOUT, constants.READ_TIMEOUT)
