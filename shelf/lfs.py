"""Git LFS transport: the batch API over HTTP(S), and a shelf's objects on a local path.

``LfsClient`` speaks the Git LFS batch API (``POST <endpoint>/objects/batch``, basic transfers) with
``requests``: one batch request for all objects, parallel streaming transfers, downloads hashed while they
stream into the ``BlobStore`` (nothing unverified ever enters it), resume of partial downloads with
``Range``, and retries with exponential backoff that honour ``Retry-After`` within a bounded total time.

``LocalLfsObjects`` offers the same ``download``/``upload`` for a shelf on a local path, whose objects
live in ``<repo>/lfs/objects/<oid[0:2]>/<oid[2:4]>/<oid>``: where the real git-lfs client puts them
when it pushes to a local path, so both tools share one folder.

No message built here contains a credential: URLs are shown without query strings or user info, and
server text goes through ``shelf.redaction.redact``.
"""

from __future__ import annotations

import contextlib
import email.utils
import json
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO, TypeVar
from urllib.parse import urlsplit, urlunsplit

import requests
import urllib3
from requests.auth import AuthBase

from registry_index.layout import lfs_object_path
from shelf import constants
from shelf.credentials import auth_for
from shelf.errors import (
    AuthError,
    ConfigError,
    IntegrityError,
    NotFoundError,
    OfflineError,
    ShelfError,
    StoreError,
    TransportError,
)
from shelf.fsutil import atomic_file, copy_hashing
from shelf.progress import NullProgress, Progress
from shelf.redaction import redact
from shelf.remote.url import ShelfURL
from shelf.shelf_objects import is_intact, mark_verified
from shelf.store import BlobStore, BlobWriter, check_oid, hash_file

LFS_MEDIA_TYPE = "application/vnd.git-lfs+json"
EXPIRY_MARGIN = 5.0  # seconds: an action this close to expiring is treated as expired (as git-lfs does)
REBATCH_LIMIT = 3  # how often one object may be re-batched because its action expired
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
T = TypeVar("T")


# Values --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LfsObject:
    """An LFS object: its sha256 and size."""

    oid: str
    size: int

    def __post_init__(self) -> None:
        check_oid(self.oid)
        if not isinstance(self.size, int) or self.size < 0:
            raise IntegrityError(f"object {self.oid} has an invalid size {self.size!r}")


@dataclass(frozen=True)
class Action:
    """One step the server asks for (download, upload or verify)."""

    href: str
    header: Mapping[str, str] = field(default_factory=dict)
    expires_at: float | None = None  # on the client's clock

    def expired(self, now: float) -> bool:
        return self.expires_at is not None and now >= self.expires_at - EXPIRY_MARGIN


@dataclass(frozen=True)
class ObjectAction:
    """The server's answer for one object: its actions (none: nothing to do)."""

    obj: LfsObject
    actions: Mapping[str, Action] = field(default_factory=dict)

    @property
    def oid(self) -> str:
        return self.obj.oid


@dataclass(frozen=True)
class DownloadReport:
    downloaded: tuple[str, ...]
    skipped: tuple[str, ...]  # already in the store
    bytes_transferred: int


@dataclass(frozen=True)
class UploadReport:
    uploaded: tuple[str, ...]
    skipped: tuple[str, ...]  # the server already had them
    bytes_transferred: int


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry 429, 5xx and connection errors."""

    attempts: int = constants.RETRY_ATTEMPTS
    total_seconds: float = constants.RETRY_TOTAL_SECONDS
    base_delay: float = 0.5
    max_delay: float = 30.0

    def delay(self, attempt: int, retry_after: str | None) -> float:
        """Seconds to wait before attempt ``attempt + 1``; the server's Retry-After wins."""
        asked = _parse_retry_after(retry_after)
        if asked is not None:
            return asked
        return min(self.max_delay, self.base_delay * 2 ** (attempt - 1))


class _Retryable(Exception):
    """A failure worth another attempt (429, 5xx, a server ignoring a range)."""

    def __init__(self, reason: str, retry_after: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


_NETWORK_ERRORS = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError)
_STREAM_ERRORS = (urllib3.exceptions.HTTPError, ConnectionError, TimeoutError)


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


# URLs ----------------------------------------------------------------------------------------------------


def safe_url(url: str) -> str:
    """``url`` without user info, query or fragment: fit for messages."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def is_local(url: str) -> bool:
    """Whether a git remote is a path on this machine (a plain path or ``file://``)."""
    return ShelfURL.parse(url).is_local


def local_path(url: str) -> Path:
    """The folder a local remote names."""
    return ShelfURL.parse(url).local_path


def endpoint_for(remote_url: str, lfs_url: str | None = None) -> str | None:
    """The LFS endpoint for a git remote, by git-lfs's rules; None for a local remote (local objects).

    ``lfs_url`` (``lfs.url`` from ``.lfsconfig``) wins; see ``ShelfURL.lfs_endpoint`` for the rest.
    """
    if lfs_url:
        return None if is_local(lfs_url) else lfs_url.rstrip("/")
    if not remote_url.strip():
        raise ConfigError("the shelf URL is empty", hint="give a git URL or a path to a shelf")
    try:
        return ShelfURL.parse(remote_url).lfs_endpoint()
    except ConfigError as e:
        raise ConfigError(
            f"cannot find the LFS server for the remote {safe_url(remote_url)!r}",
            hint="use an http(s), ssh or git:// URL or a local path, or set lfs.url in .lfsconfig",
        ) from e


def _parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    with contextlib.suppress(TypeError, ValueError):
        when = email.utils.parsedate_to_datetime(value)
        return max(0.0, when.timestamp() - time.time())
    return None


def _parse_expiry(raw: Mapping[str, Any], now: float) -> float | None:
    """When an action expires, on the client's clock; ``expires_in`` wins over ``expires_at``."""
    expires_in = raw.get("expires_in")
    if isinstance(expires_in, int | float) and expires_in != 0:
        return now + float(expires_in)
    expires_at = raw.get("expires_at")
    if isinstance(expires_at, str) and expires_at and not expires_at.startswith("0001-01-01"):
        with contextlib.suppress(ValueError):
            # The server's clock is absolute; translate it to a delay from ``now`` on our clock.
            return now + (datetime.fromisoformat(expires_at).timestamp() - time.time())
    return None


def _parse_actions(raw_actions: Mapping[str, Any], now: float) -> dict[str, Action]:
    return {
        name: Action(
            str(raw["href"]),
            {str(k): str(v) for k, v in (raw.get("header") or {}).items()},
            _parse_expiry(raw, now),
        )
        for name, raw in raw_actions.items()
        if isinstance(raw, dict) and raw.get("href")
    }


def _unique(objects: Iterable[LfsObject]) -> list[LfsObject]:
    return list(dict.fromkeys(objects))


def _server_message(response: requests.Response) -> str:
    try:
        message = str(response.json().get("message", ""))
    except (ValueError, AttributeError):
        message = response.text[:200]
    return redact(message.strip()[:200])


def _check_local_file(obj: LfsObject, path: Path) -> None:
    """An object about to be uploaded must be exactly the bytes its oid names."""
    if not path.is_file():
        raise NotFoundError(f"cannot upload object {obj.oid}: {path} is not a file")
    actual, size = hash_file(path)
    if size != obj.size or actual != obj.oid:
        raise IntegrityError(
            f"{path} does not match object {obj.oid} ({obj.size} bytes):"
            f" it has sha256 {actual} and {size} bytes",
            hint="the file changed after it was hashed; hash it again before publishing",
        )


def _combine(errors: list[tuple[str, ShelfError]], total: int) -> ShelfError:
    """One error for many failed objects: the first one's, in full, and how many more failed."""
    if len(errors) == 1:
        return errors[0][1]
    first = errors[0][1]
    more = len(errors) - 1
    return type(first)(f"{first.message} (and {more} more of the {total} objects failed)", hint=first.hint)


class _CountingReader:
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


class _LargeBlockAdapter(requests.adapters.HTTPAdapter):
    """Uploads send the body in CHUNK_SIZE blocks instead of http.client's 16 KiB (fewer syscalls)."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("blocksize", constants.CHUNK_SIZE)
        super().init_poolmanager(*args, **kwargs)


# The HTTP client -----------------------------------------------------------------------------------------


class LfsClient:
    """A Git LFS batch API client for one endpoint (``.../repo.git/info/lfs``)."""

    def __init__(
        self,
        endpoint: str,
        *,
        auth: AuthBase | None = None,
        jobs: int | None = None,
        session: requests.Session | None = None,
        progress: Progress | None = None,
        retry: RetryPolicy | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.auth = auth
        self.jobs = max(1, jobs if jobs is not None else constants.jobs())
        self.session = session or self._new_session(self.jobs)
        self.progress: Progress = progress or NullProgress()
        self.retry = retry or RetryPolicy()
        self._clock = clock

    @staticmethod
    def _new_session(jobs: int) -> requests.Session:
        session = requests.Session()
        # One pooled connection per worker thread, so parallel transfers do not reconnect each time.
        adapter = _LargeBlockAdapter(pool_connections=4, pool_maxsize=jobs)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        return session

    def __repr__(self) -> str:
        return f"LfsClient({safe_url(self.endpoint)!r}, jobs={self.jobs})"

    # Requests with retries and error translation --------------------------------------------------------

    def _with_retries(self, what: str, attempt: Callable[[], T]) -> T:
        started = time.monotonic()
        for number in range(1, self.retry.attempts + 1):
            try:
                return attempt()
            except _Retryable as exc:
                reason, retry_after = exc.reason, exc.retry_after
            except (*_NETWORK_ERRORS, *_STREAM_ERRORS) as exc:
                reason, retry_after = network_failure(exc), None
            except requests.RequestException as exc:
                # A malformed URL or similar: retrying cannot help. Not chained: the cause may hold a token.
                detail = redact(str(exc))[:200]
                raise TransportError(f"{what} failed: {type(exc).__name__}: {detail}") from None
            delay = self.retry.delay(number, retry_after)
            if number == self.retry.attempts or time.monotonic() - started + delay > self.retry.total_seconds:
                break
            time.sleep(delay)
        raise TransportError(
            f"{what} failed after {number} attempt(s): {reason}",
            hint="the server is unreachable or overloaded; try again later",
        )

    def _name_of(self, oid: str) -> str:
        """``component/item/file`` when the caller labelled the object, else ``object <oid>``."""
        label = getattr(self.progress, "label", None)
        found = label(oid) if label is not None else None
        return found or f"object {oid}"

    def _check_status(self, response: requests.Response, what: str) -> None:
        code = response.status_code
        if code in (401, 403):
            refused = "refused the credentials" if self.auth is not None else "needs credentials"
            raise AuthError(
                f"the LFS server at {safe_url(self.endpoint)} {refused} ({code}) for {what}",
                hint=f"set {constants.ENV_TOKEN}, add the host to ~/.netrc, or configure a git credential"
                " helper for it",
            )
        if code in RETRY_STATUSES:
            raise _Retryable(
                f"HTTP {code} {_server_message(response)}".strip(), response.headers.get("Retry-After")
            )
        if code == 404:
            raise NotFoundError(f"{what}: the LFS server at {safe_url(self.endpoint)} answered 404 Not Found")
        if code >= 400:
            raise TransportError(f"{what}: HTTP {code} {_server_message(response)}".strip())

    def _auth_for(self, action: Action) -> AuthBase | None:
        """Our credentials go with an action only to our own server, and only if it brings none."""
        if any(name.lower() == "authorization" for name in action.header):
            return None
        ours, theirs = urlsplit(self.endpoint), urlsplit(action.href)
        same = (ours.scheme, ours.hostname, ours.port) == (theirs.scheme, theirs.hostname, theirs.port)
        return self.auth if same else None

    def _timeout(self) -> tuple[float, float]:
        return (constants.CONNECT_TIMEOUT, constants.READ_TIMEOUT)

    # Batch ------------------------------------------------------------------------------------------------

    def batch(self, operation: str, objects: Sequence[LfsObject]) -> list[ObjectAction]:
        """Ask the server what to do for ``objects``; answers come in the same order.

        One request carries up to ``constants.BATCH_SIZE`` objects (git-lfs's own limit, which servers
        expect), so a typical install is one request and a huge one a few.
        """
        if operation not in {"download", "upload"}:
            raise ConfigError(f"unknown LFS operation {operation!r}", hint="use 'download' or 'upload'")
        objects = _unique(objects)
        answers: list[ObjectAction] = []
        for start in range(0, len(objects), constants.BATCH_SIZE):
            answers += self._batch_once(operation, objects[start : start + constants.BATCH_SIZE])
        return answers

    def _batch_once(self, operation: str, objects: Sequence[LfsObject]) -> list[ObjectAction]:
        body = {
            "operation": operation,
            "transfers": ["basic"],
            "objects": [{"oid": o.oid, "size": o.size} for o in objects],
            "hash_algo": "sha256",
        }
        what = f"LFS batch {operation} at {safe_url(self.endpoint)}"
        try:
            data = self._with_retries(what, lambda: self._post_batch(body, what))
        except NotFoundError as exc:
            # A 404 for the whole batch: no such repository, or (giftless) none of the objects exists.
            oids = ", ".join(o.oid for o in objects)
            raise NotFoundError(
                f"the LFS server at {safe_url(self.endpoint)} has none of the {len(objects)} object(s)"
                f" asked for ({oids}), or no such repository",
                hint="check the shelf URL; if it is right, its publisher must upload these objects again",
            ) from exc
        return self._parse_batch(data, objects, operation)

    def _post_batch(self, body: dict[str, Any], what: str) -> dict[str, Any]:
        headers = {"Accept": LFS_MEDIA_TYPE, "Content-Type": LFS_MEDIA_TYPE}
        response = self.session.post(
            f"{self.endpoint}/objects/batch",
            data=json.dumps(body),
            headers=headers,
            auth=self.auth,
            timeout=self._timeout(),
        )
        with response:
            self._check_status(response, what)
            try:
                data = response.json()
            except ValueError as exc:
                raise TransportError(f"{what}: the answer is not JSON") from exc
        if not isinstance(data, dict) or not isinstance(data.get("objects"), list):
            raise TransportError(f"{what}: the answer has no list of objects")
        if data.get("transfer", "basic") != "basic":
            raise TransportError(f"{what}: the server chose the unsupported transfer {data['transfer']!r}")
        return data

    def _parse_batch(
        self, data: dict[str, Any], asked: list[LfsObject], operation: str
    ) -> list[ObjectAction]:
        now = self._clock()
        answers: dict[str, Mapping[str, Action]] = {}
        failures: list[tuple[str, int, str]] = []
        for item in data["objects"]:
            try:
                oid = str(item.get("oid", ""))
                if item.get("error"):
                    error = item["error"]
                    failures.append((oid, int(error.get("code", 0)), redact(str(error.get("message", "")))))
                else:
                    answers[oid] = _parse_actions(item.get("actions") or {}, now)
            except (AttributeError, TypeError, ValueError) as exc:
                raise TransportError(
                    f"the LFS server at {safe_url(self.endpoint)} sent a malformed batch answer: {exc}"
                ) from None
        answered = answers.keys() | {oid for oid, _, _ in failures}
        failures += [(o.oid, 0, "the server did not answer for it") for o in asked if o.oid not in answered]
        if failures:
            raise self._batch_error(failures, operation)
        # Sizes and oids come from what we asked for, never from the server.
        return [ObjectAction(o, answers[o.oid]) for o in asked]

    def _batch_error(self, failures: list[tuple[str, int, str]], operation: str) -> ShelfError:
        where = safe_url(self.endpoint)
        oids = ", ".join(oid for oid, _, _ in failures)
        codes = {code for _, code, _ in failures}
        if codes <= {404, 410}:
            return NotFoundError(
                f"the LFS server at {where} does not have {len(failures)} object(s): {oids}",
                hint="the shelf may be incomplete: its publisher must upload these objects again",
            )
        if codes & {401, 403}:
            return AuthError(
                f"the LFS server at {where} refused {operation} of: {oids}",
                hint=f"set {constants.ENV_TOKEN} to a token that may {operation} these objects",
            )
        details = "; ".join(f"{oid}: {code} {message}".strip() for oid, code, message in failures)
        return TransportError(
            f"the LFS server at {where} refused {operation} of {len(failures)} object(s): {details}"
        )

    def _fresh(self, answer: ObjectAction, operation: str, name: str) -> ObjectAction:
        """``answer`` again, re-batched if its ``name`` action has expired."""
        for _ in range(REBATCH_LIMIT):
            action = answer.actions.get(name)
            if action is None or not action.expired(self._clock()):
                return answer
            answer = self.batch(operation, [answer.obj])[0]
        raise TransportError(
            f"the LFS server at {safe_url(self.endpoint)} keeps giving expired actions for {answer.oid}"
        )

    # Parallel work ----------------------------------------------------------------------------------------

    def _in_parallel(self, work: Callable[[ObjectAction], int], answers: list[ObjectAction]) -> int:
        """Run ``work`` for each answer on ``jobs`` threads; total its byte counts; raise what failed."""
        errors: list[tuple[str, ShelfError]] = []
        total = 0
        lock = threading.Lock()

        def run(answer: ObjectAction) -> None:
            nonlocal total
            try:
                done = work(answer)
            except ShelfError as exc:
                with lock:
                    errors.append((answer.oid, exc))
                return
            with lock:
                total += done

        with ThreadPoolExecutor(max_workers=min(self.jobs, len(answers))) as pool:
            list(pool.map(run, answers))
        if errors:
            raise _combine(sorted(errors, key=lambda e: e[0]), len(answers))
        return total

    # Download ---------------------------------------------------------------------------------------------

    def download(self, objects: Iterable[LfsObject], store: BlobStore) -> DownloadReport:
        """Bring every object the store lacks into it, verified; no request at all when none is missing."""
        wanted = _unique(objects)
        missing = [o for o in wanted if not store.has(o.oid, o.size)]
        skipped = tuple(o.oid for o in wanted if o not in missing)
        if not missing:
            return DownloadReport((), skipped, 0)
        if constants.offline():
            raise OfflineError(
                f"{len(missing)} object(s) are not in the local store and offline mode is on",
                hint=f"unset {constants.ENV_OFFLINE} to download them",
            )
        answers = self.batch("download", missing)
        moved = self._in_parallel(lambda answer: self._download_one(answer, store), answers)
        return DownloadReport(tuple(o.oid for o in missing), skipped, moved)

    def _download_one(self, answer: ObjectAction, store: BlobStore) -> int:
        """Download one object; a resumed partial file that fails verification gets one clean retry.

        The prefix an interrupted run left is re-hashed but cannot be checked until the object is whole.
        If the whole does not verify, the fault may lie in that old prefix (the store has discarded it by
        then), so the object is fetched once more from byte 0; a second mismatch is the server's.
        """
        resumed = store.partial_size(answer.oid) > 0
        try:
            return self._download_into(answer, store)
        except IntegrityError:
            if not resumed:
                raise
        return self._download_into(answer, store)

    def _download_into(self, answer: ObjectAction, store: BlobStore) -> int:
        obj = answer.obj
        try:
            with store.writer(obj.oid, obj.size) as writer:
                if writer.complete:
                    return 0
                self.progress.start(obj.oid, obj.size, initial=writer.offset)
                try:
                    return self._fetch(answer, writer)
                finally:
                    self.progress.finish(obj.oid)
        except OSError as exc:
            raise StoreError(f"cannot write object {obj.oid} into {store.root}: {exc.strerror}") from exc

    def _fetch(self, answer: ObjectAction, writer: BlobWriter) -> int:
        """Stream one object into ``writer``, resuming after errors; return the bytes received."""
        what = f"downloading {self._name_of(answer.oid)} from the LFS server at {safe_url(self.endpoint)}"
        relinked = False

        def attempt() -> None:
            nonlocal answer, relinked
            answer = self._fresh(answer, "download", "download")
            action = answer.actions.get("download")
            if action is None:
                raise TransportError(f"{what}: the LFS server gave no download action")
            try:
                self._get_into(action, writer, what)
            except AuthError:
                # The batch accepted us, so a refused link is most likely a signed URL that went stale:
                # ask for a fresh one once. A second refusal is a real one.
                if relinked:
                    raise
                relinked = True
                answer = self.batch("download", [answer.obj])[0]
                raise _Retryable(
                    "the download link was refused; asked the server for a fresh one", "0"
                ) from None

        self._with_retries(what, attempt)
        return writer.written

    def _get_into(self, action: Action, writer: BlobWriter, what: str) -> None:
        """One GET: from ``writer.offset`` if the server honours the range, else from byte 0."""
        if writer.offset == writer.size:
            return  # a finished partial from an earlier run: the commit verifies it
        headers = dict(action.header)
        if writer.offset:
            headers["Range"] = f"bytes={writer.offset}-"
        response = self.session.get(
            action.href, headers=headers, auth=self._auth_for(action), stream=True, timeout=self._timeout()
        )
        with response:
            if response.status_code == 416:
                writer.restart()
                raise _Retryable("the server refused the range; starting over")
            self._check_status(response, what)
            self._align(response, writer)
            self._stream(response, writer)

    @staticmethod
    def _align(response: requests.Response, writer: BlobWriter) -> None:
        """Match the partial file to what the server sends: a 206 from our offset, or the whole body."""
        if response.status_code == 206:
            match = re.match(r"bytes (\d+)-", response.headers.get("Content-Range", ""))
            if match and int(match.group(1)) == writer.offset:
                return
            writer.restart()
            raise _Retryable("the server answered a different range; starting over")
        if writer.offset:
            writer.restart()  # the server ignored Range and sends everything

    def _stream(self, response: requests.Response, writer: BlobWriter) -> None:
        """Copy the body; read at most one byte past the declared size, to catch too-long bodies."""
        while True:
            want = min(constants.CHUNK_SIZE, writer.size - writer.offset + 1)
            # read1 hands over what has arrived, so bytes before a broken connection are kept for resume.
            chunk = response.raw.read1(want, decode_content=True)
            if not chunk:
                return
            writer.write(chunk)
            self.progress.advance(writer.oid, len(chunk))

    # Upload -----------------------------------------------------------------------------------------------

    def upload(self, objects: Iterable[tuple[LfsObject, Path]]) -> UploadReport:
        """Upload objects from files; the ones the server already has are skipped."""
        files = {obj: Path(path) for obj, path in objects}
        if not files:
            return UploadReport((), (), 0)
        if constants.offline():
            raise OfflineError(
                "uploading needs the network and offline mode is on", hint=f"unset {constants.ENV_OFFLINE}"
            )
        for obj, path in files.items():
            _check_local_file(obj, path)
        answers = self.batch("upload", list(files))
        todo = [a for a in answers if "upload" in a.actions]
        skipped = tuple(a.oid for a in answers if "upload" not in a.actions)
        moved = (
            self._in_parallel(lambda answer: self._upload_one(answer, files[answer.obj]), todo) if todo else 0
        )
        return UploadReport(tuple(a.oid for a in todo), skipped, moved)

    def _upload_one(self, answer: ObjectAction, path: Path) -> int:
        obj = answer.obj
        what = f"uploading {self._name_of(obj.oid)} to the LFS server at {safe_url(self.endpoint)}"

        def attempt() -> None:
            nonlocal answer
            answer = self._fresh(answer, "upload", "upload")
            self._put(answer.actions["upload"], obj, path, what)

        self.progress.start(obj.oid, obj.size)
        try:
            self._with_retries(what, attempt)
        finally:
            self.progress.finish(obj.oid)
        verify = answer.actions.get("verify")
        if verify is not None:
            self._with_retries(f"verification of object {obj.oid}", lambda: self._verify(verify, obj))
        return obj.size

    def _put(self, action: Action, obj: LfsObject, path: Path, what: str) -> None:
        headers = {"Content-Type": "application/octet-stream", **action.header}
        with open(path, "rb") as handle:
            body = _CountingReader(handle, obj.size, lambda n: self.progress.advance(obj.oid, n))
            response = self.session.put(
                action.href, data=body, headers=headers, auth=self._auth_for(action), timeout=self._timeout()
            )
        with response:
            self._check_status(response, what)

    def _verify(self, action: Action, obj: LfsObject) -> None:
        headers = {"Accept": LFS_MEDIA_TYPE, "Content-Type": LFS_MEDIA_TYPE, **action.header}
        response = self.session.post(
            action.href,
            data=json.dumps({"oid": obj.oid, "size": obj.size}),
            headers=headers,
            auth=self._auth_for(action),
            timeout=self._timeout(),
        )
        with response:
            if response.status_code in (404, 422):
                raise IntegrityError(
                    f"the LFS server at {safe_url(self.endpoint)} could not verify object {obj.oid}"
                    " after upload",
                    hint="upload it again",
                )
            self._check_status(response, f"verification of object {obj.oid}")


# Objects on a local path ---------------------------------------------------------------------------------


class LocalLfsObjects:
    """The LFS objects of a shelf on this machine: ``<repo>/lfs/objects/<aa>/<bb>/<oid>``."""

    def __init__(self, repo_path: Path, *, progress: Progress | None = None) -> None:
        self.repo_path = Path(repo_path)
        self.objects_dir = self.repo_path / "lfs" / "objects"
        self.progress: Progress = progress or NullProgress()

    def __repr__(self) -> str:
        return f"LocalLfsObjects({str(self.repo_path)!r})"

    def object_path(self, oid: str) -> Path:
        return self.repo_path / lfs_object_path(check_oid(oid))

    def has(self, obj: LfsObject) -> bool:
        """There with the right bytes (damaged counts as absent: uploading it again restores it)."""
        return is_intact(self.repo_path, check_oid(obj.oid), obj.size)

    def download(self, objects: Iterable[LfsObject], store: BlobStore) -> DownloadReport:
        """Copy the objects the store lacks into it; each copy is hashed and verified on the way."""
        wanted = _unique(objects)
        missing = [o for o in wanted if not store.has(o.oid, o.size)]
        absent = [o.oid for o in missing if not self.object_path(o.oid).is_file()]
        if absent:
            raise NotFoundError(
                f"the shelf at {self.repo_path} does not have {len(absent)} object(s): {', '.join(absent)}",
                hint="the shelf may be incomplete: its publisher must push these objects again",
            )
        for obj in missing:
            self.progress.start(obj.oid, obj.size)
            store.add_file(self.object_path(obj.oid), obj.oid, obj.size)
            self.progress.advance(obj.oid, obj.size)
            self.progress.finish(obj.oid)
        skipped = tuple(o.oid for o in wanted if o not in missing)
        return DownloadReport(tuple(o.oid for o in missing), skipped, sum(o.size for o in missing))

    def upload(self, objects: Iterable[tuple[LfsObject, Path]]) -> UploadReport:
        """Copy objects into the shelf, verified, each appearing atomically under its final name."""
        uploaded, skipped, moved = [], [], 0
        for obj, path in {o: Path(p) for o, p in objects}.items():
            if self.has(obj):
                skipped.append(obj.oid)
                continue
            self.progress.start(obj.oid, obj.size)
            self._copy_in(obj, path)
            self.progress.advance(obj.oid, obj.size)
            self.progress.finish(obj.oid)
            uploaded.append(obj.oid)
            moved += obj.size
        return UploadReport(tuple(uploaded), tuple(skipped), moved)

    def _copy_in(self, obj: LfsObject, source: Path) -> None:
        if not source.is_file():
            raise NotFoundError(f"cannot upload object {obj.oid}: {source} is not a file")
        dest = self.object_path(obj.oid)
        dest.parent.mkdir(parents=True, exist_ok=True)
        with open(source, "rb") as src, atomic_file(dest) as dst:
            digest, size = copy_hashing(src, dst, limit=obj.size + 1)
            if size != obj.size or digest != obj.oid:
                raise IntegrityError(
                    f"{source} does not match object {obj.oid} ({obj.size} bytes)",
                    hint="the file changed after it was hashed; hash it again before publishing",
                )
        mark_verified(self.repo_path, obj.oid)


def transport_for(remote_url: str, lfs_url: str | None = None, **options: Any) -> LfsClient | LocalLfsObjects:
    """The LFS transport for a shelf: an ``LfsClient``, or ``LocalLfsObjects`` for a local path.

    Credentials are looked up for the endpoint (see ``shelf.credentials``) unless ``auth`` is given.
    """
    endpoint = endpoint_for(remote_url, lfs_url)
    if endpoint is None:
        local = lfs_url if lfs_url and is_local(lfs_url) else remote_url
        return LocalLfsObjects(local_path(local), progress=options.get("progress"))
    if "auth" not in options:
        options["auth"] = auth_for(endpoint)
    return LfsClient(endpoint, **options)
