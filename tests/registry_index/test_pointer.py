"""Git LFS pointer files: strict parsing, and byte-identity with the real git-lfs client."""

from __future__ import annotations

import hashlib
import shutil
import subprocess

import pytest

from registry_index import LfsPointer, PointerError, format_pointer, looks_like_pointer, parse_pointer

OID = hashlib.sha256(b"hello world\n").hexdigest()
GOOD = f"version https://git-lfs.github.com/spec/v1\noid sha256:{OID}\nsize 12\n".encode()


def test_round_trip():
    pointer = parse_pointer(GOOD)
    assert pointer == LfsPointer(OID, 12)
    assert format_pointer(pointer) == GOOD
    assert looks_like_pointer(GOOD)


@pytest.mark.skipif(shutil.which("git-lfs") is None, reason="git-lfs is not installed")
@pytest.mark.parametrize("content", [b"hello world\n", b"\x00" * 3000, b"x"])
def test_format_is_byte_identical_to_git_lfs(tmp_path, content):
    sample = tmp_path / "sample.bin"
    sample.write_bytes(content)
    written = subprocess.run(
        ["git", "lfs", "pointer", f"--file={sample}"], cwd=tmp_path, capture_output=True, check=True
    ).stdout
    ours = format_pointer(LfsPointer(hashlib.sha256(content).hexdigest(), len(content)))
    assert ours == written
    assert parse_pointer(written) == LfsPointer(hashlib.sha256(content).hexdigest(), len(content))


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (GOOD.replace(b"\n", b"\r\n"), "not 'key value'"),
        (GOOD[:-1], "3 LF-terminated lines"),
        (GOOD + b"\n", "3 LF-terminated lines"),
        (GOOD.replace(b"spec/v1", b"spec/v2"), "unsupported LFS pointer version"),
        (GOOD.replace(OID.encode(), OID.upper().encode()), "64 lowercase hex"),
        (GOOD.replace(b"sha256:", b"sha1:"), "expected sha256"),
        (GOOD.replace(b"size 12", b"size 012"), "decimal byte count"),
        (GOOD.replace(b"size 12", b"size -1"), "decimal byte count"),
        (GOOD.replace(b"oid ", b"ext-0-foo "), "expected 'oid'"),
        (b"\xff" * 10, "non-ASCII"),
        (b"x" * 2000, "more than 1024"),
        (b"", "3 LF-terminated lines"),
    ],
)
def test_strict_parser_rejects_with_reason(data, fragment):
    with pytest.raises(PointerError) as info:
        parse_pointer(data)
    assert fragment in str(info.value)
    assert not looks_like_pointer(data)


def test_pointer_value_checks_its_fields():
    with pytest.raises(PointerError, match="64 lowercase hex"):
        LfsPointer("abc", 1)
    with pytest.raises(PointerError, match="non-negative"):
        LfsPointer(OID, -1)


def test_large_non_pointer_is_rejected_cheaply():
    assert not looks_like_pointer(b"version " + b"x" * 10_000_000)
