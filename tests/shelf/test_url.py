"""``ShelfURL``: one parser for every way a shelf is named, and the one redaction."""

from __future__ import annotations

from pathlib import Path

import pytest

from shelf.errors import ConfigError
from shelf.redaction import redact
from shelf.remote.url import ShelfURL, is_local


@pytest.mark.parametrize(
    ("text", "kind", "scheme", "host", "path"),
    [
        ("/srv/shelves/a", "local", "", "", "/srv/shelves/a"),
        ("rel/dir", "local", "", "", "rel/dir"),
        ("./a:b", "local", "", "", "./a:b"),
        ("C:/shelves/a", "local", "", "", "C:/shelves/a"),
        ("C:\\shelves\\a", "local", "", "", "C:\\shelves\\a"),
        ("file:///srv/shelf%20x", "local", "file", "", "/srv/shelf x"),
        ("git@example.com:org/shelf.git", "scp", "", "example.com", "org/shelf.git"),
        ("example.com:org/shelf", "scp", "", "example.com", "org/shelf"),
        ("git://example.com/org/shelf", "url", "git", "example.com", "/org/shelf"),
        ("ssh://git@Example.com:2222/org/shelf/", "url", "ssh", "example.com", "/org/shelf"),
        ("HTTPS://Example.COM/org/shelf.git/", "url", "https", "example.com", "/org/shelf.git"),
    ],
)
def test_every_spelling_of_a_shelf_is_parsed_once(
    text: str, kind: str, scheme: str, host: str, path: str
) -> None:
    url = ShelfURL.parse(text)
    assert (url.kind, url.scheme, url.host, url.path) == (kind, scheme, host, path)
    assert url.is_local == (kind == "local") == is_local(text)


def test_a_windows_drive_is_a_local_path_not_an_scp_host(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    url = ShelfURL.parse("C:/shelves/a")
    assert url.is_local and url.local_path == tmp_path / "C:" / "shelves" / "a"
    assert url.lfs_endpoint() is None


def test_the_tidy_text_keeps_credentials_but_display_and_mirror_key_do_not() -> None:
    url = ShelfURL.parse("https://alice:s3cret@Host:8080/org/shelf.git/?token=abc")
    assert url.text == "https://alice:s3cret@host:8080/org/shelf.git?token=abc"
    assert "s3cret" not in url.display and "alice" not in url.display and "abc" not in url.display
    assert url.mirror_key == "https://host:8080/org/shelf.git?token=abc"
    assert ShelfURL.parse("git@host:o/s").mirror_key == "git@host:o/s"


def test_a_local_mirror_key_is_the_absolute_path(tmp_path: Path) -> None:
    assert (
        ShelfURL.parse(tmp_path.as_uri()).mirror_key
        == str(tmp_path)
        == ShelfURL.parse(f"{tmp_path}/").mirror_key
    )


@pytest.mark.parametrize(
    ("remote", "endpoint"),
    [
        ("https://example.com/org/shelf", "https://example.com/org/shelf.git/info/lfs"),
        ("http://u:p@127.0.0.1:8080/org/shelf.git?x=1", "http://u:p@127.0.0.1:8080/org/shelf.git/info/lfs"),
        ("git@example.com:org/shelf.git", "https://example.com/org/shelf.git/info/lfs"),
        ("ssh://git@example.com:2222/org/shelf", "https://example.com/org/shelf.git/info/lfs"),
        ("git://example.com/org/shelf", "https://example.com/org/shelf.git/info/lfs"),
        ("/srv/shelf", None),
    ],
)
def test_lfs_endpoints_follow_git_lfs(remote: str, endpoint: str | None) -> None:
    assert ShelfURL.parse(remote).lfs_endpoint() == endpoint


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("", "the shelf URL is empty"),
        ("   ", "the shelf URL is empty"),
        ("ftp://host/shelf", "unsupported shelf URL"),
        ("http:///no-host", "unsupported shelf URL"),
        ("file://otherhost/x", "names another host"),
        ("sparse+https:///index", "unsupported shelf URL"),
    ],
)
def test_bad_addresses_are_refused_with_a_hint(bad: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        ShelfURL.parse(bad)
    assert info.value.hint
    assert not is_local(bad) or bad.strip() == ""


def test_a_sparse_address_names_its_http_base() -> None:
    parsed = ShelfURL.parse("sparse+HTTPS://Host:8443/Shelf/ ")
    assert (parsed.kind, parsed.scheme, parsed.host) == ("sparse", "sparse+https", "host")
    assert parsed.text == "sparse+https://host:8443/Shelf"
    assert parsed.http_base == "https://host:8443/Shelf"
    assert not parsed.is_local and parsed.is_sparse
    with pytest.raises(ConfigError, match="is not a sparse"):
        _ = ShelfURL.parse("https://h/o").http_base


def test_a_remote_has_no_local_path() -> None:
    with pytest.raises(ConfigError, match="is not a local path"):
        _ = ShelfURL.parse("https://h/o/s").local_path


def test_redact_hides_query_tokens_and_user_info() -> None:
    text = "GET https://tok123@h/o?token=abc&x=1 and http://u:pw@h/o?access_token=zzz"
    clean = redact(text)
    for secret in ("tok123", "abc", "pw", "zzz"):
        assert secret not in clean
    assert "x=1" in clean and "https://***@h/o" in clean
