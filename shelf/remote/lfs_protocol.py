"""The Git LFS batch protocol as pure code: values, the request, the answer and its errors.

Nothing here does I/O or imports ``requests``: the HTTP client (``shelf.remote.lfs_http``) sends what
``batch_request`` builds and hands the JSON it gets back to ``check_batch_answer`` and
``parse_batch_answer``; the local-objects reader and the installer use the same values. An object is a
``registry_index.pointer.LfsPointer`` (``LfsObject`` here): one value from the pointer file to the store.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from registry_index.pointer import LfsPointer
from shelf import constants
from shelf.errors import AuthError, ConfigError, NotFoundError, ShelfError, TransportError
from shelf.redaction import redact

LfsObject = LfsPointer
LFS_MEDIA_TYPE = "application/vnd.git-lfs+json"
EXPIRY_MARGIN = 5.0  # seconds: an action this close to expiring is treated as expired (as git-lfs does)
REBATCH_LIMIT = 3  # how often one object may be re-batched because its action expired
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
OPERATIONS = frozenset({"download", "upload"})


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


def safe_url(url: str) -> str:
    """``url`` without user info, query or fragment: fit for messages."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def batch_request(operation: str, objects: Sequence[LfsObject]) -> dict[str, Any]:
    """The body of ``POST <endpoint>/objects/batch`` for ``objects`` (basic transfers, sha256)."""
    if operation not in OPERATIONS:
        raise ConfigError(f"unknown LFS operation {operation!r}", hint="use 'download' or 'upload'")
    return {
        "operation": operation,
        "transfers": ["basic"],
        "objects": [{"oid": o.oid, "size": o.size} for o in objects],
        "hash_algo": "sha256",
    }


def check_batch_answer(data: Any, what: str) -> dict[str, Any]:
    """``data`` if it is a batch answer we can use: a list of objects, the basic transfer."""
    if not isinstance(data, dict) or not isinstance(data.get("objects"), list):
        raise TransportError(f"{what}: the answer has no list of objects")
    if data.get("transfer", "basic") != "basic":
        raise TransportError(f"{what}: the server chose the unsupported transfer {data['transfer']!r}")
    return data


def parse_batch_answer(
    data: Mapping[str, Any], asked: Sequence[LfsObject], operation: str, where: str, now: float
) -> list[ObjectAction]:
    """The server's answer as one ``ObjectAction`` per object asked, in order; failures as one error.

    ``where`` names the server in messages; ``now`` is the client's clock (action expiry is kept on it).
    """
    answers: dict[str, Mapping[str, Action]] = {}
    failures: list[tuple[str, int, str]] = []
    for item in data["objects"]:
        try:
            oid = str(item.get("oid", ""))
            if item.get("error"):
                error = item["error"]
                failures.append((oid, int(error.get("code", 0)), redact(str(error.get("message", "")))))
            else:
                answers[oid] = parse_actions(item.get("actions") or {}, now)
        except (AttributeError, TypeError, ValueError) as exc:
            raise TransportError(f"the LFS server at {where} sent a malformed batch answer: {exc}") from None
    answered = answers.keys() | {oid for oid, _, _ in failures}
    failures += [(o.oid, 0, "the server did not answer for it") for o in asked if o.oid not in answered]
    if failures:
        raise batch_error(failures, operation, where)
    # Sizes and oids come from what we asked for, never from the server.
    return [ObjectAction(o, answers[o.oid]) for o in asked]


def batch_error(failures: list[tuple[str, int, str]], operation: str, where: str) -> ShelfError:
    """One error for the objects the server refused: its kind from their codes (404/410, 401/403, other)."""
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


def parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    import email.utils  # an HTTP date here is rare; every install imports this module

    with contextlib.suppress(TypeError, ValueError):
        when = email.utils.parsedate_to_datetime(value)
        return max(0.0, when.timestamp() - time.time())
    return None


def parse_expiry(raw: Mapping[str, Any], now: float) -> float | None:
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


def parse_actions(raw_actions: Mapping[str, Any], now: float) -> dict[str, Action]:
    return {
        name: Action(
            str(raw["href"]),
            {str(k): str(v) for k, v in (raw.get("header") or {}).items()},
            parse_expiry(raw, now),
        )
        for name, raw in raw_actions.items()
        if isinstance(raw, dict) and raw.get("href")
    }


def unique(objects: Iterable[LfsObject]) -> list[LfsObject]:
    return list(dict.fromkeys(objects))


def combine(errors: list[tuple[str, ShelfError]], total: int) -> ShelfError:
    """One error for many failed objects: the first one's, in full, and how many more failed."""
    if len(errors) == 1:
        return errors[0][1]
    first = errors[0][1]
    more = len(errors) - 1
    return type(first)(f"{first.message} (and {more} more of the {total} objects failed)", hint=first.hint)
