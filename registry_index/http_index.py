"""``HttpIndex``: the sparse index read over HTTP(S), one small file per component asked for.

The only module of ``registry_index`` that touches the network. Cache layout, under the ``cache_dir``
given (one sub-folder per index URL, so two shelves never share entries)::

    <cache_dir>/<sha256(base_url)[:16]>/url              the base URL, for people looking around
    <cache_dir>/<sha256(base_url)[:16]>/index/<prefix>/<name>        last good body
    <cache_dir>/<sha256(base_url)[:16]>/index/<prefix>/<name>.etag   its ETag, when the server sent one

Online, a cached file is revalidated with ``If-None-Match``; ``304 Not Modified`` means the cached body
is used without downloading it again. ``404`` means the shelf has no such component: ``entries`` returns
[] and drops any stale cache. Offline (``offline=True``), only the cache is read, and a component that was
never fetched raises IndexFetchError naming it. Bodies are parsed before they are cached, so a garbled
download never replaces a good cache file. Writes go through a temporary file and an atomic rename.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from registry_index.errors import IndexFetchError
from registry_index.index import IndexEntry, parse_index_file
from registry_index.layout import index_path

if TYPE_CHECKING:  # requests is imported on first use: importing registry_index stays fast
    import requests

CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 60.0


class HttpIndex:
    """Reads ``<base_url>/index/<prefix>/<name>`` with an ETag-revalidated on-disk cache."""

    def __init__(
        self,
        base_url: str,
        cache_dir: str | Path,
        offline: bool = False,
        session: requests.Session | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.offline = offline
        self.session = session or _new_session()
        self.cache_root = Path(cache_dir) / hashlib.sha256(self.base_url.encode()).hexdigest()[:16]
        self.files_read = 0  # index files parsed, from the network or the cache
        self.requests_made = 0
        self.not_modified = 0  # 304 answers: the cache was still good

    def entries(self, name: str) -> list[IndexEntry]:
        """Every version of ``name``; [] when the shelf has no such component."""
        relative = index_path(name)
        if self.offline:
            return self._from_cache(name, relative)
        data = self._fetch(repr(name), relative, lambda body: parse_index_file(body, relative))
        if data is None:
            return []
        self.files_read += 1
        return parse_index_file(data, relative)

    def fetch(self, relative: str, check: Callable[[bytes], object] | None = None) -> bytes | None:
        """Any other file of the index (``config.json``, a manifest), revalidated and cached the same way.

        ``check`` refuses a body (by raising) before it is cached; None for 404. Offline, the cached body,
        or IndexFetchError when there is none.
        """
        if self.offline:
            body = self.cache_root / relative
            if not body.is_file():
                raise IndexFetchError(
                    f"{relative} of {self.base_url} is not cached and offline mode is on",
                    hint="run the same command once without offline mode to fill the cache",
                )
            return body.read_bytes()
        return self._fetch(relative, relative, check)

    def _from_cache(self, name: str, relative: str) -> list[IndexEntry]:
        body = self.cache_root / relative
        if not body.is_file():
            raise IndexFetchError(
                f"the index of {name!r} is not cached and offline mode is on",
                hint="run the same command once without offline mode to fill the cache",
            )
        self.files_read += 1
        return parse_index_file(body.read_bytes(), relative)

    def _fetch(self, what: str, relative: str, check: Callable[[bytes], object] | None) -> bytes | None:
        """The current body (from the server or, after a 304, the cache); None for 404."""
        url = f"{self.base_url}/{relative}"
        body, etag_file = self.cache_root / relative, self.cache_root / (relative + ".etag")
        headers = {"Accept-Encoding": "gzip"}
        if body.is_file() and etag_file.is_file():
            headers["If-None-Match"] = etag_file.read_text("ascii").strip()
        response = self._get(url, headers, what)
        if response.status_code == 304 and body.is_file():
            self.not_modified += 1
            return body.read_bytes()
        if response.status_code == 404:
            _remove(body, etag_file)
            return None
        if response.status_code != 200:
            raise IndexFetchError(
                f"fetching {_what(what)} from {url} failed: HTTP {response.status_code}",
                url=url,
                status=response.status_code,
                hint="check the shelf URL, or work offline from the cache",
            )
        data = response.content
        if check is not None:
            check(data)  # refuse to cache a garbled file
        self._store(body, data, etag_file, response.headers.get("ETag"))
        return data

    def _get(self, url: str, headers: dict[str, str], what: str) -> requests.Response:
        import requests

        self.requests_made += 1
        try:
            return self.session.get(url, headers=headers, timeout=(CONNECT_TIMEOUT, READ_TIMEOUT))
        except requests.RequestException as e:
            raise IndexFetchError(
                f"fetching {_what(what)} from {url} failed: {_reason(e)}",
                url=url,
                hint="check the network and the shelf URL, or work offline from the cache",
            ) from e

    def _store(self, body: Path, data: bytes, etag_file: Path, etag: str | None) -> None:
        body.parent.mkdir(parents=True, exist_ok=True)
        url_note = self.cache_root / "url"
        if not url_note.exists():
            _atomic_write(url_note, (self.base_url + "\n").encode())
        _atomic_write(body, data)
        if etag:
            _atomic_write(etag_file, etag.encode("ascii", "replace"))
        else:
            _remove(etag_file)


def _what(what: str) -> str:
    """``'name'`` (quoted: an index file) reads "the index of 'name'"; a path is named as it is."""
    return f"the index of {what}" if what.startswith("'") else what


def _reason(error: Exception) -> str:
    """One short phrase for a failed request, instead of the library's nested message."""
    import requests

    if isinstance(error, requests.Timeout):
        return "the server did not answer in time"
    if isinstance(error, requests.ConnectionError):
        return "could not connect"
    return type(error).__name__


def _new_session() -> requests.Session:
    import requests

    return requests.Session()


def _atomic_write(path: Path, data: bytes) -> None:
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".incomplete")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _remove(*paths: Path) -> None:
    for path in paths:
        path.unlink(missing_ok=True)
