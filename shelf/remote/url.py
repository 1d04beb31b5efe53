"""``ShelfURL``: a shelf's address, parsed once.

A shelf is named by one of

- a local path (``/srv/shelf``, ``rel/dir``, ``~/shelf``, ``C:/shelves/a``) or a ``file://`` URL;
- an scp-like address, ``[user@]host:path`` (a colon before the first slash, as git reads it; a single
  letter before the colon is a Windows drive, so a local path);
- a URL with a scheme in ``REMOTE_SCHEMES`` (``git://``, ``ssh://``, ``http(s)://``).

or ``sparse+http(s)://HOST/PATH`` (kind ``"sparse"``): a static export of a shelf read with plain GETs, no git
(``shelf.sparse``); ``http_base`` is the ``http(s)://`` URL its files are under. Parsing touches no file and
no network; ``local_path`` resolves.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

from shelf.errors import ConfigError
from shelf.redaction import redact

REMOTE_SCHEMES = frozenset({"git", "http", "https", "ssh", "git+ssh", "ssh+git"})
SPARSE_SCHEMES = frozenset({"sparse+http", "sparse+https"})
_SSH_LIKE = frozenset({"ssh", "git+ssh", "ssh+git", "git"})
_WINDOWS_DRIVE = re.compile(r"[A-Za-z]:[\\/]")
_SCHEME = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://")
_SCP_LIKE = re.compile(r"(?:(?P<user>[^@/]+)@)?(?P<host>[^/:]+):(?P<path>.*)", re.DOTALL)
_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)[^/@\s]+@")
_HINT = (
    "use a local path, an scp-like user@host:path, or a file://, git://, ssh://, http(s):// or "
    "sparse+http(s):// URL"
)


@dataclass(frozen=True)
class ShelfURL:
    """A parsed shelf address. ``kind`` is ``"local"``, ``"scp"``, ``"url"`` or ``"sparse"``.

    ``text`` is the address tidied (stripped; for URLs the scheme and host lower-cased and the trailing
    ``/`` dropped), credentials included: it is what git is given. Show ``display``, never ``text``.
    """

    text: str
    kind: str
    scheme: str = ""  # lower-case URL scheme; "" for local paths and scp-like addresses
    host: str = ""
    path: str = ""  # the remote path, or the local path as written (``file://`` decoded)

    @classmethod
    def parse(cls, url: str | os.PathLike[str]) -> ShelfURL:
        """Read a shelf address; ``ConfigError`` (with a hint) when it is empty or has an unknown scheme."""
        text = os.fspath(url).strip()
        if not text:
            raise ConfigError("the shelf URL is empty", hint="give a folder path or a git URL")
        if _WINDOWS_DRIVE.match(text):
            return cls(text, "local", path=text)
        if found := _SCHEME.match(text):
            return cls._parse_url(text, found["scheme"].lower())
        if scp := _SCP_LIKE.fullmatch(text):
            return cls(text.rstrip("/"), "scp", host=scp["host"], path=scp["path"].rstrip("/"))
        return cls(text, "local", path=text)

    @classmethod
    def _parse_url(cls, text: str, scheme: str) -> ShelfURL:
        parts = urlsplit(text)
        if scheme == "file":
            if parts.netloc not in ("", "localhost"):
                raise ConfigError(
                    f"file URL {redact(text)!r} names another host", hint="use file:///absolute/path"
                )
            from urllib.request import url2pathname  # ~20 ms to import; only file:// URLs need it

            return cls(text, "local", scheme="file", path=url2pathname(unquote(parts.path)))
        if scheme not in REMOTE_SCHEMES | SPARSE_SCHEMES or not parts.hostname:
            raise ConfigError(f"unsupported shelf URL {redact(text)!r}", hint=_HINT)
        userinfo, at, host = parts.netloc.rpartition("@")
        tidy = urlunsplit((scheme, f"{userinfo}{at}{host.lower()}", parts.path.rstrip("/"), parts.query, ""))
        kind = "sparse" if scheme in SPARSE_SCHEMES else "url"
        return cls(tidy, kind, scheme=scheme, host=parts.hostname, path=parts.path.rstrip("/"))

    # What callers ask ------------------------------------------------------------------------------------

    @property
    def is_local(self) -> bool:
        return self.kind == "local"

    @property
    def is_sparse(self) -> bool:
        return self.kind == "sparse"

    @property
    def http_base(self) -> str:
        """Where a sparse shelf's files are: its URL without ``sparse+`` (credentials kept, for requests)."""
        if not self.is_sparse:
            raise ConfigError(f"{self.display} is not a sparse+http(s):// shelf", hint=_HINT)
        return self.text.removeprefix("sparse+")

    @property
    def local_path(self) -> Path:
        """The absolute folder of a local shelf (``~`` expanded, links resolved); ConfigError if remote."""
        if not self.is_local:
            raise ConfigError(f"{self.display} is not a local path", hint="give a folder on this machine")
        return Path(self.path).expanduser().resolve()

    @property
    def display(self) -> str:
        """The address fit for messages and logs: credentials replaced by ``***``."""
        return redact(self.text)

    @property
    def mirror_key(self) -> str:
        """What names the shelf's mirror: local shelves by absolute path, remotes without credentials."""
        if self.is_local:
            return str(self.local_path)
        return _USERINFO.sub(r"\g<scheme>", self.text)

    def lfs_endpoint(self) -> str | None:
        """The Git LFS endpoint git-lfs would use for this remote; None for a local shelf (local objects).

        http(s) gets ``.git`` if missing and ``/info/lfs``; ssh, scp-like and git:// map to https on the same
        host and path (their port says nothing about the https one, so it is dropped, as git-lfs does).
        """
        if self.is_local:
            return None
        if self.scheme in ("http", "https"):
            parts = urlsplit(self.text)
            base = urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
        else:
            base = f"https://{self.host}/{self.path.lstrip('/')}"
        base = base.rstrip("/")
        return (base if base.endswith(".git") else base + ".git") + "/info/lfs"


def is_local_url(url: str) -> bool:
    """True for a path on this machine or a ``file://`` URL; False for unparsable text."""
    try:
        return ShelfURL.parse(url).is_local
    except ConfigError:
        return False


def normalise_url(url: str | os.PathLike[str]) -> str:
    """The canonical form of a shelf URL: an absolute path for local shelves, a tidy URL otherwise.

    Refuses an empty string, an unknown scheme and a local path that is a regular file.
    """
    parsed = ShelfURL.parse(url)
    return str(shelf_folder(parsed)) if parsed.is_local else parsed.text


def shelf_folder(parsed: ShelfURL) -> Path:
    """The folder of a local shelf; ``ConfigError`` when the path is a regular file."""
    path = parsed.local_path
    if path.is_file():
        raise ConfigError(
            f"{path} is a file, not a shelf",
            hint="a shelf is a git repository folder: point at one, or make one with `cclm-shelf init PATH`",
        )
    return path
