"""Every error the package manager raises on purpose.

    ShelfError                      root: carries a message and an optional hint
    ├── ConfigError                 project file, options or environment are wrong
    ├── InvalidValueError           a name, version or requirement as given cannot be read
    ├── NotFoundError               a component, version, file or shelf does not exist
    ├── OfflineError                the network is needed but offline mode is on
    ├── TransportError              talking to a git remote or an LFS server failed
    │   ├── AuthError               401/403: credentials missing or refused
    │   └── GitError                a git command failed
    │       └── PushRejected        the shelf moved on (or a tag exists): nothing changed, retry
    ├── IntegrityError              bytes do not match their sha256 or size
    │   └── BundleError             a bundle is damaged, truncated, or not the project's lockfile
    ├── TrustError                  a signature is missing, by an untrusted key, or does not match
    ├── UnsafeContentError          a path, archive member or file would escape or run code
    ├── ResolutionError             no compatible set of components exists
    ├── LockfileError               the lockfile is missing, stale, corrupt or too new
    ├── PublishError                a publish was refused (immutable version, bad folder, ...)
    ├── StoreError                  the content-addressed store is broken or locked
    └── TargetError                 an install folder holds what cclm-shelf did not put there

Errors carry data and format themselves; only the CLI turns them into messages and exit codes.

Errors of ``registry_index`` and ``cclm_core`` are translated into this tree where they cross into it
(``translated()``, after httpx's ``map_exceptions``): a bad name, requirement or version is an
InvalidValueError, bytes that are not a pointer, index or manifest an IntegrityError, an index that cannot
be fetched a TransportError, an unsafe model an UnsafeContentError, components that do not fit their
embedder a ResolutionError. The original error is kept as ``__cause__``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from registry_index.errors import HintedError  # message + hint, shared with registry_index


class ShelfError(HintedError):
    """Root of every error raised on purpose by ``shelf``."""

    exit_code = 1


class ConfigError(ShelfError):
    exit_code = 2


class InvalidValueError(ShelfError):
    pass


class NotFoundError(ShelfError):
    pass


class OfflineError(ShelfError):
    pass


class TransportError(ShelfError):
    pass


class AuthError(TransportError):
    pass


class GitError(TransportError):
    pass


class PushRejected(GitError):
    """The remote refused an atomic update: the branch moved on or a tag already exists.

    ``reasons`` maps each refused ref to git's reason (``stale info``, ``fetch first``, ``already exists``).
    Nothing changed on the remote; the caller may refresh its mirror and retry.
    """

    def __init__(
        self, message: str, *, hint: str | None = None, reasons: dict[str, str] | None = None
    ) -> None:
        super().__init__(message, hint=hint)
        self.reasons = dict(reasons or {})


class TrustError(ShelfError):
    pass


class IntegrityError(ShelfError):
    pass


class BundleError(IntegrityError):
    pass


class UnsafeContentError(ShelfError):
    pass


class ResolutionError(ShelfError):
    pass


class LockfileError(ShelfError):
    pass


class PublishError(ShelfError):
    pass


class StoreError(ShelfError):
    pass


class TargetError(ShelfError):
    """An install folder holds something cclm-shelf did not install there."""


# Translation at the boundary --------------------------------------------------------------------------

# By module, then class name: neither package is imported here.
_FOREIGN: dict[str, dict[str, type[ShelfError]]] = {
    "registry_index.errors": {
        "RequirementError": InvalidValueError,
        "VersionError": InvalidValueError,
        "LayoutError": InvalidValueError,
        "PointerError": IntegrityError,
        "IndexFormatError": IntegrityError,
        "ManifestError": IntegrityError,
        "IndexFetchError": TransportError,
        "RegistryIndexError": ShelfError,
    },
    "cclm_core.errors": {
        "DataError": ConfigError,
        "FormatError": IntegrityError,
        "UnsafeModelError": UnsafeContentError,
        "IncompatibleComponentError": ResolutionError,
        "CoreError": ShelfError,
    },
}


def translate(exc: BaseException, kind: type[ShelfError] | None = None) -> ShelfError | None:
    """The ``shelf`` error for an error of ``registry_index`` or ``cclm_core`` (``kind`` forces the class).

    None for anything else: a ShelfError already, or a bug that must show its traceback.
    """
    for cls in type(exc).__mro__:
        mapped = _FOREIGN.get(cls.__module__, {}).get(cls.__name__)
        if mapped is not None:
            message = getattr(exc, "message", None) or str(exc)
            return (kind or mapped)(message, hint=getattr(exc, "hint", None))
    return None


@contextmanager
def translated(kind: type[ShelfError] | None = None) -> Iterator[None]:
    """Re-raise errors of ``registry_index`` and ``cclm_core`` in the block as ``shelf`` errors."""
    try:
        yield
    except Exception as exc:
        mapped = translate(exc, kind)
        if mapped is None:
            raise
        raise mapped from exc
