"""The Git LFS batch API over HTTP(S), with ``requests``.

``LfsClient`` sends one batch request for all objects (``shelf.remote.lfs_protocol`` builds and reads it),
runs parallel streaming transfers, hashes downloads while they stream into the ``BlobStore`` (nothing
unverified ever enters it) and resumes partial downloads with ``Range``. Requests are retried by the
session's adapter (``shelf.remote.http``); ``_fetch`` is the one loop for what needs more than a resend.
No message built here contains a credential:
URLs are shown without query strings or user info, and server text goes through ``redact``.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import requests
from requests.auth import AuthBase

from shelf import constants
from shelf.errors import (
    AuthError,
    IntegrityError,
    NotFoundError,
    OfflineError,
    ShelfError,
    StoreError,
    TransportError,
)
from shelf.fsutil import hash_file
from shelf.progress import NullProgress, Progress
from shelf.remote.http import (
    NETWORK_ERRORS,
    STREAM_ERRORS,
    BodyReader,
    CountingReader,
    Retryable,
    RetryPolicy,
    check_status,
    gave_up,
    network_failure,
    new_session,
    timeout,
)
from shelf.remote.lfs_protocol import (
    LFS_MEDIA_TYPE,
    REBATCH_LIMIT,
    Action,
    DownloadReport,
    LfsObject,
    ObjectAction,
    UploadReport,
    batch_request,
    check_batch_answer,
    combine,
    parse_batch_answer,
    safe_url,
    unique,
)
from shelf.store import BlobStore, BlobWriter

T = TypeVar("T")


def _check_local_file(obj: LfsObject, path: Path, verified: bool = False) -> None:
    """An object about to be uploaded must be exactly the bytes its oid names (hashed unless ``verified``)."""
    if not path.is_file():
        raise NotFoundError(f"cannot upload object {obj.oid}: {path} is not a file")
    if verified:
        return
    actual, size = hash_file(path)
    if size != obj.size or actual != obj.oid:
        raise IntegrityError(
            f"{path} does not match object {obj.oid} ({obj.size} bytes):"
            f" it has sha256 {actual} and {size} bytes",
            hint="the file changed after it was hashed; hash it again before publishing",
        )


class _AsGiven(AuthBase):
    """Sends a request with the headers it has: no credentials added, not even from ~/.netrc."""

    def __call__(self, request: Any) -> Any:
        return request


_AS_GIVEN = _AsGiven()


# The client ---------------------------------------------------------------------------------------------


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
        self.retry = retry or RetryPolicy()
        self.progress: Progress = progress or NullProgress()
        self.session = session or new_session(self.jobs, self.retry)
        self._clock = clock

    def __repr__(self) -> str:
        return f"LfsClient({safe_url(self.endpoint)!r}, jobs={self.jobs})"

    def _name_of(self, oid: str) -> str:
        """``component/item/file`` when the caller labelled the object, else ``object <oid>``."""
        label = getattr(self.progress, "label", None)
        found = label(oid) if label is not None else None
        return found or f"object {oid}"

    def _request(self, method: str, url: str, what: str, **options: Any) -> requests.Response:
        """One request; the adapter retries it as ``self.retry`` says, and what is left is a ShelfError."""
        try:
            return self.session.request(method, url, timeout=timeout(), **options)
        except requests.RequestException as exc:
            raise gave_up(what, exc, self.retry) from None

    def _auth_for(self, action: Action) -> AuthBase | None:
        """Our credentials go with an action only to our own server, and only if it brings none.

        Otherwise the request goes exactly as the action says: ``_AS_GIVEN`` also keeps requests from
        putting ~/.netrc credentials over the action's own Authorization header (or sending them to
        another host, such as a bucket's signed URL).
        """
        if any(name.lower() == "authorization" for name in action.header):
            return _AS_GIVEN
        ours, theirs = urlsplit(self.endpoint), urlsplit(action.href)
        same = (ours.scheme, ours.hostname, ours.port) == (theirs.scheme, theirs.hostname, theirs.port)
        return self.auth if same else _AS_GIVEN

    # Batch ------------------------------------------------------------------------------------------------

    def batch(self, operation: str, objects: Sequence[LfsObject]) -> list[ObjectAction]:
        """Ask the server what to do for ``objects``; answers come in the same order.

        One request carries up to ``constants.BATCH_SIZE`` objects (git-lfs's own limit, which servers
        expect), so a typical install is one request and a huge one a few.
        """
        batch_request(operation, [])  # refuses an unknown operation before anything is sent
        objects = unique(objects)
        answers: list[ObjectAction] = []
        for start in range(0, len(objects), constants.BATCH_SIZE):
            answers += self._batch_once(operation, objects[start : start + constants.BATCH_SIZE])
        return answers

    def _batch_once(self, operation: str, objects: Sequence[LfsObject]) -> list[ObjectAction]:
        body = batch_request(operation, objects)
        what = f"LFS batch {operation} at {safe_url(self.endpoint)}"
        try:
            data = self._post_batch(body, what)
        except NotFoundError as exc:
            # A 404 for the whole batch: no such repository, or (giftless) none of the objects exists.
            oids = ", ".join(o.oid for o in objects)
            raise NotFoundError(
                f"the LFS server at {safe_url(self.endpoint)} has none of the {len(objects)} object(s)"
                f" asked for ({oids}), or no such repository",
                hint="check the shelf URL; if it is right, its publisher must upload these objects again",
            ) from exc
        return parse_batch_answer(data, objects, operation, safe_url(self.endpoint), self._clock())

    def _post_batch(self, body: dict[str, Any], what: str) -> dict[str, Any]:
        headers = {"Accept": LFS_MEDIA_TYPE, "Content-Type": LFS_MEDIA_TYPE}
        url = f"{self.endpoint}/objects/batch"
        response = self._request("POST", url, what, data=json.dumps(body), headers=headers, auth=self.auth)
        with response:
            check_status(response, what, safe_url(self.endpoint), authed=self.auth is not None)
            try:
                data = response.json()
            except ValueError as exc:
                raise TransportError(f"{what}: the answer is not JSON") from exc
        return check_batch_answer(data, what)

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
            raise combine(sorted(errors, key=lambda e: e[0]), len(answers))
        return total

    # Download ---------------------------------------------------------------------------------------------

    def download(self, objects: Iterable[LfsObject], store: BlobStore) -> DownloadReport:
        """Bring every object the store lacks into it, verified; no request at all when none is missing."""
        wanted = unique(objects)
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
        """Stream one object into ``writer``; return the bytes received.

        The one loop for what the adapter's retries cannot do: a body that breaks off is resumed from the
        bytes already written, an expired action is re-batched, and a refused link (most likely a signed
        URL gone stale: the batch accepted us) is asked for afresh once; a second refusal is a real one.
        """
        what = f"downloading {self._name_of(answer.oid)} from the LFS server at {safe_url(self.endpoint)}"
        started, relinked, reason = time.monotonic(), False, ""
        for attempt in range(1, self.retry.attempts + 1):
            answer = self._fresh(answer, "download", "download")
            action = answer.actions.get("download")
            if action is None:
                raise TransportError(f"{what}: the LFS server gave no download action")
            try:
                self._get_into(action, writer, what)
                return writer.written
            except AuthError:
                if relinked:
                    raise
                relinked, reason = True, "the download link was refused; asked the server for a fresh one"
                answer = self.batch("download", [answer.obj])[0]
                continue
            except Retryable as exc:
                reason = exc.reason
            delay = self.retry.delay(attempt, None)
            if (
                attempt == self.retry.attempts
                or time.monotonic() - started + delay > self.retry.total_seconds
            ):
                break
            time.sleep(delay)
        raise TransportError(
            f"{what} failed after {attempt} attempt(s): {reason}",
            hint="the server is unreachable or overloaded; try again later",
        )

    def _get_into(self, action: Action, writer: BlobWriter, what: str) -> None:
        """One GET: from ``writer.offset`` if the server honours the range, else from byte 0."""
        if writer.offset == writer.size:
            return  # a finished partial from an earlier run: the commit verifies it
        headers = dict(action.header)
        if writer.offset:
            headers["Range"] = f"bytes={writer.offset}-"
        auth = self._auth_for(action)
        response = self._request("GET", action.href, what, headers=headers, auth=auth, stream=True)
        with response:
            if response.status_code == 416:
                writer.restart()
                raise Retryable("the server refused the range; starting over")
            check_status(response, what, safe_url(self.endpoint), authed=self.auth is not None)
            self._align(response, writer)
            try:
                self._stream(response, writer)
            except (*NETWORK_ERRORS, *STREAM_ERRORS) as exc:  # resumed from writer.offset by _fetch
                raise Retryable(network_failure(exc)) from None

    @staticmethod
    def _align(response: requests.Response, writer: BlobWriter) -> None:
        """Match the partial file to what the server sends: a 206 from our offset, or the whole body."""
        if response.status_code == 206:
            match = re.match(r"bytes (\d+)-", response.headers.get("Content-Range", ""))
            if match and int(match.group(1)) == writer.offset:
                return
            writer.restart()
            raise Retryable("the server answered a different range; starting over")
        if writer.offset:
            writer.restart()  # the server ignored Range and sends everything

    def _stream(self, response: requests.Response, writer: BlobWriter) -> None:
        """Copy the body; read at most one byte past the declared size, to catch too-long bodies."""
        # A small object gets a buffer of its own size (plus the byte that catches a too-long body).
        body = BodyReader(response, min(constants.CHUNK_SIZE, writer.size - writer.offset + 1))
        while True:
            chunk = body.read(writer.size - writer.offset + 1)
            if not chunk:
                body.finish()
                return
            writer.write(chunk)
            self.progress.advance(writer.oid, len(chunk))

    # Upload -----------------------------------------------------------------------------------------------

    def upload(self, objects: Iterable[tuple[LfsObject, Path]], *, verified: bool = False) -> UploadReport:
        """Upload objects from files; the ones the server already has are skipped.

        Each file is hashed first, unless ``verified``: the caller vouches that every file holds exactly
        its object's bytes (publish uploads blobs of the verified store, which it has just revalidated).
        """
        files = {obj: Path(path) for obj, path in objects}
        if not files:
            return UploadReport((), (), 0)
        if constants.offline():
            raise OfflineError(
                "uploading needs the network and offline mode is on", hint=f"unset {constants.ENV_OFFLINE}"
            )
        for obj, path in files.items():
            _check_local_file(obj, path, verified)
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
        answer = self._fresh(answer, "upload", "upload")
        self.progress.start(obj.oid, obj.size)
        try:
            self._put(answer.actions["upload"], obj, path, what)  # the adapter retries, rewinding the file
        finally:
            self.progress.finish(obj.oid)
        verify = answer.actions.get("verify")
        if verify is not None:
            self._verify(verify, obj)
        return obj.size

    def _put(self, action: Action, obj: LfsObject, path: Path, what: str) -> None:
        headers = {"Content-Type": "application/octet-stream", **action.header}
        with open(path, "rb") as handle:
            body = CountingReader(handle, obj.size, lambda n: self.progress.advance(obj.oid, n))
            auth = self._auth_for(action)
            response = self._request("PUT", action.href, what, data=body, headers=headers, auth=auth)
        with response:
            check_status(response, what, safe_url(self.endpoint), authed=self.auth is not None)

    def _verify(self, action: Action, obj: LfsObject) -> None:
        headers = {"Accept": LFS_MEDIA_TYPE, "Content-Type": LFS_MEDIA_TYPE, **action.header}
        body = json.dumps({"oid": obj.oid, "size": obj.size})
        what = f"verification of object {obj.oid}"
        response = self._request(
            "POST", action.href, what, data=body, headers=headers, auth=self._auth_for(action)
        )
        with response:
            if response.status_code in (404, 422):
                raise IntegrityError(
                    f"the LFS server at {safe_url(self.endpoint)} could not verify object {obj.oid}"
                    " after upload",
                    hint="upload it again",
                )
            check_status(response, what, safe_url(self.endpoint), authed=self.auth is not None)
