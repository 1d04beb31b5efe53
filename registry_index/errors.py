"""Every error ``registry_index`` raises on purpose.

    RegistryIndexError              root: carries a message and an optional hint
    ├── ManifestError               a manifest is invalid; carries every Problem found at once
    ├── RequirementError            a requirement string (``name>=1.0``) cannot be parsed
    ├── VersionError                a version is not SemVer 2.0
    ├── PointerError                bytes are not a strict Git LFS pointer file (spec v1)
    ├── IndexFormatError            an index file has a truncated or garbled line (path + line number)
    ├── IndexFetchError             an index file could not be fetched, or is not cached while offline
    └── LayoutError                 a name, version or path cannot be placed in a shelf repository

Errors carry data and format themselves (``str(error)`` gives the message, then the hint). The package
manager lets them cross into ``shelf`` unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass


class HintedError(Exception):
    """An error with a ``message`` and an optional ``hint`` (what to do); ``shelf``'s errors share it."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message}\n  hint: {self.hint}"
        return self.message


class RegistryIndexError(HintedError):
    """Root of every error raised on purpose by ``registry_index``."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a manifest: where (a JSON path, ``$.items.model.files[0].path``) and what."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class ManifestError(RegistryIndexError):
    """A manifest failed validation; ``problems`` lists every problem, not just the first."""

    def __init__(
        self, problems: list[Problem], *, source: str = "<manifest>", hint: str | None = None
    ) -> None:
        self.problems = list(problems)
        self.source = source
        count = len(self.problems)
        lines = [f"{source}: {count} problem{'s' if count != 1 else ''} in manifest"]
        lines += [f"  - {problem}" for problem in self.problems]
        super().__init__("\n".join(lines), hint=hint)


class RequirementError(RegistryIndexError):
    pass


class VersionError(RegistryIndexError):
    pass


class PointerError(RegistryIndexError):
    pass


class IndexFormatError(RegistryIndexError):
    """A line of an index file is not a valid entry; names the file and the 1-based line."""

    def __init__(self, path: str, line: int, message: str, *, hint: str | None = None) -> None:
        self.path = path
        self.line = line
        self.detail = message
        super().__init__(f"{path}:{line}: {message}", hint=hint)


class LayoutError(RegistryIndexError):
    pass


class IndexFetchError(RegistryIndexError):
    """An index file could not be fetched over HTTP, or is not cached while offline."""

    def __init__(
        self, message: str, *, url: str | None = None, status: int | None = None, hint: str | None = None
    ):
        self.url = url
        self.status = status
        super().__init__(message, hint=hint)
