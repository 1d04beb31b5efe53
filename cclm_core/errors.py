"""Errors raised by the model core.

Every error the core raises on bad input derives from one root, so callers (the shelf, the CLI) can
catch ``CoreError`` and show ``str(error)``, which already says what is wrong and what to do::

    CoreError
    ├── DataError                    training or fitting data is empty, unreadable or has no text column
    ├── FormatError                  a saved file is missing, corrupt or not what its name says
    │   └── UnsupportedFormatError   a saved file was written by a newer format than this core reads
    ├── UnsafeModelError             a saved config asks for code (Lambda layers, unknown custom objects)
    └── IncompatibleComponentError   pieces do not share one base (embedder, vocabulary, input length)
"""

from __future__ import annotations


class CoreError(Exception):
    """Root of every error raised by ``cclm_core`` on bad input or bad files."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message} ({self.hint})"
        return self.message


class DataError(CoreError):
    """Training or fitting data cannot be used as given."""


class FormatError(CoreError):
    """A saved file or folder is missing, corrupt, or not the kind of item expected."""


class UnsupportedFormatError(FormatError):
    """A saved file declares a format version newer than this core understands."""


class UnsafeModelError(CoreError):
    """A saved model config would run code (a Lambda layer) or names a custom object we do not know."""


class IncompatibleComponentError(CoreError):
    """A component, embedder and preprocessor do not share the same base."""
