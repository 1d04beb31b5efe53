"""What a shelf's blobs travel through: the ``Transport`` protocol, and ``transport_for`` choosing one.

``install``, ``publish`` and ``api`` type against ``Transport``; ``LfsClient`` (HTTP) and
``LocalLfsObjects`` (a local path) implement it. Importing this module imports neither: ``transport_for``
imports the one it returns.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from shelf.errors import ConfigError
from shelf.remote.url import ShelfURL

if TYPE_CHECKING:  # the protocol's values; a warm install, which moves no blob, never imports them
    from collections.abc import Sequence

    from shelf.api import Shelf
    from shelf.lockfile import LockedComponent
    from shelf.remote.lfs_protocol import DownloadReport, LfsObject, UploadReport
    from shelf.store import BlobStore


class Transport(Protocol):
    """Moves LFS objects between a shelf and the blob store."""

    def download(self, objects: Iterable[LfsObject], store: BlobStore) -> DownloadReport:
        """Bring every object the store lacks into it, verified."""
        ...

    def upload(self, objects: Iterable[tuple[LfsObject, Path]], *, verified: bool = False) -> UploadReport:
        """Send objects from files; the ones the shelf already has are skipped.

        ``verified``: the caller vouches that each file holds its object's bytes, so none is hashed first.
        """
        ...


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
        from shelf.remote.lfs_protocol import safe_url

        raise ConfigError(
            f"cannot find the LFS server for the remote {safe_url(remote_url)!r}",
            hint="use an http(s), ssh or git:// URL or a local path, or set lfs.url in .lfsconfig",
        ) from e


def transport_for(remote_url: str, lfs_url: str | None = None, **options: Any) -> Transport:
    """The LFS transport for a shelf: an ``LfsClient``, or ``LocalLfsObjects`` for a local path.

    Credentials are looked up for the endpoint (see ``shelf.credentials``) unless ``auth`` is given.
    """
    endpoint = endpoint_for(remote_url, lfs_url)
    if endpoint is None:
        from shelf.remote.lfs_local import LocalLfsObjects

        local = lfs_url if lfs_url and is_local(lfs_url) else remote_url
        return LocalLfsObjects(local_path(local), progress=options.get("progress"))
    from shelf.credentials import auth_for
    from shelf.remote.lfs_http import LfsClient

    if "auth" not in options:
        options["auth"] = auth_for(endpoint)
    return LfsClient(endpoint, **options)


def warm_up_in_background() -> None:
    """Import the HTTP client and the framework checks, and build the manifest validator, on a side thread.

    Used before a shelf's first mirror: its blobs are most likely missing too, and the first fetch spends
    a few hundred milliseconds waiting for git, time in which this work (as long again) costs nothing.
    """
    import threading

    def work() -> None:
        import shelf.remote.lfs_http  # noqa: F401
        from registry_index.manifest import validate_manifest

        validate_manifest({})  # builds and caches the validator; the problems found are not wanted
        from shelf.frameworks import load_checks

        load_checks()  # a new cache has no framework verdicts yet (the fetch still leaves time for these)

    threading.Thread(target=work, name="cclm-shelf-warm-up", daemon=True).start()


class LazyTransports(dict):
    """Transports opened only for the shelves that actually have to send something."""

    def __init__(self, shelf: Shelf, components: Sequence[LockedComponent]) -> None:
        super().__init__()
        self._shelf = shelf
        self._components = {c.source: c for c in components}

    def get(self, key, default=None):
        if key not in self and key in self._components:
            self[key] = self._shelf.transports([self._components[key]])[key]
        return super().get(key, default)
