"""Git LFS pointer files, spec v1, read strictly and written byte-for-byte as git-lfs writes them.

A pointer is three ``key value`` lines, each ending in LF, with ``version`` first and the other keys
sorted::

    version https://git-lfs.github.com/spec/v1
    oid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393
    size 12345

Anything else (CRLF, extension keys, extra blank lines, upper-case hex, leading zeros, more than 1024
bytes) is rejected: a file that is not exactly a pointer must never be mistaken for one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from registry_index.errors import PointerError

SPEC_URL = "https://git-lfs.github.com/spec/v1"
MAX_POINTER_SIZE = 1024
_OID = re.compile(r"[0-9a-f]{64}", re.ASCII)
_SIZE = re.compile(r"0|[1-9][0-9]*", re.ASCII)
_HINT = "a pointer is 'version https://git-lfs.github.com/spec/v1', 'oid sha256:<64 hex>', 'size <bytes>'"


@dataclass(frozen=True)
class LfsPointer:
    """The identity of one LFS object: its sha256 (64 lowercase hex digits, no prefix) and byte size."""

    oid: str
    size: int

    def __post_init__(self) -> None:
        if not is_sha256_hex(self.oid):
            raise PointerError(f"invalid LFS oid {self.oid!r}: expected 64 lowercase hex digits")
        if isinstance(self.size, bool) or not isinstance(self.size, int) or self.size < 0:
            raise PointerError(f"invalid LFS object size {self.size!r}: expected a non-negative integer")


def is_sha256_hex(text: object) -> bool:
    """True when ``text`` is exactly 64 lowercase hex digits (no prefix, no whitespace, no newline).

    The one sha256 check of the project: object ids, manifest digests and file hashes all go through it.
    """
    return isinstance(text, str) and _OID.fullmatch(text) is not None


def format_pointer(pointer: LfsPointer) -> bytes:
    """The pointer file for ``pointer``, identical to what ``git lfs pointer`` / the clean filter write."""
    return f"version {SPEC_URL}\noid sha256:{pointer.oid}\nsize {pointer.size}\n".encode("ascii")


def parse_pointer(data: bytes) -> LfsPointer:
    """Read a pointer file; PointerError says which line is wrong."""
    text = _decode(data)
    lines = text.split("\n")
    if lines[-1] != "" or len(lines) != 4:
        raise PointerError(
            f"not an LFS pointer: expected exactly 3 LF-terminated lines, got {text[:80]!r}", hint=_HINT
        )
    version, oid, size = (_split_line(number, line) for number, line in enumerate(lines[:3], start=1))
    _expect(version, "version", 1)
    if version[1] != SPEC_URL:
        raise PointerError(f"unsupported LFS pointer version {version[1]!r}", hint=f"only {SPEC_URL}")
    _expect(oid, "oid", 2)
    _expect(size, "size", 3)
    if not oid[1].startswith("sha256:") or not is_sha256_hex(oid[1][7:]):
        raise PointerError(f"invalid LFS pointer oid {oid[1]!r}: expected sha256:<64 lowercase hex>")
    if not _SIZE.fullmatch(size[1]):
        raise PointerError(f"invalid LFS pointer size {size[1]!r}: expected a decimal byte count")
    return LfsPointer(oid[1][7:], int(size[1]))


def looks_like_pointer(data: bytes) -> bool:
    """True when ``data`` is a valid pointer file (cheap for large files: only small inputs are parsed)."""
    if len(data) > MAX_POINTER_SIZE or not data.startswith(b"version "):
        return False
    try:
        parse_pointer(data)
    except PointerError:
        return False
    return True


def _decode(data: bytes) -> str:
    if not isinstance(data, bytes | bytearray | memoryview):
        raise PointerError(f"a pointer file is bytes, got {type(data).__name__}")
    if len(data) > MAX_POINTER_SIZE:
        raise PointerError(f"not an LFS pointer: {len(data)} bytes is more than {MAX_POINTER_SIZE}")
    try:
        return bytes(data).decode("ascii")
    except UnicodeDecodeError as e:
        raise PointerError("not an LFS pointer: contains non-ASCII bytes", hint=_HINT) from e


def _split_line(number: int, line: str) -> tuple[str, str]:
    key, sep, value = line.partition(" ")
    if not sep or not key or not value or "\r" in line:
        raise PointerError(f"not an LFS pointer: line {number} {line!r} is not 'key value'", hint=_HINT)
    return key, value


def _expect(pair: tuple[str, str], key: str, number: int) -> None:
    if pair[0] != key:
        raise PointerError(
            f"not an LFS pointer: line {number} has key {pair[0]!r}, expected {key!r}", hint=_HINT
        )
