"""Every error the package manager raises on purpose.

    ShelfError                      root: carries a message and an optional hint
    ├── ConfigError                 project file, options or environment are wrong
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

Errors carry data and format themselves; only the CLI turns them into messages and exit codes. Errors from
``registry_index`` (``RegistryIndexError`` and its children) cross into this package unchanged.
"""

from __future__ import annotations


class ShelfError(Exception):
    """Root of every error raised on purpose by ``shelf``."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message}\n  hint: {self.hint}"
        return self.message


class ConfigError(ShelfError):
    exit_code = 2


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
